//! The call worker: the call sweep every second, and the relay's connection events as
//! they come.

use crate::calls::{on_media_event, sweep, CallSweep};
use crate::clock::now_ms;
use crate::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs [`sweep`] every second and follows the relay's connection events.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.media.as_ref().map(|m| m.events());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = async {
            match events.as_mut() {
                Some(events) => events.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                match sweep(&state, now_ms()).await {
                    Ok(done) if done == CallSweep::default() => {}
                    Ok(done) => tracing::info!(?done, "call sweep"),
                    Err(err) => tracing::warn!(error = %err, "call sweep failed; retrying"),
                }
            }
            Some(event) = event => {
                if let Err(err) = on_media_event(&state, event).await {
                    tracing::warn!(error = %err, "recording a media event failed");
                }
            }
        }
    }
}
