//! Direct reads for hot point lookups on SQLite.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every query is a
//! hand-off to that thread and back (two thread wake-ups, a channel each way), which
//! costs far more than the lookup itself: a request found by its unique key is a few
//! microseconds of work inside SQLite. Here each runtime thread keeps its own read-only
//! connection to the database file (WAL: readers never wait for the writer) and runs such
//! a lookup inline, on the calling thread. Only short indexed lookups belong here; every
//! write, and every read that may scan, stays on the sqlx pools.
//!
//! Each statement runs in autocommit and is reset after its row is read, so it sees every
//! commit made before it started, as a read from the sqlx read pool does.

use super::Columns;
use rusqlite::{OpenFlags, OptionalExtension};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How many databases one thread keeps a connection to (tests open many stores on one
/// thread; a server opens one). The least recently used goes first.
const PER_THREAD: usize = 4;

thread_local! {
    /// This thread's connections, by the [`FastReads::id`] of the store that opened them,
    /// most recently used last.
    static CONNECTIONS: RefCell<Vec<(u64, rusqlite::Connection)>> = const { RefCell::new(Vec::new()) };
}

/// The handle a SQLite store keeps for direct reads: which file, and its own id (so that
/// a new database at the same path never meets an old connection).
#[derive(Debug)]
pub(super) struct FastReads {
    id: u64,
    path: PathBuf,
    /// Set when the store is closed: reads fail from then on, as the pools' do.
    closed: AtomicBool,
}

/// A value bound to a lookup's parameter.
pub(super) enum Key<'a> {
    Int(i64),
    Text(&'a str),
}

impl rusqlite::ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Key::Int(v) => v.to_sql(),
            Key::Text(v) => v.to_sql(),
        }
    }
}

fn driver_error(err: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::AnyDriverError(Box::new(err))
}

impl FastReads {
    /// Direct reads of the database file at `path` (`None` for an in-memory database,
    /// which another connection cannot see).
    pub(super) fn new(path: &str) -> Option<FastReads> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        if path.is_empty() {
            return None;
        }
        Some(FastReads {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            path: PathBuf::from(path),
            closed: AtomicBool::new(false),
        })
    }

    /// Refuses every later read (the store is closing).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Only while a checkpoint resets the WAL can a reader be asked to wait.
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(conn)
    }

    /// Runs `read` on this thread's connection to the database, opening it first if
    /// needed.
    fn with<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(sqlx::Error::PoolClosed);
        }
        CONNECTIONS.with(|cell| {
            let mut conns = cell.borrow_mut();
            match conns.iter().position(|(id, _)| *id == self.id) {
                Some(at) if at + 1 != conns.len() => {
                    let entry = conns.remove(at);
                    conns.push(entry);
                }
                Some(_) => {}
                None => {
                    let conn = self.open().map_err(driver_error)?;
                    if conns.len() >= PER_THREAD {
                        conns.remove(0);
                    }
                    conns.push((self.id, conn));
                }
            }
            let (_, conn) = conns.last().expect("just pushed");
            read(conn)
        })
    }

    /// The first row `sql` finds with `keys` bound to `$1`, `$2`, …, mapped by `map`.
    pub(super) fn fetch_optional<T>(
        &self,
        sql: &str,
        keys: &[Key<'_>],
        map: impl FnOnce(&dyn Columns) -> Result<T, sqlx::Error>,
    ) -> Result<Option<T>, sqlx::Error> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql).map_err(driver_error)?;
            let mut map = Some(map);
            let mut failed = None;
            let found = statement
                .query_row(rusqlite::params_from_iter(keys.iter()), |row| {
                    let map = map.take().expect("one row");
                    Ok(map(row).map_err(|e| failed = Some(e)).ok())
                })
                .optional()
                .map_err(driver_error)?;
            match failed {
                Some(err) => Err(err),
                None => Ok(found.flatten()),
            }
        })
    }
}

/// The column `name`, at `at` when it is there (one comparison), else looked up.
fn column<T: rusqlite::types::FromSql>(
    row: &rusqlite::Row<'_>,
    at: usize,
    name: &str,
) -> Result<T, sqlx::Error> {
    let here = row
        .as_ref()
        .column_name(at)
        .is_ok_and(|found| found.eq_ignore_ascii_case(name));
    if here { row.get(at) } else { row.get(name) }.map_err(driver_error)
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, at: usize, name: &str) -> Result<i64, sqlx::Error> {
        column(self, at, name)
    }
    fn opt_int(&self, at: usize, name: &str) -> Result<Option<i64>, sqlx::Error> {
        column(self, at, name)
    }
    fn text(&self, at: usize, name: &str) -> Result<String, sqlx::Error> {
        column(self, at, name)
    }
    fn opt_text(&self, at: usize, name: &str) -> Result<Option<String>, sqlx::Error> {
        column(self, at, name)
    }
}
