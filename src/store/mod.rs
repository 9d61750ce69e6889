//! All SQL lives here. One store over SQLite (the embedded default) or PostgreSQL (chosen
//! by a `postgres://` URL), through sqlx's `Any` driver: queries use `$1`-style
//! parameters, which both backends accept, and times are Unix milliseconds.
//!
//! A status move is applied in one transaction together with its history rows, by an
//! update guarded on the row's version, so two racing moves have exactly one winner.

mod fast_reads;
mod rate_limits;

use crate::clock::now_ms;
pub use crate::domain::request::Request;
use crate::domain::status::{self, Actor, Event, SubStatus};
use crate::error::{Error, ErrorType, Result};
use anyhow::Context;
use axum::http::StatusCode;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod calls;
pub use calls::{Call, CallUpdate, CaptureRow};
mod journey;
pub use journey::{Booking, ConsentRow, NotificationRow, SideWrite, StepRow};
mod webhooks;
pub use webhooks::{AttemptRow, ClaimedDelivery, DeliveryRow, Outcome};

mod staff;
pub use staff::{AuditRow, Presence, Role, SessionRow, Staff};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handles to the database. SQLite allows one writer at a time, so its writes go through
/// a pool of one connection (no lock errors, no busy waiting) while reads use several;
/// PostgreSQL uses one pool for both.
///
/// A handle is one reference count: API handlers clone the store with the application
/// state on every call, and one shared count costs less than one per pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

impl std::ops::Deref for Store {
    type Target = StoreInner;
    fn deref(&self) -> &StoreInner {
        &self.inner
    }
}

/// What a [`Store`] holds.
#[derive(Clone)]
pub struct StoreInner {
    write: AnyPool,
    read: AnyPool,
    backend: Backend,
    /// The public base URL, for the `vkyc_link` inside webhook events; set once the
    /// server knows where it listens.
    link_base: Arc<OnceLock<String>>,
    /// Signs the recording links that webhook events carry; set once at start.
    recording_signer: Arc<OnceLock<crate::domain::recording_links::RecordingSigner>>,
    /// On SQLite, creates go to one writer task that commits them in groups.
    creates: Option<tokio::sync::mpsc::Sender<CreateJob>>,
    /// Rate-limit counters. On PostgreSQL their own connections, which commit without
    /// waiting for the disk: a count lost in a crash costs nothing, and a durable write
    /// on every call would cost a disk flush per request.
    counters: AnyPool,
    /// On SQLite, point lookups read the file directly (see [`fast_reads`]).
    fast: Option<Arc<fast_reads::FastReads>>,
}

/// A create waiting for the group-commit writer, and where to send its outcome.
struct CreateJob {
    merchant_id: i64,
    new: NewRequest,
    actor: Actor,
    reply: tokio::sync::oneshot::Sender<Result<Option<Request>>>,
}

/// The most creates one group commit takes.
const GROUP_COMMIT_MAX: usize = 256;

/// The most requests one status update of [`Store::apply_each`] covers (its values are
/// written into the statement, no parameters).
const MOVES_PER_STATEMENT: usize = 1000;

/// The most rows one multi-row `INSERT` writes. sqlx looks up each `$N` parameter of a
/// SQLite statement by name, a search through all of them, so a statement's binding
/// costs the square of its parameter count: many small statements beat one huge one.
/// Full chunks share one text, so their prepared statement is cached and reused.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// A merchant's environment: test credentials work on sandbox deployments, live ones on
/// production deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantEnv {
    Test,
    Live,
}

impl MerchantEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantEnv::Test => "test",
            MerchantEnv::Live => "live",
        }
    }
}

