//! The staff desk under `/desk`: a small page, staff login (argon2 passwords, lock-out,
//! optional TOTP), cookie sessions with a CSRF token, and the agents' online/offline
//! presence with heartbeats.
//!
//! Later consoles plug in with [`StaffSession`] (a valid desk session, CSRF-checked on
//! every call that is not a GET) and [`StaffSession::require`] for the role.

mod agent;
mod auditor;
pub mod totp;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{Presence, Role};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
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
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "vkyc_desk";
/// The header that carries the session's CSRF token on every desk call but GETs and login.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longest password accepted (argon2 takes any length; this bounds the work a caller asks).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Shortest password `vkyc staff create --password-stdin` accepts.
pub const MIN_PASSWORD_LEN: usize = 12;
/// A session's `last_seen` is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

const INDEX_HTML: &str = include_str!("../../../assets/desk/index.html");
const DESK_JS: &str = include_str!("../../../assets/desk/desk.js");
const DESK_CSS: &str = include_str!("../../../assets/desk/desk.css");

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
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .route("/", get(page))
        .route("/assets/desk.js", get(script))
        .route("/assets/desk.css", get(style))
        .nest("/api", api)
}

// ---- passwords and usernames ----

/// An argon2id PHC string of `password` with a fresh salt and the default parameters.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A strong random password for a new account: 144 bits, URL-safe base64 (24 characters).
pub fn generate_password() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Usernames are compared in lower case, without surrounding spaces.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// 1 to 64 characters: ASCII lower-case letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_username(username: &str) -> bool {
    (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b))
}

/// Verifies off the async threads: argon2 is deliberately slow.
async fn verify_blocking(hash: String, password: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(Error::internal)
}

/// A hash to check unknown usernames against, so they take as long as known ones.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("vkyc-no-such-user").unwrap_or_default())
}

/// A username as the audit log keeps it: at most 64 characters, control characters
/// escaped (PostgreSQL text cannot hold NUL; a log should not hold line breaks).
fn audit_name(username: &str) -> String {
    username
        .chars()
        .take(64)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn random_hex(bytes: usize) -> String {
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

async fn style() -> Response {
    (page_headers("text/css; charset=utf-8"), DESK_CSS).into_response()
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- login and logout ----

fn session_cookie(state: &AppState, value: &str, max_age_seconds: u64) -> Result<HeaderValue> {
    let secure = if state.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Max-Age={max_age_seconds}; Path=/desk; HttpOnly; SameSite=Strict{secure}"
    ))
    .map_err(Error::internal)
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    body: JsonBody,
) -> Result<Response> {
    let username = body
        .str("username")?
        .ok_or_else(|| Error::missing("username"))?;
    let password = body
        .str("password")?
        .ok_or_else(|| Error::missing("password"))?;
    let otp = body.str("otp")?.filter(|otp| !otp.trim().is_empty());
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid("password"));
    }
    let username = normalize_username(username);
    let found = if valid_username(&username) {
        state.store.staff_by_username(&username).await?
    } else {
        None
    };
    let shown = audit_name(&username);
    let target = Some(shown.as_str());
    let Some(staff) = found else {
        verify_blocking(dummy_hash().to_string(), password.to_string()).await?;
        audit(
            &state,
            None,
            "login_failed",
            target,
            ip,
            Some("unknown username"),
        )
        .await?;
        return Err(Error::login_failed());
    };
    let id = Some(staff.id);
    if staff.disabled_at.is_some() {
        audit(
            &state,
            id,
            "login_failed",
            target,
            ip,
            Some("account disabled"),
        )
        .await?;
        return Err(Error::login_failed());
    }
    let now = now_ms();
    if let Some(until) = staff.locked_until.filter(|until| *until > now) {
        let details = format!("account locked until {until}");
        audit(&state, id, "login_locked", target, ip, Some(&details)).await?;
        return Err(Error::login_failed());
    }
    let password_ok = verify_blocking(staff.password_hash.clone(), password.to_string()).await?;
    let failure = if !password_ok {
        Some("wrong password")
    } else if let Some(sealed) = &staff.totp_secret_enc {
        let secret = state.key.open(sealed).map_err(Error::internal)?;
        match otp {
            None => {
                audit(&state, id, "login_otp_required", target, ip, None).await?;
                return Err(Error::otp_required());
            }
            Some(code) if totp::verify(&secret, code, (now / 1000).max(0) as u64) => None,
            Some(_) => Some("wrong one-time code"),
        }
    } else {
        None
    };
    if let Some(reason) = failure {
        let lock_ms = state.config.staff_lockout_minutes as i64 * 60_000;
        let locked = state
            .store
            .record_login_failure(
                staff.id,
                i64::from(state.config.staff_lockout_attempts),
                now + lock_ms,
            )
            .await?;
        audit(&state, id, "login_failed", target, ip, Some(reason)).await?;
        if let Some(until) = locked {
            let details = format!(
                "{} consecutive failures; locked until {until}",
                state.config.staff_lockout_attempts
            );
            audit(&state, id, "account_locked", target, ip, Some(&details)).await?;
        }
        return Err(Error::login_failed());
    }

    state.store.reset_login_failures(staff.id).await?;
    let token = random_hex(32);
    let csrf_token = random_hex(32);
    let ttl_seconds = state.config.staff_session_hours * 3600;
    state
        .store
        .create_staff_session(
            &crate::auth::secret_digest(&token),
            staff.id,
            &csrf_token,
            now,
            now + ttl_seconds as i64 * 1000,
        )
        .await?;
    // Now and then, sweep sessions that ran out.
    if rand::random::<u8>() < 8 {
        state.store.delete_expired_staff_sessions(now).await?;
    }
    audit(&state, id, "login_ok", target, ip, None).await?;
    let cookie = session_cookie(&state, &token, ttl_seconds)?;
    let body = json!({
        "username": staff.username,
        "role": staff.role.as_str(),
        "csrf_token": csrf_token,
    });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn logout(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    session: StaffSession,
) -> Result<Response> {
    let now = now_ms();
    if session.role == Role::Agent
        && state
            .store
            .presence(session.staff_id)
            .await?
            .is_some_and(|p| p.online)
    {
        state
            .store
            .set_presence(session.staff_id, false, now)
            .await?;
        audit(
            &state,
            Some(session.staff_id),
            "offline",
            Some(&session.username),
            ip,
            Some("logout"),
        )
        .await?;
    }
    state
        .store
        .delete_staff_session(&session.token_digest)
        .await?;
    audit(
        &state,
        Some(session.staff_id),
        "logout",
        Some(&session.username),
        ip,
        None,
    )
    .await?;
    let cookie = session_cookie(&state, "", 0)?;
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"ok": true}))).into_response())
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
    fn usernames_are_plain_lower_case() {
        assert_eq!(normalize_username("  Asha.Rao "), "asha.rao");
        assert!(valid_username("asha.rao@bank-1_x"));
        for bad in ["", "Asha", "asha rao", "asha;", &"a".repeat(65), "ásha"] {
            assert!(!valid_username(bad), "{bad:?}");
        }
    }

    #[test]
    fn audit_names_are_short_and_printable() {
        assert_eq!(audit_name("ravi\u{0}\n"), "ravi\\u{0}\\n");
        assert_eq!(audit_name(&"r".repeat(500)).len(), 64);
        assert_eq!(audit_name("रवि"), "रवि");
    }

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

    #[test]
    fn passwords_hash_to_phc_strings_that_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse"));
        assert!(!verify_password("not a hash", "x"));
        assert_eq!(generate_password().len(), 24);
    }
}
