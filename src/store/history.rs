//! Status moves: the status machine decides each step, the row is updated only if nobody
//! moved it since it was read (its version), and each step's history row is written in
//! the same transaction, with the webhook events it announces.

use super::chain::Wrote;
use super::{rollups, Backend, MoveError, Store, ROWS_PER_STATEMENT};
use crate::clock::now_ms;
use crate::domain::request::Request;
use crate::domain::status::{self, Actor, Event, SubStatus};
use crate::error::Result;
use sqlx::Row;

/// Fields a move may set beside the status (remarks, recording, meeting time).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub recording_link: Option<String>,
    pub meeting_schedule: Option<Option<i64>>,
    pub agent_remarks: Option<String>,
    pub auditor_remarks: Option<String>,
}
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub from_sub_status: Option<String>,
    pub to_sub_status: String,
    pub details: Option<String>,
}
/// The most requests one status update of [`Store::apply_each`] covers (its values are
/// written into the statement, no parameters).
const MOVES_PER_STATEMENT: usize = 1000;

impl Store {
    /// Applies `events` in order to `request` as one move: the status machine decides
    /// every step (an illegal step refuses the whole move), the row is updated only if
    /// nobody moved it since it was read (its version), and one history row per step is
    /// written in the same transaction. Returns the request as it now is.
    pub async fn apply(
        &self,
        request: &Request,
        events: &[Event],
        actor: Actor,
        details: Option<&serde_json::Value>,
        changes: &Changes,
    ) -> Result<Request, MoveError> {
        let mut tx = self.write.begin().await?;
        let moved = self
            .apply_in(&mut tx, request, events, actor, details, changes)
            .await?;
        close_steps_left(&mut tx, &[(request, &moved)]).await?;
        self.seal(&mut tx, &[request.id], Wrote::HISTORY | Wrote::STEPS)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Applies one `event` to each request, all in one transaction (one commit for the
    /// lot, as the expiry worker needs for many links at once), with a few statements for
    /// the lot: an update guarded on each row's version, then the history rows and
    /// events of the requests it moved. A request that moved meanwhile, or for which the
    /// event is not legal, is left as it is and reported in its slot; any database error
    /// undoes the whole batch.
    pub async fn apply_each(
        &self,
        requests: &[Request],
        event: Event,
        actor: Actor,
    ) -> Result<Vec<Result<Request, MoveError>>, sqlx::Error> {
        use std::fmt::Write;
        let mut out: Vec<Result<Request, MoveError>> = requests
            .iter()
            .map(|request| {
                let to = status::next(request.sub_status, event)?;
                let mut moved = request.clone();
                moved.sub_status = to;
                moved.version += 1;
                moved.event_seq += 1;
                Ok(moved)
            })
            .collect();
        let mut tx = self.write.begin().await?;
        let now = now_ms();
        if self.backend == Backend::Postgres {
            // Lock the rows in id order first, the same in every process: two processes
            // expiring the same links (due at one instant) otherwise lock them in plan
            // order and can deadlock (seen with bench/scale: `deadlock detected`, the
            // batch undone and retried).
            let mut ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
            ids.sort_unstable();
            for chunk in ids.chunks(MOVES_PER_STATEMENT) {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let sql = format!(
                    "SELECT id FROM requests WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    list.join(", ")
                );
                sqlx::query(&sql)
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await?;
            }
        }
        // One update per target state (an event may lead different states to different
        // ones), each over at most MOVES_PER_STATEMENT rows.
        let mut targets: Vec<SubStatus> = out
            .iter()
            .filter_map(|o| o.as_ref().ok().map(|m| m.sub_status))
            .collect();
        targets.sort_by_key(|t| t.as_str());
        targets.dedup();
        let mut won = std::collections::HashSet::new();
        for to in targets {
            let slots: Vec<usize> = (0..requests.len())
                .filter(|&i| matches!(&out[i], Ok(m) if m.sub_status == to))
                .collect();
            for chunk in slots.chunks(MOVES_PER_STATEMENT) {
                // Ids and versions are numbers from the database: safe to write into the
                // statement. A row moves only at the version it was read at.
                let mut ids = String::new();
                let mut versions = String::new();
                for (n, &i) in chunk.iter().enumerate() {
                    let r = &requests[i];
                    let sep = if n == 0 { "" } else { ", " };
                    let _ = write!(ids, "{sep}{}", r.id);
                    let _ = write!(versions, "{sep}({}, {})", r.id, r.version);
                }
                // `id IN` finds the rows by key; the pairs (a lookup, not a scan of the
                // list per row) keep those still at the version read.
                let sql = format!(
                    "UPDATE requests SET status = $1, sub_status = $2, version = version + 1, \
                     updated_at = $3, event_seq = event_seq + 1 \
                     WHERE id IN ({ids}) AND (id, version) IN (VALUES {versions}) RETURNING id"
                );
                let rows = sqlx::query(&sql)
                    .persistent(false)
                    .bind(to.status().as_str())
                    .bind(to.as_str())
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    won.insert(row.try_get::<i64, _>("id")?);
                }
            }
        }
        for (slot, request) in out.iter_mut().zip(requests) {
            if slot.is_ok() && !won.contains(&request.id) {
                *slot = Err(MoveError::Lost);
            }
        }
        let moved: Vec<(&Request, &Request)> = requests
            .iter()
            .zip(&out)
            .filter_map(|(from, to)| Some((from, to.as_ref().ok()?)))
            .collect();
        for chunk in moved.chunks(ROWS_PER_STATEMENT) {
            // $1 time, $2 actor, $3 event; then five values per row.
            let mut sql = String::from(
                "INSERT INTO history (request_id, at, actor, event, from_status, \
                 from_sub_status, to_status, to_sub_status, details) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 4 + 5 * i;
                let _ = write!(
                    sql,
                    "{}(${}, $1, $2, $3, ${}, ${}, ${}, ${}, NULL)",
                    if i == 0 { "" } else { ", " },
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4
                );
            }
            let mut query = sqlx::query(&sql)
                .persistent(chunk.len() == ROWS_PER_STATEMENT)
                .bind(now)
                .bind(actor.as_str())
                .bind(event.as_str());
            for (from, to) in chunk {
                query = query
                    .bind(from.id)
                    .bind(from.sub_status.status().as_str())
                    .bind(from.sub_status.as_str())
                    .bind(to.sub_status.status().as_str())
                    .bind(to.sub_status.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        let counted: Vec<rollups::Counted> = moved
            .iter()
            .map(|(from, to)| rollups::Counted {
                request_id: from.id,
                merchant_id: from.merchant_id,
                created_at: from.created_at,
                event: event.as_str(),
                to_sub_status: to.sub_status.as_str(),
            })
            .collect();
        rollups::count_events(&mut tx, &counted).await?;
        close_steps_left(&mut tx, &moved).await?;
        let events: Vec<(&Request, i64)> =
            moved.iter().map(|(_, to)| (*to, to.event_seq)).collect();
        self.write_events_of(&mut tx, &events, now).await?;
        let ids: Vec<i64> = moved.iter().map(|(from, _)| from.id).collect();
        self.seal(&mut tx, &ids, Wrote::HISTORY | Wrote::STEPS)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The statements of one move inside `tx`; nothing is written when it is illegal or
    /// lost.
    pub(super) async fn apply_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request: &Request,
        events: &[Event],
        actor: Actor,
        details: Option<&serde_json::Value>,
        changes: &Changes,
    ) -> Result<Request, MoveError> {
        let mut steps = Vec::with_capacity(events.len());
        let mut state = request.sub_status;
        for &event in events {
            let to = status::next(state, event)?;
            steps.push((event, state, to));
            state = to;
        }
        let now = now_ms();
        let details = details.map(|d| d.to_string());
        let updated = sqlx::query(
            "UPDATE requests SET status = $1, sub_status = $2, version = version + 1, \
             updated_at = $3, recording_link = COALESCE($4, recording_link), \
             meeting_schedule = CASE WHEN $5 = 1 THEN $6 ELSE meeting_schedule END, \
             agent_remarks = COALESCE($7, agent_remarks), \
             auditor_remarks = COALESCE($8, auditor_remarks), event_seq = event_seq + $11 \
             WHERE id = $9 AND version = $10",
        )
        .bind(state.status().as_str())
        .bind(state.as_str())
        .bind(now)
        .bind(&changes.recording_link)
        .bind(i64::from(changes.meeting_schedule.is_some()))
        .bind(changes.meeting_schedule.flatten())
        .bind(&changes.agent_remarks)
        .bind(&changes.auditor_remarks)
        .bind(request.id)
        .bind(request.version)
        .bind(steps.len() as i64)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(MoveError::Lost);
        }
        for (event, from, to) in &steps {
            sqlx::query(
                "INSERT INTO history (request_id, at, actor, event, from_status, from_sub_status, \
                 to_status, to_sub_status, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(request.id)
            .bind(now)
            .bind(actor.as_str())
            .bind(event.as_str())
            .bind(from.status().as_str())
            .bind(from.as_str())
            .bind(to.status().as_str())
            .bind(to.as_str())
            .bind(&details)
            .execute(&mut **tx)
            .await?;
        }
        let counted: Vec<rollups::Counted> = steps
            .iter()
            .map(|(event, _, to)| rollups::Counted {
                request_id: request.id,
                merchant_id: request.merchant_id,
                created_at: request.created_at,
                event: event.as_str(),
                to_sub_status: to.as_str(),
            })
            .collect();
        rollups::count_events(tx, &counted).await?;
        let mut moved = request.clone();
        moved.sub_status = state;
        moved.version += 1;
        moved.event_seq += steps.len() as i64;
        if let Some(link) = &changes.recording_link {
            moved.recording_link = Some(link.clone());
        }
        if let Some(schedule) = changes.meeting_schedule {
            moved.meeting_schedule = schedule;
        }
        if let Some(remarks) = &changes.agent_remarks {
            moved.agent_remarks = Some(remarks.clone());
        }
        if let Some(remarks) = &changes.auditor_remarks {
            moved.auditor_remarks = Some(remarks.clone());
        }
        // One event per step, each showing the request as that step left it (the
        // remarks and times of this move appear with its last step).
        let snapshots: Vec<Request> = steps
            .iter()
            .enumerate()
            .map(|(i, (_, _, to))| {
                if i + 1 == steps.len() {
                    moved.clone()
                } else {
                    Request {
                        sub_status: *to,
                        ..request.clone()
                    }
                }
            })
            .collect();
        self.write_events(tx, &snapshots, request.event_seq + 1, now)
            .await?;
        Ok(moved)
    }

    pub async fn history(&self, request_id: i64) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT at, actor, event, from_sub_status, to_sub_status, details FROM history \
             WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryRow {
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    event: row.try_get("event")?,
                    from_sub_status: row.try_get("from_sub_status")?,
                    to_sub_status: row.try_get("to_sub_status")?,
                    details: row.try_get("details")?,
                })
            })
            .collect()
    }
}

