//! All SQL lives here. One store over SQLite (the embedded default) or PostgreSQL (chosen
//! by a `postgres://` URL), through sqlx's `Any` driver: queries use `$1`-style
//! parameters, which both backends accept, and times are Unix milliseconds.
//!
//! One file per aggregate: `requests` (create, read, expire, access tokens), `history`
//! (status moves and their history rows), `users`, `merchants` (and credentials),
//! `journey`, `calls`, `cases` (search and case files), `staff`, `webhooks` (the outbox),
//! `rate_limits`, `metrics` (what
//! a scrape reads), `sealed` (personal data sealed under the master key, and the key's
//! id), `backup` (what backups and restores read and move). This file holds the pools,
//! the backend and the helpers they share.
//! Nothing here knows of HTTP or of the workers; the store reads and writes the domain's
//! types.
//!
//! A status move is applied in one transaction together with its history rows, by an
//! update guarded on the row's version, so two racing moves have exactly one winner.

pub use crate::domain::request::Request;
use crate::domain::status::{self};
use crate::error::{Error, ErrorType};
use anyhow::Context;
use axum::http::StatusCode;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod admin;
mod anchors;
mod attempts;
pub mod backup;
mod call_events;
mod calls;
mod captures;
mod cases;
mod chain;
mod evidence;
mod history;
mod journey;
mod logos;
mod merchants;
mod metrics;
mod notifications;
mod point_reads;
mod rate_limits;
mod relay_nodes;
mod reports;
mod requests;
mod retention;
pub mod rollups;
mod sealed;
pub use sealed::WrongMasterKey;
mod staff;
mod templates;
mod users;
mod webhooks;

pub use admin::{BankRow, MerchantSettings};
pub use anchors::{AnchorEntry, AnchorRow};
pub use call_events::CallEvent;
pub use calls::{Call, CallUpdate, KeptRecording, ReviewCase};
pub use captures::CaptureRow;
pub use templates::TemplateRow;

pub use cases::{
    case_agents_statements, AuditReview, CaseDelivery, CaseFilter, CaseRow, ConsentText, Cursor,
    SigningKeyRow,
};
pub use chain::Head;
pub use evidence::OtpCount;
pub use history::{Changes, HistoryRow};
pub use journey::{Booking, ConsentRow, SideWrite, StepRow};
pub use merchants::{Credential, Merchant, MerchantEnv};
pub use metrics::{Backlog, PoolUse};
pub use notifications::NotificationRow;
pub use relay_nodes::RelayNode;
pub use reports::{AgentRow, FailureRow, FunnelRow, LiveRow, Range, TimesRow};
pub use requests::NewRequest;
use requests::{
    group_commit, request_from_row, CreateJob, CreateQueue, GROUP_COMMIT_MAX, REQUEST_COLUMNS,
};

/// Group-commit writers per process on PostgreSQL (SQLite has one writer).
const PG_WRITERS: usize = 2;
pub use retention::{By, CaseChange, Hold, RetentionRow};
pub use staff::{AuditRow, Presence, Role, SessionRow, Staff};
pub use users::{NewUser, User};
pub use webhooks::{AttemptRow, ClaimedDelivery, DeliveryRow, Outcome};

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
    /// Creates go to one writer task per process that commits them in groups.
    creates: Option<tokio::sync::mpsc::Sender<CreateJob>>,
    /// Seals personal data as it is written and opens it as it is read (`personal`).
    key: crate::secrets::MasterKey,
    /// The key's [`MasterKey::key_id`](crate::secrets::MasterKey::key_id), checked
    /// against the database's before a sealed value is written.
    key_id: String,
    /// Rate-limit counters. On PostgreSQL their own connections, which commit without
    /// waiting for the disk: a count lost in a crash costs nothing, and a durable write
    /// on every call would cost a disk flush per request.
    counters: AnyPool,
    /// On PostgreSQL, the readers that gather the merchant API's point reads
    /// (`point_reads`).
    reads: Option<point_reads::Readers>,
}
/// The most rows one multi-row `INSERT` writes. sqlx looks up each `$N` parameter of a
/// SQLite statement by name, a search through all of them, so a statement's binding
/// costs the square of its parameter count: many small statements beat one huge one.
/// Full chunks share one text, so their prepared statement is cached and reused.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

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
    /// The move writes a sealed value, and the master key was rotated since this
    /// process started.
    #[error("the master key was changed")]
    KeyChanged,
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
            MoveError::KeyChanged => sealed::key_changed(),
            MoveError::Db(err) => Error::from(err),
        }
    }
}
/// The tuples of a multi-row `VALUES`: `rows` rows of `per_row` parameters each, numbered
/// from `$1` (`($1, $2), ($3, $4)` for 2 rows of 2).
pub(super) fn value_rows(rows: usize, per_row: usize) -> String {
    use std::fmt::Write;
    let mut list = String::new();
    for r in 0..rows {
        list.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..per_row {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(list, "{sep}${}", r * per_row + c + 1);
        }
        list.push(')');
    }
    list
}

