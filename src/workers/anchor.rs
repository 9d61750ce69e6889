//! The anchor worker: once a day, a signed digest of the audit chains' heads
//! (`audit_trail::anchor`). It looks every hour, so a restart neither skips a day nor
//! takes a second anchor the same day.

use crate::audit_trail::anchor::anchor_if_due;
use crate::case_export::signing::{ExportSigner, ANCHOR_PURPOSE};
use crate::clock::now_ms;
use crate::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const LOOK_EVERY: Duration = Duration::from_secs(3600);

/// One look: the anchor key (made on first use), then an anchor if one is due.
pub async fn step(state: &AppState, now: i64) -> anyhow::Result<()> {
    let signer = ExportSigner::load_or_create_for(&state.store, &state.key, ANCHOR_PURPOSE).await?;
    anchor_if_due(&state.store, &signer, state.config.audit.anchor_dir(), now).await?;
    Ok(())
}

/// How long after a start the first look waits: the start's own writes and an operator's
/// first commands go first (a day's anchor is not late by a minute).
const FIRST_LOOK_AFTER: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(FIRST_LOOK_AFTER) => {}
    }
    super::repeat(LOOK_EVERY, shutdown, || async {
        if let Err(err) = step(&state, now_ms()).await {
            tracing::error!(error = ?err, "taking the daily audit anchor failed; retrying");
        }
    })
    .await
}
