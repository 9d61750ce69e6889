//! The staff desk under `/desk`: a small page, staff login (argon2 passwords, lock-out,
//! optional TOTP), cookie sessions with a CSRF token, and the agents' online/offline
//! presence with heartbeats.
//!
//! Later consoles plug in with [`StaffSession`] (a valid desk session, CSRF-checked on
//! every call that is not a GET) and [`StaffSession::require`] for the role.

mod admin;
mod admin_settings;
mod admin_templates;
mod agent;
mod auditor;
mod case_file;
mod cases;
mod login;
mod photo;
mod recording;
mod reports;

pub use crate::totp;

pub use crate::passwords::{
    generate_password, hash_password, normalize_username, valid_username, verify_password,
    MAX_PASSWORD_LEN, MIN_PASSWORD_LEN,
};
use login::{login, logout};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{Presence, Role};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "vkyc_desk";
/// The header that carries the session's CSRF token on every desk call but GETs and login.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session's `last_seen` is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

const INDEX_HTML: &str = include_str!("../../../assets/desk/index.html");
const DESK_JS: &str = include_str!("../../../assets/desk/desk.js");
const DESK_CSS: &str = include_str!("../../../assets/desk/desk.css");
/// The call's connection, shared with the customer's call page.
const RTC_JS: &str = include_str!("../../../assets/call/rtc.js");
/// The desk's modules: what every console shares, the agent's and the auditor's.
const COMMON_JS: &str = include_str!("../../../assets/desk/common.js");
const AGENT_JS: &str = include_str!("../../../assets/desk/agent.js");
const AUDITOR_JS: &str = include_str!("../../../assets/desk/auditor.js");
/// India's outline with a point on it, for the screens that show a customer's position.
const MAP_JS: &str = include_str!("../../../assets/desk/map.js");
/// The admin console.
const ADMIN_JS: &str = include_str!("../../../assets/desk/admin.js");
/// The admin's reports.
const REPORTS_JS: &str = include_str!("../../../assets/desk/reports.js");
/// Case search and the case file, for admins and auditors.
const CASES_JS: &str = include_str!("../../../assets/desk/cases.js");

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/agent/online", post(agent_online))
        .route("/agent/offline", post(agent_offline))
        .route("/agent/heartbeat", post(agent_heartbeat))
        .merge(agent::routes())
        .merge(auditor::routes())
        .merge(photo::routes())
        .merge(admin::routes())
        .merge(recording::routes())
        .merge(reports::routes())
        .merge(cases::routes())
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .route("/", get(page))
        .route("/assets/desk.js", get(script))
        .route("/assets/desk.css", get(style))
        .route("/assets/rtc.js", get(rtc_script))
        .route("/assets/map.js", get(|| module(MAP_JS)))
        .route("/assets/common.js", get(|| module(COMMON_JS)))
        .route("/assets/agent.js", get(|| module(AGENT_JS)))
        .route("/assets/auditor.js", get(|| module(AUDITOR_JS)))
        .route("/assets/cases.js", get(|| module(CASES_JS)))
        .route("/assets/india.geojson", get(india_outline))
        .route("/assets/admin.js", get(|| module(ADMIN_JS)))
        .route("/assets/reports.js", get(|| module(REPORTS_JS)))
        .nest("/api", api)
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

// ---- the caller ----

/// The caller's address (behind trusted proxies, the forwarded one).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<ClientAddr, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(Ipv4Addr::UNSPECIFIED.into());
        Ok(ClientAddr(state.auth.client_address(&parts.headers, peer)))
    }
}

/// The desk cookie's value, if the request carries a well-formed one.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A signed-in staff member. Extracting it requires the `vkyc_desk` cookie of an
/// unexpired session of an enabled account (else 401) and, on every method but GET and
/// HEAD, an `x-csrf-token` header equal to the session's token (else 403).
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub staff_id: i64,
    pub username: String,
    pub role: Role,
    token_digest: String,
    csrf_token: String,
}

impl StaffSession {
    /// 403 `role_forbidden` unless the staff member has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::role_forbidden())
        }
    }
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<StaffSession> {
        let token = session_token(&parts.headers).ok_or_else(Error::desk_session_required)?;
        let token_digest = crate::auth::secret_digest(token);
        let now = now_ms();
        let row = state
            .store
            .staff_session(&token_digest, now)
            .await?
            .ok_or_else(Error::desk_session_required)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let given = parts
                .headers
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !bool::from(given.ct_eq(row.csrf_token.as_bytes())) {
                return Err(Error::csrf_invalid());
            }
        }
        if now - row.last_seen >= TOUCH_EVERY_MS {
            state.store.touch_staff_session(&token_digest, now).await?;
        }
        Ok(StaffSession {
            staff_id: row.staff_id,
            username: row.username,
            role: row.role,
            token_digest,
            csrf_token: row.csrf_token,
        })
    }
}

