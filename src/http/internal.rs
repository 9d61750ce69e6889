//! Between `vkyc` processes: what another process asks this relay node to do for one
//! of its calls (`calls::nodes` is the asking side), under `/internal/relay/calls/<id>`.
//!
//! Every request carries the bearer token derived from the master key the processes
//! share; it is checked before the body is read, so a stranger costs a header
//! comparison. Keep `/internal` off the public load balancer all the same.

use crate::calls::nodes::{finish_here, join_here, open_here, quality_here, remove_here};
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::media::{Relay, Side};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

/// An SDP offer is at most 20,000 bytes; nothing else here is larger.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/internal/relay/calls/{id}/open", post(open))
        .route("/internal/relay/calls/{id}/join", post(join))
        .route("/internal/relay/calls/{id}/quality", post(quality))
        .route("/internal/relay/calls/{id}/end", post(end))
        .route("/internal/relay/calls/{id}/leftovers", post(leftovers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn_with_state(state, node_token))
}

async fn node_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(state.node.token.as_bytes())) {
        return axum::response::IntoResponse::into_response(Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "authentication_failed",
            "this is for vkyc's own processes.",
        ));
    }
    next.run(req).await
}

fn relay(state: &AppState) -> Result<&Relay> {
    state.media.as_ref().ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::InternalError,
            "media_unavailable",
            "this process runs no media relay.",
        )
    })
}

fn call_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| Error::invalid("call_id"))
}

async fn open(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let metadata = body.get("metadata").cloned().unwrap_or(Value::Null);
    open_here(relay(&state)?, call_id(&id)?, metadata).await?;
    Ok(Json(json!({})))
}

async fn join(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let side = match body.str("side")? {
        Some("customer") => Side::Customer,
        Some("agent") => Side::Agent,
        _ => return Err(Error::invalid("side")),
    };
    let sdp = body.str("sdp")?.ok_or_else(|| Error::missing("sdp"))?;
    let answer = join_here(relay(&state)?, call_id(&id)?, side, sdp).await?;
    Ok(Json(json!({ "sdp": answer })))
}

async fn quality(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>> {
    let quality = quality_here(relay(&state)?, call_id(&id)?).await?;
    Ok(Json(json!({ "quality": quality })))
}

async fn end(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>> {
    let finished = finish_here(&state, relay(&state)?, call_id(&id)?).await?;
    Ok(Json(json!({ "recording": finished })))
}

async fn leftovers(State(state): State<AppState>, body: JsonBody) -> Result<Json<Value>> {
    let files: Vec<String> = match body.get("leftovers") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => return Err(Error::invalid("leftovers")),
    };
    remove_here(&state, &files).await;
    Ok(Json(json!({})))
}
