//! Where a call's media runs, and how its signalling gets there from any process.
//!
//! Every process that runs a relay is a node (`store::relay_nodes`, beaten by
//! `workers::relay_nodes`). When the customer accepts, the call is placed on the live
//! node with the fewest active calls for its capacity and the node's id is kept in the
//! call row. Whichever process a browser reached then acts on that node: in place when
//! it is this process, else over HTTP to the node's internal URL (`http::internal`),
//! with a bearer token derived from the master key every process shares. So no load
//! balancer needs to be sticky. A node whose heartbeat stopped is gone: its calls are
//! dropped by the call sweep, with no recording (it was on the node).

use crate::error::{Error, ErrorType, Result};
use crate::media::{Recording, Relay, Side};
use crate::state::AppState;
use crate::store::{Call, KeptRecording, RelayNode};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where one call's relay is, seen from this process.
pub enum Route {
    /// On this process's own relay.
    Local(Relay),
    /// On another live node.
    Remote(RelayNode),
    /// On no live node (it died, or there never was a relay for the call).
    Gone,
}

/// A finished recording, as the node that made it kept it: what the call row stores,
/// and the node's local files to remove once the row points at the kept copy.
#[derive(Debug, Serialize, Deserialize)]
pub struct Finished {
    pub location: String,
    /// The sealed recording's key, sealed under the master key for the way back.
    pub sealed_key: Option<String>,
    pub bytes: i64,
    pub duration_ms: i64,
    /// Both sides' quality summary (JSON).
    pub quality: Option<String>,
    pub leftovers: Vec<String>,
    /// It was meant for the bucket and stayed on the node's disk.
    pub upload_failed: bool,
}

impl Finished {
    pub fn kept(&self, state: &AppState) -> Result<KeptRecording> {
        let key = match &self.sealed_key {
            None => None,
            Some(sealed) => {
                let bytes = state.key.open(sealed).map_err(Error::internal)?;
                Some(
                    crate::storage::sealing::FileKey::from_bytes(&bytes)
                        .ok_or_else(|| Error::internal(anyhow::anyhow!("a bad recording key")))?,
                )
            }
        };
        Ok(KeptRecording {
            location: self.location.clone(),
            key,
            bytes: self.bytes,
            duration_ms: self.duration_ms,
        })
    }
}

fn unavailable(message: &'static str) -> Error {
    Error::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorType::InternalError,
        "media_unavailable",
        message,
    )
}

/// Heartbeats at or after this are live.
pub fn alive_since(state: &AppState, now: i64) -> i64 {
    now - state.config.media.node_timeout_seconds as i64 * 1000
}

/// The node a new call goes on: the least-loaded live one with room.
pub async fn place(state: &AppState, now: i64) -> Result<String> {
    match state
        .store
        .least_loaded_relay_node(alive_since(state, now))
        .await?
    {
        Some(node) => Ok(node.id),
        None => Err(unavailable(
            "no media relay can take the call now; try again in a moment.",
        )),
    }
}

/// Where `call`'s relay is.
pub async fn route(state: &AppState, call: &Call) -> Result<Route> {
    let local = || match &state.media {
        Some(relay) => Route::Local(relay.clone()),
        None => Route::Gone,
    };
    let Some(id) = &call.relay_node else {
        // A call accepted before relay nodes existed ran on the process that took it.
        return Ok(local());
    };
    if *id == state.node.id {
        return Ok(local());
    }
    match state.store.relay_node(id).await? {
        Some(node) if node.heartbeat_at >= alive_since(state, crate::clock::now_ms()) => {
            Ok(Route::Remote(node))
        }
        _ => Ok(Route::Gone),
    }
}

/// A request to another node's internal API.
async fn forward(
    state: &AppState,
    node: &RelayNode,
    call_id: i64,
    op: &str,
    body: Value,
) -> Result<Value> {
    let url = format!("{}/internal/relay/calls/{call_id}/{op}", node.internal_url);
    let response = state
        .node
        .client
        .post(url)
        .bearer_auth(&state.node.token)
        .json(&body)
        .send()
        .await
        .map_err(|err| {
            tracing::warn!(node = %node.id, op, error = %err, "a relay node did not answer");
            unavailable("the call's media relay did not answer; try again in a moment.")
        })?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(answer);
    }
    // The node's own refusal (a bad offer, say) is the caller's answer too.
    let text = |field: &str| answer[field].as_str().unwrap_or_default().to_string();
    if status.is_client_error() && !text("code").is_empty() {
        return Err(Error::new(
            status,
            ErrorType::ValidationError,
            text("code"),
            text("message"),
        ));
    }
    tracing::warn!(node = %node.id, op, %status, "a relay node failed a call's request");
    Err(unavailable(
        "the call's media relay failed; try again in a moment.",
    ))
}

/// Opens the call's recording on its node.
pub async fn open(state: &AppState, call: &Call, metadata: Value) -> Result<()> {
    match route(state, call).await? {
        Route::Local(relay) => open_here(&relay, call.id, metadata).await,
        Route::Remote(node) => {
            forward(
                state,
                &node,
                call.id,
                "open",
                json!({ "metadata": metadata }),
            )
            .await?;
            Ok(())
        }
        Route::Gone => Err(unavailable("the call's media relay is gone.")),
    }
}

