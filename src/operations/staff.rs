//! Staff accounts: create, list, disable, change role, set an agent's own hours, issue a
//! new TOTP secret, end a lock-out. Every change is written to the staff audit log.

use super::{invalid, missing, refused, Actor};
use crate::clock::now_ms;
use crate::config::Config;
use crate::error::Result;
use crate::passwords;
use crate::secrets::MasterKey;
use crate::store::{Role, Staff, Store};

/// A staff member as the list shows them: never a password or TOTP secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StaffView {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    /// `active`, `locked` or `disabled`.
    pub state: &'static str,
    pub totp: bool,
    /// For agents: `online` or `offline`; others: None.
    pub presence: Option<&'static str>,
    /// The agent's own hours (`{"days", "hours"}`), None for the desk's.
    pub working_hours: Option<serde_json::Value>,
    pub created_at: i64,
}

pub fn parse_role(text: &str) -> Result<Role> {
    text.parse().map_err(|_| {
        invalid(
            "role_value_invalid",
            format!("role must be admin, agent or auditor, not {text:?}"),
        )
    })
}

pub async fn find(store: &Store, username: &str) -> Result<Staff> {
    let username = passwords::normalize_username(username);
    store.staff_by_username(&username).await?.ok_or_else(|| {
        missing(
            "staff_not_found",
            format!("no staff member is called {username}"),
        )
    })
}

pub async fn find_id(store: &Store, id: i64) -> Result<Staff> {
    store
        .staff_by_id(id)
        .await?
        .ok_or_else(|| missing("staff_not_found", "there is no such staff member"))
}

/// Creates an account. With no password given a strong one is generated and returned
/// (to be shown once).
pub async fn create(
    store: &Store,
    actor: &Actor,
    username: &str,
    role: Role,
    password: Option<String>,
) -> Result<(Staff, Option<String>)> {
    let username = passwords::normalize_username(username);
    if !passwords::valid_username(&username) {
        return Err(invalid(
            "username_value_invalid",
            "username must be 1 to 64 characters: a-z, 0-9, '.', '_', '-', '@'",
        ));
    }
    let (password, generated) = match password {
        Some(p) => {
            if p.chars().count() < passwords::MIN_PASSWORD_LEN
                || p.len() > passwords::MAX_PASSWORD_LEN
            {
                return Err(invalid(
                    "password_value_invalid",
                    format!(
                        "the password must be {} to {} characters",
                        passwords::MIN_PASSWORD_LEN,
                        passwords::MAX_PASSWORD_LEN
                    ),
                ));
            }
            (p, false)
        }
        None => (passwords::generate_password(), true),
    };
    let hash = passwords::hash_password(&password)?;
    let created = store
        .create_staff(&username, role, &hash, now_ms())
        .await?
        .ok_or_else(|| {
            refused(
                "username_taken",
                format!("a staff member is already called {username}"),
            )
        })?;
    actor
        .audit(store, "staff_created", &username, Some(role.as_str()))
        .await?;
    Ok((created, generated.then_some(password)))
}

pub async fn list(store: &Store, config: &Config) -> Result<Vec<StaffView>> {
    let now = now_ms();
    let stale_ms = config.agent_stale_seconds as i64 * 1000;
    Ok(store
        .list_staff()
        .await?
        .into_iter()
        .map(|(member, presence)| {
            let state = if member.disabled_at.is_some() {
                "disabled"
            } else if member.locked_until.is_some_and(|until| until > now) {
                "locked"
            } else {
                "active"
            };
            let presence = match presence {
                _ if member.role != Role::Agent => None,
                Some(p) if p.online && p.last_seen > now - stale_ms => Some("online"),
                _ => Some("offline"),
            };
            StaffView {
                id: member.id,
                username: member.username,
                role: member.role.as_str(),
                state,
                totp: member.totp_secret_enc.is_some(),
                presence,
                working_hours: member
                    .working_hours
                    .as_deref()
                    .and_then(|h| serde_json::from_str(h).ok()),
                created_at: member.created_at,
            }
        })
        .collect())
}