/// The journey step a sub-status holds the customer at, for the steps the customer does
/// not end themselves: the queue ends when an agent is given (or none is), the call when
/// it ends, drops or is turned down. The customer's own steps are closed by the moves
/// that end them, with their evidence.
fn step_ended_by_others(sub: SubStatus) -> Option<&'static str> {
    match sub {
        SubStatus::UserQueued | SubStatus::ScheduledUserQueued => Some("queue"),
        SubStatus::AgentAssignedToUser | SubStatus::UserAcceptedMeeting => Some("call"),
        _ => None,
    }
}

/// Ends the open attempt at the queue or call step of each request that a move (from,
/// to) took out of it, with the sub-status it led to as the outcome, so the journey's
/// record has an end for every step shown. Run after a move's own side writes: one that
/// closes the step itself (booking a slot from the queue) has left nothing open here.
pub(super) async fn close_steps_left(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    moves: &[(&Request, &Request)],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for (from, to) in moves {
        let Some(step) = step_ended_by_others(from.sub_status) else {
            continue;
        };
        if step_ended_by_others(to.sub_status) == Some(step) {
            continue;
        }
        sqlx::query(
            "UPDATE journey_steps SET ended_at = $1, outcome = $2 \
             WHERE request_id = $3 AND step = $4 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(to.sub_status.as_str())
        .bind(from.id)
        .bind(step)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