/// One side's SDP offer to the call's node: its answer.
pub async fn join(state: &AppState, call: &Call, side: Side, sdp: &str) -> Result<String> {
    match route(state, call).await? {
        Route::Local(relay) => join_here(&relay, call.id, side, sdp).await,
        Route::Remote(node) => {
            let answer = forward(
                state,
                &node,
                call.id,
                "join",
                json!({ "side": side.name(), "sdp": sdp }),
            )
            .await?;
            Ok(answer["sdp"].as_str().unwrap_or_default().to_string())
        }
        Route::Gone => Err(unavailable("the media relay is not running.")),
    }
}

/// Both sides' quality now, from the call's node (None when it has no such call).
pub async fn quality(state: &AppState, call: &Call) -> Option<Value> {
    match route(state, call).await.ok()? {
        Route::Local(relay) => quality_here(&relay, call.id).await.ok().flatten(),
        Route::Remote(node) => forward(state, &node, call.id, "quality", json!({}))
            .await
            .ok()
            .map(|a| a["quality"].clone())
            .filter(|q| !q.is_null()),
        Route::Gone => None,
    }
}

/// Ends the call's media on its node and keeps the recording there (sealed, uploaded):
/// None when the node has no recording of it, or is gone.
pub async fn finish(state: &AppState, call: &Call) -> Result<Option<Finished>> {
    match route(state, call).await? {
        Route::Local(relay) => finish_here(state, &relay, call.id).await,
        Route::Remote(node) => {
            let answer = forward(state, &node, call.id, "end", json!({})).await?;
            Ok(serde_json::from_value(answer["recording"].clone()).unwrap_or(None))
        }
        Route::Gone => {
            tracing::warn!(
                call_id = call.id,
                "the call's relay node is gone; its recording with it"
            );
            Ok(None)
        }
    }
}

/// [`open`] on this process's relay (also what another node's request runs).
pub async fn open_here(relay: &Relay, call_id: i64, metadata: Value) -> Result<()> {
    relay
        .open_call(&call_id.to_string(), metadata)
        .await
        .map_err(Error::internal)
}

/// [`join`] on this process's relay.
pub async fn join_here(relay: &Relay, call_id: i64, side: Side, sdp: &str) -> Result<String> {
    relay
        .join(&call_id.to_string(), side, sdp)
        .await
        .map_err(|e| Error::validation("sdp_value_invalid", format!("the offer was refused: {e}")))
}

/// [`quality`] on this process's relay.
pub async fn quality_here(relay: &Relay, call_id: i64) -> Result<Option<Value>> {
    let quality = relay
        .quality(&call_id.to_string())
        .await
        .map_err(Error::internal)?;
    Ok(quality.and_then(|q| serde_json::to_value(q).ok()))
}

/// [`finish`] on this process's relay (also what another node's request runs).
pub async fn finish_here(
    state: &AppState,
    relay: &Relay,
    call_id: i64,
) -> Result<Option<Finished>> {
    let Some(recording) = relay
        .end_call(&call_id.to_string())
        .await
        .map_err(Error::internal)?
    else {
        return Ok(None);
    };
    Ok(Some(keep(state, call_id, &recording).await))
}

async fn keep(state: &AppState, call_id: i64, recording: &Recording) -> Finished {
    // Kept where `[media]` says: sealed or not, the local path or the uploaded object's
    // s3:// URL (a failed upload keeps the local file and its path).
    let kept = crate::storage::keep(&state.config.media, call_id, recording).await;
    let to_bucket = !state.config.media.recordings_store.is_empty();
    Finished {
        upload_failed: to_bucket && !kept.location.starts_with("s3://"),
        location: kept.location,
        sealed_key: kept.key.map(|k| state.key.seal(k.as_bytes())),
        bytes: recording.bytes as i64,
        duration_ms: recording.duration_ms,
        quality: serde_json::to_string(&recording.quality).ok(),
        leftovers: kept
            .leftovers
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    }
}

/// Once the call row points at the kept copy: the node's clear or uploaded local
/// files go.
pub async fn remove_leftovers(state: &AppState, call: &Call, finished: &Finished) {
    if finished.leftovers.is_empty() {
        return;
    }
    match route(state, call).await {
        Ok(Route::Local(_)) => remove_here(state, &finished.leftovers).await,
        Ok(Route::Remote(node)) => {
            let body = json!({ "leftovers": finished.leftovers });
            if let Err(err) = forward(state, &node, call.id, "leftovers", body).await {
                tracing::warn!(call_id = call.id, error = %err, "a recording's local copy stays on its node");
            }
        }
        _ => {}
    }
}

/// Removes files of this node's recordings directory (nothing outside it).
pub async fn remove_here(state: &AppState, leftovers: &[String]) {
    let dir = crate::storage::recordings_dir(&state.config);
    let files: Vec<std::path::PathBuf> = leftovers
        .iter()
        .map(std::path::PathBuf::from)
        .filter(|p| {
            p.parent() == Some(dir.as_path())
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    crate::storage::remove_local(&files).await;
}