/// Disables an account: it can no longer sign in, and its sessions end.
pub async fn disable(store: &Store, actor: &Actor, member: &Staff) -> Result<()> {
    if !store.disable_staff(member.id, now_ms()).await? {
        return Err(refused(
            "staff_disabled",
            format!("{} is already disabled", member.username),
        ));
    }
    actor
        .audit(store, "staff_disabled", &member.username, None)
        .await
}

/// Moves a staff member to another role; their sessions end and they go offline.
pub async fn set_role(store: &Store, actor: &Actor, member: &Staff, role: Role) -> Result<()> {
    if member.disabled_at.is_some() {
        return Err(refused(
            "staff_disabled",
            format!("{} is disabled", member.username),
        ));
    }
    if member.role == role {
        return Err(refused(
            "role_unchanged",
            format!("{} is already {role}", member.username),
        ));
    }
    if !store.set_staff_role(member.id, role, now_ms()).await? {
        return Err(refused(
            "staff_busy",
            format!(
                "{} is on a call or has a call waiting for their decision (or was disabled \
                 meanwhile): try again once it is decided",
                member.username
            ),
        ));
    }
    let change = format!("{} -> {role}", member.role);
    actor
        .audit(store, "staff_role_changed", &member.username, Some(&change))
        .await
}

/// Sets an agent's own working hours (days `mon..sun`, `HH:MM-HH:MM` IST), or with
/// `None` returns them to the desk's. Returns what is stored.
pub async fn set_hours(
    store: &Store,
    actor: &Actor,
    member: &Staff,
    hours: Option<(&[String], &str)>,
) -> Result<Option<String>> {
    let stored = match hours {
        None => None,
        Some((days, hours)) => {
            if days.is_empty() {
                return Err(invalid(
                    "working_days_missing",
                    "give at least one working day (mon..sun)",
                ));
            }
            // Checked as the queue will read it.
            crate::domain::slots::Hours::parse(days, hours, 15)
                .map_err(|e| invalid("working_hours_value_invalid", e.to_string()))?;
            let days: Vec<String> = days.iter().map(|d| d.to_ascii_lowercase()).collect();
            Some(serde_json::json!({ "days": days, "hours": hours.trim() }).to_string())
        }
    };
    store
        .set_working_hours(member.id, stored.as_deref())
        .await?;
    actor
        .audit(
            store,
            "working_hours_set",
            &member.username,
            Some(stored.as_deref().unwrap_or("the desk's hours")),
        )
        .await?;
    Ok(stored)
}

/// Gives the account a new TOTP secret (any earlier one stops working) and returns its
/// `otpauth://` URI, to be shown once.
pub async fn reset_totp(
    store: &Store,
    key: &MasterKey,
    actor: &Actor,
    member: &Staff,
) -> Result<String> {
    if member.disabled_at.is_some() {
        return Err(refused(
            "staff_disabled",
            format!("{} is disabled", member.username),
        ));
    }
    let secret = crate::totp::generate_secret();
    store
        .set_totp_secret(member.id, Some(&key.seal(&secret)))
        .await?;
    let details = member.totp_secret_enc.is_some().then_some("replaced");
    actor
        .audit(store, "totp_enabled", &member.username, details)
        .await?;
    Ok(crate::totp::otpauth_uri(&member.username, &secret))
}

/// Ends a lock-out after too many failed logins.
pub async fn unlock(store: &Store, actor: &Actor, member: &Staff) -> Result<()> {
    if !store.unlock_staff(member.id).await? {
        return Err(refused(
            "staff_not_locked",
            format!("{} is not locked and has no failed logins", member.username),
        ));
    }
    actor
        .audit(store, "staff_unlocked", &member.username, None)
        .await
}
