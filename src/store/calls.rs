//! Video calls, their captures and the auditors' reviews.

use super::{call_events, MoveError, Request, Store, REQUEST_COLUMNS};
use crate::clock::now_ms;
use crate::domain::status::{Actor, Event};
use crate::error::Result;
use crate::storage::{FileKey, StoredRecording};
use serde_json::json;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Call {
    pub id: i64,
    pub request_id: i64,
    pub agent_id: i64,
    pub state: String,
    pub invited_at: i64,
    pub accepted_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub liveness_code: String,
    pub liveness_result: Option<String>,
    pub questions: String,
    pub pan: Option<String>,
    pub customer_lost_at: Option<i64>,
    pub agent_lost_at: Option<i64>,
    pub recording_path: Option<String>,
    /// The recording's key, sealed under the master key, when the file is sealed (see
    /// [`Store::stored_recording`]).
    pub recording_key: Option<String>,
    pub recording_bytes: Option<i64>,
    pub duration_ms: Option<i64>,
    pub decision: Option<String>,
    pub remarks: Option<String>,
    pub decided_at: Option<i64>,
    /// JSON: both sides' quality summary, written when the call ends.
    pub quality: Option<String>,
    /// The relay node the call's media runs on (see `store::relay_nodes`).
    pub relay_node: Option<String>,
}

impl Call {
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "invited" | "active")
    }
}

/// A case in the auditor's work queue.
#[derive(Debug, Clone)]
pub struct ReviewCase {
    pub request: Request,
    pub customer_name: Option<String>,
    pub agent_id: Option<i64>,
    pub agent: Option<String>,
    /// The last call's length.
    pub call_ms: Option<i64>,
    /// Since when it has waited for an auditor (its last status move).
    pub waiting_since: i64,
}

/// A finished recording as its call row keeps it.
#[derive(Debug, Clone)]
pub struct KeptRecording {
    /// A local path or an `s3://` URL.
    pub location: String,
    /// Its key, when the file is sealed (stored sealed under the master key).
    pub key: Option<FileKey>,
    /// The plain WebM's size.
    pub bytes: i64,
    pub duration_ms: i64,
}

/// A change to a call, written in the transaction of the status move it goes with.
#[derive(Debug, Clone)]
pub enum CallUpdate {
    /// The customer accepted: the call is live on this relay node (None: no relay);
    /// neither side's media is connected yet.
    Accept { relay_node: Option<String> },
    /// The call is over (`declined`, `missed`, `ended` or `dropped`).
    End {
        state: &'static str,
        by: &'static str,
        recording: Option<KeptRecording>,
        /// JSON quality summary of both sides (None where the relay had no call).
        quality: Option<String>,
    },
    Decide {
        decision: &'static str,
        remarks: String,
    },
}

const CALL_COLUMNS: &str = "id, request_id, agent_id, state, invited_at, accepted_at, ended_at, \
     ended_by, liveness_code, liveness_result, questions, pan, customer_lost_at, agent_lost_at, \
     recording_path, recording_key, recording_bytes, duration_ms, decision, remarks, decided_at, \
     quality, relay_node";

fn call_from_row(r: &sqlx::any::AnyRow) -> Result<Call, sqlx::Error> {
    Ok(Call {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        agent_id: r.try_get("agent_id")?,
        state: r.try_get("state")?,
        invited_at: r.try_get("invited_at")?,
        accepted_at: r.try_get("accepted_at")?,
        ended_at: r.try_get("ended_at")?,
        ended_by: r.try_get("ended_by")?,
        liveness_code: r.try_get("liveness_code")?,
        liveness_result: r.try_get("liveness_result")?,
        questions: r.try_get("questions")?,
        pan: r.try_get("pan")?,
        customer_lost_at: r.try_get("customer_lost_at")?,
        agent_lost_at: r.try_get("agent_lost_at")?,
        recording_path: r.try_get("recording_path")?,
        recording_key: r.try_get("recording_key")?,
        recording_bytes: r.try_get("recording_bytes")?,
        duration_ms: r.try_get("duration_ms")?,
        decision: r.try_get("decision")?,
        remarks: r.try_get("remarks")?,
        decided_at: r.try_get("decided_at")?,
        quality: r.try_get("quality")?,
        relay_node: r.try_get("relay_node")?,
    })
}

