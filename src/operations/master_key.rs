//! The deployment's master key as the server and the command line take it: loaded (and
//! created on a first start) and the database opened with it. The store refuses a key
//! that is not the database's own (`Store::open`, by the key id it keeps); a key file
//! this call has just created for such a database (a restored backup whose key was not
//! put back) is removed again, so that the right one can be put in its place.

use crate::config::Config;
use crate::secrets::{self, MasterKey};
use crate::store::{Store, WrongMasterKey};

pub async fn open(config: &Config) -> anyhow::Result<(MasterKey, Store)> {
    let path = secrets::key_path(&config.data_dir, &config.master_key_file);
    let was_there = secrets::from_env() || path.exists();
    let key = MasterKey::load_or_create(&path)?;
    match Store::open(&config.database_url(), &key).await {
        Ok(store) => Ok((key, store)),
        Err(err) if err.downcast_ref::<WrongMasterKey>().is_some() && !was_there => {
            let _ = std::fs::remove_file(&path);
            anyhow::bail!(
                "no master key at {}, but this database holds secrets sealed under one (a \
                 restored backup?): put the deployment's master key there or in \
                 VKYC_MASTER_KEY (see docs/records.md, \"Backup and restore\")",
                path.display()
            )
        }
        Err(err) => Err(err),
    }
}
