//! What the admin console keeps beside staff and merchants: the desk's working hours and
//! holidays, the versioned question banks, and the merchants' settings as the console
//! lists them (never a secret).

use super::{is_unique_violation, Merchant, Store};
use crate::error::{Error, Result};
use sqlx::Row;

/// One saved version of a question bank.
#[derive(Debug, Clone)]
pub struct BankRow {
    pub version: i64,
    /// JSON `[{"en", "hi", "mandatory"}]`.
    pub questions: String,
    pub random_count: i64,
    pub created_at: i64,
}

/// A merchant's settings as the console shows them: no secret, no private key.
#[derive(Debug, Clone)]
pub struct MerchantSettings {
    pub merchant: Merchant,
    pub created_at: i64,
    pub webhook_url: Option<String>,
    pub rate_limit_per_minute: Option<i64>,
    /// `none`, `ip` or `signature`.
    pub second_factor: String,
    pub ip_allowlist: Option<String>,
    pub public_key_pem: Option<String>,
    /// Each client id with how many of its secrets are active (1, or 2 while rotating).
    pub client_ids: Vec<(String, i64)>,
}

impl Store {
    // ---- the desk's hours and holidays ----

    /// The desk's days (comma list) and hours as an admin set them; `None`: the
    /// configuration's.
    pub async fn desk_hours(&self) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT working_days, working_hours FROM desk_hours WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("working_days")?, row.try_get("working_hours")?)),
            None => None,
        })
    }

    /// Sets the desk's days and hours, or with `None` returns to the configuration's.
    pub async fn set_desk_hours(&self, hours: Option<(&str, &str)>, now: i64) -> Result<()> {
        match hours {
            Some((days, hours)) => {
                sqlx::query(
                    "INSERT INTO desk_hours (id, working_days, working_hours, updated_at) \
                     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET \
                     working_days = excluded.working_days, \
                     working_hours = excluded.working_hours, updated_at = excluded.updated_at",
                )
                .bind(days)
                .bind(hours)
                .bind(now)
                .execute(&self.write)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM desk_hours WHERE id = 1")
                    .execute(&self.write)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every holiday (`YYYY-MM-DD`), in order.
    pub async fn holidays(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT day FROM holidays ORDER BY day")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("day"))
            .collect::<Result<_, _>>()?)
    }

    /// Adds holidays in one transaction; returns how many were new.
    pub async fn add_holidays(&self, days: &[String], now: i64) -> Result<u64> {
        let mut tx = self.write.begin().await?;
        let mut added = 0;
        for day in days {
            let done = sqlx::query(
                "INSERT INTO holidays (day, added_at) VALUES ($1, $2) \
                 ON CONFLICT (day) DO NOTHING",
            )
            .bind(day)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// `false` when the day was not a holiday.
    pub async fn remove_holiday(&self, day: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM holidays WHERE day = $1")
            .bind(day)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- question banks ----

    /// A bank's newest version, or the given one. `merchant_id` 0 is the deployment's.
    pub async fn question_bank(
        &self,
        merchant_id: i64,
        version: Option<i64>,
    ) -> Result<Option<BankRow>> {
        let query = match version {
            Some(v) => sqlx::query(
                "SELECT version, questions, random_count, created_at FROM question_banks \
                 WHERE merchant_id = $1 AND version = $2",
            )
            .bind(merchant_id)
            .bind(v),
            None => sqlx::query(
                "SELECT version, questions, random_count, created_at FROM question_banks \
                 WHERE merchant_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(merchant_id),
        };
        let row = query.fetch_optional(&self.read).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(BankRow {
            version: row.try_get("version")?,
            questions: row.try_get("questions")?,
            random_count: row.try_get("random_count")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    /// Saves a new version of a bank on top of `base` (the version the admin edited, 0
    /// for none). `None` (nothing saved) when someone else saved a version meanwhile.
    pub async fn insert_question_bank(
        &self,
        merchant_id: i64,
        base: i64,
        questions: &str,
        random_count: i64,
        staff_id: Option<i64>,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) AS v FROM question_banks WHERE merchant_id = $1",
        )
        .bind(merchant_id)
        .fetch_one(&mut *tx)
        .await?;
        let latest: i64 = row.try_get("v")?;
        if latest != base {
            return Ok(None);
        }
        let inserted = sqlx::query(
            "INSERT INTO question_banks (merchant_id, version, questions, random_count, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(merchant_id)
        .bind(latest + 1)
        .bind(questions)
        .bind(random_count)
        .bind(now)
        .bind(staff_id)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Two saves on the same base: the other one won.
            Err(err) if is_unique_violation(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        tx.commit().await?;
        Ok(Some(latest + 1))
    }

    /// Records the bank versions a call's questions came from.
    pub async fn set_call_question_banks(&self, call_id: i64, banks: &str) -> Result<()> {
        sqlx::query("UPDATE calls SET question_banks = $1 WHERE id = $2")
            .bind(banks)
            .bind(call_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The bank versions a call's questions came from (JSON), if recorded.
    pub async fn call_question_banks(&self, call_id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT question_banks FROM calls WHERE id = $1")
            .bind(call_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("question_banks")?,
            None => None,
        })
    }

    // ---- merchants, as the console lists them ----

    pub async fn merchant_by_id(&self, id: i64) -> Result<Option<Merchant>> {
        let row = sqlx::query("SELECT id, name, env FROM merchants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let env: String = row.try_get("env")?;
        Ok(Some(Merchant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            env: env.parse().map_err(Error::internal)?,
        }))
    }

    /// Every merchant's settings, by id.
    pub async fn merchant_settings(&self) -> Result<Vec<MerchantSettings>> {
        let rows = sqlx::query(
            "SELECT id, name, env, created_at, webhook_url, rate_limit_per_minute, \
             second_factor, ip_allowlist, public_key_pem FROM merchants ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        let creds = sqlx::query(
            "SELECT merchant_id, client_id, COUNT(*) AS n FROM credentials \
             WHERE revoked_at IS NULL GROUP BY merchant_id, client_id ORDER BY client_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let env: String = row.try_get("env")?;
            let mut client_ids = Vec::new();
            for c in &creds {
                if c.try_get::<i64, _>("merchant_id")? == id {
                    client_ids.push((c.try_get("client_id")?, c.try_get("n")?));
                }
            }
            out.push(MerchantSettings {
                merchant: Merchant {
                    id,
                    name: row.try_get("name")?,
                    env: env.parse().map_err(Error::internal)?,
                },
                created_at: row.try_get("created_at")?,
                webhook_url: row.try_get("webhook_url")?,
                rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
                second_factor: row.try_get("second_factor")?,
                ip_allowlist: row.try_get("ip_allowlist")?,
                public_key_pem: row.try_get("public_key_pem")?,
                client_ids,
            });
        }
        Ok(out)
    }

    // ---- staff ----

    /// Ends a lock-out and forgets failed logins; `false` when the account was neither
    /// locked nor had failures.
    pub async fn unlock_staff(&self, staff_id: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE staff SET failed_logins = 0, locked_until = NULL \
             WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
        )
        .bind(staff_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
