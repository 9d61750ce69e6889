//! The deployment's master key as the server and the command line take it: loaded (and
//! created on a first start), and refused when it does not open the secrets already
//! sealed in the database.

use crate::config::Config;
use crate::secrets::{self, MasterKey};
use crate::store::Store;

/// The key `config` names, created when there is none and the database holds no sealed
/// secret yet. A key that does not open the database's secrets (a restored database
/// whose key was not put back, or another deployment's key) is refused: with it the
/// server would run, and fail every merchant's webhook signing and signature check, and
/// new secrets would be sealed under the wrong key. A key file created by this call for
/// such a database is removed again, so that the right one can be put in its place.
pub async fn load(config: &Config, store: &Store) -> anyhow::Result<MasterKey> {
    let path = secrets::key_path(&config.data_dir, &config.master_key_file);
    let was_there = secrets::from_env() || path.exists();
    let key = MasterKey::load_or_create(&path)?;
    let Some(sealed) = store.sealed_sample().await? else {
        return Ok(key);
    };
    if key.open(&sealed).is_ok() {
        return Ok(key);
    }
    if was_there {
        let source = if secrets::from_env() {
            "VKYC_MASTER_KEY".to_string()
        } else {
            path.display().to_string()
        };
        anyhow::bail!(
            "the master key from {source} does not open the secrets sealed in this database: \
             give this deployment's own master key (see docs/records.md, \"Backup and restore\")"
        );
    }
    let _ = std::fs::remove_file(&path);
    anyhow::bail!(
        "no master key at {}, but this database holds secrets sealed under one (a restored \
         backup?): put the deployment's master key there or in VKYC_MASTER_KEY (see \
         docs/records.md, \"Backup and restore\")",
        path.display()
    )
}
