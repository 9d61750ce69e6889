//! Staff accounts, their desk sessions, the staff audit log, and agent presence.

use super::{is_unique_violation, Store};
use crate::error::Result;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

/// What a staff member may do: admins manage, agents take video calls, auditors review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Agent,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            "auditor" => Ok(Role::Auditor),
            other => anyhow::bail!("role must be admin, agent or auditor, not {other:?}"),
        }
    }
}

/// A staff account row.
#[derive(Clone)]
pub struct Staff {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// The TOTP secret sealed under the master key, when the account has one.
    pub totp_secret_enc: Option<String>,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub working_hours: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("totp", &self.totp_secret_enc.is_some())
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("disabled_at", &self.disabled_at)
            .finish()
    }
}

/// An unexpired desk session with its staff member.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub staff_id: i64,
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: i64,
    pub last_seen: i64,
}

/// An agent's presence row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    /// When the current state (online or offline) began.
    pub since: Option<i64>,
    /// The latest heartbeat (or change of state).
    pub last_seen: i64,
}

/// One staff audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub staff_id: Option<i64>,
    pub at: i64,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub details: Option<String>,
}

const STAFF_COLUMNS: &str = "id, username, role, password_hash, totp_secret_enc, failed_logins, \
     locked_until, working_hours, created_at, disabled_at";

fn role_from(text: &str) -> Result<Role, sqlx::Error> {
    text.parse().map_err(|_| {
        sqlx::Error::Decode(format!("unknown staff role {text:?} in the database").into())
    })
}

