//! The customer's side of the call, under `/v/<key>/api/call`: the invitation, the
//! media offer, the end.

use super::{expect_step, open, Opened, Step};
use crate::calls::{conflict, end_call};
use crate::domain::status::{Actor, Event};
use crate::error::{Error, Result};
use crate::http::input::JsonBody;
use crate::media::Side;
use crate::state::AppState;
use crate::store::{Call, CallUpdate, Changes, SideWrite};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v/{key}/api/call", get(customer_call))
        .route("/v/{key}/api/call/accept", post(customer_accept))
        .route("/v/{key}/api/call/decline", post(customer_decline))
        .route("/v/{key}/api/call/offer", post(customer_offer))
        .route("/v/{key}/api/call/end", post(customer_end))
}

async fn customer_live_call(state: &AppState, key: &str) -> Result<(Opened, Call)> {
    let opened = open(state, key).await?;
    let call = state
        .store
        .calls_for_request(opened.request.id)
        .await?
        .into_iter()
        .rev()
        .find(Call::is_live)
        .ok_or_else(|| conflict("call_not_live", "there is no call for you now."))?;
    Ok((opened, call))
}

async fn customer_call(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let (opened, call) = customer_live_call(&state, &key).await?;
    let invite_ms = state.config.calls.invite_seconds as i64 * 1000;
    // The official's name, so the customer knows who is calling (their desk username:
    // staff accounts have no other name).
    let official = state
        .store
        .staff_by_id(call.agent_id)
        .await?
        .map(|s| s.username);
    Ok(Json(json!({
        "call_id": call.id,
        "state": call.state,
        "official": official,
        "accepted_at": call.accepted_at.map(crate::domain::views::iso_millis),
        "sub_status": opened.request.sub_status.as_str(),
        "invite_expires_at": crate::domain::views::iso_millis(call.invited_at + invite_ms),
        "ice_servers": crate::calls::ice_servers(&state, &call, Side::Customer),
    })))
}

/// The customer's answer to an open invitation: `event` with `update` on the call.
async fn answer_invitation(
    state: &AppState,
    key: &str,
    event: Event,
    update: CallUpdate,
) -> Result<(Opened, Call)> {
    let (opened, call) = customer_live_call(state, key).await?;
    expect_step(&opened, &[Step::Call])?;
    if call.state != "invited" {
        return Err(conflict(
            "call_not_invited",
            "the invitation is no longer open.",
        ));
    }
    state
        .store
        .apply_journey(
            &opened.request,
            &[event],
            Actor::Customer,
            Some(&json!({ "call_id": call.id })),
            &Changes::default(),
            &[SideWrite::Call {
                call_id: call.id,
                update,
            }],
        )
        .await
        .map_err(Error::from)?;
    Ok((opened, call))
}

async fn customer_accept(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    // Placed before the move, so that a call no relay can take stays an invitation the
    // customer may accept again.
    let node = crate::calls::nodes::place(&state, crate::clock::now_ms()).await?;
    let accept = CallUpdate::Accept {
        relay_node: Some(node.clone()),
    };
    let (opened, mut call) = answer_invitation(&state, &key, Event::InviteAccepted, accept).await?;
    call.relay_node = Some(node);
    let gps = customer_position(&state, opened.request.id).await?;
    crate::calls::nodes::open(
        &state,
        &call,
        json!({ "call_id": call.id, "verification_id": opened.request.verification_id,
                "started_at": crate::domain::views::iso_millis(crate::clock::now_ms()),
                "customer_gps": gps }),
    )
    .await?;
    Ok(Json(json!({ "call_id": call.id, "state": "active" })))
}

async fn customer_decline(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let declined = CallUpdate::End {
        state: "declined",
        by: "customer",
        recording: None,
        quality: None,
    };
    let (_, call) = answer_invitation(&state, &key, Event::InviteRejected, declined).await?;
    Ok(Json(json!({ "call_id": call.id, "state": "declined" })))
}

/// The SDP exchange: a browser's offer in, the relay's answer out.
async fn customer_offer(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let (_, call) = customer_live_call(&state, &key).await?;
    Ok(Json(
        crate::calls::offer(
            &state,
            &call,
            Side::Customer,
            body.str("sdp")?.ok_or_else(|| Error::missing("sdp"))?,
        )
        .await?,
    ))
}

async fn customer_end(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let (_, call) = customer_live_call(&state, &key).await?;
    if call.state != "active" {
        return Err(conflict(
            "call_not_active",
            "the call has not started or is over.",
        ));
    }
    end_call(
        &state,
        &call,
        Event::UserEndedCall,
        "customer",
        "ended",
        Actor::Customer,
    )
    .await?;
    Ok(Json(json!({ "call_id": call.id, "state": "ended" })))
}

/// The customer's last verified GPS position, as the location step stored it.
async fn customer_position(state: &AppState, request_id: i64) -> Result<Value> {
    let steps = state.store.steps(request_id).await?;
    Ok(steps
        .iter()
        .rev()
        .filter(|s| {
            s.step == "location" && s.outcome.as_deref() == Some("USER_LOCATION_VERIFICATION_SUCCESS")
        })
        .find_map(|s| s.evidence.as_deref())
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .map(|e| json!({ "latitude": e["latitude"], "longitude": e["longitude"], "accuracy_m": e["accuracy_m"] }))
        .unwrap_or(Value::Null))
}