impl FromStr for MerchantEnv {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<MerchantEnv> {
        match s {
            "test" => Ok(MerchantEnv::Test),
            "live" => Ok(MerchantEnv::Live),
            other => anyhow::bail!("environment must be test or live, not {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: i64,
    pub name: String,
    pub env: MerchantEnv,
}

/// A credential as the authenticator needs it.
#[derive(Debug, Clone)]
pub struct Credential {
    pub client_id: String,
    pub merchant_id: i64,
    pub env: MerchantEnv,
    /// Hex SHA-256 digests of the secrets that are not revoked.
    pub secret_digests: Vec<String>,
    /// `none`, `ip` or `signature`.
    pub second_factor: String,
    /// JSON array of addresses and CIDR ranges.
    pub ip_allowlist: Option<String>,
    /// The PKCS#8 DER private key, sealed under the master key.
    pub private_key_enc: Option<String>,
    pub rate_limit_per_minute: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub merchant_id: i64,
    pub user_id: String,
    pub phone: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub phone: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewRequest {
    pub verification_id: String,
    pub user_ref: i64,
    pub user_id: String,
    pub link_token: String,
    pub link_expires_at: i64,
    pub notification_types: Option<String>,
    pub user_template: Option<String>,
    pub agent_template: Option<String>,
    pub aadhaar_details: Option<String>,
    pub security_questions: Option<String>,
    pub webhook_url: Option<String>,
}

/// Fields a move may set beside the status (remarks, recording, meeting time).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub recording_link: Option<String>,
    pub meeting_schedule: Option<Option<i64>>,
    pub agent_remarks: Option<String>,
    pub auditor_remarks: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub from_sub_status: Option<String>,
    pub to_sub_status: String,
    pub details: Option<String>,
}

/// Why a move was not applied. Either way nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Illegal(#[from] status::IllegalMove),
    /// Another move changed the request first.
    #[error("the request changed while this move was being applied")]
    Lost,
    /// A condition of the move's other writes did not hold (e.g. `slot_full`).
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The API answer for a move that was not applied.
impl From<MoveError> for Error {
    fn from(err: MoveError) -> Error {
        match err {
            MoveError::Illegal(illegal) => Error::new(
                StatusCode::CONFLICT,
                ErrorType::ValidationError,
                "status_transition_invalid",
                illegal.to_string(),
            ),
            MoveError::Lost => Error::new(
                StatusCode::CONFLICT,
                ErrorType::ValidationError,
                "request_changed",
                "the request changed while this call was being handled; read it and retry.",
            ),
            MoveError::Refused(code) => Error::new(
                StatusCode::CONFLICT,
                ErrorType::ValidationError,
                code,
                "the request cannot take this step now.",
            ),
            MoveError::Db(err) => Error::from(err),
        }
    }
}

/// Requests whose link expired by `$1` and that can still expire. The status filter is
/// the partial index `requests_expiry`'s; the sub-status list is the status machine's.
fn due_clause() -> &'static str {
    static CLAUSE: OnceLock<String> = OnceLock::new();
    CLAUSE.get_or_init(|| {
        let expirable: Vec<String> = status::expirable()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!(
            "status IN ('RECEIVED', 'PRE_VIDEO_CALL', 'VIDEO_CALL') AND link_expires_at <= $1 \
             AND sub_status IN ({})",
            expirable.join(", ")
        )
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

const REQUEST_COLUMNS: &str = "id, merchant_id, verification_id, user_ref, user_id, link_token, \
     link_expires_at, sub_status, version, notification_types, user_template, agent_template, \
     aadhaar_details, security_questions, recording_link, meeting_schedule, agent_remarks, \
     auditor_remarks, created_at, webhook_url, event_seq";

/// A result row of either driver (sqlx's `Any` or a direct SQLite read), so that one
/// mapping serves both. A column is named, with the place where the mapping expects it
/// (a hint that a direct read checks first, to save searching the names).
pub(crate) trait Columns {
    fn int(&self, at: usize, name: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, at: usize, name: &str) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, at: usize, name: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, at: usize, name: &str) -> Result<Option<String>, sqlx::Error>;
}

impl Columns for AnyRow {
    fn int(&self, _: usize, name: &str) -> Result<i64, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_int(&self, _: usize, name: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(name)
    }
    fn text(&self, _: usize, name: &str) -> Result<String, sqlx::Error> {
        self.try_get(name)
    }
    fn opt_text(&self, _: usize, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(name)
    }
}

/// The one mapping of a `requests` row to a [`Request`]; the places are those of
/// [`REQUEST_COLUMNS`].
fn request_from_row(row: &(impl Columns + ?Sized)) -> Result<Request, sqlx::Error> {
    let sub_status = row.text(7, "sub_status")?;
    let sub_status = SubStatus::parse(&sub_status).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown sub_status {sub_status:?} in the database").into())
    })?;
    Ok(Request {
        id: row.int(0, "id")?,
        merchant_id: row.int(1, "merchant_id")?,
        verification_id: row.text(2, "verification_id")?,
        user_ref: row.int(3, "user_ref")?,
        user_id: row.text(4, "user_id")?,
        link_token: row.text(5, "link_token")?,
        link_expires_at: row.int(6, "link_expires_at")?,
        sub_status,
        version: row.int(8, "version")?,
        notification_types: row.opt_text(9, "notification_types")?,
        user_template: row.opt_text(10, "user_template")?,
        agent_template: row.opt_text(11, "agent_template")?,
        aadhaar_details: row.opt_text(12, "aadhaar_details")?,
        security_questions: row.opt_text(13, "security_questions")?,
        recording_link: row.opt_text(14, "recording_link")?,
        meeting_schedule: row.opt_int(15, "meeting_schedule")?,
        agent_remarks: row.opt_text(16, "agent_remarks")?,
        auditor_remarks: row.opt_text(17, "auditor_remarks")?,
        created_at: row.int(18, "created_at")?,
        webhook_url: row.opt_text(19, "webhook_url")?,
        event_seq: row.int(20, "event_seq")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        user_id: row.try_get("user_id")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
    })
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`), creating a SQLite file if
    /// needed, and applies the embedded migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            // WAL lets readers run beside the writer; synchronous=FULL makes a commit
            // durable before it returns, so a 200 means the row is on disk.
            let pragmas = |pool: AnyPoolOptions| {
                pool.after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                        Ok(())
                    })
                })
            };
            // A SQLite connection does not go stale like a network one: skip the ping
            // that would cost a round trip to its worker thread on every query.
            let write = pragmas(AnyPoolOptions::new().max_connections(1))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect(&url)
                .await
                .with_context(|| format!("opening {url}"))?;
            let read = pragmas(AnyPoolOptions::new().max_connections(8))
                .test_before_acquire(false)
                .connect(&url)
                .await
                .with_context(|| format!("opening {url}"))?;
            // The file's absolute path, as SQLite resolved it, for the direct readers.
            let file: String =
                sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .fetch_one(&read)
                    .await
                    .and_then(|row| row.try_get("file"))
                    .context("finding the SQLite database file")?;
            let inner = StoreInner {
                fast: fast_reads::FastReads::new(&file).map(Arc::new),
                counters: write.clone(),
                write,
                read,
                backend: Backend::Sqlite,
                link_base: Arc::default(),
                recording_signer: Arc::default(),
                creates: None,
            };
            // The writer holds a store without the sender, so it ends when the last
            // handle that can send is dropped.
            let (sender, receiver) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
            tokio::spawn(group_commit(
                Store {
                    inner: Arc::new(inner.clone()),
                },
                receiver,
            ));
            Store {
                inner: Arc::new(StoreInner {
                    creates: Some(sender),
                    ..inner
                }),
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // A request cancelled at the wrong moment can leave a connection inside a
            // transaction (sqlx 0.8.6); the server ends such a session instead of letting
            // its locks stall every later call. No statement waits forever.
            const TIMEOUTS: &str = "SET idle_in_transaction_session_timeout = '10s'; \
                                    SET lock_timeout = '10s'; SET statement_timeout = '30s';";
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(TIMEOUTS).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            let counters = AnyPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(TIMEOUTS).await?;
                        conn.execute("SET synchronous_commit = off").await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            Store {
                inner: Arc::new(StoreInner {
                    write: pool.clone(),
                    read: pool,
                    backend: Backend::Postgres,
                    link_base: Arc::default(),
                    recording_signer: Arc::default(),
                    creates: None,
                    counters,
                    fast: None,
                }),
            }
        } else {
            anyhow::bail!("database_url must start with sqlite: or postgres:");
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Sets the public base URL that webhook events show in `vkyc_link` (first call wins).
    pub fn set_link_base(&self, base_url: &str) {
        let _ = self.link_base.set(base_url.to_string());
    }

    /// Sets the signer of recording links in webhook events (first call wins).
    pub fn set_recording_signer(&self, signer: crate::domain::recording_links::RecordingSigner) {
        let _ = self.recording_signer.set(signer);
    }

    fn link_base(&self) -> &str {
        self.link_base.get().map(String::as_str).unwrap_or("")
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.write).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.write).await,
        }
        .context("applying database migrations")
    }

    pub async fn close(&self) {
        if let Some(fast) = &self.fast {
            fast.close();
        }
        self.write.close().await;
        self.read.close().await;
        self.counters.close().await;
    }

    // ---- merchants and credentials ----

    pub async fn merchant_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM merchants")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates a merchant with one credential.
    pub async fn create_merchant(
        &self,
        name: &str,
        env: MerchantEnv,
        client_id: &str,
        secret_digest: &str,
        secret_enc: &str,
    ) -> Result<Merchant> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO merchants (name, env, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(env.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        sqlx::query(
            "INSERT INTO credentials (client_id, merchant_id, secret_digest, secret_enc, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(id)
        .bind(secret_digest)
        .bind(secret_enc)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Merchant {
            id,
            name: name.to_string(),
            env,
        })
    }

    pub async fn merchants(&self) -> Result<Vec<(Merchant, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT m.id, m.name, m.env, c.client_id FROM merchants m \
             LEFT JOIN credentials c ON c.merchant_id = m.id AND c.revoked_at IS NULL \
             ORDER BY m.id, c.client_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<(Merchant, Vec<String>)> = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let client_id: Option<String> = row.try_get("client_id")?;
            if out.last().map(|(m, _)| m.id) != Some(id) {
                let env: String = row.try_get("env")?;
                out.push((
                    Merchant {
                        id,
                        name: row.try_get("name")?,
                        env: env.parse().map_err(Error::internal)?,
                    },
                    Vec::new(),
                ));
            }
            if let (Some(client_id), Some(last)) = (client_id, out.last_mut()) {
                if !last.1.contains(&client_id) {
                    last.1.push(client_id);
                }
            }
        }
        Ok(out)
    }

    /// A client id's merchant and its active secrets and security settings.
    pub async fn credential(&self, client_id: &str) -> Result<Option<Credential>> {
        let rows = sqlx::query(
            "SELECT c.merchant_id, c.secret_digest, m.env, m.second_factor, m.ip_allowlist, \
             m.private_key_enc, m.rate_limit_per_minute FROM credentials c \
             JOIN merchants m ON m.id = c.merchant_id \
             WHERE c.client_id = $1 AND c.revoked_at IS NULL ORDER BY c.id",
        )
        .bind(client_id)
        .fetch_all(&self.read)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let env: String = first.try_get("env")?;
        Ok(Some(Credential {
            client_id: client_id.to_string(),
            merchant_id: first.try_get("merchant_id")?,
            env: env.parse().map_err(Error::internal)?,
            secret_digests: rows
                .iter()
                .map(|r| r.try_get("secret_digest"))
                .collect::<Result<_, _>>()?,
            second_factor: first.try_get("second_factor")?,
            ip_allowlist: first.try_get("ip_allowlist")?,
            private_key_enc: first.try_get("private_key_enc")?,
            rate_limit_per_minute: first.try_get("rate_limit_per_minute")?,
        }))
    }

    /// The merchant a client id belongs to (revoked or not).
    pub async fn merchant_by_client_id(&self, client_id: &str) -> Result<Option<Merchant>> {
        let row = sqlx::query(
            "SELECT m.id, m.name, m.env FROM merchants m \
             JOIN credentials c ON c.merchant_id = m.id WHERE c.client_id = $1 LIMIT 1",
        )
        .bind(client_id)
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

    /// Adds a second active secret to a client id (rotation). Refused (`Ok(false)`) while
    /// two are already active: the old one must be revoked first.
    pub async fn add_secret(
        &self,
        merchant_id: i64,
        client_id: &str,
        secret_digest: &str,
        secret_enc: &str,
    ) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM credentials WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?;
        let active: i64 = row.try_get("n")?;
        if active >= 2 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO credentials (client_id, merchant_id, secret_digest, secret_enc, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(merchant_id)
        .bind(secret_digest)
        .bind(secret_enc)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes the oldest active secret of a client id, if it has two; `Ok(false)` when it
    /// has only one (revoking it would lock the merchant out).
    pub async fn revoke_oldest_secret(&self, client_id: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "SELECT id FROM credentials WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await?;
        if rows.len() < 2 {
            return Ok(false);
        }
        let oldest: i64 = rows[0].try_get("id")?;
        sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(oldest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets a merchant's second factor: `none`, `ip` with its allow-list (JSON), or
    /// `signature` with the key pair.
    pub async fn set_second_factor(
        &self,
        merchant_id: i64,
        factor: &str,
        ip_allowlist: Option<&str>,
        key_pair: Option<(&str, &str)>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE merchants SET second_factor = $1, ip_allowlist = COALESCE($2, ip_allowlist), \
             public_key_pem = COALESCE($3, public_key_pem), \
             private_key_enc = COALESCE($4, private_key_enc) WHERE id = $5",
        )
        .bind(factor)
        .bind(ip_allowlist)
        .bind(key_pair.map(|k| k.0))
        .bind(key_pair.map(|k| k.1))
        .bind(merchant_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a used `x-cf-signature` until `expires_at`; `Ok(false)` when it was used
    /// before (a replay). Expired records are cleared on the way.
    pub async fn use_signature(&self, digest: &str, expires_at: i64) -> Result<bool> {
        sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        let inserted =
            sqlx::query("INSERT INTO used_signatures (digest, expires_at) VALUES ($1, $2)")
                .bind(digest)
                .bind(expires_at)
                .execute(&self.write)
                .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Every value sealed under the master key, for re-sealing under a new one:
    /// (table, row id, sealed text).
    pub async fn sealed_values(&self) -> Result<Vec<(&'static str, i64, String)>> {
        let mut out = Vec::new();
        for row in sqlx::query("SELECT id, secret_enc FROM credentials")
            .fetch_all(&self.read)
            .await?
        {
            out.push((
                "credentials",
                row.try_get("id")?,
                row.try_get("secret_enc")?,
            ));
        }
        for row in sqlx::query(
            "SELECT id, private_key_enc FROM merchants WHERE private_key_enc IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await?
        {
            out.push((
                "merchants",
                row.try_get("id")?,
                row.try_get("private_key_enc")?,
            ));
        }
        for row in
            sqlx::query("SELECT id, totp_secret_enc FROM staff WHERE totp_secret_enc IS NOT NULL")
                .fetch_all(&self.read)
                .await?
        {
            out.push(("staff", row.try_get("id")?, row.try_get("totp_secret_enc")?));
        }
        Ok(out)
    }

    /// Replaces sealed values in one transaction (all or nothing).
    pub async fn reseal(&self, values: &[(&'static str, i64, String)]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for (table, id, sealed) in values {
            let sql = match *table {
                "credentials" => "UPDATE credentials SET secret_enc = $1 WHERE id = $2",
                "staff" => "UPDATE staff SET totp_secret_enc = $1 WHERE id = $2",
                _ => "UPDATE merchants SET private_key_enc = $1 WHERE id = $2",
            };
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- users ----

    /// Inserts a user; `Ok(None)` when the merchant already has that `user_id`.
    pub async fn insert_user(&self, merchant_id: i64, user: &NewUser) -> Result<Option<User>> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO users (merchant_id, user_id, phone, email, name, address, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(merchant_id)
        .bind(&user.user_id)
        .bind(&user.phone)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.address)
        .bind(now)
        .fetch_one(&self.write)
        .await;
        match result {
            Ok(row) => Ok(Some(User {
                id: row.try_get("id")?,
                merchant_id,
                user_id: user.user_id.clone(),
                phone: user.phone.clone(),
                email: user.email.clone(),
                name: user.name.clone(),
                address: user.address.clone(),
            })),
            Err(err) if is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn user_by_ref(&self, merchant_id: i64, id: i64) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE merchant_id = $1 AND id = $2")
            .bind(merchant_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn user_by_user_id(&self, merchant_id: i64, user_id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE merchant_id = $1 AND user_id = $2")
            .bind(merchant_id)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Writes the user's changeable fields (email, name, address).
    pub async fn update_user(&self, user: &User) -> Result<()> {
        sqlx::query(
            "UPDATE users SET email = $1, name = $2, address = $3, updated_at = $4 \
             WHERE merchant_id = $5 AND id = $6",
        )
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.address)
        .bind(now_ms())
        .bind(user.merchant_id)
        .bind(user.id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- requests ----

    /// Inserts a request in the initial state with its first history row; `Ok(None)`
    /// when the merchant already used that `verification_id`.
    pub async fn insert_request(
        &self,
        merchant_id: i64,
        new: &NewRequest,
        actor: Actor,
    ) -> Result<Option<Request>> {
        if let Some(creates) = &self.creates {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let job = CreateJob {
                merchant_id,
                new: new.clone(),
                actor,
                reply,
            };
            creates
                .send(job)
                .await
                .map_err(|_| Error::internal(anyhow::anyhow!("the database writer has stopped")))?;
            return answer.await.map_err(|_| {
                Error::internal(anyhow::anyhow!("the database writer has stopped"))
            })?;
        }
        let mut tx = self.write.begin().await?;
        let created = self
            .insert_request_in(&mut tx, merchant_id, new, actor)
            .await?;
        if created.is_some() {
            tx.commit().await?;
        }
        Ok(created)
    }

    /// The statements of one create, inside `tx`: the request, its first history row and
    /// its first event. `Ok(None)` when the merchant already used the `verification_id`.
    async fn insert_request_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        merchant_id: i64,
        new: &NewRequest,
        actor: Actor,
    ) -> Result<Option<Request>, sqlx::Error> {
        let mut created = self
            .insert_requests_in(tx, &[(merchant_id, new, actor)])
            .await?;
        Ok(created.pop().flatten())
    }

    /// The statements of many creates, inside `tx`: the requests, their first history rows
    /// and first events, a few statements for the lot (not a few per create). A create
    /// whose merchant already used its `verification_id` (in the database, or earlier in
    /// `creates`) is left out, `None` in its slot; the others go on.
    async fn insert_requests_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        creates: &[(i64, &NewRequest, Actor)],
    ) -> Result<Vec<Option<Request>>, sqlx::Error> {
        use std::fmt::Write;
        let now = now_ms();
        let initial = SubStatus::INITIAL;
        let mut out: Vec<Option<Request>> = Vec::with_capacity(creates.len());
        for chunk in creates.chunks(ROWS_PER_STATEMENT) {
            // $1 is the time; then 14 values per request.
            let mut sql = String::from(
                "INSERT INTO requests (merchant_id, verification_id, user_ref, user_id, link_token, \
                 link_expires_at, status, sub_status, version, notification_types, user_template, \
                 agent_template, aadhaar_details, security_questions, created_at, updated_at, \
                 webhook_url, event_seq) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 2 + 14 * i;
                let _ = write!(
                    sql,
                    "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 1, ${}, ${}, ${}, ${}, ${}, $1, $1, ${}, 1)",
                    if i == 0 { "" } else { ", " },
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 10,
                    p + 11,
                    p + 12,
                    p + 13
                );
            }
            // A repeated verification_id is skipped, not an error: the row that went in is
            // told apart by its link token (unique, drawn at random).
            sql.push_str(
                " ON CONFLICT (merchant_id, verification_id) DO NOTHING RETURNING id, link_token",
            );
            let full = chunk.len() == ROWS_PER_STATEMENT;
            let mut query = sqlx::query(&sql).persistent(full).bind(now);
            for (merchant_id, new, _) in chunk {
                query = query
                    .bind(*merchant_id)
                    .bind(&new.verification_id)
                    .bind(new.user_ref)
                    .bind(&new.user_id)
                    .bind(&new.link_token)
                    .bind(new.link_expires_at)
                    .bind(initial.status().as_str())
                    .bind(initial.as_str())
                    .bind(&new.notification_types)
                    .bind(&new.user_template)
                    .bind(&new.agent_template)
                    .bind(&new.aadhaar_details)
                    .bind(&new.security_questions)
                    .bind(&new.webhook_url);
            }
            let mut ids = std::collections::HashMap::with_capacity(chunk.len());
            for row in query.fetch_all(&mut **tx).await? {
                let token: String = row.try_get("link_token")?;
                ids.insert(token, row.try_get::<i64, _>("id")?);
            }
            let requests: Vec<Option<Request>> = chunk
                .iter()
                .map(|(merchant_id, new, _)| {
                    let id = *ids.get(&new.link_token)?;
                    Some(Request {
                        id,
                        merchant_id: *merchant_id,
                        verification_id: new.verification_id.clone(),
                        user_ref: new.user_ref,
                        user_id: new.user_id.clone(),
                        link_token: new.link_token.clone(),
                        link_expires_at: new.link_expires_at,
                        sub_status: initial,
                        version: 1,
                        notification_types: new.notification_types.clone(),
                        user_template: new.user_template.clone(),
                        agent_template: new.agent_template.clone(),
                        aadhaar_details: new.aadhaar_details.clone(),
                        security_questions: new.security_questions.clone(),
                        recording_link: None,
                        meeting_schedule: None,
                        agent_remarks: None,
                        auditor_remarks: None,
                        created_at: now,
                        webhook_url: new.webhook_url.clone(),
                        event_seq: 1,
                    })
                })
                .collect();
            let inserted: Vec<(&Request, Actor)> = requests
                .iter()
                .zip(chunk)
                .filter_map(|(request, (_, _, actor))| Some((request.as_ref()?, *actor)))
                .collect();
            if !inserted.is_empty() {
                // $1 time, $2 status, $3 sub-status; then the request and the actor.
                let mut sql = String::from(
                    "INSERT INTO history (request_id, at, actor, event, from_status, \
                     from_sub_status, to_status, to_sub_status, details) VALUES ",
                );
                for i in 0..inserted.len() {
                    let p = 4 + 2 * i;
                    let _ = write!(
                        sql,
                        "{}(${}, $1, ${}, 'created', NULL, NULL, $2, $3, NULL)",
                        if i == 0 { "" } else { ", " },
                        p,
                        p + 1
                    );
                }
                let mut query = sqlx::query(&sql)
                    .persistent(inserted.len() == ROWS_PER_STATEMENT)
                    .bind(now)
                    .bind(initial.status().as_str())
                    .bind(initial.as_str());
                for (request, actor) in &inserted {
                    query = query.bind(request.id).bind(actor.as_str());
                }
                query.execute(&mut **tx).await?;
                let events: Vec<(&Request, i64)> =
                    inserted.iter().map(|(request, _)| (*request, 1)).collect();
                self.write_events_of(tx, &events, now).await?;
            }
            // The link message goes out on every channel the merchant asked for; queued
            // with the create, so an acknowledged request never misses its message.
            for request in requests.iter().flatten() {
                journey::insert_notifications(
                    tx,
                    request.id,
                    request.notification_types.as_deref(),
                    "link",
                    now,
                )
                .await?;
            }
            out.extend(requests);
        }
        Ok(out)
    }

    /// The one request that `filter` (a `WHERE` clause over `requests` with `$1`, `$2`, …
    /// in order) finds with `keys`. On SQLite a direct read on the calling thread (an
    /// indexed point lookup: microseconds); on PostgreSQL through the pool.
    async fn fetch_request(
        &self,
        filter: &str,
        keys: &[fast_reads::Key<'_>],
    ) -> Result<Option<Request>> {
        let sql = || format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE {filter}");
        if let Some(fast) = &self.fast {
            return Ok(fast.fetch_optional_kept(filter, sql, keys, |row| request_from_row(row))?);
        }
        let sql = sql();
        let mut query = sqlx::query(&sql);
        for key in keys {
            query = match key {
                fast_reads::Key::Int(v) => query.bind(*v),
                fast_reads::Key::Text(v) => query.bind(*v),
            };
        }
        let row = query.fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(request_from_row).transpose()?)
    }

    pub async fn request_by_ref(&self, merchant_id: i64, id: i64) -> Result<Option<Request>> {
        use fast_reads::Key::Int;
        self.fetch_request("merchant_id = $1 AND id = $2", &[Int(merchant_id), Int(id)])
            .await
    }

    pub async fn request_by_verification_id(
        &self,
        merchant_id: i64,
        verification_id: &str,
    ) -> Result<Option<Request>> {
        use fast_reads::Key::{Int, Text};
        self.fetch_request(
            "merchant_id = $1 AND verification_id = $2",
            &[Int(merchant_id), Text(verification_id)],
        )
        .await
    }

    pub async fn request_by_id(&self, id: i64) -> Result<Option<Request>> {
        self.fetch_request("id = $1", &[fast_reads::Key::Int(id)])
            .await
    }

    /// Applies `events` in order to `request` as one move: the status machine decides
    /// every step (an illegal step refuses the whole move), the row is updated only if
    /// nobody moved it since it was read (its version), and one history row per step is
    /// written in the same transaction. Returns the request as it now is.
    pub async fn apply(
        &self,
        request: &Request,
        events: &[Event],
        actor: Actor,
        details: Option<&serde_json::Value>,
        changes: &Changes,
    ) -> Result<Request, MoveError> {
        let mut tx = self.write.begin().await?;
        let moved = self
            .apply_in(&mut tx, request, events, actor, details, changes)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Applies one `event` to each request, all in one transaction (one commit for the
    /// lot, as the expiry worker needs for many links at once), with a few statements for
    /// the lot: an update guarded on each row's version, then the history rows and
    /// events of the requests it moved. A request that moved meanwhile, or for which the
    /// event is not legal, is left as it is and reported in its slot; any database error
    /// undoes the whole batch.
    pub async fn apply_each(
        &self,
        requests: &[Request],
        event: Event,
        actor: Actor,
    ) -> Result<Vec<Result<Request, MoveError>>, sqlx::Error> {
        use std::fmt::Write;
        let mut out: Vec<Result<Request, MoveError>> = requests
            .iter()
            .map(|request| {
                let to = status::next(request.sub_status, event)?;
                let mut moved = request.clone();
                moved.sub_status = to;
                moved.version += 1;
                moved.event_seq += 1;
                Ok(moved)
            })
            .collect();
        let mut tx = self.write.begin().await?;
        let now = now_ms();
        if self.backend == Backend::Postgres {
            // Lock the rows in id order first, the same in every process: two processes
            // expiring the same links (due at one instant) otherwise lock them in plan
            // order and can deadlock (seen with bench/scale: `deadlock detected`, the
            // batch undone and retried).
            let mut ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            for chunk in ids.chunks(MOVES_PER_STATEMENT) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let sql = format!(
                    "SELECT id FROM requests WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    list.join(", ")
                );
                sqlx::query(&sql)
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await?;
            }
        }
        // One update per target state (an event may lead different states to different
        // ones), each over at most MOVES_PER_STATEMENT rows.
        let mut targets: Vec<SubStatus> = out
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|m| m.sub_status))
            .collect();
        targets.sort_by_key(|t| t.as_str());
        targets.dedup();
        let mut won = std::collections::HashSet::new();
        for to in targets {
            let slots: Vec<usize> = (0..requests.len())
                .filter(|&i| matches!(&out[i], Ok(m) if m.sub_status == to))
                .collect();
            for chunk in slots.chunks(MOVES_PER_STATEMENT) {
                // Ids and versions are numbers from the database: safe to write into the
                // statement. A row moves only at the version it was read at.
                let mut ids = String::new();
                let mut versions = String::new();
                for (n, &i) in chunk.iter().enumerate() {
                    let r = &requests[i];
                    let sep = if n == 0 { "" } else { ", " };
                    let _ = write!(ids, "{sep}{}", r.id);
                    let _ = write!(versions, "{sep}({}, {})", r.id, r.version);
                }
                // `id IN` finds the rows by key; the pairs (a lookup, not a scan of the
                // list per row) keep those still at the version read.
                let sql = format!(
                    "UPDATE requests SET status = $1, sub_status = $2, version = version + 1, \
                     updated_at = $3, event_seq = event_seq + 1 \
                     WHERE id IN ({ids}) AND (id, version) IN (VALUES {versions}) RETURNING id"
                );
                let rows = sqlx::query(&sql)
                    .persistent(false)
                    .bind(to.status().as_str())
                    .bind(to.as_str())
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    won.insert(row.try_get::<i64, _>("id")?);
                }
            }
        }
        for (slot, request) in out.iter_mut().zip(requests) {
            if slot.is_ok() && !won.contains(&request.id) {
                *slot = Err(MoveError::Lost);
            }
        }
        let moved: Vec<(&Request, &Request)> = requests
            .iter()
            .zip(&out)
            .filter_map(|(from, to)| Some((from, to.as_ref().ok()?)))
            .collect();
        for chunk in moved.chunks(ROWS_PER_STATEMENT) {
            // $1 time, $2 actor, $3 event; then five values per row.
            let mut sql = String::from(
                "INSERT INTO history (request_id, at, actor, event, from_status, \
                 from_sub_status, to_status, to_sub_status, details) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 4 + 5 * i;
                let _ = write!(
                    sql,
                    "{}(${}, $1, $2, $3, ${}, ${}, ${}, ${}, NULL)",
                    if i == 0 { "" } else { ", " },
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4
                );
            }
            let mut query = sqlx::query(&sql)
                .persistent(chunk.len() == ROWS_PER_STATEMENT)
                .bind(now)
                .bind(actor.as_str())
                .bind(event.as_str());
            for (from, to) in chunk {
                query = query
                    .bind(from.id)
                    .bind(from.sub_status.status().as_str())
                    .bind(from.sub_status.as_str())
                    .bind(to.sub_status.status().as_str())
                    .bind(to.sub_status.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        let events: Vec<(&Request, i64)> =
            moved.iter().map(|(_, to)| (*to, to.event_seq)).collect();
        self.write_events_of(&mut tx, &events, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The statements of one move inside `tx`; nothing is written when it is illegal or
    /// lost.
    async fn apply_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request: &Request,
        events: &[Event],
        actor: Actor,
        details: Option<&serde_json::Value>,
        changes: &Changes,
    ) -> Result<Request, MoveError> {
        let mut steps = Vec::with_capacity(events.len());
        let mut state = request.sub_status;
        for &event in events {
            let to = status::next(state, event)?;
            steps.push((event, state, to));
            state = to;
        }
        let now = now_ms();
        let details = details.map(|d| d.to_string());
        let updated = sqlx::query(
            "UPDATE requests SET status = $1, sub_status = $2, version = version + 1, \
             updated_at = $3, recording_link = COALESCE($4, recording_link), \
             meeting_schedule = CASE WHEN $5 = 1 THEN $6 ELSE meeting_schedule END, \
             agent_remarks = COALESCE($7, agent_remarks), \
             auditor_remarks = COALESCE($8, auditor_remarks), event_seq = event_seq + $11 \
             WHERE id = $9 AND version = $10",
        )
        .bind(state.status().as_str())
        .bind(state.as_str())
        .bind(now)
        .bind(&changes.recording_link)
        .bind(i64::from(changes.meeting_schedule.is_some()))
        .bind(changes.meeting_schedule.flatten())
        .bind(&changes.agent_remarks)
        .bind(&changes.auditor_remarks)
        .bind(request.id)
        .bind(request.version)
        .bind(steps.len() as i64)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(MoveError::Lost);
        }
        for (event, from, to) in &steps {
            sqlx::query(
                "INSERT INTO history (request_id, at, actor, event, from_status, from_sub_status, \
                 to_status, to_sub_status, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(request.id)
            .bind(now)
            .bind(actor.as_str())
            .bind(event.as_str())
            .bind(from.status().as_str())
            .bind(from.as_str())
            .bind(to.status().as_str())
            .bind(to.as_str())
            .bind(&details)
            .execute(&mut **tx)
            .await?;
        }
        let mut moved = request.clone();
        moved.sub_status = state;
        moved.version += 1;
        moved.event_seq += steps.len() as i64;
        if let Some(link) = &changes.recording_link {
            moved.recording_link = Some(link.clone());
        }
        if let Some(schedule) = changes.meeting_schedule {
            moved.meeting_schedule = schedule;
        }
        if let Some(remarks) = &changes.agent_remarks {
            moved.agent_remarks = Some(remarks.clone());
        }
        if let Some(remarks) = &changes.auditor_remarks {
            moved.auditor_remarks = Some(remarks.clone());
        }
        // One event per step, each showing the request as that step left it (the
        // remarks and times of this move appear with its last step).
        let snapshots: Vec<Request> = steps
            .iter()
            .enumerate()
            .map(|(i, (_, _, to))| {
                if i + 1 == steps.len() {
                    moved.clone()
                } else {
                    Request {
                        sub_status: *to,
                        ..request.clone()
                    }
                }
            })
            .collect();
        self.write_events(tx, &snapshots, request.event_seq + 1, now)
            .await?;
        Ok(moved)
    }

    pub async fn history(&self, request_id: i64) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT at, actor, event, from_sub_status, to_sub_status, details FROM history \
             WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryRow {
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    event: row.try_get("event")?,
                    from_sub_status: row.try_get("from_sub_status")?,
                    to_sub_status: row.try_get("to_sub_status")?,
                    details: row.try_get("details")?,
                })
            })
            .collect()
    }

    /// Requests whose link expired by `now` and that can still expire, soonest first.
    /// Served by the partial index `requests_expiry`.
    pub async fn due_expiries(&self, now: i64, limit: i64) -> Result<Vec<Request>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE {} ORDER BY link_expires_at LIMIT $2",
            due_clause()
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(request_from_row)
            .collect::<Result<_, _>>()?)
    }

    // ---- access tokens ----

    pub async fn insert_access_token(
        &self,
        token_digest: &str,
        request_id: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (token_digest, request_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_digest)
        .bind(request_id)
        .bind(expires_at)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The request an unexpired access token opens.
    pub async fn access_token_request(&self, token_digest: &str, now: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT request_id FROM access_tokens WHERE token_digest = $1 AND expires_at > $2",
        )
        .bind(token_digest)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.try_get("request_id")).transpose()?)
    }
}

impl Store {
    /// The request a `vkyc_link` token opens.
    pub async fn request_by_token(&self, token: &str) -> Result<Option<Request>> {
        self.fetch_request("link_token = $1", &[fast_reads::Key::Text(token)])
            .await
    }
}

impl Store {
    /// The query plan of [`Store::due_expiries`], for the test that it uses its index.
    pub async fn explain_due_expiries(&self) -> Result<String> {
        let select = format!(
            "SELECT id FROM requests WHERE {} ORDER BY link_expires_at LIMIT 10",
            due_clause()
        );
        let mut tx = self.read.begin().await?;
        let (sql, column) = match self.backend {
            Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {select}"), "detail"),
            Backend::Postgres => {
                // A near-empty table is cheaper to scan; ask what the plan would be at size.
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                (format!("EXPLAIN {select}"), "QUERY PLAN")
            }
        };
        let rows = sqlx::query(&sql).bind(now_ms()).fetch_all(&mut *tx).await?;
        let mut plan = Vec::new();
        for row in rows {
            plan.push(row.try_get::<String, _>(column)?);
        }
        Ok(plan.join("\n"))
    }
}

/// The SQLite writer for creates: takes every create waiting (up to [`GROUP_COMMIT_MAX`]),
/// runs them in one transaction and commits once, so one fsync serves many creates. Each
/// caller hears of its create only after the commit, so an answer still means "on disk".
/// A repeated `verification_id` fails alone; any other error fails the whole group,
/// which is rolled back (nothing of it is stored).
async fn group_commit(store: Store, mut jobs: tokio::sync::mpsc::Receiver<CreateJob>) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_MAX);
    while jobs.recv_many(&mut batch, GROUP_COMMIT_MAX).await > 0 {
        let outcome: Result<Vec<Option<Request>>, sqlx::Error> = async {
            let mut tx = store.write.begin().await?;
            let creates: Vec<(i64, &NewRequest, Actor)> = batch
                .iter()
                .map(|job| (job.merchant_id, &job.new, job.actor))
                .collect();
            let created = store.insert_requests_in(&mut tx, &creates).await?;
            tx.commit().await?;
            Ok(created)
        }
        .await;
        match outcome {
            Ok(created) => {
                for (job, request) in batch.drain(..).zip(created) {
                    let _ = job.reply.send(Ok(request));
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, creates = batch.len(), "a group of creates failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(Error::internal(anyhow::anyhow!(
                        "the group commit failed"
                    ))));
                }
            }
        }
    }
}
