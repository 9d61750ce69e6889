//! The merchant API under `/verification`: users, Video KYC requests, their status and
//! history, access tokens for the embeddable journey, and the sandbox's advance call.
//! Field names, status codes and error strings follow the hosted API.

use crate::auth::Caller;
use crate::domain::status::{self, Actor, Event, SubStatus};
use crate::domain::validate;
use crate::domain::views::{iso_millis, VkycStatus};
use crate::error::{Error, ErrorType, Result};
use crate::http::input::{parse_id, JsonBody, Query};
use crate::state::AppState;
use crate::store::{Changes, MerchantEnv, NewRequest, NewUser, Request, User};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use serde::Serialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user", post(create_user).get(get_user).patch(update_user))
        .route("/vkyc", post(create_vkyc).get(get_vkyc))
        .route("/vkyc/history", get(vkyc_history))
        .route("/vkyc/notifications", get(vkyc_notifications))
        .route("/vkyc/journey", get(vkyc_journey))
        .route("/oauth/token", post(create_token))
        .route("/sandbox/vkyc/advance", post(sandbox_advance))
        .route("/webhooks/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}", get(get_delivery))
        .route("/webhooks/deliveries/{id}/resend", post(resend_delivery))
        .route("/openapi.json", get(openapi))
}

/// The authenticated merchant of a call; extracting it checks the headers.
pub struct Merchant(pub Caller);

impl FromRequestParts<AppState> for Merchant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Merchant> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let caller = state.auth.authenticate(&parts.headers, peer).await?;
        // Counted only once the caller is known: a stranger cannot spend a merchant's quota.
        let limit = caller
            .rate_limit_per_minute
            .unwrap_or(state.config.default_rate_limit_per_minute);
        state
            .limiter
            .check(caller.merchant_id, limit, crate::clock::now_ms())
            .await?;
        tracing::Span::current().record("merchant", caller.merchant_id);
        Ok(Merchant(caller))
    }
}

pub const OPENAPI: &str = include_str!("../../../openapi/merchant-api.json");

async fn openapi() -> axum::response::Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

use axum::response::IntoResponse;

/// India Standard Time, the zone of the token `expiry` in the hosted API.
fn iso_ist(ms: i64) -> String {
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("a valid offset");
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&ist)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

// ---- users ----

#[derive(Serialize)]
struct UserBody {
    user_id: String,
    user_reference_id: i64,
    phone: String,
    email: Option<String>,
    name: Option<String>,
    address: Option<String>,
}

impl From<User> for UserBody {
    fn from(u: User) -> UserBody {
        UserBody {
            user_id: u.user_id,
            user_reference_id: u.id,
            phone: u.phone,
            email: u.email,
            name: u.name,
            address: u.address,
        }
    }
}

fn optional_text(body: &JsonBody, field: &str, max: usize) -> Result<Option<String>> {
    body.str(field)?
        .map(|v| validate::text(field, v, max))
        .transpose()
}

fn optional_email(body: &JsonBody) -> Result<Option<String>> {
    body.str("email")?.map(validate::email).transpose()
}

async fn create_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<UserBody>> {
    let user_id = match body.str("user_id")? {
        Some(id) => validate::merchant_id_field("user_id", id)?,
        None => format!("user_{}", random_token(8)),
    };
    let phone = validate::phone(body.str("phone")?.ok_or_else(|| Error::missing("phone"))?)?;
    let new = NewUser {
        user_id,
        phone,
        email: optional_email(&body)?,
        name: optional_text(&body, "name", 100)?,
        address: optional_text(&body, "address", 500)?,
    };
    let user = state
        .store
        .insert_user(caller.merchant_id, &new)
        .await?
        .ok_or_else(|| Error::conflict("user_id"))?;
    Ok(Json(user.into()))
}

/// The caller's user named by `user_reference_id` or `user_id` (the first wins when
/// both are given, and the second must then name the same user).
async fn find_user(
    state: &AppState,
    caller: &Caller,
    reference: Option<&str>,
    user_id: Option<&str>,
) -> Result<User> {
    let by_ref = match reference {
        Some(text) => {
            let id = parse_id(text).ok_or_else(|| Error::invalid("user_reference_id"))?;
            let user = state
                .store
                .user_by_ref(caller.merchant_id, id)
                .await?
                .ok_or_else(|| Error::not_found("user_reference_id"))?;
            Some(user)
        }
        None => None,
    };
    match (by_ref, user_id) {
        (Some(user), Some(uid)) if user.user_id != uid => Err(Error::validation(
            "user_id_value_invalid",
            "user_id does not match user_reference_id.",
        )),
        (Some(user), _) => Ok(user),
        (None, Some(uid)) => {
            let uid = validate::merchant_id_field("user_id", uid)?;
            state
                .store
                .user_by_user_id(caller.merchant_id, &uid)
                .await?
                .ok_or_else(|| Error::not_found("user_id"))
        }
        (None, None) => Err(Error::missing("user_reference_id")),
    }
}

