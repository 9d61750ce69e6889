//! Video KYC requests: `POST /vkyc` and `GET /vkyc` exactly as the hosted API, and our
//! extensions that read a request's history, messages and journey.

use super::users::find_user;
use super::{random_token, Merchant};
use crate::auth::Caller;
use crate::domain::status::{Actor, SubStatus};
use crate::domain::templates::Kind;
use crate::domain::validate;
use crate::domain::validate::parse_id;
use crate::domain::views::{iso_millis, VkycStatus};
use crate::error::{Error, Result};
use crate::http::input::{JsonBody, Query};
use crate::operations::templates;
use crate::state::AppState;
use crate::store::{NewRequest, Request};
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

pub(super) async fn create_vkyc(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<Value>> {
    let verification_id = validate::merchant_id_field(
        "verification_id",
        body.str("verification_id")?
            .ok_or_else(|| Error::missing("verification_id"))?,
    )?;
    let reference = body.id("user_reference_id")?.map(|id| id.to_string());
    let user_id = body.str("user_id")?;
    let notification_types = body
        .get("notification_types")
        .map(validate::notification_types)
        .transpose()?;
    let user_template = body
        .str("user_template")?
        .map(|t| validate::template("user_template", t))
        .transpose()?;
    let agent_template = body
        .str("agent_template")?
        .map(|t| validate::template("agent_template", t))
        .transpose()?;
    let aadhaar_details = body
        .get("aadhaar_details")
        .map(validate::aadhaar_details)
        .transpose()?;
    let security_questions = body
        .get("security_questions")
        .map(validate::security_questions)
        .transpose()?;
    let now = crate::clock::now_ms();
    let hour = 3_600_000i64;
    let max = now + state.config.max_link_expiry_hours as i64 * hour;
    let link_expires_at = match body.str("link_expiry")? {
        Some(text) => validate::link_expiry(text, now, max)?,
        None => now + state.config.default_link_expiry_hours as i64 * hour,
    };
    let webhook_url = body
        .str("webhook_url")?
        .map(|url| {
            crate::outbound::check_url(url, state.config.webhook_allow_private_addresses)
                .map(|u| u.to_string())
                .map_err(|reason| {
                    Error::validation(
                        "webhook_url_value_invalid",
                        format!("webhook_url value is invalid: {reason}."),
                    )
                })
        })
        .transpose()?;
    let user = find_user(&state, &caller, reference.as_deref(), user_id).await?;
    // The names resolve to their newest versions now; the request keeps both, so a
    // template changed later never changes this request.
    let (user_template, user_template_version) =
        templates::resolve(&state.store, Kind::User, user_template.as_deref()).await?;
    let (agent_template, agent_template_version) =
        templates::resolve(&state.store, Kind::Agent, agent_template.as_deref()).await?;

    let new = NewRequest {
        webhook_url,
        verification_id,
        user_ref: user.id,
        user_id: user.user_id.clone(),
        // 160 random bits: the link is the customer's only credential.
        link_token: random_token(20),
        link_expires_at,
        notification_types: notification_types.map(|n| json!(n).to_string()),
        user_template: Some(user_template),
        agent_template: Some(agent_template),
        user_template_version: Some(user_template_version),
        agent_template_version: Some(agent_template_version),
        aadhaar_details: aadhaar_details.as_ref().map(Value::to_string),
        security_questions: security_questions.as_ref().map(Value::to_string),
    };
    let request = state
        .store
        .insert_request(caller.merchant_id, &new, Actor::Merchant)
        .await?
        .ok_or_else(|| Error::conflict("verification_id"))?;
    tracing::info!(reference_id = request.id, "video kyc request created");

    let status = VkycStatus::of(&request, &state.base_url, Some(&state.signer));
    let mut out = json!({
        "verification_id": status.verification_id,
        "reference_id": status.reference_id,
        "status": status.status,
        "sub_status": status.sub_status,
        "vkyc_link": status.vkyc_link,
        "link_expiry": status.link_expiry,
        "user_reference_id": status.user_reference_id,
        "user_id": status.user_id,
    });
    if let Some(details) = aadhaar_details {
        out["aadhaar_details"] = details;
    }
    if let Some(questions) = security_questions {
        out["security_questions"] = questions;
    }
    Ok(Json(out))
}

/// The caller's request named by `verification_id` or `reference_id` in a query or body.
///
/// Both absent: `verification_id_missing`. Present but empty: `..._value_missing` (seed
/// 000 has both codes; this is how they are told apart). Both given: looked up by
/// `verification_id`, and `reference_id` must name the same request.
pub(super) async fn find_request(
    state: &AppState,
    caller: &Caller,
    verification_id: Option<&str>,
    reference_id: Option<&str>,
) -> Result<Request> {
    let reference = match reference_id {
        Some("") => {
            return Err(Error::validation(
                "reference_id_value_missing",
                "reference_id is missing in the request.",
            ))
        }
        Some(text) => Some(parse_id(text).ok_or_else(|| {
            Error::validation(
                "reference_id_value_invalid",
                "reference ID value is invalid.",
            )
        })?),
        None => None,
    };
    match (verification_id, reference) {
        (Some(vid), reference) => {
            let vid = validate::merchant_id_field("verification_id", vid)?;
            let request = state
                .store
                .request_by_verification_id(caller.merchant_id, &vid)
                .await?
                .ok_or_else(|| Error::not_found("verification_id"))?;
            match reference {
                Some(id) if id != request.id => Err(Error::not_found("reference_id")),
                _ => Ok(request),
            }
        }
        (None, Some(id)) => state
            .store
            .request_by_ref(caller.merchant_id, id)
            .await?
            .ok_or_else(|| Error::not_found("reference_id")),
        (None, None) => Err(Error::missing("verification_id")),
    }
}

pub(super) async fn get_vkyc(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<axum::response::Response> {
    use axum::response::IntoResponse;
    let request = find_request(
        &state,
        &caller,
        query.get("verification_id"),
        query.get("reference_id"),
    )
    .await?;
    let body = Json(VkycStatus::of(
        &request,
        &state.base_url,
        Some(&state.signer),
    ));
    // A tombstone: the body keeps the hosted API's shape (its personal fields are null),
    // and this header says why and since when.
    Ok(match request.purged_at {
        Some(at) => ([(PURGED_HEADER, iso_millis(at))], body).into_response(),
        None => body.into_response(),
    })
}

/// The header `GET /vkyc` answers for a request whose personal data has been removed.
pub const PURGED_HEADER: &str = "x-vkyc-personal-data-purged-at";

#[derive(Serialize)]
pub(super) struct HistoryEntry {
    time: String,
    actor: String,
    event: String,
    from_status: Option<&'static str>,
    from_sub_status: Option<String>,
    to_status: &'static str,
    to_sub_status: String,
    details: Option<Value>,
}

pub(super) async fn vkyc_history(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<Value>> {
    let request = find_request(
        &state,
        &caller,
        query.get("verification_id"),
        query.get("reference_id"),
    )
    .await?;
    let rows = state.store.history(request.id).await?;
    let status_of = |s: &str| SubStatus::parse(s).map(|s| s.status().as_str());
    let history: Vec<HistoryEntry> = rows
        .into_iter()
        .map(|row| HistoryEntry {
            time: iso_millis(row.at),
            actor: row.actor,
            event: row.event,
            from_status: row.from_sub_status.as_deref().and_then(status_of),
            to_status: status_of(&row.to_sub_status).unwrap_or_default(),
            from_sub_status: row.from_sub_status,
            to_sub_status: row.to_sub_status,
            details: row.details.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect();
    Ok(Json(json!({
        "verification_id": request.verification_id,
        "reference_id": request.id,
        "history": history,
    })))
}

/// `GET /vkyc/notifications` (our extension): the messages sent to the customer, or on
/// a sandbox the messages that would have been sent.
pub(super) async fn vkyc_notifications(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<Value>> {
    let request = find_request(
        &state,
        &caller,
        query.get("verification_id"),
        query.get("reference_id"),
    )
    .await?;
    let rows = state.store.notifications_for(request.id).await?;
    let notifications: Vec<Value> = rows
        .into_iter()
        .map(|n| {
            json!({
                "channel": n.channel, "kind": n.kind, "state": n.state, "to": n.recipient,
                "subject": n.subject, "body": n.body, "attempts": n.attempts,
                "last_error": n.last_error, "created_at": iso_millis(n.created_at),
                "sent_at": n.sent_at.map(iso_millis),
            })
        })
        .collect();
    Ok(Json(json!({
        "verification_id": request.verification_id,
        "reference_id": request.id,
        "notifications": notifications,
    })))
}

/// `GET /vkyc/journey` (our extension): the customer's consent and each journey step
/// with its start, end, outcome and evidence.
pub(super) async fn vkyc_journey(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<Value>> {
    let request = find_request(
        &state,
        &caller,
        query.get("verification_id"),
        query.get("reference_id"),
    )
    .await?;
    let consent = state.store.consent(request.id).await?.map(|c| {
        json!({ "lang": c.lang, "text_sha256": c.text_sha256, "time": iso_millis(c.at),
                "ip": c.ip, "user_agent": c.user_agent })
    });
    let steps: Vec<Value> = state
        .store
        .steps(request.id)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "step": s.step, "started_at": iso_millis(s.started_at),
                "ended_at": s.ended_at.map(iso_millis), "outcome": s.outcome,
                "evidence": s.evidence.and_then(|e| serde_json::from_str::<Value>(&e).ok()),
            })
        })
        .collect();
    let aadhaar = state
        .store
        .aadhaar_kyc(request.id)
        .await?
        .map(|(source, details)| {
            json!({ "source": source,
                    "details": serde_json::from_str::<Value>(&details).unwrap_or(Value::Null) })
        });
    let personal_details = state
        .store
        .personal_details(request.id)
        .await?
        .and_then(|d| serde_json::from_str::<Value>(&d).ok());
    Ok(Json(json!({
        "verification_id": request.verification_id,
        "reference_id": request.id,
        "consent": consent,
        "personal_details": personal_details,
        "aadhaar": aadhaar,
        "steps": steps,
    })))
}
