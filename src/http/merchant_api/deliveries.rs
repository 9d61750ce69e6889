//! Webhook deliveries (our extension): the list, one with its attempts, and a resend.

use super::requests::find_request;
use super::Merchant;
use crate::domain::validate::parse_id;
use crate::domain::views::iso_millis;
use crate::error::{Error, Result};
use crate::http::input::Query;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub fn delivery_json(d: &crate::store::DeliveryRow) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "verification_id": d.verification_id,
        "sequence": d.seq,
        "url": d.url,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.map(iso_millis),
        "created_at": iso_millis(d.created_at),
        "delivered_at": d.delivered_at.map(iso_millis),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
    })
}

/// The caller's deliveries, newest first (at most 100), optionally of one request.
pub(super) async fn list_deliveries(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<Value>> {
    let request = match (query.get("verification_id"), query.get("reference_id")) {
        (None, None) => None,
        (vid, rid) => Some(find_request(&state, &caller, vid, rid).await?.id),
    };
    let rows = state
        .store
        .deliveries(caller.merchant_id, request, 100)
        .await?;
    let deliveries: Vec<Value> = rows.iter().map(delivery_json).collect();
    Ok(Json(json!({ "deliveries": deliveries })))
}

/// The `{id}` of a deliveries URL; a segment that is not even text is just as invalid.
pub(super) fn delivery_id(
    segment: std::result::Result<
        axum::extract::Path<String>,
        axum::extract::rejection::PathRejection,
    >,
) -> Result<i64> {
    segment
        .ok()
        .and_then(|axum::extract::Path(text)| parse_id(&text))
        .ok_or_else(|| Error::invalid("delivery_id"))
}

/// One delivery with every attempt: time, latency, response code, the first bytes of the
/// response or the error.
pub(super) async fn get_delivery(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    id: std::result::Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>> {
    let (delivery, attempts) = state
        .store
        .delivery(caller.merchant_id, delivery_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("delivery_id"))?;
    let mut out = delivery_json(&delivery);
    out["attempt_log"] = attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "time": iso_millis(a.at),
                "latency_ms": a.latency_ms,
                "status_code": a.status_code,
                "response": a.response_snippet,
                "error": a.error,
            })
        })
        .collect();
    Ok(Json(out))
}

/// Queues the delivery's event to its URL again, as a new delivery.
pub(super) async fn resend_delivery(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    id: std::result::Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>> {
    let new_id = state
        .store
        .resend(caller.merchant_id, delivery_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("delivery_id"))?;
    let (delivery, _) = state
        .store
        .delivery(caller.merchant_id, new_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a new delivery vanished")))?;
    Ok(Json(delivery_json(&delivery)))
}