async fn get_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<UserBody>> {
    let user = find_user(
        &state,
        &caller,
        query.get("user_reference_id"),
        query.get("user_id"),
    )
    .await?;
    Ok(Json(user.into()))
}

async fn update_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<UserBody>> {
    if body.get("phone").is_some() {
        return Err(Error::validation(
            "phone_value_invalid",
            "phone cannot be updated.",
        ));
    }
    let reference = match body.get("user_reference_id") {
        Some(_) => Some(
            body.id("user_reference_id")?
                .unwrap_or_default()
                .to_string(),
        ),
        None => None,
    };
    let email = optional_email(&body)?;
    let name = optional_text(&body, "name", 100)?;
    let address = optional_text(&body, "address", 500)?;
    let mut user = find_user(&state, &caller, reference.as_deref(), body.str("user_id")?).await?;
    if email.is_none() && name.is_none() && address.is_none() {
        return Err(Error::validation(
            "request_body_invalid",
            "nothing to update: give email, name or address.",
        ));
    }
    user.email = email.or(user.email);
    user.name = name.or(user.name);
    user.address = address.or(user.address);
    state.store.update_user(&user).await?;
    Ok(Json(user.into()))
}

// ---- Video KYC requests ----

async fn create_vkyc(
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

    let new = NewRequest {
        webhook_url,
        verification_id,
        user_ref: user.id,
        user_id: user.user_id.clone(),
        // 160 random bits: the link is the customer's only credential.
        link_token: random_token(20),
        link_expires_at,
        notification_types: notification_types.map(|n| json!(n).to_string()),
        user_template,
        agent_template,
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
async fn find_request(
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

async fn get_vkyc(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<VkycStatus>> {
    let request = find_request(
        &state,
        &caller,
        query.get("verification_id"),
        query.get("reference_id"),
    )
    .await?;
    Ok(Json(VkycStatus::of(
        &request,
        &state.base_url,
        Some(&state.signer),
    )))
}

#[derive(Serialize)]
struct HistoryEntry {
    time: String,
    actor: String,
    event: String,
    from_status: Option<&'static str>,
    from_sub_status: Option<String>,
    to_status: &'static str,
    to_sub_status: String,
    details: Option<Value>,
}

async fn vkyc_history(
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
async fn vkyc_notifications(
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
async fn vkyc_journey(
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
    Ok(Json(json!({
        "verification_id": request.verification_id,
        "reference_id": request.id,
        "consent": consent,
        "aadhaar": aadhaar,
        "steps": steps,
    })))
}

// ---- access tokens ----

async fn create_token(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<Value>> {
    let app_id = body
        .str("app_id")?
        .ok_or_else(|| Error::missing("app_id"))?;
    if app_id != caller.client_id {
        return Err(Error::validation(
            "app_id_value_invalid",
            "app_id must be the client id of the caller.",
        ));
    }
    match body.str("product")? {
        None => return Err(Error::missing("product")),
        Some("VKYC") => {}
        Some(_) => return Err(Error::invalid("product")),
    }
    let metadata = body
        .get("metadata")
        .ok_or_else(|| Error::missing("metadata"))?;
    let request_ref = metadata
        .as_object()
        .ok_or_else(|| Error::invalid("metadata"))?
        .get("vkyc_request_id")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::missing("vkyc_request_id"))?;
    // vkyc_request_id is the reference_id; a merchant's verification_id is accepted too.
    let request = match crate::http::input::positive_id(request_ref) {
        Some(id) => state.store.request_by_ref(caller.merchant_id, id).await?,
        None => match request_ref.as_str() {
            Some(vid) if validate::merchant_id_field("verification_id", vid).is_ok() => {
                state
                    .store
                    .request_by_verification_id(caller.merchant_id, vid)
                    .await?
            }
            _ => return Err(Error::invalid("vkyc_request_id")),
        },
    }
    .ok_or_else(|| Error::not_found("vkyc_request_id"))?;

    let user_body = body
        .get("authenticated_user")
        .ok_or_else(|| Error::missing("authenticated_user"))?
        .as_object()
        .ok_or_else(|| Error::invalid("authenticated_user"))?;
    let kind = user_body
        .get("identifier_type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("identifier_type"))?
        .to_ascii_lowercase();
    let value = user_body
        .get("identifier_value")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("identifier_value"))?;
    let user = state
        .store
        .user_by_ref(caller.merchant_id, request.user_ref)
        .await?
        .ok_or_else(|| Error::not_found("user_reference_id"))?;
    let matches = match kind.as_str() {
        "phone" | "mobile" => validate::phone(value).ok().as_deref() == Some(user.phone.as_str()),
        "email" => {
            user.email.as_deref().map(str::to_ascii_lowercase) == Some(value.to_ascii_lowercase())
        }
        "user_id" => user.user_id == value,
        _ => return Err(Error::invalid("identifier_type")),
    };
    if !matches {
        return Err(Error::validation(
            "authenticated_user_value_invalid",
            "authenticated_user does not match the user of the Video KYC request.",
        ));
    }
    let now = crate::clock::now_ms();
    if request.sub_status.status() == status::Status::Expired || request.link_expires_at <= now {
        return Err(Error::validation(
            "vkyc_request_id_value_invalid",
            "the Video KYC link has expired.",
        ));
    }
    let token = random_token(32);
    let expires_at =
        (now + state.config.token_ttl_seconds as i64 * 1000).min(request.link_expires_at);
    state
        .store
        .insert_access_token(&crate::auth::secret_digest(&token), request.id, expires_at)
        .await?;
    Ok(Json(
        json!({ "access_token": token, "expiry": iso_ist(expires_at) }),
    ))
}

// ---- sandbox ----

fn sandbox_changes(event: Event, now: i64) -> Changes {
    let remarks = |who: &str| {
        Some(format!(
            "Sandbox: {who} decision set through the advance API"
        ))
    };
    match event {
        Event::AgentApproved | Event::AgentRejected | Event::AgentUnableToValidate => Changes {
            agent_remarks: remarks("agent"),
            ..Changes::default()
        },
        Event::AuditorApproved | Event::AuditorRejected => Changes {
            auditor_remarks: remarks("auditor"),
            ..Changes::default()
        },
        Event::MeetingScheduled => Changes {
            meeting_schedule: Some(Some(now + 3_600_000)),
            ..Changes::default()
        },
        Event::MeetingCancelled => Changes {
            meeting_schedule: Some(None),
            ..Changes::default()
        },
        _ => Changes::default(),
    }
}

/// Walks a test request along legal moves to the asked sub-status, so an integrator can
/// exercise every branch of its own code. One history row per step.
async fn sandbox_advance(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<VkycStatus>> {
    if caller.env != MerchantEnv::Test {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            ErrorType::AuthenticationError,
            "test_credentials_required",
            "the sandbox API accepts test credentials only.",
        ));
    }
    let target_text = body
        .str("sub_status")?
        .ok_or_else(|| Error::missing("sub_status"))?;
    let target = SubStatus::parse(target_text).ok_or_else(|| Error::invalid("sub_status"))?;
    // reference_id may come as a number or a string; find_request judges its text, so the
    // answer is the same as GET /vkyc's.
    let reference = body.get("reference_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let request = find_request(
        &state,
        &caller,
        body.str("verification_id")?,
        reference.as_deref(),
    )
    .await?;
    let path = status::path(request.sub_status, target).ok_or_else(|| {
        Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            "sub_status_unreachable",
            format!("{target} cannot be reached from {}.", request.sub_status),
        )
    })?;
    let now = crate::clock::now_ms();
    let mut changes = Changes::default();
    for event in &path {
        let step = sandbox_changes(*event, now);
        changes.agent_remarks = step.agent_remarks.or(changes.agent_remarks);
        changes.auditor_remarks = step.auditor_remarks.or(changes.auditor_remarks);
        changes.meeting_schedule = step.meeting_schedule.or(changes.meeting_schedule);
    }
    let details = json!({ "via": "sandbox_advance" });
    let moved = state
        .store
        .apply(&request, &path, Actor::Merchant, Some(&details), &changes)
        .await
        .map_err(Error::from)?;
    Ok(Json(VkycStatus::of(
        &moved,
        &state.base_url,
        Some(&state.signer),
    )))
}

// ---- webhook deliveries (our extension) ----

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
async fn list_deliveries(
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
fn delivery_id(
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
async fn get_delivery(
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
async fn resend_delivery(
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
