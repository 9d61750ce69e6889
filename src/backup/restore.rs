//! Restoring a backup into an empty deployment: every file is checked against the
//! manifest before anything is put in place, and checked again as it is copied.

use super::manifest::{
    absent_or_empty, copy_hashed, empty_private_dir, relative, sync_dir, FileEntry, Manifest, Undo,
};
use super::{postgres, sidecar_of};
use crate::config::Config;
use crate::secrets::{self, MasterKey};
use crate::store::backup::{backend_of, latest_migration, pg_tables, sqlite_file};
use crate::store::{Backend, Store};
use anyhow::{bail, Context};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What became of the master key.
#[derive(Debug)]
pub enum KeyOutcome {
    /// The given key file was put where the deployment reads it.
    Written(PathBuf),
    /// The deployment's key (the environment's, or a configured file) is the one.
    Present(String),
    /// No key is in place yet: the server will not start until it is.
    Missing(PathBuf),
}

#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub recordings: usize,
    pub key: KeyOutcome,
}

/// Restores the backup in `from` into the deployment `config` describes, whose data
/// directory (and recordings directory, and database) must be empty. `key_file` is the
/// deployment's master key, kept apart from the backup.
pub async fn restore(
    config: &Config,
    from: &Path,
    key_file: Option<&Path>,
) -> anyhow::Result<Restored> {
    let manifest = Manifest::read(from)?;
    let url = config.database_url();
    let backend = backend_of(&url)?;
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    anyhow::ensure!(
        manifest.backend == name,
        "this backup is of a {} database and the configuration names a {name} one: restore \
         into the same kind of database",
        manifest.backend
    );
    let latest = latest_migration(backend);
    anyhow::ensure!(
        manifest.schema_version <= latest,
        "this backup's database is at migration {} and this vkyc {} knows migrations up to \
         {latest}: restore it with the vkyc that made it ({}) or a newer one",
        manifest.schema_version,
        env!("CARGO_PKG_VERSION"),
        manifest.vkyc_version
    );
    let Some(database) = manifest.database.clone() else {
        bail!(
            "this backup holds no database (pg_dump was not there when it was made): restore \
             the database from the PostgreSQL base backup, see docs/records.md"
        );
    };

    // Everything is checked before anything is put in place.
    let checked = manifest.clone();
    let dir = from.to_path_buf();
    tokio::task::spawn_blocking(move || checked.verify(&dir))
        .await
        .context("checking the backup")??;
    let key = master_key(config, &manifest, key_file)?;

    let data_dir = &config.data_dir;
    let recordings_dir = crate::storage::recordings_dir(config);
    let inside = |p: &Path| p.starts_with(data_dir);
    anyhow::ensure!(
        absent_or_empty(data_dir)?,
        "the data directory {} is not empty: restore goes into an empty or a new data \
         directory",
        data_dir.display()
    );
    if !inside(&recordings_dir) {
        anyhow::ensure!(
            absent_or_empty(&recordings_dir)?,
            "the recordings directory {} is not empty: restore goes into an empty one",
            recordings_dir.display()
        );
    }
    let pg_restore = match backend {
        Backend::Sqlite => {
            let file = sqlite_file(&url)?;
            for taken in [
                file.clone(),
                wal_file(&file, "-wal"),
                wal_file(&file, "-shm"),
            ] {
                anyhow::ensure!(
                    !taken.exists(),
                    "{} already exists: restore goes into a new database",
                    taken.display()
                );
            }
            None
        }
        Backend::Postgres => {
            let tool = postgres::find("pg_restore").context(
                "pg_restore is not on the PATH: install PostgreSQL's client tools to restore",
            )?;
            let tables = pg_tables(&url).await?;
            anyhow::ensure!(
                tables == 0,
                "the database in database_url already has {tables} tables: restore goes into \
                 an empty database (createdb a new one)"
            );
            Some(tool)
        }
    };

    let mut undo = Undo::new();
    let made = empty_private_dir(data_dir, "the data directory")?;
    undo.dir(data_dir, made);
    if !inside(&recordings_dir) {
        let made = empty_private_dir(&recordings_dir, "the recordings directory")?;
        undo.dir(&recordings_dir, made);
    }
    let entry = |path: &str| manifest.files.iter().find(|f| f.path == path);
    let db_entry = entry(&database).expect("Manifest::read checks the database is listed");
    match &pg_restore {
        None => {
            let file = sqlite_file(&url)?;
            if !inside(&file) {
                undo.file(&file);
            }
            place(from, db_entry, &file)?;
        }
        Some(tool) => {
            postgres::restore(tool, &url, &from.join(relative(&database)?))
                .await
                .context("restoring the database (nothing of it was kept)")?;
        }
    }

    // The recordings, each under its name in the backup, in this deployment's directory.
    let media: Vec<FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.kind == "recording" || f.kind == "sidecar")
        .cloned()
        .collect();
    let (source, target) = (from.to_path_buf(), recordings_dir.clone());
    let moves = tokio::task::spawn_blocking(move || place_media(&source, &media, &target))
        .await
        .context("restoring recordings")??;
    let recordings = moves.len();

    let store = Store::open_without_key(&url).await?;
    let result = relocate(&store, moves, &recordings_dir).await;
    store.close().await;
    result.context(match backend {
        Backend::Postgres => {
            "pointing the calls at the restored recordings (the database now \
                              holds part of the restore: drop and create it again before \
                              another try)"
        }
        Backend::Sqlite => "pointing the calls at the restored recordings",
    })?;

    let key = match key {
        KeyAt::Given(key, path) => {
            key.write(&path)?;
            KeyOutcome::Written(path)
        }
        KeyAt::Present(source) => KeyOutcome::Present(source),
        KeyAt::Missing(path) => KeyOutcome::Missing(path),
    };
    sync_dir(data_dir)?;
    undo.keep();
    Ok(Restored {
        manifest,
        recordings,
        key,
    })
}

