//! `vkyc backup` and `vkyc restore`: a consistent copy of a running deployment, and that
//! copy put back into an empty one (docs/records.md, "Backup and restore").
//!
//! A backup directory holds `database/` (SQLite: a `VACUUM INTO` copy, `vkyc.db`;
//! PostgreSQL: a `pg_dump --format=custom` archive, `vkyc.pgdump`), `recordings/` (the
//! local recordings and their sidecars that the copied database names) and
//! `manifest.json` ([`manifest::Manifest`]), written last. The database is copied first,
//! at one moment, and the recordings it names afterwards: a finished recording never
//! changes, so the copy is consistent while the server goes on writing. Recordings in an
//! S3 bucket are listed, not copied. The master key is never in a backup.
//!
//! A restore checks every file's SHA-256 before it puts anything in place, refuses a
//! target that is not empty, and points the restored calls at the recordings' new place.

pub mod manifest;
mod postgres;
mod restore;
mod take;

pub use manifest::Manifest;
pub use restore::{restore, KeyOutcome, Restored};
pub use take::backup;

/// A recording's sidecar: `<stem>.json` beside `<stem>.webm` (as the recorder writes it).
fn sidecar_of(recording: &str) -> String {
    match recording.strip_suffix(".webm") {
        Some(stem) => format!("{stem}.json"),
        None => format!("{recording}.json"),
    }
}