/// Sets `column` (`ended_at` or `decided_at`) of the call if it is not set yet; whether
/// it was (so that a call is counted in the roll-ups once, however often it is updated).
async fn first_time(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    call_id: i64,
    column: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!("UPDATE calls SET {column} = $1 WHERE id = $2 AND {column} IS NULL");
    let set = sqlx::query(&sql)
        .bind(now)
        .bind(call_id)
        .execute(&mut **tx)
        .await?;
    Ok(set.rows_affected() == 1)
}

/// A call `c` still waiting for its agent's decision: it ended or dropped, nobody has
/// decided it, and its request has had no call since.
const UNDECIDED: &str = "c.state IN ('ended', 'dropped') AND c.decision IS NULL AND NOT EXISTS \
     (SELECT 1 FROM calls later WHERE later.request_id = c.request_id AND later.id > c.id)";

impl Store {
    /// Gives a waiting customer to an agent: AGENT_ASSIGNED_TO_USER, the queue row taken
    /// and the call created, in one transaction. `Lost` when the customer left the queue
    /// or the agent got another call meanwhile (another process was quicker).
    pub async fn assign_call(
        &self,
        request: &Request,
        agent_id: i64,
        liveness_code: &str,
        questions: &str,
    ) -> Result<(Request, Call), MoveError> {
        let mut tx = self.write.begin().await?;
        let details = serde_json::json!({ "agent_id": agent_id });
        let moved = self
            .apply_in(
                &mut tx,
                request,
                &[Event::AgentAssigned],
                Actor::System,
                Some(&details),
                &super::Changes::default(),
            )
            .await?;
        super::history::close_steps_left(&mut tx, &[(request, &moved)]).await?;
        let taken = sqlx::query(
            "UPDATE queue_entries SET state = 'assigned' WHERE request_id = $1 AND state = 'waiting'",
        )
        .bind(request.id)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Err(MoveError::Lost);
        }
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO calls (request_id, agent_id, state, invited_at, liveness_code, questions) \
             VALUES ($1, $2, 'invited', $3, $4, $5) RETURNING id",
        )
        .bind(request.id)
        .bind(agent_id)
        .bind(now)
        .bind(liveness_code)
        .bind(questions)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(err) if super::is_unique_violation(&err) => return Err(MoveError::Lost),
            Err(err) => return Err(err.into()),
        };
        super::rollups::work::invited(&mut tx, id).await?;
        super::cases::add_case_agent(&mut tx, agent_id, request.id, request.created_at).await?;
        self.seal(
            &mut tx,
            &[request.id],
            super::chain::Wrote::HISTORY | super::chain::Wrote::STEPS,
        )
        .await?;
        tx.commit().await?;
        let call = self
            .call(id)
            .await
            .map_err(|e| MoveError::Db(sqlx::Error::Protocol(e.to_string())))?
            .ok_or(MoveError::Lost)?;
        Ok((moved, call))
    }

    pub(super) async fn update_call_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        call_id: i64,
        update: &CallUpdate,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        match update {
            CallUpdate::Accept { relay_node } => {
                sqlx::query(
                    "UPDATE calls SET state = 'active', accepted_at = $1, customer_lost_at = $1, \
                     agent_lost_at = $1, relay_node = $3 WHERE id = $2",
                )
                .bind(now)
                .bind(call_id)
                .bind(relay_node)
                .execute(&mut **tx)
                .await?;
                call_events::insert_in(tx, call_id, now, "started", None).await?;
                super::rollups::work::answered(tx, call_id).await?;
            }
            CallUpdate::End {
                state,
                by,
                recording,
                quality,
            } => {
                let first = first_time(tx, call_id, "ended_at", now).await?;
                let (path, bytes, duration) = match recording {
                    Some(r) => (Some(r.location.clone()), Some(r.bytes), Some(r.duration_ms)),
                    None => (None, None, None),
                };
                let key = match recording.as_ref().and_then(|r| r.key.as_ref()) {
                    Some(key) => {
                        // Never seal under a key the database has left (a rotation).
                        if !self.key_is_current_in(tx).await? {
                            return Err(sqlx::Error::Protocol(
                                "the master key was rotated: restart this server".into(),
                            ));
                        }
                        Some(self.seal_bytes(key.as_bytes()))
                    }
                    None => None,
                };
                sqlx::query(
                    "UPDATE calls SET state = $1, ended_by = $2, ended_at = $3, \
                     recording_path = COALESCE($4, recording_path), \
                     recording_key = CASE WHEN $4 IS NULL THEN recording_key ELSE $9 END, \
                     recording_bytes = COALESCE($5, recording_bytes), \
                     duration_ms = COALESCE($6, duration_ms), quality = COALESCE($7, quality) \
                     WHERE id = $8",
                )
                .bind(*state)
                .bind(*by)
                .bind(now)
                .bind(path)
                .bind(bytes)
                .bind(duration)
                .bind(quality.clone())
                .bind(call_id)
                .bind(key)
                .execute(&mut **tx)
                .await?;
                let detail = json!({ "state": state, "by": by });
                call_events::insert_in(tx, call_id, now, "ended", Some(&detail)).await?;
                if first {
                    super::rollups::work::ended(tx, call_id).await?;
                }
            }
            CallUpdate::Decide { decision, remarks } => {
                let first = first_time(tx, call_id, "decided_at", now).await?;
                sqlx::query(
                    "UPDATE calls SET decision = $1, remarks = $2, decided_at = $3 WHERE id = $4",
                )
                .bind(*decision)
                .bind(remarks)
                .bind(now)
                .bind(call_id)
                .execute(&mut **tx)
                .await?;
                if first {
                    super::rollups::work::decided(tx, call_id).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn insert_audit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request_id: i64,
        auditor_id: i64,
        decision: &str,
        remarks: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO audits (request_id, auditor_id, decision, remarks, at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(request_id)
        .bind(auditor_id)
        .bind(decision)
        .bind(remarks)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        super::rollups::work::reviewed(tx, row.try_get("id")?).await
    }

    async fn fetch_calls(&self, sql: &str, binds: &[i64]) -> Result<Vec<Call>> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows.iter().map(call_from_row).collect::<Result<_, _>>()?)
    }

    /// Where the call's recording is kept and, when it is sealed, its key (opened with
    /// the master key).
    pub fn stored_recording(&self, call: &Call) -> Result<Option<StoredRecording>> {
        let Some(location) = call.recording_path.clone() else {
            return Ok(None);
        };
        let key = match &call.recording_key {
            None => None,
            Some(sealed) => Some(FileKey::from_bytes(&self.open_bytes(sealed)?).ok_or_else(
                || {
                    crate::error::Error::internal(anyhow::anyhow!(
                        "call {}'s recording key is not 32 bytes",
                        call.id
                    ))
                },
            )?),
        };
        Ok(Some(StoredRecording { location, key }))
    }

    pub async fn call(&self, id: i64) -> Result<Option<Call>> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        Ok(self.fetch_calls(&sql, &[id]).await?.pop())
    }

    /// The request's calls, oldest first.
    pub async fn calls_for_request(&self, request_id: i64) -> Result<Vec<Call>> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE request_id = $1 ORDER BY id");
        self.fetch_calls(&sql, &[request_id]).await
    }

    /// The agent's invited or active call.
    pub async fn live_call_for_agent(&self, agent_id: i64) -> Result<Option<Call>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE agent_id = $1 \
             AND state IN ('invited', 'active')"
        );
        Ok(self.fetch_calls(&sql, &[agent_id]).await?.pop())
    }

    /// The agent's most recent call that ended and still waits for a decision. A dropped
    /// call whose customer has since been given another call waits for nothing.
    pub async fn undecided_call_for_agent(&self, agent_id: i64) -> Result<Option<Call>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c WHERE agent_id = $1 AND {UNDECIDED} \
             ORDER BY id DESC LIMIT 1"
        );
        Ok(self.fetch_calls(&sql, &[agent_id]).await?.pop())
    }

    /// Agents in wrap-up and the request each is wrapping up: their latest undecided
    /// call of that request ended (or dropped) after `since`.
    pub async fn wrap_ups(&self, since: i64) -> Result<Vec<(i64, i64)>> {
        let sql =
            format!("SELECT agent_id, request_id FROM calls c WHERE {UNDECIDED} AND ended_at > $1");
        let rows = sqlx::query(&sql).bind(since).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent_id")?, r.try_get("request_id")?)))
            .collect()
    }

    /// Undecided calls whose wrap-up ended before `before` and that the staff audit does
    /// not record yet (each is recorded once, as `wrap_up_expired`).
    pub async fn expired_wrap_ups(&self, before: i64) -> Result<Vec<Call>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c WHERE {UNDECIDED} AND ended_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM staff_audit a WHERE a.action = 'wrap_up_expired' \
             AND a.target = CAST(c.id AS TEXT))"
        );
        self.fetch_calls(&sql, &[before]).await
    }

    /// Invitations sent before `before` that nobody answered.
    pub async fn unanswered_invites(&self, before: i64) -> Result<Vec<Call>> {
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM calls WHERE state = 'invited' AND invited_at < $1");
        self.fetch_calls(&sql, &[before]).await
    }

    /// Live calls where one side's media has been lost since before `before`, or whose
    /// relay node has beaten no heartbeat since before `node_dead_before` (the node is
    /// gone, and its media with it).
    pub async fn lost_calls(&self, before: i64, node_dead_before: i64) -> Result<Vec<Call>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c WHERE state = 'active' \
             AND (customer_lost_at < $1 OR agent_lost_at < $1 OR (relay_node IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM relay_nodes n WHERE n.id = c.relay_node \
             AND n.heartbeat_at >= $2)))"
        );
        self.fetch_calls(&sql, &[before, node_dead_before]).await
    }

    /// Ends a call whose request has moved on without it.
    pub async fn close_call(&self, call_id: i64, state: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let closed = sqlx::query(
            "UPDATE calls SET state = $1, ended_at = $2, ended_by = 'system' \
             WHERE id = $3 AND state IN ('invited', 'active')",
        )
        .bind(state)
        .bind(now)
        .bind(call_id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 1 {
            let detail = json!({ "state": state, "by": "system" });
            call_events::insert_in(&mut tx, call_id, now, "ended", Some(&detail)).await?;
            super::rollups::work::ended(&mut tx, call_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks a side's media as lost (`Some(time)`) or connected (`None`), and records
    /// the change as an event (a repeated mark changes nothing and records nothing).
    pub async fn set_media_lost(
        &self,
        call_id: i64,
        customer: bool,
        at: Option<i64>,
    ) -> Result<()> {
        let column = if customer {
            "customer_lost_at"
        } else {
            "agent_lost_at"
        };
        // Losing keeps the first moment it was lost; connecting clears it.
        let (sql, kind) = match at {
            Some(_) => (
                format!(
                    "UPDATE calls SET {column} = $1 WHERE id = $2 AND state = 'active' \
                     AND {column} IS NULL"
                ),
                "lost",
            ),
            None => (
                format!(
                    "UPDATE calls SET {column} = $1 WHERE id = $2 AND state = 'active' \
                     AND {column} IS NOT NULL"
                ),
                "connected",
            ),
        };
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(&sql)
            .bind(at)
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        if changed.rows_affected() == 1 {
            let side = json!({ "side": if customer { "customer" } else { "agent" } });
            let when = at.unwrap_or_else(now_ms);
            call_events::insert_in(&mut tx, call_id, when, kind, Some(&side)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Online agents without a live call, ready to take one.
    /// Online agents with no live call (those in wrap-up are the caller's to leave out:
    /// see [`Store::wrap_ups`]).
    pub async fn free_agents(&self, now: i64, stale_after_ms: i64) -> Result<Vec<i64>> {
        let online = self.online_agents(now, stale_after_ms).await?;
        let busy = sqlx::query("SELECT agent_id FROM calls WHERE state IN ('invited', 'active')")
            .fetch_all(&self.read)
            .await?;
        let busy: Vec<i64> = busy
            .iter()
            .map(|r| r.try_get("agent_id"))
            .collect::<Result<_, _>>()?;
        Ok(online.into_iter().filter(|a| !busy.contains(a)).collect())
    }

    /// Stores the agent's mark on question `index` (the whole list, as the call keeps it).
    pub async fn set_call_questions(
        &self,
        call_id: i64,
        questions: &str,
        index: usize,
        answer: &str,
    ) -> Result<()> {
        let detail = json!({ "index": index, "answer": answer });
        self.set_with_event(
            call_id,
            "questions",
            questions,
            "question_answered",
            &detail,
        )
        .await
    }

    pub async fn set_call_liveness(&self, call_id: i64, result: &str) -> Result<()> {
        let detail = json!({ "result": result });
        self.set_with_event(
            call_id,
            "liveness_result",
            result,
            "liveness_marked",
            &detail,
        )
        .await
    }

    pub async fn set_call_pan(&self, call_id: i64, pan: &str) -> Result<()> {
        self.set_with_event(call_id, "pan", pan, "pan_entered", &json!({}))
            .await
    }

    /// Sets one text column of a call and records the event, in one transaction.
    async fn set_with_event(
        &self,
        call_id: i64,
        column: &'static str,
        value: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(&format!("UPDATE calls SET {column} = $1 WHERE id = $2"))
            .bind(value)
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        call_events::insert_in(&mut tx, call_id, now_ms(), kind, Some(detail)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Cases waiting for an auditor, oldest first, leaving out those whose calls
    /// `auditor_id` took as agent (four eyes), with what the auditor's work queue shows:
    /// the customer's name, the agent and the length of the case's last call. `search`
    /// matches the verification id, the customer's name or the agent's username (a
    /// substring, any case); `agent_id` keeps one agent's cases.
    pub async fn review_queue(
        &self,
        auditor_id: i64,
        search: Option<&str>,
        agent_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ReviewCase>> {
        let pattern = search.map(|s| {
            let escaped = s
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        // Built once: the request columns, each qualified with the table they come from.
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
            "SELECT {REQUEST_COLUMNS_R}, u.name AS customer_name, s.username AS agent_username, \
             c.agent_id AS call_agent_id, c.duration_ms AS call_duration_ms, \
             c.accepted_at AS call_accepted_at, c.ended_at AS call_ended_at, r.updated_at AS waiting_since \
             FROM requests r \
             LEFT JOIN users u ON u.id = r.user_ref \
             LEFT JOIN calls c ON c.id = (SELECT MAX(id) FROM calls WHERE request_id = r.id) \
             LEFT JOIN staff s ON s.id = c.agent_id \
             WHERE r.status = 'AGENT_REVIEWED' \
             AND r.id NOT IN (SELECT request_id FROM calls WHERE agent_id = $1) \
             AND ($2 IS NULL OR LOWER(r.verification_id) LIKE $2 ESCAPE '\\' \
                  OR LOWER(COALESCE(u.name, '')) LIKE $2 ESCAPE '\\' \
                  OR LOWER(COALESCE(s.username, '')) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR c.agent_id = $3) \
             ORDER BY r.updated_at, r.id LIMIT $4",
            REQUEST_COLUMNS_R = REQUEST_COLUMNS
                .split(", ")
                .map(|c| format!("r.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
            )
        });
        let rows = sqlx::query(sql)
            .bind(auditor_id)
            .bind(pattern)
            .bind(agent_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let call_ms = match (
                    r.try_get::<Option<i64>, _>("call_duration_ms")?,
                    r.try_get::<Option<i64>, _>("call_accepted_at")?,
                    r.try_get::<Option<i64>, _>("call_ended_at")?,
                ) {
                    (Some(d), _, _) => Some(d),
                    (None, Some(a), Some(e)) => Some(e - a),
                    _ => None,
                };
                Ok(ReviewCase {
                    request: super::request_from_row(r)?,
                    customer_name: r.try_get("customer_name")?,
                    agent_id: r.try_get("call_agent_id")?,
                    agent: r.try_get("agent_username")?,
                    call_ms,
                    waiting_since: r.try_get("waiting_since")?,
                })
            })
            .collect()
    }
}
