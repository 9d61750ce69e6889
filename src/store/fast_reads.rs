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
//!
//! Even inline, a lookup costs more in locking than in reading: each read transaction
//! takes and releases the WAL's read locks (`fcntl`, and a process-wide mutex the runtime
//! threads contend for). So a lookup's answer is also kept per thread, stamped with the
//! wal-index header as it was when the answer was read, and given again while the header
//! is unchanged. That header (the first 48 bytes of the `-shm` file, written twice so that
//! a reader can tell a torn copy; see SQLite's "WAL-mode File Format") changes with every
//! commit by any connection of any process, so an answer is given again only while
//! nothing at all has been committed since it was read.

use super::Columns;
use rusqlite::{OpenFlags, OptionalExtension};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How many databases one thread keeps a connection to (tests open many stores on one
/// thread; a server opens one). The least recently used goes first.
const PER_THREAD: usize = 4;

/// How many answers one thread keeps (all stores together); past it, it starts afresh.
const ANSWERS_PER_THREAD: usize = 20_000;

/// The wal-index header as it stood when an answer was read.
type CommitMark = [u8; 48];

/// Answers kept on one thread: by store id and lookup with its keys, the header they were
/// read under and the answer.
type Answers = HashMap<(u64, String), (CommitMark, Box<dyn Any>)>;

thread_local! {
    /// This thread's connections, by the [`FastReads::id`] of the store that opened them,
    /// most recently used last.
    static CONNECTIONS: RefCell<Vec<(u64, rusqlite::Connection)>> = const { RefCell::new(Vec::new()) };
    /// This thread's answers, by store id and statement with its keys.
    static ANSWERS: RefCell<Answers> = RefCell::new(HashMap::new());
}

/// The `-shm` file, read for its header, and a connection that keeps it in use: SQLite
/// removes (and a later connection recreates) the file once no connection has the
/// database open, and a header read from a removed file would never change again.
struct WalIndex {
    file: File,
    _keep: Mutex<rusqlite::Connection>,
}

impl std::fmt::Debug for WalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalIndex")
    }
}

/// The handle a SQLite store keeps for direct reads: which file, and its own id (so that
/// a new database at the same path never meets an old connection).
#[derive(Debug)]
pub(super) struct FastReads {
    id: u64,
    path: PathBuf,
    /// Set when the store is closed: reads fail from then on, as the pools' do.
    closed: AtomicBool,
    /// Opened at the first kept lookup (None: not in WAL mode).
    wal_index: OnceLock<Option<WalIndex>>,
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
            wal_index: OnceLock::new(),
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

    /// The `-shm` file and a connection keeping it in use; None when the database is not
    /// in WAL mode or the file cannot be opened (lookups are then not kept, only read).
    fn open_wal_index(&self) -> Option<WalIndex> {
        let keep = self.open().ok()?;
        // A read: it opens the WAL and its `-shm` file, which this connection then holds.
        let mode: String = keep
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let mut shm = self.path.clone().into_os_string();
        shm.push("-shm");
        Some(WalIndex {
            file: File::open(shm).ok()?,
            _keep: Mutex::new(keep),
        })
    }

    /// The wal-index header now, when the database is in WAL mode and the two copies of
    /// the header agree (they differ only while a commit is being published).
    fn commit_mark(&self) -> Option<CommitMark> {
        let index = self
            .wal_index
            .get_or_init(|| self.open_wal_index())
            .as_ref()?;
        let mut both = [0u8; 96];
        index.file.read_exact_at(&mut both, 0).ok()?;
        let (first, second) = both.split_at(48);
        // isInit (byte 12) is set once the header has been built.
        (first == second && first[12] != 0).then(|| first.try_into().expect("48 bytes"))
    }

    /// As [`FastReads::fetch_optional`], but an answer found is kept and given again until
    /// anything is committed to the database (see the module's comment). Only for rows
    /// whose answer depends on nothing but the database.
    ///
    /// `what` names the lookup (the answer is kept under it and the keys); `sql` gives the
    /// statement, wanted only when the answer has to be read.
    pub(super) fn fetch_optional_kept<T: Clone + 'static>(
        &self,
        what: &str,
        sql: impl FnOnce() -> String,
        keys: &[Key<'_>],
        map: impl FnOnce(&dyn Columns) -> Result<T, sqlx::Error>,
    ) -> Result<Option<T>, sqlx::Error> {
        use std::fmt::Write;
        if self.closed.load(Ordering::Relaxed) {
            return Err(sqlx::Error::PoolClosed);
        }
        let before = self.commit_mark();
        let Some(mark) = before else {
            return self.fetch_optional(&sql(), keys, map);
        };
        let mut key = String::with_capacity(what.len() + 40);
        key.push_str(what);
        for k in keys {
            // Text is length-prefixed: no two lists of keys give the same string.
            match k {
                Key::Int(v) => write!(key, "\u{1f}i{v}"),
                Key::Text(v) => write!(key, "\u{1f}t{}:{v}", v.len()),
            }
            .expect("writing to a String");
        }
        let key = (self.id, key);
        let hit = ANSWERS.with(|answers| {
            let answers = answers.borrow();
            let (at, answer) = answers.get(&key)?;
            (*at == mark).then(|| answer.downcast_ref::<T>().cloned())?
        });
        if let Some(answer) = hit {
            return Ok(Some(answer));
        }
        let found = self.fetch_optional(&sql(), keys, map)?;
        // Kept only if nothing was committed while it was read: then it is what the
        // database held at `mark`.
        if let Some(answer) = &found {
            if self.commit_mark() == Some(mark) {
                ANSWERS.with(|answers| {
                    let mut answers = answers.borrow_mut();
                    if answers.len() >= ANSWERS_PER_THREAD {
                        answers.clear();
                    }
                    answers.insert(key, (mark, Box::new(answer.clone())));
                });
            }
        }
        Ok(found)
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
