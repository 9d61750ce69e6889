//! The relay node's heartbeat: every 2 s this process's row in `relay_nodes` says it is
//! alive, with its addresses, capacity and live calls (see `calls::nodes`). On a clean
//! stop the row says the node is gone, so its calls drop at once; at start, rows of
//! nodes dead for a day are removed.

use crate::state::AppState;
use crate::store::RelayNode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// One heartbeat (a process without a relay is no node and does nothing).
pub async fn beat(state: &AppState, now: i64) -> crate::error::Result<()> {
    let Some(relay) = &state.media else {
        return Ok(());
    };
    let stats = relay.stats();
    let (udp, tcp) = relay.advertised();
    let node = RelayNode {
        id: state.node.id.clone(),
        internal_url: state.node.internal_url.clone(),
        udp_addr: udp.to_string(),
        tcp_addr: tcp.map(|a| a.to_string()),
        capacity: i64::from(state.config.media.capacity),
        live_calls: stats.calls as i64,
        started_at: state.node.started_at,
        heartbeat_at: now,
    };
    state.store.beat_relay_node(&node).await
}

/// Beats until shutdown, then says the node is gone.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    if state.media.is_none() {
        return;
    }
    if let Err(err) = state
        .store
        .forget_dead_relay_nodes(crate::clock::now_ms())
        .await
    {
        tracing::warn!(error = %err, "removing long-dead relay nodes failed");
    }
    crate::workers::repeat(HEARTBEAT, shutdown, || async {
        if let Err(err) = beat(&state, crate::clock::now_ms()).await {
            tracing::warn!(error = %err, "the relay node's heartbeat failed; retrying");
        }
    })
    .await;
    if let Err(err) = state.store.relay_node_gone(&state.node.id).await {
        tracing::warn!(error = %err, "could not mark the relay node gone");
    }
}
