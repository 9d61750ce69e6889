//! The admin console's staff and merchant routes under `/desk/api/admin`. Every route
//! takes [`Admin`], which refuses anyone but a signed-in admin before any work (401
//! without a session, 403 for agents and auditors, audited), and calls the same
//! operations as the command line.

use super::{audit, ClientAddr, StaffSession};
use crate::error::{Error, Result};
use crate::http::input::JsonBody;
use crate::operations::{merchants, staff, Actor};
use crate::state::AppState;
use crate::store::Role;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/staff", get(list_staff).post(create_staff))
        .route("/admin/staff/{id}/disable", post(disable_staff))
        .route("/admin/staff/{id}/role", post(set_role))
        .route("/admin/staff/{id}/hours", post(set_staff_hours))
        .route("/admin/staff/{id}/totp", post(reset_totp))
        .route("/admin/staff/{id}/unlock", post(unlock))
        .route(
            "/admin/merchants",
            get(list_merchants).post(create_merchant),
        )
        .route("/admin/merchants/{id}/webhook", post(set_webhook))
        .route("/admin/merchants/{id}/rate-limit", post(set_rate_limit))
        .route("/admin/merchants/{id}/allow-ips", post(allow_ips))
        .route("/admin/merchants/{id}/signature", post(require_signature))
        .route(
            "/admin/merchants/{id}/second-factor/clear",
            post(clear_second_factor),
        )
        .route("/admin/merchants/{id}/rotate-secret", post(rotate_secret))
        .route("/admin/merchants/{id}/revoke-secret", post(revoke_secret))
        .merge(super::admin_settings::routes())
        .merge(super::admin_templates::routes())
}

/// A signed-in admin, checked before the body is read.
pub struct Admin {
    pub session: StaffSession,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin> {
        let session = StaffSession::from_request_parts(parts, state).await?;
        let Ok(ClientAddr(ip)) = ClientAddr::from_request_parts(parts, state).await;
        if let Err(err) = session.require(&[Role::Admin]) {
            let route = parts.uri.path().to_string();
            audit(
                state,
                Some(session.staff_id),
                "forbidden",
                Some(&route),
                ip,
                Some("needs the admin role"),
            )
            .await?;
            return Err(err);
        }
        Ok(Admin {
            actor: Actor::Admin {
                staff_id: session.staff_id,
                ip: ip.to_string(),
            },
            session,
        })
    }
}

/// An id in the path; anything else is 404, as for a missing row.
pub(super) fn path_id(id: &str, code: &'static str) -> Result<i64> {
    crate::domain::validate::parse_id(id)
        .ok_or_else(|| crate::operations::missing(code, "there is no such record"))
}

/// A required string field.
pub(super) fn required<'a>(body: &'a JsonBody, key: &str) -> Result<&'a str> {
    body.str(key)?.ok_or_else(|| Error::missing(key))
}

/// A list of strings (an absent field is empty).
pub(super) fn strings(body: &JsonBody, key: &str) -> Result<Vec<String>> {
    match body.get(key) {
        None => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| Error::invalid(key))
            })
            .collect(),
        Some(_) => Err(Error::invalid(key)),
    }
}

/// A boolean field (absent: false).
pub(super) fn flag(body: &JsonBody, key: &str) -> Result<bool> {
    match body.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::invalid(key)),
    }
}

// ---- staff ----

