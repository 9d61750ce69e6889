//! The customer journey's rows: consent, steps and their evidence, Aadhaar data, the live
//! queue, booked slots and the notification outbox. A journey move writes its status
//! change and these rows in one transaction ([`Store::apply_journey`]).

use super::chain::Wrote;
use super::notifications::insert_notifications;
use super::{Changes, MoveError, Request, Store};
use crate::clock::now_ms;
use crate::domain::status::{Actor, Event};
use crate::error::Result;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct StepRow {
    pub step: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub evidence: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub lang: String,
    pub text_sha256: String,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone)]
pub struct Booking {
    pub request_id: i64,
    pub slot_start: i64,
    pub state: String,
}

/// A row written beside a journey move, in its transaction.
#[derive(Debug, Clone)]
pub enum SideWrite {
    /// Ends the open attempt at `step` (or records one that opened and ended now).
    CloseStep {
        step: &'static str,
        outcome: &'static str,
        evidence: serde_json::Value,
    },
    /// The Aadhaar details (JSON) and photo (JPEG), sealed as they are written.
    Aadhaar {
        source: &'static str,
        details: String,
        photo: Option<Vec<u8>>,
    },
    /// Joins the live queue (0: came for a booked slot, 1: walk-in).
    Enqueue {
        priority: i64,
    },
    LeaveQueue,
    /// Takes a free seat of the slot; refused when all `capacity` seats are taken.
    Book {
        slot_start: i64,
        capacity: i64,
    },
    /// Ends the request's current booking as `cancelled`, `arrived` or `missed`.
    EndBooking {
        state: &'static str,
    },
    /// Queues a message of `kind` on every channel the merchant asked for.
    Notify {
        kind: &'static str,
    },
    Call {
        call_id: i64,
        update: super::CallUpdate,
    },
    /// The auditor's decision, kept beside the status move it makes.
    Audit {
        auditor_id: i64,
        decision: &'static str,
        remarks: String,
    },
}

impl Store {
    // ---- consent ----

