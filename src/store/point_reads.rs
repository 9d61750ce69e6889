//! The merchant API's point reads on PostgreSQL (a request, a user, a template's newest
//! version), gathered: every lookup waiting when a reader is free goes to the database in
//! one statement per table.
//!
//! Why: a query on a pooled sqlx connection costs three round trips, because sqlx pings
//! the connection as it leaves the pool and again as it goes back; every round trip wakes
//! a server process and this one. The readers here own their connections, so a lookup
//! is one prepared statement and nothing else, and under load the lookups waiting share
//! it: many callers cost one round trip, not one each. Nothing waits for a batch to
//! fill: a lone lookup goes out at once, and the others gather while the readers are
//! busy.
//!
//! A lookup is sent only after it was asked for, so it sees every change committed
//! before its caller asked: the promise a point select of its own keeps.

use super::requests::{request_from_row, REQUEST_COLUMNS};
use super::Store;
use crate::domain::request::Request;
use crate::error::{Error, Result};
use crate::store::User;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::{Connection, Row};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;

/// Readers, each with its own connection: one gathers while another waits on the server.
const READERS: usize = 2;

/// The most lookups one statement carries.
const LOOKUPS_MAX: usize = 256;

/// What a lookup looks for: a merchant's request or user by its reference or by the
/// merchant's own id, or the newest version of a template.
pub(super) enum Key {
    RequestRef(i64, i64),
    RequestId(i64, String),
    UserRef(i64, i64),
    UserId(i64, String),
    Template(&'static str, String),
}

/// What a lookup found.
pub(super) enum Found {
    Request(Box<Request>),
    User(User),
    Version(i64),
}

/// A lookup waiting for a reader, and where its answer goes.
pub(super) struct Lookup {
    key: Key,
    reply: oneshot::Sender<Result<Option<Found>>>,
}

/// Where lookups are sent, and the signal that ends the readers.
#[derive(Clone)]
pub(super) struct Readers {
    lookups: mpsc::Sender<Lookup>,
    closed: CancellationToken,
}

impl Readers {
    /// Starts the readers over `store` (a handle without readers of its own, so they end
    /// when the last [`Readers`] is dropped). Each reader connects to `url` itself and
    /// runs `setup` on every new connection.
    pub(super) fn start(store: Store, url: &str, setup: &'static str) -> Readers {
        let (lookups, receiver) = mpsc::channel(4 * LOOKUPS_MAX);
        let receiver = Arc::new(Mutex::new(receiver));
        let closed = CancellationToken::new();
        for _ in 0..READERS {
            let connect = Connect {
                url: url.to_string(),
                setup,
            };
            tokio::spawn(reader(
                store.clone(),
                connect,
                receiver.clone(),
                closed.clone(),
            ));
        }
        Readers { lookups, closed }
    }

    /// What `key` names, if it is there.
    async fn look_up(&self, key: Key) -> Result<Option<Found>> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::internal(anyhow::anyhow!("the store's readers have stopped"));
        self.lookups
            .send(Lookup { key, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// The request `key` (a `Request…` key) names, if the merchant has it.
    pub(super) async fn request(&self, key: Key) -> Result<Option<Request>> {
        Ok(match self.look_up(key).await? {
            Some(Found::Request(request)) => Some(*request),
            _ => None,
        })
    }

    /// The user `key` (a `User…` key) names, if the merchant has it.
    pub(super) async fn user(&self, key: Key) -> Result<Option<User>> {
        Ok(match self.look_up(key).await? {
            Some(Found::User(user)) => Some(user),
            _ => None,
        })
    }

    /// The newest version of the template `key` (a `Template` key) names, if any.
    pub(super) async fn version(&self, key: Key) -> Result<Option<i64>> {
        Ok(match self.look_up(key).await? {
            Some(Found::Version(version)) => Some(version),
            _ => None,
        })
    }

    /// Ends the readers and closes their connections.
    pub(super) fn close(&self) {
        self.closed.cancel();
    }
}

/// One reader: takes every lookup waiting (up to [`LOOKUPS_MAX`]) and answers them on its
/// own connection, opened when first needed.
async fn reader(
    store: Store,
    connect: Connect,
    lookups: Arc<Mutex<mpsc::Receiver<Lookup>>>,
    closed: CancellationToken,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(LOOKUPS_MAX);
    loop {
        let taken = tokio::select! {
            _ = closed.cancelled() => 0,
            taken = async { lookups.lock().await.recv_many(&mut batch, LOOKUPS_MAX).await } => taken,
        };
        if taken == 0 {
            break;
        }
        let keys: Vec<&Key> = batch.iter().map(|lookup| &lookup.key).collect();
        match store.look_up_all(&connect, &mut conn, &keys).await {
            Ok(found) => {
                for (lookup, request) in batch.drain(..).zip(found) {
                    let _ = lookup.reply.send(request);
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, lookups = batch.len(), "a gathered read failed");
                for lookup in batch.drain(..) {
                    let _ = lookup.reply.send(Err(Error::internal(anyhow::anyhow!(
                        "the gathered read failed"
                    ))));
                }
            }
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

/// A key as a statement reads it from its JSON parameter: the lookup's place in the
/// batch, then the merchant, a numeric id or a text one, and a template's kind.
#[derive(Serialize)]
struct KeyRow<'a> {
    n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    m: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    i: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<&'a str>,
}

impl<'a> KeyRow<'a> {
    fn of(n: usize, m: i64, i: Option<i64>, v: Option<&'a str>) -> KeyRow<'a> {
        KeyRow {
            n,
            m: Some(m),
            i,
            v,
            k: None,
        }
    }
}

/// The statement that finds rows of `table` (all of `columns`) for the keys by numeric
/// id in `$1` and by text id in `$2`, each a JSON array. Each key is an index lookup of
/// its own: `LIMIT 1` keeps the planner from turning the lateral subquery into a join
/// over the table.
fn by_either_id(table: &str, columns: &str, text_id: &str) -> String {
    format!(
        "SELECT k.n AS lookup, r.* \
         FROM jsonb_to_recordset($1::jsonb) AS k(n bigint, m bigint, i bigint) \
         CROSS JOIN LATERAL (SELECT {columns} FROM {table} \
             WHERE merchant_id = k.m AND id = k.i LIMIT 1) r \
         UNION ALL \
         SELECT k.n, r.* \
         FROM jsonb_to_recordset($2::jsonb) AS k(n bigint, m bigint, v text) \
         CROSS JOIN LATERAL (SELECT {columns} FROM {table} \
             WHERE merchant_id = k.m AND {text_id} = k.v LIMIT 1) r"
    )
}

fn requests_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| by_either_id("requests", REQUEST_COLUMNS, "verification_id"))
}

fn users_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| by_either_id("users", "*", "user_id"))
}

/// The newest version of each template named in `$1`.
const TEMPLATES: &str = "SELECT k.n AS lookup, t.version \
     FROM jsonb_to_recordset($1::jsonb) AS k(n bigint, k text, v text) \
     CROSS JOIN LATERAL (SELECT version FROM templates \
         WHERE kind = k.k AND name = k.v ORDER BY version DESC LIMIT 1) t";

/// The keys of one statement by either id: by number (`$1`) and by text (`$2`).
#[derive(Default)]
struct Params<'a> {
    by_number: Vec<KeyRow<'a>>,
    by_text: Vec<KeyRow<'a>>,
}

impl Params<'_> {
    fn is_empty(&self) -> bool {
        self.by_number.is_empty() && self.by_text.is_empty()
    }