async fn list_staff(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>> {
    let staff = staff::list(&state.store, &state.config).await?;
    Ok(Json(json!({ "staff": staff })))
}

/// `{username, role}`: the generated password is in the answer, this once.
async fn create_staff(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    let username = required(&body, "username")?;
    let role = staff::parse_role(required(&body, "role")?)?;
    let (created, password) =
        staff::create(&state.store, &admin.actor, username, role, None).await?;
    Ok(Json(json!({
        "id": created.id,
        "username": created.username,
        "role": created.role.as_str(),
        "password": password,
    })))
}

async fn member(state: &AppState, id: &str) -> Result<crate::store::Staff> {
    staff::find_id(&state.store, path_id(id, "staff_not_found")?).await
}

async fn disable_staff(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let member = member(&state, &id).await?;
    if member.id == admin.session.staff_id {
        return Err(crate::operations::refused(
            "staff_self",
            "you cannot disable your own account",
        ));
    }
    staff::disable(&state.store, &admin.actor, &member).await?;
    Ok(Json(
        json!({ "username": member.username, "state": "disabled" }),
    ))
}

async fn set_role(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let role = staff::parse_role(required(&body, "role")?)?;
    let member = member(&state, &id).await?;
    if member.id == admin.session.staff_id {
        return Err(crate::operations::refused(
            "staff_self",
            "you cannot change your own role",
        ));
    }
    staff::set_role(&state.store, &admin.actor, &member, role).await?;
    Ok(Json(
        json!({ "username": member.username, "role": role.as_str() }),
    ))
}

/// `{days: ["mon", ..], hours: "HH:MM-HH:MM"}`, or `{clear: true}` for the desk's hours.
async fn set_staff_hours(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let clear = flag(&body, "clear")?;
    let days = strings(&body, "days")?;
    let hours = body.str("hours")?;
    let given = match (clear, hours) {
        (true, _) => None,
        (false, Some(hours)) => Some((days.as_slice(), hours)),
        (false, None) => return Err(Error::missing("hours")),
    };
    let member = member(&state, &id).await?;
    let stored = staff::set_hours(&state.store, &admin.actor, &member, given).await?;
    let working_hours: Value = stored
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    Ok(Json(
        json!({ "username": member.username, "working_hours": working_hours }),
    ))
}

/// A new TOTP secret; its `otpauth://` URI is in the answer, this once.
async fn reset_totp(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let member = member(&state, &id).await?;
    let uri = staff::reset_totp(&state.store, &state.key, &admin.actor, &member).await?;
    Ok(Json(
        json!({ "username": member.username, "otpauth_uri": uri }),
    ))
}

async fn unlock(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let member = member(&state, &id).await?;
    staff::unlock(&state.store, &admin.actor, &member).await?;
    Ok(Json(
        json!({ "username": member.username, "state": "active" }),
    ))
}

// ---- merchants ----

async fn list_merchants(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>> {
    let merchants: Vec<Value> = state
        .store
        .merchant_settings()
        .await?
        .into_iter()
        .map(|m| {
            let ips: Value = m
                .ip_allowlist
                .as_deref()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null);
            json!({
                "id": m.merchant.id,
                "name": m.merchant.name,
                "env": m.merchant.env.as_str(),
                "created_at": m.created_at,
                "webhook_url": m.webhook_url,
                "rate_limit_per_minute": m.rate_limit_per_minute,
                "second_factor": m.second_factor,
                "ip_allowlist": if m.second_factor == "ip" { ips } else { Value::Null },
                "public_key_pem": if m.second_factor == "signature" { m.public_key_pem.into() } else { Value::Null },
                "credentials": m.client_ids.iter()
                    .map(|(id, n)| json!({ "client_id": id, "active_secrets": n }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "merchants": merchants,
        "default_rate_limit_per_minute": state.config.default_rate_limit_per_minute,
    })))
}

/// `{name, env}`: the client id and secret are in the answer, this once.
async fn create_merchant(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    let name = required(&body, "name")?;
    let env = merchants::parse_env(required(&body, "env")?)?;
    let created = merchants::create(&state.store, &state.key, &admin.actor, name, env).await?;
    Ok(Json(json!({
        "id": created.merchant.id,
        "name": created.merchant.name,
        "env": env.as_str(),
        "client_id": created.client_id,
        "client_secret": created.secret,
    })))
}

async fn merchant(state: &AppState, id: &str) -> Result<crate::store::Merchant> {
    merchants::find_id(&state.store, path_id(id, "merchant_not_found")?).await
}

/// `{url}`; `null` removes it.
async fn set_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let url = body.str("url")?;
    let merchant = merchant(&state, &id).await?;
    let url =
        merchants::set_webhook(&state.store, &state.config, &admin.actor, &merchant, url).await?;
    Ok(Json(json!({ "webhook_url": url })))
}

/// `{limit}`: standard, medium, restricted, unlimited, default or a number.
async fn set_rate_limit(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let limit = match body.get("limit") {
        Some(Value::Number(n)) => n.to_string(),
        _ => required(&body, "limit")?.to_string(),
    };
    let merchant = merchant(&state, &id).await?;
    let per_minute =
        merchants::set_rate_limit(&state.store, &admin.actor, &merchant, &limit).await?;
    state.auth.forget_merchant(merchant.id);
    Ok(Json(json!({ "rate_limit_per_minute": per_minute })))
}

/// `{ips: [..]}`: addresses or CIDR ranges, 1 to 10.
async fn allow_ips(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let ips = strings(&body, "ips")?;
    let merchant = merchant(&state, &id).await?;
    let list = merchants::allow_ips(&state.store, &admin.actor, &merchant, &ips).await?;
    state.auth.forget_merchant(merchant.id);
    Ok(Json(json!({ "second_factor": "ip", "ip_allowlist": list })))
}

async fn require_signature(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let merchant = merchant(&state, &id).await?;
    let pem = merchants::keygen(&state.store, &state.key, &admin.actor, &merchant).await?;
    state.auth.forget_merchant(merchant.id);
    Ok(Json(
        json!({ "second_factor": "signature", "public_key_pem": pem }),
    ))
}

async fn clear_second_factor(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let merchant = merchant(&state, &id).await?;
    merchants::clear_second_factor(&state.store, &admin.actor, &merchant).await?;
    state.auth.forget_merchant(merchant.id);
    Ok(Json(json!({ "second_factor": "none" })))
}

/// `{client_id}`: the new secret is in the answer, this once.
async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let client_id = required(&body, "client_id")?;
    let merchant = merchant(&state, &id).await?;
    merchants::own_client_id(&state.store, &merchant, client_id).await?;
    let secret =
        merchants::rotate_secret(&state.store, &state.key, &admin.actor, &merchant, client_id)
            .await?;
    Ok(Json(
        json!({ "client_id": client_id, "client_secret": secret }),
    ))
}

/// `{client_id}`: revokes the older of its two secrets.
async fn revoke_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let client_id = required(&body, "client_id")?;
    let merchant = merchant(&state, &id).await?;
    merchants::own_client_id(&state.store, &merchant, client_id).await?;
    merchants::revoke_secret(&state.store, &admin.actor, client_id).await?;
    state.auth.forget_merchant(merchant.id);
    Ok(Json(json!({ "client_id": client_id, "active_secrets": 1 })))
}
