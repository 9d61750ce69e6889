//! Background work. Each worker is a loop around a single step that tests can call
//! directly; the loop only adds the timer and the shutdown.

use crate::status::{Actor, Event};
use crate::store::{now_ms, Store};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many expired links one step moves at most.
pub const EXPIRY_BATCH: i64 = 500;

/// One pass of the expiry worker: moves every request whose link expired by `now` and
/// that has not reached the call to `EXPIRED` / `VKYC_EXPIRED`. Returns how many moved.
/// A request that another process or a customer moved first is left alone (the next
/// pass sees its new state).
pub async fn expire_due(store: &Store, now: i64) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let due = store.due_expiries(now, EXPIRY_BATCH).await?;
        // One transaction (one commit) per batch: 100,000 links due in the same minute
        // take 200 commits, not 100,000.
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
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match expire_due(&store, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "links expired"),
            Err(err) => tracing::warn!(error = ?err, "expiry pass failed; retrying"),
        }
    }
}
