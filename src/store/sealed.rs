//! Values sealed under the master key: which key the database's values are under, the
//! customers' personal data sealed as it is written and opened as it is read, values
//! written in clear before sealing existed (sealed on the first start after the upgrade),
//! and re-sealing everything under a new key.
//!
//! Personal data sealed here: the Aadhaar details (proved in the journey or sent by the
//! merchant), the Aadhaar photo, the personal-details form, the stills captured in calls and the customer's address.
//! Images are sealed as their bytes, so a sealed still takes the room its Base64 took.
//! The user's name and phone stay in clear: the case search looks them up.

use super::{Backend, Store};
use crate::clock::now_ms;
use crate::error::{Error, ErrorType, Result};
use crate::secrets::MasterKey;
use anyhow::Context;
use axum::http::StatusCode;
use base64::Engine;
use sqlx::Row;

/// How a column held its value before it was sealed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Text,
    /// A Base64 JPEG, sealed as its bytes.
    Image,
}

/// A sealed column: its table, the table's key and the column.
struct Column {
    table: &'static str,
    key: &'static str,
    column: &'static str,
    form: Form,
}

const fn column(
    table: &'static str,
    key: &'static str,
    column: &'static str,
    form: Form,
) -> Column {
    Column {
        table,
        key,
        column,
        form,
    }
}

/// The personal data sealed at rest (the upgrade's `unsealed_values` names these).
const PERSONAL: [Column; 6] = [
    column("users", "id", "address", Form::Text),
    column("requests", "id", "aadhaar_details", Form::Text),
    column("aadhaar_kyc", "request_id", "details", Form::Text),
    column("aadhaar_kyc", "request_id", "photo", Form::Image),
    column("captures", "id", "image", Form::Image),
    column("personal_details", "request_id", "details", Form::Text),
];

/// The secrets sealed since the start (client secrets, signature and signing keys, TOTP).
const SECRETS: [Column; 5] = [
    column("calls", "id", "recording_key", Form::Text),
    column("credentials", "id", "secret_enc", Form::Text),
    column("merchants", "id", "private_key_enc", Form::Text),
    column("staff", "id", "totp_secret_enc", Form::Text),
    column("signing_keys", "id", "private_key_enc", Form::Text),
];

/// Rows read and written at a time when sealing or re-sealing many (a still is ~100 KB).
const BATCH: i64 = 100;

/// The answer when this process's master key is no longer the database's.
pub(super) fn key_changed() -> Error {
    Error::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorType::InternalError,
        "master_key_changed",
        "the server's master key was changed; the server must be restarted to store this.",
    )
}

/// The master key given is not the one the database's values are sealed under.
#[derive(Debug, thiserror::Error)]
#[error(
    "the master key does not open this database's sealed values (was it rotated with \
     `vkyc master-key rotate`, or is it another deployment's key?): start with the \
     database's key, from VKYC_MASTER_KEY, master_key_file or <data_dir>/master.key"
)]
pub struct WrongMasterKey;

impl Store {
    pub(super) fn seal_text(&self, text: &str) -> String {
        self.key.seal(text.as_bytes())
    }

    pub(super) fn open_text(&self, sealed: &str) -> Result<String> {
        String::from_utf8(self.open_bytes(sealed)?)
            .map_err(|_| Error::internal(anyhow::anyhow!("a sealed text is not UTF-8")))
    }

    pub(super) fn seal_bytes(&self, bytes: &[u8]) -> String {
        self.key.seal(bytes)
    }

    pub(super) fn open_bytes(&self, sealed: &str) -> Result<Vec<u8>> {
        self.key.open(sealed).map_err(|e| {
            // After `vkyc master-key rotate`, until this server is restarted.
            Error::internal(e.context("opening personal data sealed in the database"))
        })
    }