    pub async fn insert_consent(
        &self,
        request_id: i64,
        lang: &str,
        text: &str,
        text_sha256: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO consents (request_id, lang, text, text_sha256, at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(request_id)
        .bind(lang)
        .bind(text)
        .bind(text_sha256)
        .bind(now)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut *tx)
        .await?;
        // Consent moves no status (the table has none for it); its step row still
        // records when it was shown and given, for the funnel.
        let evidence = serde_json::json!({ "lang": lang, "text_sha256": text_sha256 }).to_string();
        let closed = sqlx::query(
            "UPDATE journey_steps SET ended_at = $1, outcome = 'CONSENT_GIVEN', evidence = $2 \
             WHERE request_id = $3 AND step = 'consent' AND ended_at IS NULL",
        )
        .bind(now)
        .bind(&evidence)
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO journey_steps (request_id, step, started_at, ended_at, outcome, \
                 evidence) VALUES ($1, 'consent', $2, $2, 'CONSENT_GIVEN', $3)",
            )
            .bind(request_id)
            .bind(now)
            .bind(&evidence)
            .execute(&mut *tx)
            .await?;
            super::rollups::reach(&mut tx, request_id, "opened").await?;
        }
        self.seal(&mut tx, &[request_id], Wrote::CONSENTS | Wrote::STEPS)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn consent(&self, request_id: i64) -> Result<Option<ConsentRow>> {
        let row = sqlx::query(
            "SELECT lang, text_sha256, at, ip, user_agent FROM consents WHERE request_id = $1 \
             ORDER BY id LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|row| -> Result<ConsentRow, sqlx::Error> {
                Ok(ConsentRow {
                    lang: row.try_get("lang")?,
                    text_sha256: row.try_get("text_sha256")?,
                    at: row.try_get("at")?,
                    ip: row.try_get("ip")?,
                    user_agent: row.try_get("user_agent")?,
                })
            })
            .transpose()?)
    }

    /// Tries to change a stored consent; the database refuses (used by the test that
    /// consent cannot be altered).
    pub async fn try_alter_consent(&self, request_id: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE consents SET ip = '0.0.0.0' WHERE request_id = $1")
            .bind(request_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- steps ----

    /// Records that `step` was shown, unless an attempt at it is already open.
    pub async fn open_step(&self, request_id: i64, step: &str) -> Result<i64> {
        let open = sqlx::query(
            "SELECT started_at FROM journey_steps WHERE request_id = $1 AND step = $2 \
             AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(request_id)
        .bind(step)
        .fetch_optional(&self.write)
        .await?;
        if let Some(row) = open {
            return Ok(row.try_get("started_at")?);
        }
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO journey_steps (request_id, step, started_at) VALUES ($1, $2, $3)")
            .bind(request_id)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        super::rollups::reach(&mut tx, request_id, "opened").await?;
        tx.commit().await?;
        Ok(now)
    }

    pub async fn steps(&self, request_id: i64) -> Result<Vec<StepRow>> {
        let rows = sqlx::query(
            "SELECT step, started_at, ended_at, outcome, evidence FROM journey_steps \
             WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StepRow {
                    step: row.try_get("step")?,
                    started_at: row.try_get("started_at")?,
                    ended_at: row.try_get("ended_at")?,
                    outcome: row.try_get("outcome")?,
                    evidence: row.try_get("evidence")?,
                })
            })
            .collect()
    }

    /// The source and details (JSON) of the Aadhaar data a request rests on, opened.
    pub async fn aadhaar_kyc(&self, request_id: i64) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT source, details FROM aadhaar_kyc WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let details: String = row.try_get("details")?;
        Ok(Some((row.try_get("source")?, self.open_text(&details)?)))
    }

    // ---- the move ----

    /// Applies `events` to `request` (as [`Store::apply`]) and writes `sides` in the same
    /// transaction: either all of it is stored, or nothing.
    pub async fn apply_journey(
        &self,
        request: &Request,
        events: &[Event],
        actor: Actor,
        details: Option<&serde_json::Value>,
        changes: &Changes,
        sides: &[SideWrite],
    ) -> Result<Request, MoveError> {
        let mut tx = self.write.begin().await?;
        // Before any row is locked: a rotation holds the key's row while it re-seals.
        let sealing = sides.iter().any(|s| matches!(s, SideWrite::Aadhaar { .. }));
        if sealing && !self.key_is_current_in(&mut tx).await? {
            return Err(MoveError::KeyChanged);
        }
        let moved = self
            .apply_in(&mut tx, request, events, actor, details, changes)
            .await?;
        let now = now_ms();
        let mut wrote = Wrote::HISTORY;
        for side in sides {
            self.side_write(&mut tx, request, side, now).await?;
            wrote = wrote
                | match side {
                    SideWrite::CloseStep { .. } => Wrote::STEPS,
                    SideWrite::Audit { .. } => Wrote::AUDITS,
                    SideWrite::Call { .. } => Wrote::CALLS,
                    _ => Wrote::HISTORY,
                };
        }
        super::history::close_steps_left(&mut tx, &[(request, &moved)]).await?;
        self.seal(&mut tx, &[request.id], wrote | Wrote::STEPS)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn side_write(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request: &Request,
        side: &SideWrite,
        now: i64,
    ) -> Result<(), MoveError> {
        match side {
            SideWrite::CloseStep {
                step,
                outcome,
                evidence,
            } => {
                let closed = sqlx::query(
                    "UPDATE journey_steps SET ended_at = $1, outcome = $2, evidence = $3 \
                     WHERE request_id = $4 AND step = $5 AND ended_at IS NULL",
                )
                .bind(now)
                .bind(*outcome)
                .bind(evidence.to_string())
                .bind(request.id)
                .bind(*step)
                .execute(&mut **tx)
                .await?;
                if closed.rows_affected() == 0 {
                    sqlx::query(
                        "INSERT INTO journey_steps (request_id, step, started_at, ended_at, \
                         outcome, evidence) VALUES ($1, $2, $3, $3, $4, $5)",
                    )
                    .bind(request.id)
                    .bind(*step)
                    .bind(now)
                    .bind(*outcome)
                    .bind(evidence.to_string())
                    .execute(&mut **tx)
                    .await?;
                    super::rollups::reach(tx, request.id, "opened").await?;
                }
            }
            SideWrite::Aadhaar {
                source,
                details,
                photo,
            } => {
                sqlx::query("DELETE FROM aadhaar_kyc WHERE request_id = $1")
                    .bind(request.id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO aadhaar_kyc (request_id, source, details, photo, verified_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(request.id)
                .bind(*source)
                .bind(self.seal_text(details))
                .bind(photo.as_deref().map(|p| self.seal_bytes(p)))
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            SideWrite::Enqueue { priority } => {
                sqlx::query("DELETE FROM queue_entries WHERE request_id = $1")
                    .bind(request.id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO queue_entries (request_id, priority, enqueued_at, state) \
                     VALUES ($1, $2, $3, 'waiting')",
                )
                .bind(request.id)
                .bind(*priority)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            SideWrite::LeaveQueue => {
                sqlx::query(
                    "UPDATE queue_entries SET state = 'left' WHERE request_id = $1 \
                     AND state = 'waiting'",
                )
                .bind(request.id)
                .execute(&mut **tx)
                .await?;
            }
            SideWrite::Book {
                slot_start,
                capacity,
            } => {
                let taken = sqlx::query(
                    "SELECT seat FROM slot_bookings WHERE slot_start = $1 \
                     AND state IN ('booked', 'arrived')",
                )
                .bind(*slot_start)
                .fetch_all(&mut **tx)
                .await?;
                let taken: Vec<i64> = taken
                    .iter()
                    .map(|r| r.try_get("seat"))
                    .collect::<Result<_, _>>()?;
                let seat = (0..*capacity)
                    .find(|s| !taken.contains(s))
                    .ok_or(MoveError::Refused("slot_full"))?;
                // Two processes may pick the same seat at once: the unique index lets one
                // win; the other's whole move is undone and it may try again.
                let inserted = sqlx::query(
                    "INSERT INTO slot_bookings (request_id, slot_start, seat, state, created_at) \
                     VALUES ($1, $2, $3, 'booked', $4)",
                )
                .bind(request.id)
                .bind(*slot_start)
                .bind(seat)
                .bind(now)
                .execute(&mut **tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(err) if super::is_unique_violation(&err) => return Err(MoveError::Lost),
                    Err(err) => return Err(err.into()),
                }
            }
            SideWrite::EndBooking { state } => {
                sqlx::query(
                    "UPDATE slot_bookings SET state = $1 WHERE request_id = $2 AND state = 'booked'",
                )
                .bind(*state)
                .bind(request.id)
                .execute(&mut **tx)
                .await?;
            }
            SideWrite::Notify { kind } => {
                insert_notifications(
                    tx,
                    request.id,
                    request.notification_types.as_deref(),
                    kind,
                    now,
                )
                .await?;
            }
            SideWrite::Call { call_id, update } => {
                self.update_call_in(tx, *call_id, update, now).await?;
            }
            SideWrite::Audit {
                auditor_id,
                decision,
                remarks,
            } => {
                self.insert_audit_in(tx, request.id, *auditor_id, decision, remarks, now)
                    .await?;
            }
        }
        Ok(())
    }

    // ---- queue ----

    /// Everyone waiting, in the order they will be served. A request that moved on
    /// by any means (an agent took it, its link expired) is not waiting, whatever its
    /// queue row says.
    pub async fn queue_waiting(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT q.request_id FROM queue_entries q JOIN requests r ON r.id = q.request_id \
             WHERE q.state = 'waiting' AND r.sub_status IN ('USER_QUEUED', 'SCHEDULED_USER_QUEUED') \
             ORDER BY q.priority, q.enqueued_at, q.request_id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("request_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Lengths of the most recent calls, in seconds: from the customer accepting the
    /// invitation to the call's end.
    pub async fn recent_call_seconds(&self, limit: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT s.at AS started, MIN(e.at) AS ended FROM history s JOIN history e \
             ON e.request_id = s.request_id AND e.id > s.id AND e.event IN \
             ('user_ended_call', 'agent_ended_call', 'user_dropped_off', 'agent_dropped_off') \
             WHERE s.event = 'invite_accepted' GROUP BY s.id, s.at ORDER BY s.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let started: i64 = row.try_get("started")?;
            let ended: i64 = row.try_get("ended")?;
            out.push((ended - started) / 1000);
        }
        Ok(out)
    }

    // ---- slots ----

    /// How many seats are taken in each slot starting in `[from, until)`.
    pub async fn slot_loads(&self, from: i64, until: i64) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT slot_start, COUNT(*) AS n FROM slot_bookings WHERE slot_start >= $1 \
             AND slot_start < $2 AND state IN ('booked', 'arrived') GROUP BY slot_start",
        )
        .bind(from)
        .bind(until)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("slot_start")?, r.try_get("n")?)))
            .collect()
    }

    /// The request's current booking, if it has one.
    pub async fn booking(&self, request_id: i64) -> Result<Option<Booking>> {
        let row = sqlx::query(
            "SELECT request_id, slot_start, state FROM slot_bookings WHERE request_id = $1 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| -> Result<Booking, sqlx::Error> {
                Ok(Booking {
                    request_id: r.try_get("request_id")?,
                    slot_start: r.try_get("slot_start")?,
                    state: r.try_get("state")?,
                })
            })
            .transpose()?)
    }

    /// Ends a booking whose request has moved on without it (e.g. its link expired).
    pub async fn end_booking(&self, request_id: i64, state: &str) -> Result<()> {
        sqlx::query(
            "UPDATE slot_bookings SET state = $1 WHERE request_id = $2 AND state = 'booked'",
        )
        .bind(state)
        .bind(request_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn merchant_name(&self, merchant_id: i64) -> Result<String> {
        let row = sqlx::query("SELECT name FROM merchants WHERE id = $1")
            .bind(merchant_id)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("name")?)
    }

    /// Booked slots that started before `started_before` (the customer has not come).
    pub async fn missed_bookings(&self, started_before: i64, limit: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT request_id FROM slot_bookings WHERE state = 'booked' AND slot_start < $1 \
             ORDER BY slot_start LIMIT $2",
        )
        .bind(started_before)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("request_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Bookings starting before `starts_before` that have had no reminder yet; each is
    /// marked reminded and its reminder queued, in one transaction.
    pub async fn queue_reminders(&self, now: i64, starts_before: i64) -> Result<usize> {
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "SELECT b.id, b.request_id, r.notification_types FROM slot_bookings b \
             JOIN requests r ON r.id = b.request_id WHERE b.state = 'booked' \
             AND b.reminded_at IS NULL AND b.slot_start > $1 AND b.slot_start <= $2 LIMIT 500",
        )
        .bind(now)
        .bind(starts_before)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let request_id: i64 = row.try_get("request_id")?;
            let types: Option<String> = row.try_get("notification_types")?;
            insert_notifications(&mut tx, request_id, types.as_deref(), "slot_reminder", now)
                .await?;
            sqlx::query("UPDATE slot_bookings SET reminded_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}
