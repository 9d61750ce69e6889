//! The expiry worker: links whose time ran out move to `EXPIRED` / `VKYC_EXPIRED`.

use crate::clock::now_ms;
use crate::domain::status::{Actor, Event};
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many expired links one step moves at most.
pub const EXPIRY_BATCH: i64 = 2_000;

/// One pass of the expiry worker: moves every request whose link expired by `now` and
/// that has not reached the call to `EXPIRED` / `VKYC_EXPIRED`. Returns how many moved.
/// A request that another process or a customer moved first is left alone (the next
/// pass sees its new state).
pub async fn expire_due(store: &Store, now: i64) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let due = store.due_expiries(now, EXPIRY_BATCH).await?;
        // One transaction (one commit) and a few statements per batch: 100,000 links due
        // in the same minute take 50 commits, not 100,000.
        let outcomes = store
            .apply_each(&due, Event::LinkExpired, Actor::System)
            .await?;
        let progressed = outcomes.iter().filter(|o| o.is_ok()).count();
        moved += progressed;
        if (due.len() as i64) < EXPIRY_BATCH || progressed == 0 {
            return Ok(moved);
        }
    }
}

pub async fn run_expiry(store: Store, every: Duration, shutdown: CancellationToken) {
    super::repeat(every, shutdown, || async {
        match expire_due(&store, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "links expired"),
            Err(err) => tracing::warn!(error = ?err, "expiry pass failed; retrying"),
        }
    })
    .await
}
