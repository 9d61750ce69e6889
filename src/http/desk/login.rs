//! Staff sign-in: argon2id passwords checked within a bound per core, attempts counted
//! per address and per account before they are checked, lock-out, one-time codes used
//! once; and sign-out.

use super::{audit, random_hex, totp, ClientAddr, StaffSession, COOKIE, MAX_PASSWORD_LEN};
use crate::clock::now_ms;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::passwords::{hash_password, normalize_username, valid_username, verify_password};
use crate::state::AppState;
use crate::store::Role;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// How long a login waits for a free hashing slot before it is told to come back.
const HASH_WAIT: Duration = Duration::from_secs(2);

/// Checks `password` against `hash` off the async threads, at most one per core at a time
/// (argon2id takes 19 MiB and tens of milliseconds each, and a sign-in needs no session,
/// so without a bound anyone could fill the machine's memory with them).
async fn check_password(state: &AppState, hash: String, password: String) -> Result<bool> {
    let permit = tokio::time::timeout(HASH_WAIT, state.sign_ins.hashing.acquire())
        .await
        .map_err(|_| too_many_logins(HASH_WAIT.as_secs()))?
        .map_err(Error::internal)?;
    let checked = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(Error::internal);
    drop(permit);
    checked
}

/// Spends what a real check spends, for attempts that fail before one (an unknown name, a
/// disabled or locked account): every failed login costs the same, so the time of the
/// answer says nothing about the account.
async fn spend_a_check(state: &AppState, password: &str) -> Result<()> {
    check_password(state, dummy_hash().to_string(), password.to_string()).await?;
    Ok(())
}

fn too_many_logins(retry_after: u64) -> Error {
    Error::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorType::RateLimitError,
        "too_many_logins",
        "too many sign-in attempts; wait a moment and try again.",
    )
    .with_retry_after(retry_after)
}

/// The caller's address, with the attempt counted against it before anything else is
/// read: over `staff_login_attempts_per_minute` from one address (per process), refused.
pub struct LoginAttempt(IpAddr);

impl FromRequestParts<AppState> for LoginAttempt {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<LoginAttempt> {
        let ClientAddr(ip) = match ClientAddr::from_request_parts(parts, state).await {
            Ok(addr) => addr,
            Err(never) => match never {},
        };
        let limit = state.config.staff_login_attempts_per_minute;
        if limit > 0 {
            state
                .sign_ins
                .count(ip, limit, now_ms())
                .map_err(too_many_logins)?;
        }
        Ok(LoginAttempt(ip))
    }
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

pub(super) async fn login(
    State(state): State<AppState>,
    LoginAttempt(ip): LoginAttempt,
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
        spend_a_check(&state, password).await?;
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
        spend_a_check(&state, password).await?;
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
    // The attempt is counted before it is checked, in one statement: however many come
    // at once, no more than `staff_lockout_attempts` are ever checked against the
    // password before the account locks.
    let now = now_ms();
    let lock_ms = state.config.staff_lockout_minutes as i64 * 60_000;
    let claimed = state
        .store
        .claim_login_attempt(
            staff.id,
            i64::from(state.config.staff_lockout_attempts),
            now,
            now + lock_ms,
        )
        .await?;
    let Some(locks_now) = claimed else {
        spend_a_check(&state, password).await?;
        audit(
            &state,
            id,
            "login_locked",
            target,
            ip,
            Some("account locked"),
        )
        .await?;
        return Err(Error::login_failed());
    };
    if let Some(until) = locks_now {
        let details = format!(
            "{} attempts without success; locked until {until}",
            state.config.staff_lockout_attempts
        );
        audit(&state, id, "account_locked", target, ip, Some(&details)).await?;
    }
    let password_ok =
        check_password(&state, staff.password_hash.clone(), password.to_string()).await?;
    let failure = if !password_ok {
        Some("wrong password")
    } else if let Some(sealed) = &staff.totp_secret_enc {
        let secret = state.key.open(sealed).map_err(Error::internal)?;
        match otp {
            None => {
                audit(&state, id, "login_otp_required", target, ip, None).await?;
                return Err(Error::otp_required());
            }
            Some(code) => match totp::verify_step(&secret, code, (now / 1000).max(0) as u64) {
                // Each code is used once: a step at or before the last one accepted is
                // a replay, even within the code's 90 s of validity.
                Some(step) if state.store.use_totp_step(staff.id, step as i64).await? => None,
                Some(_) => Some("one-time code already used"),
                None => Some("wrong one-time code"),
            },
        }
    } else {
        None
    };
    if let Some(reason) = failure {
        audit(&state, id, "login_failed", target, ip, Some(reason)).await?;
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

pub(super) async fn logout(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_names_are_short_and_printable() {
        assert_eq!(audit_name("ravi\u{0}\n"), "ravi\\u{0}\\n");
        assert_eq!(audit_name(&"r".repeat(500)).len(), 64);
        assert_eq!(audit_name("रवि"), "रवि");
    }
}
