//! `vkyc backup --to DIR` and `vkyc restore --from DIR`: what they did, said to the
//! operator, with what is still theirs to do (the master key, a database not dumped).

use crate::backup::{self, KeyOutcome};
use crate::config::Config;
use std::path::Path;

pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<()> {
    let manifest = backup::backup(config, to).await?;
    let count = |kind: &str| manifest.files.iter().filter(|f| f.kind == kind).count();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    match &manifest.database {
        Some(file) => println!(
            "database ({}, migration {}) copied to {}",
            manifest.backend,
            manifest.schema_version,
            to.join(file).display()
        ),
        None => println!(
            "WARNING: pg_dump is not on the PATH, so the database was NOT copied: back it up \
             with pg_basebackup and WAL archiving (docs/records.md)"
        ),
    }
    println!(
        "{} recordings and {} sidecars copied; {} files, {bytes} bytes, listed with their \
         SHA-256 in {}",
        count("recording"),
        count("sidecar"),
        manifest.files.len(),
        to.join(backup::manifest::MANIFEST).display()
    );
    if !manifest.bucket_objects.is_empty() {
        println!(
            "{} objects in the recordings bucket are listed, not copied: the bucket's own \
             versioning and replication keep them",
            manifest.bucket_objects.len()
        );
    }
    for gone in &manifest.missing {
        println!(
            "recording of call {} was gone when copied (purged meanwhile?): {}",
            gone.call_id, gone.location
        );
    }
    println!(
        "The master key is NOT in the backup. Keep a copy of it ({}, fingerprint {}) apart \
         from the backups: without it the restored secrets cannot be opened.",
        manifest.master_key.source,
        manifest
            .master_key
            .fingerprint
            .as_deref()
            .unwrap_or("none: no key was found")
    );
    Ok(())
}

pub async fn restore(config: &Config, from: &Path, key_file: Option<&Path>) -> anyhow::Result<()> {
    let restored = backup::restore(config, from, key_file).await?;
    let manifest = &restored.manifest;
    println!(
        "every file matched {}; restored the backup of {} (vkyc {}, {} migration {}) and {} \
         recordings into {}",
        backup::manifest::MANIFEST,
        manifest.created_at,
        manifest.vkyc_version,
        manifest.backend,
        manifest.schema_version,
        restored.recordings,
        config.data_dir.display()
    );
    match &restored.key {
        KeyOutcome::Written(path) => println!("master key written to {}", path.display()),
        KeyOutcome::Present(source) => println!("master key: {source} (it matches the backup)"),
        KeyOutcome::Missing(path) => println!(
            "The master key is not in place: put the deployment's key at {} (or in \
             VKYC_MASTER_KEY) before `vkyc serve`, which refuses to start without it.",
            path.display()
        ),
    }
    Ok(())
}