/// The master key a restore finds or is given.
enum KeyAt {
    /// A key file given on the command line, to write at the path.
    Given(MasterKey, PathBuf),
    Present(String),
    Missing(PathBuf),
}

/// Finds the key the restored deployment will use and checks it is the one the backup's
/// secrets were sealed under; a wrong key is refused before anything is restored.
fn master_key(
    config: &Config,
    manifest: &Manifest,
    key_file: Option<&Path>,
) -> anyhow::Result<KeyAt> {
    let path = secrets::key_path(&config.data_dir, &config.master_key_file);
    let check = |key: &MasterKey, from: &str| -> anyhow::Result<()> {
        match &manifest.master_key.fingerprint {
            Some(wanted) if *wanted != key.fingerprint() => bail!(
                "the master key from {from} is not the one this backup's secrets are sealed \
                 under (its fingerprint is {}, the backup's is {wanted}): give the key of the \
                 deployment that made the backup",
                key.fingerprint()
            ),
            _ => Ok(()),
        }
    };
    if let Some(file) = key_file {
        let key = MasterKey::read(file)?
            .with_context(|| format!("there is no master key file {}", file.display()))?;
        check(&key, &file.display().to_string())?;
        if secrets::from_env() {
            let env = MasterKey::load(&path)?.expect("the environment gives a key");
            check(&env, "VKYC_MASTER_KEY")?;
        }
        return Ok(match MasterKey::read(&path)? {
            // A configured key file outside the data directory may be there already.
            Some(there) => {
                check(&there, &path.display().to_string())?;
                KeyAt::Present(path.display().to_string())
            }
            None => KeyAt::Given(key, path),
        });
    }
    match MasterKey::load(&path)? {
        Some(key) => {
            let source = if secrets::from_env() {
                "VKYC_MASTER_KEY".to_string()
            } else {
                path.display().to_string()
            };
            check(&key, &source)?;
            Ok(KeyAt::Present(source))
        }
        None => Ok(KeyAt::Missing(path)),
    }
}

fn wal_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies one backup file to `to` through a temporary name, checking its SHA-256 again
/// on the way (the backup could change after the first check).
fn place(from: &Path, entry: &FileEntry, to: &Path) -> anyhow::Result<()> {
    let source = from.join(relative(&entry.path)?);
    let mut partial = to.as_os_str().to_owned();
    partial.push(".restoring");
    let partial = PathBuf::from(partial);
    let (sha256, bytes) = copy_hashed(&source, &partial)
        .with_context(|| format!("copying {} to {}", entry.path, partial.display()))?;
    if sha256 != entry.sha256 || bytes != entry.bytes {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "the backup is damaged: {} changed while it was being restored",
            entry.path
        );
    }
    std::fs::rename(&partial, to)?;
    Ok(())
}

/// Puts the recordings and sidecars into `dir`; answers (where the backup says the
/// recording was, where it is now) for each recording.
fn place_media(
    from: &Path,
    files: &[FileEntry],
    dir: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    crate::files::private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut moves = Vec::new();
    for file in files {
        let name = relative(&file.path)?
            .file_name()
            .map(|n| n.to_owned())
            .context("a recording without a file name")?;
        let to = dir.join(name);
        place(from, file, &to)?;
        if file.kind == "recording" {
            if let Some(original) = &file.original {
                moves.push((original.clone(), to.display().to_string()));
            }
        }
    }
    sync_dir(dir)?;
    Ok(moves)
}

/// Points the rows at the restored recordings. Rows naming a local file the backup does
/// not hold (gone when it was made, or waiting to be deleted after a purge) are pointed
/// into the new directory too, at a name nothing else has: the restored deployment must
/// never reach into the old one's files.
async fn relocate(
    store: &Store,
    mut moves: Vec<(String, String)>,
    dir: &Path,
) -> anyhow::Result<()> {
    let known: HashMap<String, String> = moves.iter().cloned().collect();
    let mut used: HashSet<String> = moves.iter().map(|(_, to)| to.clone()).collect();
    for (_, to) in moves.clone() {
        used.insert(sidecar_of(&to));
    }
    for location in store.local_recording_locations().await? {
        if known.contains_key(&location) {
            continue;
        }
        let name = Path::new(&location)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recording".into());
        let mut to = dir.join(&name).display().to_string();
        let mut n = 1;
        while used.contains(&to) {
            to = dir
                .join(format!("missing-{n}-{name}"))
                .display()
                .to_string();
            n += 1;
        }
        used.insert(to.clone());
        moves.push((location, to));
    }
    moves.retain(|(from, to)| from != to);
    store.relocate_recordings(&moves).await?;
    Ok(())
}