    /// Whether the database's values are still under this process's key, asked in the
    /// transaction that writes a sealed value. On PostgreSQL the row is read `FOR SHARE`:
    /// a rotation, which changes it first, waits for this transaction, and this one for a
    /// rotation under way; so no value is ever written under a key the database left.
    pub(super) async fn key_is_current_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<bool, sqlx::Error> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT key_id FROM master_key_id WHERE id = 1",
            Backend::Postgres => "SELECT key_id FROM master_key_id WHERE id = 1 FOR SHARE",
        };
        let row = sqlx::query(sql).fetch_optional(&mut **tx).await?;
        let current: Option<String> = row.map(|r| r.try_get("key_id")).transpose()?;
        if current.as_deref() != Some(self.key_id.as_str()) {
            tracing::error!(
                "the master key was changed by `vkyc master-key rotate`: restart this server \
                 so that it loads the new key; until then it stores no personal data"
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// [`key_is_current_in`](Self::key_is_current_in) as an answer.
    pub(super) async fn check_key_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<()> {
        if self.key_is_current_in(tx).await? {
            Ok(())
        } else {
            Err(key_changed())
        }
    }

    /// At start: the database's values must be under this key. A database that names no
    /// key yet (new, or from before key ids were kept) takes this one, once any secret
    /// it already holds is shown to open with it.
    pub(super) async fn claim_key(&self) -> anyhow::Result<()> {
        let wrong_key = || anyhow::Error::new(WrongMasterKey);
        for _ in 0..2 {
            let current = sqlx::query("SELECT key_id FROM master_key_id WHERE id = 1")
                .fetch_optional(&self.write)
                .await?
                .map(|r| r.try_get::<String, _>("key_id"))
                .transpose()?;
            match current {
                Some(id) if id == self.key_id => return Ok(()),
                Some(_) => return Err(wrong_key()),
                None => {}
            }
            let probe = sqlx::query("SELECT secret_enc FROM credentials ORDER BY id LIMIT 1")
                .fetch_optional(&self.write)
                .await?;
            if let Some(row) = probe {
                let sealed: String = row.try_get("secret_enc")?;
                self.key.open(&sealed).map_err(|_| wrong_key())?;
            }
            // Another process may claim it at the same moment: the second look decides.
            sqlx::query(
                "INSERT INTO master_key_id (id, key_id, set_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&self.key_id)
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        }
        Err(wrong_key())
    }

    /// Seals the values the upgrade listed in `unsealed_values` (written in clear before
    /// sealing existed), a batch per transaction, each value's listing deleted with its
    /// sealing: idempotent, and an interrupted run resumes. Answers how many it sealed.
    pub(super) async fn seal_clear_values(&self) -> anyhow::Result<usize> {
        let mut sealed = 0;
        loop {
            let listed = sqlx::query(
                "SELECT id, table_name, column_name, row_key FROM unsealed_values \
                 ORDER BY id LIMIT $1",
            )
            .bind(BATCH)
            .fetch_all(&self.write)
            .await?;
            if listed.is_empty() {
                break;
            }
            let mut tx = self.write.begin().await?;
            if !self.key_is_current_in(&mut tx).await? {
                anyhow::bail!("the master key changed while clear values were being sealed");
            }
            for row in &listed {
                let id: i64 = row.try_get("id")?;
                let table: String = row.try_get("table_name")?;
                let name: String = row.try_get("column_name")?;
                let row_key: i64 = row.try_get("row_key")?;
                let column = PERSONAL
                    .iter()
                    .find(|c| c.table == table && c.column == name)
                    .with_context(|| format!("unsealed_values names {table}.{name}"))?;
                // Whoever deletes the listing seals the value: another process starting
                // at the same moment skips it.
                let claimed = sqlx::query("DELETE FROM unsealed_values WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if claimed.rows_affected() == 0 {
                    continue;
                }
                let value = sqlx::query(&format!(
                    "SELECT {} AS v FROM {} WHERE {} = $1",
                    column.column, column.table, column.key
                ))
                .bind(row_key)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("v"))
                .transpose()?
                .flatten();
                let Some(clear) = value else { continue };
                let bytes = match column.form {
                    Form::Text => clear.into_bytes(),
                    // Stored Base64 by the server itself; anything else is kept as it was.
                    Form::Image => base64::engine::general_purpose::STANDARD
                        .decode(&clear)
                        .unwrap_or_else(|_| clear.into_bytes()),
                };
                sqlx::query(&format!(
                    "UPDATE {} SET {} = $1 WHERE {} = $2",
                    column.table, column.column, column.key
                ))
                .bind(self.key.seal(&bytes))
                .bind(row_key)
                .execute(&mut *tx)
                .await?;
                sealed += 1;
            }
            tx.commit().await?;
        }
        if sealed > 0 {
            tracing::info!(
                values = sealed,
                "personal data stored in clear is now sealed"
            );
            if self.backend == Backend::Sqlite {
                // The clear pages' old images are still in the WAL: checkpoint and empty it.
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.write)
                    .await?;
            }
        }
        Ok(sealed)
    }

    /// Re-seals every sealed value, secrets and personal data, under `new` in one
    /// transaction (read and written a batch at a time), after moving the database's key
    /// id to `new` first: a server still holding this key then stores nothing more under
    /// it. Answers how many values were re-sealed.
    pub async fn rotate_master_key(&self, new: &MasterKey) -> anyhow::Result<usize> {
        let mut tx = self.write.begin().await?;
        let moved = sqlx::query(
            "UPDATE master_key_id SET key_id = $1, set_at = $2 WHERE id = 1 AND key_id = $3",
        )
        .bind(new.key_id())
        .bind(now_ms())
        .bind(&self.key_id)
        .execute(&mut *tx)
        .await?;
        anyhow::ensure!(
            moved.rows_affected() == 1,
            "the database's values are not under this master key"
        );
        let mut count = 0;
        for column in SECRETS.iter().chain(PERSONAL.iter()) {
            let mut after = i64::MIN;
            loop {
                let rows = sqlx::query(&format!(
                    "SELECT {key} AS k, {col} AS v FROM {table} WHERE {col} IS NOT NULL \
                     AND {key} > $1 ORDER BY {key} LIMIT $2",
                    key = column.key,
                    col = column.column,
                    table = column.table
                ))
                .bind(after)
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("k")?;
                for row in &rows {
                    let k: i64 = row.try_get("k")?;
                    let v: String = row.try_get("v")?;
                    let opened = self.key.open(&v).with_context(|| {
                        format!(
                            "{}.{} of row {k} does not open",
                            column.table, column.column
                        )
                    })?;
                    sqlx::query(&format!(
                        "UPDATE {} SET {} = $1 WHERE {} = $2",
                        column.table, column.column, column.key
                    ))
                    .bind(new.seal(&opened))
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
                    count += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(count)
    }
}
