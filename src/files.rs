//! Files that hold personal data (the database, recordings and their sidecars, the master
//! key) are the service's alone: directories 0700, files 0600, on first start and on every
//! start after. What this process creates is private from the start (its umask is 077);
//! what an older version or an operator left wider is narrowed at start, with a warning.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Makes every file this process creates from now on private to its user.
pub fn private_umask() {
    // SAFETY: umask only sets this process's file-mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) as 0700 where missing, and makes `dir` itself 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Options that create a file as 0600.
pub fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.mode(0o600);
    options
}

/// Writes `bytes` to a new or truncated 0600 file.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Narrows everything under `dir` that others could read (directories to 0700, files to
/// 0600) and returns what it narrowed. Symbolic links are left alone.
pub fn narrow(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut narrowed = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let (mode, private) = if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
            (meta.permissions().mode() & 0o7777, 0o700)
        } else {
            (meta.permissions().mode() & 0o7777, 0o600)
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private))?;
            narrowed.push(path);
        }
    }
    Ok(narrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn what_others_could_read_is_narrowed_and_named() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let loose = dir.join("vkyc.db");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let tight = dir.join("master.key");
        write_private(&tight, b"k").unwrap();
        let mut narrowed = narrow(&dir).unwrap();
        narrowed.sort();
        assert_eq!(narrowed, [dir.clone(), loose.clone()]);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(mode(&tight), 0o600);
        assert!(narrow(&dir).unwrap().is_empty(), "nothing left to narrow");
    }
}