/// Appends a staff audit row.
pub async fn audit(
    state: &AppState,
    staff_id: Option<i64>,
    action: &str,
    target: Option<&str>,
    ip: IpAddr,
    details: Option<&str>,
) -> Result<()> {
    state
        .store
        .insert_staff_audit(
            staff_id,
            now_ms(),
            action,
            target,
            Some(&ip.to_string()),
            details,
        )
        .await
}

// ---- the page ----

fn page_headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, content_type),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data: blob:; media-src 'self' blob:; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

async fn page() -> Response {
    (page_headers("text/html; charset=utf-8"), INDEX_HTML).into_response()
}

/// `/desk/` is the page too.
pub async fn to_desk() -> axum::response::Redirect {
    axum::response::Redirect::permanent("/desk")
}

async fn script() -> Response {
    (page_headers("text/javascript; charset=utf-8"), DESK_JS).into_response()
}

async fn rtc_script() -> Response {
    (page_headers("text/javascript; charset=utf-8"), RTC_JS).into_response()
}

async fn module(source: &'static str) -> Response {
    (page_headers("text/javascript; charset=utf-8"), source).into_response()
}

/// The boundary the location check uses, so the map shows exactly what was checked.
async fn india_outline() -> Response {
    (
        page_headers("application/geo+json"),
        crate::domain::geo::BOUNDARY_GEOJSON,
    )
        .into_response()
}

async fn style() -> Response {
    (page_headers("text/css; charset=utf-8"), DESK_CSS).into_response()
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether a presence row counts as online now (set online, heartbeat not stale).
fn is_live(state: &AppState, presence: Option<Presence>, now: i64) -> bool {
    let stale_ms = state.config.agent_stale_seconds as i64 * 1000;
    presence.is_some_and(|p| p.online && p.last_seen > now - stale_ms)
}

async fn me(State(state): State<AppState>, session: StaffSession) -> Result<Json<Value>> {
    let online = if session.role == Role::Agent {
        let presence = state.store.presence(session.staff_id).await?;
        Some(is_live(&state, presence, now_ms()))
    } else {
        None
    };
    Ok(Json(json!({
        "username": session.username,
        "role": session.role.as_str(),
        "csrf_token": session.csrf_token,
        "online": online,
    })))
}

// ---- agent presence ----

/// Agents only: anyone else gets 403, and the attempt is audited.
async fn agent_only(
    state: &AppState,
    session: &StaffSession,
    ip: IpAddr,
    action: &str,
) -> Result<()> {
    if let Err(err) = session.require(&[Role::Agent]) {
        let details = format!("{action} needs the agent role");
        audit(
            state,
            Some(session.staff_id),
            "forbidden",
            Some(action),
            ip,
            Some(&details),
        )
        .await?;
        return Err(err);
    }
    Ok(())
}

fn presence_body(presence: Presence) -> Json<Value> {
    Json(json!({"online": presence.online, "since": presence.since}))
}

async fn agent_online(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    session: StaffSession,
) -> Result<Json<Value>> {
    set_online(&state, ip, &session, true).await
}

async fn agent_offline(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    session: StaffSession,
) -> Result<Json<Value>> {
    set_online(&state, ip, &session, false).await
}

/// Goes online or offline, audited.
async fn set_online(
    state: &AppState,
    ip: IpAddr,
    session: &StaffSession,
    online: bool,
) -> Result<Json<Value>> {
    let action = if online { "online" } else { "offline" };
    agent_only(state, session, ip, action).await?;
    let presence = state
        .store
        .set_presence(session.staff_id, online, now_ms())
        .await?;
    audit(
        state,
        Some(session.staff_id),
        action,
        Some(&session.username),
        ip,
        None,
    )
    .await?;
    Ok(presence_body(presence))
}

async fn agent_heartbeat(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    session: StaffSession,
) -> Result<Json<Value>> {
    agent_only(&state, &session, ip, "heartbeat").await?;
    let online = state.store.heartbeat(session.staff_id, now_ms()).await?;
    Ok(Json(json!({"online": online})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_must_be_well_formed() {
        let token = "ab".repeat(32);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; {COOKIE}={token}; b=2")).unwrap(),
        );
        assert_eq!(session_token(&headers), Some(token.as_str()));
        headers.insert(header::COOKIE, HeaderValue::from_static("vkyc_desk=short"));
        assert_eq!(session_token(&headers), None);
    }
}