fn staff_from_row(row: &AnyRow) -> Result<Staff, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(Staff {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: role_from(&role)?,
        password_hash: row.try_get("password_hash")?,
        totp_secret_enc: row.try_get("totp_secret_enc")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        working_hours: row.try_get("working_hours")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

fn presence_from_row(row: &AnyRow) -> Result<Option<Presence>, sqlx::Error> {
    let online: Option<i64> = row.try_get("online")?;
    let Some(online) = online else {
        return Ok(None);
    };
    Ok(Some(Presence {
        online: online == 1,
        since: row.try_get("since")?,
        last_seen: row.try_get("last_seen")?,
    }))
}

impl Store {
    // ---- accounts ----

    /// Creates a staff member; `Ok(None)` when the username is taken.
    pub async fn create_staff(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Staff>> {
        let sql = format!(
            "INSERT INTO staff (username, role, password_hash, failed_logins, created_at) \
             VALUES ($1, $2, $3, 0, $4) RETURNING {STAFF_COLUMNS}"
        );
        match sqlx::query(&sql)
            .bind(username)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_one(&self.write)
            .await
        {
            Ok(row) => Ok(Some(staff_from_row(&row)?)),
            Err(err) if is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A staff member by username, disabled or not.
    pub async fn staff_by_username(&self, username: &str) -> Result<Option<Staff>> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(staff_from_row).transpose()?)
    }

    pub async fn staff_by_id(&self, id: i64) -> Result<Option<Staff>> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(staff_from_row).transpose()?)
    }

    /// Every staff member with their presence (agents who have ever gone online), by id.
    pub async fn list_staff(&self) -> Result<Vec<(Staff, Option<Presence>)>> {
        let sql = format!(
            "SELECT s.{}, p.online, p.since, p.last_seen FROM staff s \
             LEFT JOIN agent_presence p ON p.staff_id = s.id ORDER BY s.id",
            STAFF_COLUMNS.replace(", ", ", s.")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push((staff_from_row(row)?, presence_from_row(row)?));
        }
        Ok(out)
    }

    /// Disables an account, ends its sessions and takes it offline, in one transaction.
    /// `false` when no such account is enabled.
    pub async fn disable_staff(&self, staff_id: i64, now: i64) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done =
            sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now)
                .bind(staff_id)
                .execute(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
            .bind(staff_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE agent_presence SET online = 0, since = $1, last_seen = $1 \
             WHERE staff_id = $2 AND online = 1",
        )
        .bind(now)
        .bind(staff_id)
        .execute(&mut *tx)
        .await?;
        super::reports::log_offline(&mut tx, staff_id, now).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves an enabled staff member to `role`, in one transaction: their sessions end
    /// (they sign in again under the new role) and they go offline. `false` (nothing
    /// changes) when no such account is enabled, or the staff member is on a call or has
    /// a call that still waits for their decision (no one else could decide it).
    pub async fn set_staff_role(&self, staff_id: i64, role: Role, now: i64) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE staff SET role = $1 WHERE id = $2 AND disabled_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.agent_id = $2 \
                 AND (c.state IN ('invited', 'active') \
                      OR (c.state IN ('ended', 'dropped') AND c.decision IS NULL \
                          AND NOT EXISTS (SELECT 1 FROM calls later \
                              WHERE later.request_id = c.request_id AND later.id > c.id))))",
        )
        .bind(role.as_str())
        .bind(staff_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
            .bind(staff_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE agent_presence SET online = 0, since = $1, last_seen = $1 \
             WHERE staff_id = $2 AND online = 1",
        )
        .bind(now)
        .bind(staff_id)
        .execute(&mut *tx)
        .await?;
        super::reports::log_offline(&mut tx, staff_id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets (or with `None` removes) the sealed TOTP secret.
    pub async fn set_totp_secret(&self, staff_id: i64, sealed: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE staff SET totp_secret_enc = $1 WHERE id = $2")
            .bind(sealed)
            .bind(staff_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- login failures ----

    /// Counts a login attempt before it is checked, in one statement, so that concurrent
    /// attempts cannot race the limit. `None`: the account is locked and the attempt is
    /// not to be checked. `Some(Some(until))`: this attempt was the last one allowed and
    /// locks the account until `until` (it is still checked; a success unlocks).
    /// `Some(None)`: counted, to be checked.
    pub async fn claim_login_attempt(
        &self,
        staff_id: i64,
        max_attempts: i64,
        now: i64,
        lock_until: i64,
    ) -> Result<Option<Option<i64>>> {
        let row = sqlx::query(
            "UPDATE staff SET \
               failed_logins = CASE WHEN failed_logins + 1 >= $1 THEN 0 ELSE failed_logins + 1 END, \
               locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE NULL END \
             WHERE id = $3 AND (locked_until IS NULL OR locked_until <= $4) \
             RETURNING failed_logins, locked_until",
        )
        .bind(max_attempts)
        .bind(lock_until)
        .bind(staff_id)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let until: Option<i64> = row.try_get("locked_until")?;
        Ok(Some(until))
    }

    /// Records `step` as the last one-time-code step used by `staff_id`, if it is later
    /// than the last one; false for a step at or before it (a replayed code).
    pub async fn use_totp_step(&self, staff_id: i64, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE staff SET totp_last_step = $1 \
             WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(staff_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets earlier failures after a successful login.
    pub async fn reset_login_failures(&self, staff_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE staff SET failed_logins = 0, locked_until = NULL \
             WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
        )
        .bind(staff_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- sessions ----

    pub async fn create_staff_session(
        &self,
        token_digest: &str,
        staff_id: i64,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_digest, staff_id, csrf_token, created_at, \
             expires_at, last_seen) VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(token_digest)
        .bind(staff_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The session behind a cookie digest, if it is unexpired and its account enabled.
    pub async fn staff_session(&self, token_digest: &str, now: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT s.id, s.username, s.role, x.csrf_token, x.expires_at, x.last_seen \
             FROM staff_sessions x JOIN staff s ON s.id = x.staff_id \
             WHERE x.token_digest = $1 AND x.expires_at > $2 AND s.disabled_at IS NULL",
        )
        .bind(token_digest)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        Ok(Some(SessionRow {
            staff_id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role_from(&role)?,
            csrf_token: row.try_get("csrf_token")?,
            expires_at: row.try_get("expires_at")?,
            last_seen: row.try_get("last_seen")?,
        }))
    }

    /// Records that a session was used.
    pub async fn touch_staff_session(&self, token_digest: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE staff_sessions SET last_seen = $1 WHERE token_digest = $2")
            .bind(now)
            .bind(token_digest)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn delete_staff_session(&self, token_digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_digest = $1")
            .bind(token_digest)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Removes sessions that expired before `now`.
    pub async fn delete_expired_staff_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- audit ----

    /// Appends one row to the staff audit log.
    pub async fn insert_staff_audit(
        &self,
        staff_id: Option<i64>,
        at: i64,
        action: &str,
        target: Option<&str>,
        ip: Option<&str>,
        details: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        self.insert_staff_audit_in(&mut tx, staff_id, at, action, target, ip, details)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A staff audit row in the caller's transaction, sealed into the staff chain there:
    /// the chain's head lock puts concurrent actions one after the other.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_staff_audit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        staff_id: Option<i64>,
        at: i64,
        action: &str,
        target: Option<&str>,
        ip: Option<&str>,
        details: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO staff_audit (staff_id, at, action, target, ip, details) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(staff_id)
        .bind(at)
        .bind(action)
        .bind(target)
        .bind(ip)
        .bind(details)
        .execute(&mut **tx)
        .await?;
        self.seal_staff(tx).await?;
        Ok(())
    }

    /// The newest audit rows first, of one staff member or of everyone.
    pub async fn staff_audit(&self, staff_id: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        let query = match staff_id {
            Some(id) => sqlx::query(
                "SELECT id, staff_id, at, action, target, ip, details FROM staff_audit \
                 WHERE staff_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(id)
            .bind(limit),
            None => sqlx::query(
                "SELECT id, staff_id, at, action, target, ip, details FROM staff_audit \
                 ORDER BY id DESC LIMIT $1",
            )
            .bind(limit),
        };
        let rows = query.fetch_all(&self.read).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(AuditRow {
                id: row.try_get("id")?,
                staff_id: row.try_get("staff_id")?,
                at: row.try_get("at")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                ip: row.try_get("ip")?,
                details: row.try_get("details")?,
            });
        }
        Ok(out)
    }

    // ---- agent presence ----

    /// Puts a staff member online or offline as of `now`. `since` moves only when the
    /// state changes; `last_seen` is `now` either way.
    pub async fn set_presence(&self, staff_id: i64, online: bool, now: i64) -> Result<Presence> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO agent_presence (staff_id, online, since, last_seen) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (staff_id) DO UPDATE SET \
               since = CASE WHEN agent_presence.online = excluded.online \
                            THEN agent_presence.since ELSE excluded.since END, \
               online = excluded.online, last_seen = excluded.last_seen \
             RETURNING online, since, last_seen",
        )
        .bind(staff_id)
        .bind(i64::from(online))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        super::reports::log_presence(&mut tx, staff_id, online, now).await?;
        tx.commit().await?;
        presence_from_row(&row)?
            .ok_or_else(|| crate::error::Error::internal(anyhow::anyhow!("no presence row")))
    }

    /// Records a heartbeat of an online agent. `false` (and nothing changes) when the
    /// agent is offline.
    pub async fn heartbeat(&self, staff_id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agent_presence SET last_seen = $1 WHERE staff_id = $2 AND online = 1",
        )
        .bind(now)
        .bind(staff_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 1 {
            self.log_heartbeat(staff_id, now).await?;
        }
        Ok(done.rows_affected() == 1)
    }

    /// A staff member's presence row, if they have ever gone online.
    pub async fn presence(&self, staff_id: i64) -> Result<Option<Presence>> {
        let row =
            sqlx::query("SELECT online, since, last_seen FROM agent_presence WHERE staff_id = $1")
                .bind(staff_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(match row {
            Some(row) => presence_from_row(&row)?,
            None => None,
        })
    }

    /// How many enabled agents are online with a heartbeat newer than
    /// `now_ms - stale_after_ms`.
    pub async fn agents_online(&self, now_ms: i64, stale_after_ms: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM agent_presence p JOIN staff s ON s.id = p.staff_id \
             WHERE p.online = 1 AND p.last_seen > $1 AND s.role = 'agent' \
               AND s.disabled_at IS NULL",
        )
        .bind(now_ms.saturating_sub(stale_after_ms))
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The staff ids of the agents [`Store::agents_online`] counts, the one online the
    /// longest first.
    /// Online agents with their own working hours (if any), longest online first.
    pub async fn online_agents_with_hours(
        &self,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<Vec<(i64, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT p.staff_id, s.working_hours FROM agent_presence p JOIN staff s \
             ON s.id = p.staff_id WHERE p.online = 1 AND p.last_seen > $1 AND s.role = 'agent' \
             AND s.disabled_at IS NULL ORDER BY p.since, p.staff_id",
        )
        .bind(now_ms.saturating_sub(stale_after_ms))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("staff_id")?, r.try_get("working_hours")?)))
            .collect()
    }

    /// Every enabled agent's own working hours (None: the desk's), for slot capacity.
    pub async fn agent_roster_hours(&self) -> Result<Vec<Option<String>>> {
        let rows = sqlx::query(
            "SELECT working_hours FROM staff WHERE role = 'agent' AND disabled_at IS NULL",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("working_hours")?))
            .collect()
    }

    /// Sets (or with None clears) a staff member's own working hours.
    pub async fn set_working_hours(&self, staff_id: i64, hours: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE staff SET working_hours = $1 WHERE id = $2")
            .bind(hours)
            .bind(staff_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn online_agents(&self, now_ms: i64, stale_after_ms: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT p.staff_id FROM agent_presence p JOIN staff s ON s.id = p.staff_id \
             WHERE p.online = 1 AND p.last_seen > $1 AND s.role = 'agent' \
               AND s.disabled_at IS NULL ORDER BY p.since, p.staff_id",
        )
        .bind(now_ms.saturating_sub(stale_after_ms))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("staff_id"))
            .collect::<Result<_, _>>()?)
    }
}