    fn json(&self) -> [String; 2] {
        let to_json = |rows: &[KeyRow]| serde_json::to_string(rows).unwrap_or_default();
        [to_json(&self.by_number), to_json(&self.by_text)]
    }
}

impl Store {
    /// Answers `keys` in order, with one statement for each table they look in, on `conn`
    /// (opened when there is none).
    async fn look_up_all(
        &self,
        connect: &Connect,
        conn: &mut Option<AnyConnection>,
        keys: &[&Key],
    ) -> Result<Vec<Result<Option<Found>>>, sqlx::Error> {
        let (mut requests, mut users) = (Params::default(), Params::default());
        let mut templates = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            let row = |m: &i64, i, v| KeyRow::of(n, *m, i, v);
            match key {
                Key::RequestRef(m, id) => requests.by_number.push(row(m, Some(*id), None)),
                Key::RequestId(m, id) => requests.by_text.push(row(m, None, Some(id))),
                Key::UserRef(m, id) => users.by_number.push(row(m, Some(*id), None)),
                Key::UserId(m, id) => users.by_text.push(row(m, None, Some(id))),
                Key::Template(kind, name) => templates.push(KeyRow {
                    n,
                    m: None,
                    i: None,
                    v: Some(name),
                    k: Some(kind),
                }),
            }
        }
        let mut found: Vec<Result<Option<Found>>> = keys.iter().map(|_| Ok(None)).collect();
        let mut place = |row: &AnyRow, what: Result<Found>| -> Result<(), sqlx::Error> {
            let n: i64 = row.try_get("lookup")?;
            if let Some(slot) = usize::try_from(n).ok().and_then(|n| found.get_mut(n)) {
                *slot = what.map(Some);
            }
            Ok(())
        };
        if !requests.is_empty() {
            for row in run(connect, conn, requests_statement(), &requests.json()).await? {
                let request = request_from_row(&row).map_err(Error::from);
                place(&row, request.map(|r| Found::Request(Box::new(r))))?;
            }
        }
        if !users.is_empty() {
            for row in run(connect, conn, users_statement(), &users.json()).await? {
                place(&row, self.user_from_row(&row).map(Found::User))?;
            }
        }
        if !templates.is_empty() {
            let json = serde_json::to_string(&templates).unwrap_or_default();
            for row in run(connect, conn, TEMPLATES, &[json]).await? {
                let version = row.try_get("version").map_err(Error::from);
                place(&row, version.map(Found::Version))?;
            }
        }
        Ok(found)
    }
}

/// How a reader opens its connection: not from the pool, whose idle connections may
/// have been ended by the same event that ended the reader's.
struct Connect {
    url: String,
    setup: &'static str,
}

impl Connect {
    async fn open(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = AnyConnection::connect(&self.url).await?;
        sqlx::Executor::execute(&mut conn, self.setup).await?;
        Ok(conn)
    }
}

/// Runs one statement on `conn`, opening it when there is none. A connection that fails
/// is dropped; one that had been open before gets one more try on a new connection, since
/// the server may have closed it while it was idle.
async fn run(
    connect: &Connect,
    conn: &mut Option<AnyConnection>,
    sql: &str,
    params: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut reused = conn.is_some();
    loop {
        let open = match conn {
            Some(open) => open,
            None => conn.insert(connect.open().await?),
        };
        let mut query = sqlx::query(sql);
        for param in params {
            query = query.bind(param);
        }
        match query.fetch_all(open).await {
            Ok(rows) => return Ok(rows),
            Err(err) => {
                *conn = None;
                if !reused {
                    return Err(err);
                }
                reused = false;
            }
        }
    }
}
