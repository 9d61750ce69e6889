//! Background work. Each worker is a loop around a single step that tests can call
//! directly; the loop only adds the timer and the shutdown. What a worker sends or
//! writes is built by the domain and the store; a worker only decides when.

pub mod anchor;
pub mod calls;
pub mod expiry;
pub mod notify;
pub mod purge;
pub mod queue;
pub mod relay_nodes;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs `step` once every `period` until `shutdown` is cancelled. A step that overruns
/// delays the next one rather than bunching them up.
pub async fn repeat<F, Fut>(period: Duration, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        step().await;
    }
}
