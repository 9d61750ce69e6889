//! The purge worker: removes the personal data of requests the retention rules say are
//! due (`[retention]`, `crate::domain::retention`), then the files those purges left.

use crate::clock::now_ms;
use crate::config::Config;
use crate::domain::retention::{closed_sub_statuses, cutoffs};
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub requests: usize,
    pub files: usize,
    /// Files that could not be deleted this pass (kept in the list, tried again).
    pub files_failed: usize,
}

/// One pass: purges up to `purge_batch` due requests (each in its own transaction, so a
/// hold placed meanwhile wins), then deletes the files waiting in `pending_deletions`.
pub async fn purge_due(store: &Store, config: &Config, now: i64) -> anyhow::Result<Purged> {
    let settings = &config.retention;
    let closed = closed_sub_statuses();
    let due = store
        .due_for_purge(
            &cutoffs(settings, now),
            &closed,
            settings.purge_batch as i64,
        )
        .await?;
    let mut pass = Purged::default();
    for (id, rule) in due {
        if store.purge_request(id, rule, now).await? {
            pass.requests += 1;
        }
    }
    loop {
        let files = store.pending_deletions(500).await?;
        let mut progressed = false;
        for (id, location) in &files {
            match crate::storage::delete(config, location).await {
                Ok(()) => {
                    store.deletion_done(*id).await?;
                    pass.files += 1;
                    progressed = true;
                }
                Err(err) => {
                    pass.files_failed += 1;
                    tracing::warn!(deletion = id, error = %format!("{err:#}"),
                        "deleting a purged recording failed; will retry");
                }
            }
        }
        if files.len() < 500 || !progressed {
            return Ok(pass);
        }
    }
}

pub async fn run_purge(store: Store, config: std::sync::Arc<Config>, shutdown: CancellationToken) {
    let every = Duration::from_secs(config.retention.purge_interval_seconds.max(1));
    super::repeat(every, shutdown, || async {
        match purge_due(&store, &config, now_ms()).await {
            Ok(p) if p == Purged::default() => {}
            Ok(p) => tracing::info!(
                requests = p.requests,
                files = p.files,
                files_failed = p.files_failed,
                "personal data purged"
            ),
            Err(err) => tracing::warn!(error = ?err, "purge pass failed; retrying"),
        }
    })
    .await
}