/// `UPDATE table SET c = CASE key WHEN $1 THEN $2 … END, … WHERE key IN ($1, …)` for
/// `rows` rows, each bound as the key then one value per column. The key list finds the
/// rows through the primary key whatever the planner's statistics say (a join against a
/// VALUES list scanned a table the statistics thought empty).
pub(super) fn update_by_key(table: &str, key: &str, columns: &[&str], rows: usize) -> String {
    use std::fmt::Write;
    let per_row = 1 + columns.len();
    let mut sql = format!("UPDATE {table} SET ");
    for (c, column) in columns.iter().enumerate() {
        let sep = if c == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}{column} = CASE {key}");
        for r in 0..rows {
            let _ = write!(
                sql,
                " WHEN ${} THEN ${}",
                r * per_row + 1,
                r * per_row + 2 + c
            );
        }
        sql.push_str(" END");
    }
    let _ = write!(sql, " WHERE {key} IN (");
    for r in 0..rows {
        let sep = if r == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}${}", r * per_row + 1);
    }
    sql.push(')');
    sql
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`), creating a SQLite file if
    /// needed, applies the embedded migrations, checks that `key` is the database's master
    /// key, and seals any personal data still in clear from before sealing existed.
    pub async fn open(url: &str, key: &crate::secrets::MasterKey) -> anyhow::Result<Store> {
        let store = Store::connect(url, key).await?;
        store.claim_key().await?;
        store.seal_clear_values().await?;
        Ok(store)
    }

    /// Opens and migrates the database without taking a master key: for a restore, which
    /// only rewrites rows that hold nothing sealed, before the deployment's key is in place.
    pub async fn open_without_key(url: &str) -> anyhow::Result<Store> {
        Store::connect(url, &crate::secrets::MasterKey::generate()).await
    }

    /// Connects to the database and applies the migrations: what `open` does before it
    /// checks the key.
    async fn connect(url: &str, key: &crate::secrets::MasterKey) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            // WAL lets readers run beside the writer; synchronous=FULL makes a commit
            // durable before it returns, so a 200 means the row is on disk. secure_delete
            // zeroes what a change or deletion frees, so that a value replaced (a clear
            // value sealed on upgrade) does not linger in free pages of the file.
            let pragmas = |pool: AnyPoolOptions| {
                pool.after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA secure_delete = ON;",
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
            let inner = StoreInner {
                counters: write.clone(),
                write,
                read,
                backend: Backend::Sqlite,
                link_base: Arc::default(),
                recording_signer: Arc::default(),
                creates: None,
                key: key.clone(),
                key_id: key.key_id(),
                reads: None,
            };
            // The writer holds a store without the sender, so it ends when the last
            // handle that can send is dropped.
            let (sender, receiver) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
            tokio::spawn(group_commit(
                Store {
                    inner: Arc::new(inner.clone()),
                },
                Arc::new(receiver.into()),
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
            // sqlx pings a connection as it leaves the pool and as it comes back: one more
            // round trip per query than the query. A connection that was in use within
            // the last second is taken as alive and not pinged on the way out; a query
            // on one the server has since closed fails once, and the pool drops it.
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > Duration::from_secs(1) {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
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
            let inner = StoreInner {
                write: pool.clone(),
                read: pool,
                backend: Backend::Postgres,
                link_base: Arc::default(),
                recording_signer: Arc::default(),
                creates: None,
                key: key.clone(),
                key_id: key.key_id(),
                counters,
                reads: None,
            };
            // Creates are committed in groups here too: one transaction and one WAL
            // flush for every create waiting, instead of one each.
            // Two writers: one builds its group while the other waits for its commit.
            let (sender, receiver) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
            let queue: CreateQueue = Arc::new(receiver.into());
            for _ in 0..PG_WRITERS {
                tokio::spawn(group_commit(
                    Store {
                        inner: Arc::new(inner.clone()),
                    },
                    queue.clone(),
                ));
            }
            // The readers, like the writer, hold a store without a way to reach them.
            let store = Store {
                inner: Arc::new(inner.clone()),
            };
            let reads = point_reads::Readers::start(store, url, TIMEOUTS);
            Store {
                inner: Arc::new(StoreInner {
                    creates: Some(sender),
                    reads: Some(reads),
                    ..inner
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

    /// Applies the embedded migrations to the database at `url` and does nothing else: for
    /// tools that fill a database before any server opens it (no master key is claimed).
    pub async fn migrate_database(url: &str) -> anyhow::Result<()> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (url, Backend::Sqlite)
        } else {
            (url.to_string(), Backend::Postgres)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .context("connecting to the database")?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await,
        }
        .context("applying database migrations")?;
        pool.close().await;
        Ok(())
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.write).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.write).await,
        }
        .context("applying database migrations")
    }

    /// Readiness of the database: it answers, and every migration this build carries
    /// has been applied (none failed, none missing). Err with what is wrong.
    pub async fn readiness(&self) -> Result<(), String> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        let expected: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        let applied: Vec<i64> = sqlx::query(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&self.read)
        .await
        .map_err(|e| format!("the database does not answer: {e}"))?
        .iter()
        .map(|r| sqlx::Row::try_get(r, "version"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the database does not answer: {e}"))?;
        match expected.iter().find(|v| !applied.contains(v)) {
            Some(v) => Err(format!("migration {v} has not been applied")),
            None => Ok(()),
        }
    }

    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close();
        }
        self.write.close().await;
        self.read.close().await;
        self.counters.close().await;
    }
}
