//! `manifest.json`: what a backup holds (each file with its SHA-256 and size), what it
//! was made from, and the files a backup copies and checks.

use crate::files::{private_dir, private_options};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The manifest's own name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// What `format` says: a reader refuses any other.
pub const FORMAT: &str = "vkyc-backup/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The `vkyc` that made it.
    pub vkyc_version: String,
    /// When the backup started (ISO 8601, UTC).
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The highest database migration applied in the copy.
    pub schema_version: i64,
    /// The database file in the backup (`database/vkyc.db`, or the `pg_dump` archive
    /// `database/vkyc.pgdump`); None when PostgreSQL was not dumped (no `pg_dump`).
    pub database: Option<String>,
    pub master_key: KeyNote,
    /// Every file in the backup but this manifest.
    pub files: Vec<FileEntry>,
    /// Recordings kept in an S3 bucket: not copied (the bucket's own versioning and
    /// replication keep them), named here so that they can be checked or fetched.
    pub bucket_objects: Vec<ObjectEntry>,
    /// Recordings the database names that were gone when the backup copied (removed by
    /// a purge that ran meanwhile).
    pub missing: Vec<Missing>,
}

/// The master key is never in a backup; this says which key the backup's secrets need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyNote {
    pub included: bool,
    /// [`crate::secrets::MasterKey::fingerprint`] of the deployment's key; None when
    /// there was none to read.
    pub fingerprint: Option<String>,
    /// Where the deployment reads it: `VKYC_MASTER_KEY` or the key file's path.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// `database`, `recording` or `sidecar` (a recording's JSON).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<i64>,
    /// Where the recording was (what the call row said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub call_id: i64,
    pub kind: String,
    /// `s3://bucket/key`, as the call row says (a sidecar's: the same key with `.json`).
    pub url: String,
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Missing {
    pub call_id: i64,
    pub location: String,
}

impl Manifest {
    /// Reads `<dir>/manifest.json`, refusing what is not a backup this build reads.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} has no {MANIFEST}: it is not a vkyc backup, or a backup that did not finish",
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let manifest: Manifest = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a vkyc backup manifest", path.display()))?;
        anyhow::ensure!(
            manifest.format == FORMAT,
            "{} is of format {:?}; this vkyc reads {FORMAT:?}",
            path.display(),
            manifest.format
        );
        for file in &manifest.files {
            relative(&file.path)?;
        }
        if let Some(db) = &manifest.database {
            anyhow::ensure!(
                manifest.files.iter().any(|f| &f.path == db),
                "{MANIFEST} names the database {db:?} but lists no such file"
            );
        }
        Ok(manifest)
    }

    /// Writes `<dir>/manifest.json` (0600) through a temporary name, so that a backup
    /// directory has a manifest only once everything it lists is in place.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let partial = dir.join(format!("{MANIFEST}.part"));
        let mut file = private_options()
            .write(true)
            .create_new(true)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&partial, dir.join(MANIFEST))?;
        sync_dir(dir)
    }

    /// Checks every listed file's size and SHA-256; the first that differs (or is
    /// missing) is named in the error.
    pub fn verify(&self, dir: &Path) -> anyhow::Result<()> {
        for file in &self.files {
            let path = dir.join(relative(&file.path)?);
            let (sha256, bytes) = match hash_file(&path) {
                Ok(found) => found,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!("the backup is damaged: {} is missing", file.path)
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            anyhow::ensure!(
                sha256 == file.sha256 && bytes == file.bytes,
                "the backup is damaged: {} does not match {MANIFEST} (SHA-256 {sha256}, {bytes} \
                 bytes; the manifest says {}, {} bytes)",
                file.path,
                file.sha256,
                file.bytes
            );
        }
        Ok(())
    }
}

/// A manifest path as a relative path inside the backup: no absolute paths, no `..`.
pub fn relative(path: &str) -> anyhow::Result<PathBuf> {
    let parsed = Path::new(path);
    let plain = !path.is_empty()
        && parsed
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    anyhow::ensure!(
        plain,
        "{MANIFEST} lists {path:?}, which is not a plain path inside the backup"
    );
    Ok(parsed.to_path_buf())
}

/// The SHA-256 (hex) and size of a file, read in blocks.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), bytes));
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
}

/// Copies `from` to the new file `to` (0600), hashing what it writes, and makes it
/// durable; answers its SHA-256 and size.
pub fn copy_hashed(from: &Path, to: &Path) -> std::io::Result<(String, u64)> {
    let mut source = std::fs::File::open(from)?;
    let mut target = private_options().write(true).create_new(true).open(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        target.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    target.sync_all()?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Makes a directory's entries (new names, renames) durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Whether `dir` is absent or an empty directory; an error names what is in the way.
pub fn absent_or_empty(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} is a file, not a directory", dir.display())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Creates `dir` as an empty private directory (0700), answering whether it made it
/// (false: it was there, empty). `what` names it in the error when it is not empty.
pub fn empty_private_dir(dir: &Path, what: &str) -> anyhow::Result<bool> {
    let existed = dir.exists();
    anyhow::ensure!(
        absent_or_empty(dir)?,
        "{what} {} is not empty: give an empty or a new directory",
        dir.display()
    );
    private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(!existed)
}

/// What an interrupted backup or restore made is removed again: the directory when it
/// made it, else what it put into it (it was empty).
pub struct Undo {
    dirs: Vec<(PathBuf, bool)>,
    files: Vec<PathBuf>,
    done: bool,
}

impl Undo {
    pub fn new() -> Undo {
        Undo {
            dirs: Vec::new(),
            files: Vec::new(),
            done: false,
        }
    }

    /// `dir` was empty or absent when the work began (`made`: absent).
    pub fn dir(&mut self, dir: &Path, made: bool) {
        self.dirs.push((dir.to_path_buf(), made));
    }

    /// A file outside those directories that the work created.
    pub fn file(&mut self, file: &Path) {
        self.files.push(file.to_path_buf());
    }

    /// The work finished: keep everything.
    pub fn keep(mut self) {
        self.done = true;
    }
}

impl Default for Undo {
    fn default() -> Undo {
        Undo::new()
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        for (dir, made) in self.dirs.iter().rev() {
            if *made {
                let _ = std::fs::remove_dir_all(dir);
            } else if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() && !path.is_symlink() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_backup() {
        assert!(relative("recordings/12.webm").is_ok());
        for bad in ["", "/etc/passwd", "../x", "recordings/../../x", "./x"] {
            assert!(relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_copy_hashes_what_it_wrote_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        std::fs::write(&from, b"abc").unwrap();
        let to = dir.path().join("b");
        let (sha, bytes) = copy_hashed(&from, &to).unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(bytes, 3);
        assert_eq!(hash_file(&to).unwrap(), (sha, 3));
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(copy_hashed(&from, &to).is_err(), "never overwrites");
    }

    #[test]
    fn undo_removes_what_was_made_only() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("made");
        let there = root.path().join("there");
        std::fs::create_dir(&there).unwrap();
        let mut undo = Undo::new();
        assert!(empty_private_dir(&made, "target").unwrap());
        undo.dir(&made, true);
        assert!(!empty_private_dir(&there, "target").unwrap());
        undo.dir(&there, false);
        std::fs::write(made.join("x"), b"1").unwrap();
        std::fs::create_dir(there.join("sub")).unwrap();
        std::fs::write(there.join("sub/y"), b"2").unwrap();
        drop(undo);
        assert!(!made.exists());
        assert!(there.is_dir());
        assert_eq!(std::fs::read_dir(&there).unwrap().count(), 0);
        let err = empty_private_dir(root.path(), "target").unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");
    }
}
