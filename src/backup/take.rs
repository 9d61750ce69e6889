//! Taking a backup while the server runs: the database first (one consistent moment),
//! then the recordings that copy names, then the manifest.

use super::manifest::{
    copy_hashed, empty_private_dir, hash_file, sync_dir, FileEntry, KeyNote, Manifest, Missing,
    ObjectEntry, Undo, FORMAT,
};
use super::{postgres, sidecar_of};
use crate::config::Config;
use crate::secrets::{self, MasterKey};
use crate::store::backup::{backend_of, pg_snapshot, sqlite_copy, Contents, RecordingRef};
use crate::store::Backend;
use anyhow::Context;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Backs up the deployment `config` describes into `to` (absent or empty), while its
/// server may run and write. Answers the manifest written.
pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<Manifest> {
    let url = config.database_url();
    let backend = backend_of(&url)?;
    let key_path = secrets::key_path(&config.data_dir, &config.master_key_file);
    let key = MasterKey::load(&key_path)?;
    let started = crate::clock::now_ms();
    let made = empty_private_dir(to, "the backup directory")?;
    let mut undo = Undo::new();
    undo.dir(to, made);
    let db_dir = to.join("database");
    crate::files::private_dir(&db_dir)?;

    let (contents, database) = match backend {
        Backend::Sqlite => {
            let file = db_dir.join("vkyc.db");
            let contents = sqlite_copy(&url, &file).await?;
            (contents, Some("database/vkyc.db"))
        }
        Backend::Postgres => match postgres::find("pg_dump") {
            Some(pg_dump) => {
                let file = db_dir.join("vkyc.pgdump");
                let contents = pg_snapshot(&url, true, |snapshot| {
                    let (url, file) = (url.clone(), file.clone());
                    async move { postgres::dump(&pg_dump, &url, snapshot.as_deref(), &file).await }
                })
                .await?;
                (contents, Some("database/vkyc.pgdump"))
            }
            None => {
                std::fs::remove_dir(&db_dir)?;
                let contents = pg_snapshot(&url, false, |_| async { Ok(()) }).await?;
                (contents, None)
            }
        },
    };

    let mut files = Vec::new();
    if let Some(database) = database {
        let path = to.join(database);
        let (sha256, bytes) = hash_file(&path)?;
        files.push(FileEntry {
            path: database.to_string(),
            sha256,
            bytes,
            kind: "database".into(),
            call_id: None,
            original: None,
        });
    }
    let Contents {
        schema_version,
        recordings,
    } = contents;
    let (local, in_bucket): (Vec<RecordingRef>, Vec<RecordingRef>) = recordings
        .into_iter()
        .partition(|r| !r.location.starts_with("s3://"));
    let target = to.to_path_buf();
    let (copied, missing) = tokio::task::spawn_blocking(move || copy_recordings(&local, &target))
        .await
        .context("copying recordings")??;
    files.extend(copied);

    let manifest = Manifest {
        format: FORMAT.into(),
        vkyc_version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::domain::views::iso_millis(started),
        backend: match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .into(),
        schema_version,
        database: database.map(str::to_string),
        master_key: KeyNote {
            included: false,
            fingerprint: key.as_ref().map(MasterKey::fingerprint),
            source: if secrets::from_env() {
                "VKYC_MASTER_KEY".into()
            } else {
                key_path.display().to_string()
            },
        },
        files,
        bucket_objects: bucket_objects(&in_bucket),
        missing,
    };
    if to.join("database").exists() {
        sync_dir(&to.join("database"))?;
    }
    manifest.write(to)?;
    undo.keep();
    Ok(manifest)
}

/// Copies each local recording and its sidecar into `<to>/recordings/`, under its own
/// file name (made unique with the call id when two share one). A recording that is gone
/// is listed as missing; a missing sidecar is skipped (older recordings have none).
fn copy_recordings(
    recordings: &[RecordingRef],
    to: &Path,
) -> anyhow::Result<(Vec<FileEntry>, Vec<Missing>)> {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    if recordings.is_empty() {
        return Ok((files, missing));
    }
    let dir = to.join("recordings");
    crate::files::private_dir(&dir)?;
    let mut taken = HashSet::new();
    for recording in recordings {
        let original = PathBuf::from(&recording.location);
        let name = original
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.webm", recording.call_id));
        let name = if taken.contains(&name) {
            format!("{}-{name}", recording.call_id)
        } else {
            name
        };
        let copy = |from: &Path, name: &str, kind: &str| -> std::io::Result<FileEntry> {
            let (sha256, bytes) = copy_hashed(from, &dir.join(name))?;
            Ok(FileEntry {
                path: format!("recordings/{name}"),
                sha256,
                bytes,
                kind: kind.into(),
                call_id: Some(recording.call_id),
                original: Some(from.display().to_string()),
            })
        };
        match copy(&original, &name, "recording") {
            Ok(entry) => files.push(entry),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(Missing {
                    call_id: recording.call_id,
                    location: recording.location.clone(),
                });
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("copying {}", original.display()));
            }
        }
        taken.insert(name.clone());
        let sidecar = sidecar_of(&recording.location);
        let sidecar_name = sidecar_of(&name);
        match copy(Path::new(&sidecar), &sidecar_name, "sidecar") {
            Ok(entry) => files.push(entry),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("copying {sidecar}")),
        }
        taken.insert(sidecar_name);
    }
    sync_dir(&dir)?;
    Ok((files, missing))
}

/// The bucket's objects behind `s3://` recordings: each WebM and its sidecar.
fn bucket_objects(recordings: &[RecordingRef]) -> Vec<ObjectEntry> {
    let mut out = Vec::new();
    for recording in recordings {
        for (kind, url) in [
            ("recording", recording.location.clone()),
            ("sidecar", sidecar_of(&recording.location)),
        ] {
            let rest = url.trim_start_matches("s3://");
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            out.push(ObjectEntry {
                call_id: recording.call_id,
                kind: kind.into(),
                bucket: bucket.into(),
                key: key.into(),
                url: url.clone(),
            });
        }
    }
    out
}
