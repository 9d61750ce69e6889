//! What `vkyc backup` and `vkyc restore` ask of the database ([`crate::backup`]): a
//! consistent copy of a live SQLite file, a PostgreSQL snapshot that `pg_dump` shares,
//! the recordings such a copy names, whether a restore target is empty, and the paths of
//! restored recordings.
//!
//! These work on connections of their own, never on a running server's pools: a backup
//! runs beside the server, and neither it nor a restore may apply migrations to a
//! database before it is checked.

use super::{Backend, Store};
use crate::error::Result;
use anyhow::Context;
use sqlx::AnyConnection;
use sqlx::{Connection, Executor, Row};
use std::future::Future;
use std::path::{Path, PathBuf};

/// A recording a call row names: a local path or an `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRef {
    pub call_id: i64,
    pub location: String,
}

/// What a copy of the database holds that the backup records beside it.
#[derive(Debug, Clone)]
pub struct Contents {
    /// The highest migration applied.
    pub schema_version: i64,
    /// Every call's recording, by call id.
    pub recordings: Vec<RecordingRef>,
}

/// The highest migration this build carries for `backend`.
pub fn latest_migration(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The backend a database URL names, as [`Store::open`] tells them apart.
pub fn backend_of(url: &str) -> anyhow::Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        anyhow::bail!("database_url must start with sqlite: or postgres:")
    }
}

/// The file of a `sqlite:` URL, read as sqlx reads it (`sqlite://path?params`, the path
/// percent-decoded).
pub fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    anyhow::ensure!(
        !path.is_empty() && path != ":memory:",
        "database_url {url:?} names no database file"
    );
    Ok(PathBuf::from(percent_decode(path)?))
}

/// `%XX` escapes decoded (as in URLs); anything else kept.
pub fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .with_context(|| {
                    format!("{text:?} has a % that is not followed by two hex digits")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).with_context(|| format!("{text:?} does not decode to UTF-8"))
}

/// A `sqlite://` URL for `path`, escaped so that `?`, `#` and `%` in it stay part of it.
fn sqlite_url(path: &Path, params: &str) -> String {
    let path = path
        .display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{path}?{params}")
}

async fn connect(url: &str) -> anyhow::Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url)
        .await
        .with_context(|| match backend_of(url) {
            Ok(Backend::Postgres) => "connecting to PostgreSQL".to_string(),
            _ => format!("opening {url}"),
        })
}

/// The applied schema version and the recordings, as `conn` sees them.
async fn contents(conn: &mut AnyConnection) -> anyhow::Result<Contents> {
    let schema_version: i64 = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations WHERE success = TRUE",
    )
    .fetch_one(&mut *conn)
    .await
    .context("reading the schema version (is this a vkyc database?)")?
    .try_get("v")?;
    let recordings = sqlx::query(
        "SELECT id, recording_path FROM calls WHERE recording_path IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the calls' recordings")?
    .iter()
    .map(|r| {
        Ok(RecordingRef {
            call_id: r.try_get("id")?,
            location: r.try_get("recording_path")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Contents {
        schema_version,
        recordings,
    })
}

/// Copies the live SQLite database at `url` into the new file `target` with `VACUUM
/// INTO`: one read transaction, so the copy is the database as of one moment while the
/// server's writer goes on (WAL). Answers what the copy holds, read from the copy.
pub async fn sqlite_copy(url: &str, target: &Path) -> anyhow::Result<Contents> {
    let file = sqlite_file(url)?;
    anyhow::ensure!(
        file.is_file(),
        "there is no database at {} (database_url {url:?})",
        file.display()
    );
    // The server's own URL, but never creating the file.
    let live = sqlite_url(&file, "mode=rw");
    let mut conn = connect(&live).await?;
    conn.execute("PRAGMA busy_timeout = 30000").await?;
    sqlx::query("VACUUM INTO $1")
        .bind(target.display().to_string())
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {} with VACUUM INTO", file.display()))?;
    conn.close().await?;
    let mut copy = connect(&sqlite_url(target, "mode=ro")).await?;
    let read = contents(&mut copy).await;
    copy.close().await?;
    read
}

/// Reads what the PostgreSQL database at `url` holds within one repeatable-read
/// snapshot, exports that snapshot and runs `dump` with its id while the snapshot is held
/// (`pg_dump --snapshot`), so the dump and the list of recordings agree exactly. `dump`
/// gets None when `export` is false (no dump is taken).
pub async fn pg_snapshot<F, Fut>(url: &str, export: bool, dump: F) -> anyhow::Result<Contents>
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut conn = connect(url).await?;
    let mut tx = conn.begin().await?;
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    // The transaction idles while pg_dump works; a server-wide limit must not end it.
    tx.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .await?;
    tx.execute("SET LOCAL statement_timeout = 0").await?;
    let snapshot = if export {
        let id: String = sqlx::query("SELECT pg_export_snapshot() AS id")
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
        Some(id)
    } else {
        None
    };
    let read = contents(&mut tx).await?;
    dump(snapshot).await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(read)
}

/// The tables in the PostgreSQL database at `url` outside the system's schemas (a
/// restore goes only into a database that has none).
pub async fn pg_tables(url: &str) -> anyhow::Result<i64> {
    let mut conn = connect(url).await?;
    let count: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut conn)
    .await?
    .try_get("n")?;
    conn.close().await?;
    Ok(count)
}

impl Store {
    /// Every local file the database names: the calls' recordings and the files a purge
    /// still has to delete (`s3://` URLs left out).
    pub async fn local_recording_locations(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT recording_path AS location FROM calls WHERE recording_path IS NOT NULL \
             UNION SELECT location FROM pending_deletions",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let location: String = row.try_get("location")?;
            if !location.starts_with("s3://") {
                out.push(location);
            }
        }
        Ok(out)
    }

    /// Points every row that names a recording at `from` at `to` instead, for each pair,
    /// in one transaction (a restore put the files somewhere else).
    pub async fn relocate_recordings(&self, moves: &[(String, String)]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for (from, to) in moves {
            sqlx::query("UPDATE calls SET recording_path = $1 WHERE recording_path = $2")
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE pending_deletions SET location = $1 WHERE location = $2")
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_as_sqlx_reads_it() {
        assert_eq!(
            sqlite_file("sqlite:///srv/vkyc/vkyc.db").unwrap(),
            PathBuf::from("/srv/vkyc/vkyc.db")
        );
        assert_eq!(
            sqlite_file("sqlite://data/vkyc.db?mode=rwc").unwrap(),
            PathBuf::from("data/vkyc.db")
        );
        assert_eq!(
            sqlite_file("sqlite:/a%3Fb/x.db").unwrap(),
            PathBuf::from("/a?b/x.db")
        );
        assert!(sqlite_file("sqlite::memory:").is_err());
        assert!(sqlite_file("postgres://x/y").is_err());
        assert!(sqlite_file("sqlite:///a%zz").is_err());
        let odd = Path::new("/tmp/a?b#c%d/v.db");
        let url = sqlite_url(odd, "mode=ro");
        assert_eq!(sqlite_file(&url).unwrap(), odd);
    }
}
