//! The admin's reports: the funnel, the failure reasons, the time percentiles, the agents
//! and the live board, each one or a few aggregate queries over indexed columns; and the
//! log of agents' time online the agents report rests on.
//!
//! Days are India Standard Time days (UTC+05:30, no daylight saving), numbered as whole
//! days since 1970-01-01 IST: `(t + IST) / DAY` in integer arithmetic, the same on both
//! backends. PostgreSQL sums BIGINTs as NUMERIC, which the `Any` driver cannot read, so
//! sums of times are cast back to BIGINT. Percentiles are nearest-rank ones taken with window functions, which SQLite
//! and PostgreSQL both have, so one query serves both.

use super::Store;
use crate::error::Result;
use serde::Serialize;
use sqlx::Row;

/// India Standard Time's offset from UTC, in ms.
pub const IST_OFFSET_MS: i64 = 19_800_000;
pub const DAY_MS: i64 = 86_400_000;

/// `(t + IST) / DAY`: the IST day of a time column.
pub(super) fn ist_day(column: &str) -> String {
    format!("(({column} + {IST_OFFSET_MS}) / {DAY_MS})")
}

/// The span a report covers: `[from_ms, to_ms)`, and maybe one merchant.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
    pub merchant: Option<i64>,
}

impl Range {
    /// `AND <alias>.merchant_id = $3` when the range is for one merchant.
    fn merchant_clause(&self, alias: &str) -> String {
        match self.merchant {
            Some(_) => format!(" AND {alias}.merchant_id = $3"),
            None => String::new(),
        }
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let query = query.bind(self.from_ms).bind(self.to_ms);
        match self.merchant {
            Some(m) => query.bind(m),
            None => query,
        }
    }
}

/// One day of one merchant's requests (by the day they were created): how many reached
/// each stage of the journey.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FunnelRow {
    pub day: i64,
    pub merchant_id: i64,
    pub merchant: String,
    pub created: i64,
    pub opened: i64,
    pub aadhaar_passed: i64,
    pub aadhaar_failed: i64,
    pub ip_passed: i64,
    pub ip_failed: i64,
    pub location_passed: i64,
    pub location_failed: i64,
    pub devices_passed: i64,
    pub devices_failed: i64,
    pub queued: i64,
    pub call: i64,
    pub agent_approved: i64,
    pub agent_rejected: i64,
    pub agent_unable: i64,
    pub auditor_approved: i64,
    pub auditor_rejected: i64,
    pub expired: i64,
}

/// The funnel's stages read from history: (column, events that mark it), for the
/// recomputation the roll-ups are checked against (rollups/mod.rs has them with their bits).
const FUNNEL_EVENTS: &[(&str, &str)] = &[
    ("aadhaar_passed", "'aadhaar_verified'"),
    (
        "aadhaar_failed",
        "'aadhaar_failed', 'aadhaar_session_expired'",
    ),
    ("ip_passed", "'ip_verified'"),
    ("ip_failed", "'proxy_detected', 'ip_outside_india'"),
    ("location_passed", "'location_verified'"),
    (
        "location_failed",
        "'location_outside_india', 'location_permission_denied'",
    ),
    ("devices_passed", "'device_check_passed'"),
    (
        "devices_failed",
        "'audio_check_failed', 'video_check_failed'",
    ),
    ("queued", "'queued', 'scheduled_arrived'"),
    ("call", "'invite_accepted'"),
    ("agent_approved", "'agent_approved'"),
    ("agent_rejected", "'agent_rejected'"),
    ("agent_unable", "'agent_unable_to_validate'"),
    ("auditor_approved", "'auditor_approved'"),
    ("auditor_rejected", "'auditor_rejected'"),
    ("expired", "'link_expired'"),
];

/// The events that are a failed check, and the step each belongs to.
pub const FAILURE_EVENTS: &[(&str, &str)] = &[
    ("aadhaar_failed", "aadhaar"),
    ("aadhaar_session_expired", "aadhaar"),
    ("proxy_detected", "ip"),
    ("ip_outside_india", "ip"),
    ("location_outside_india", "location"),
    ("location_permission_denied", "location"),
    ("audio_check_failed", "devices"),
    ("video_check_failed", "devices"),
    ("check_technical_failure", "checks"),
];

/// Failed checks of one day's requests of one merchant, by step and reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureRow {
    pub day: i64,
    pub merchant_id: i64,
    pub merchant: String,
    pub step: String,
    pub reason: String,
    /// Failed attempts (a customer may fail a step more than once).
    pub failures: i64,
    /// Requests with at least one such failure.
    pub requests: i64,
}

/// One day's percentiles of one measure, in ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimesRow {
    pub day: i64,
    pub measure: String,
    pub count: i64,
    pub p50_ms: i64,
    pub p90_ms: i64,
}

/// One agent's work over the range.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentRow {
    pub agent_id: i64,
    pub agent: String,
    pub online_ms: i64,
    pub calls: i64,
    pub call_ms_total: i64,
    pub approved: i64,
    pub rejected: i64,
    pub unable: i64,
    pub audited: i64,
    pub reversed: i64,
}

/// The desk right now.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LiveRow {
    pub agents_in_call: i64,
    pub calls_in_progress: i64,
    pub invitations_ringing: i64,
}

impl Store {
    /// Runs a report query over `range`. On PostgreSQL it may run longer than the
    /// connections' usual statement timeout: over a large history a month's report reads
    /// millions of rows, and it only reads.
    async fn fetch_report(&self, sql: &str, range: &Range) -> Result<Vec<sqlx::any::AnyRow>> {
        let mut tx = self.read.begin().await?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SET LOCAL statement_timeout = '300s'")
                .execute(&mut *tx)
                .await?;
        }
        let rows = range.bind(sqlx::query(sql)).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The funnel of the requests created in the range, per IST day and merchant,
    /// recomputed from the history: what the daily roll-ups that [`Store::report_funnel`]
    /// reads must equal (it reads every event of every request: a check, not a report).
    pub async fn recompute_funnel(&self, range: &Range) -> Result<Vec<FunnelRow>> {
        let flags: Vec<String> = FUNNEL_EVENTS
            .iter()
            .map(|(column, events)| {
                format!("MAX(CASE WHEN h.event IN ({events}) THEN 1 ELSE 0 END) AS {column}")
            })
            .collect();
        let sums: Vec<String> = FUNNEL_EVENTS
            .iter()
            .map(|(column, _)| format!("SUM(f.{column}) AS {column}"))
            .collect();
        // Per request first (did it ever reach each stage?), then per day and merchant.
        let sql = format!(
            "SELECT f.day, f.merchant_id, m.name AS merchant, COUNT(*) AS created, \
               SUM(CASE WHEN EXISTS (SELECT 1 FROM journey_steps s WHERE s.request_id = f.id) \
                   THEN 1 ELSE 0 END) AS opened, {sums} \
             FROM (SELECT r.id, {day} AS day, r.merchant_id, {flags} \
                   FROM requests r JOIN history h ON h.request_id = r.id \
                   WHERE r.created_at >= $1 AND r.created_at < $2{merchant} \
                   GROUP BY r.id, r.created_at, r.merchant_id) f \
             JOIN merchants m ON m.id = f.merchant_id \
             GROUP BY f.day, f.merchant_id, m.name ORDER BY f.day, f.merchant_id",
            sums = sums.join(", "),
            day = ist_day("r.created_at"),
            flags = flags.join(", "),
            merchant = range.merchant_clause("r"),
        );
        let rows = self.fetch_report(&sql, range).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let n = |c: &str| -> Result<i64, sqlx::Error> { r.try_get::<i64, _>(c) };
            out.push(FunnelRow {
                day: n("day")?,
                merchant_id: n("merchant_id")?,
                merchant: r.try_get("merchant")?,
                created: n("created")?,
                opened: n("opened")?,
                aadhaar_passed: n("aadhaar_passed")?,
                aadhaar_failed: n("aadhaar_failed")?,
                ip_passed: n("ip_passed")?,
                ip_failed: n("ip_failed")?,
                location_passed: n("location_passed")?,
                location_failed: n("location_failed")?,
                devices_passed: n("devices_passed")?,
                devices_failed: n("devices_failed")?,
                queued: n("queued")?,
                call: n("call")?,
                agent_approved: n("agent_approved")?,
                agent_rejected: n("agent_rejected")?,
                agent_unable: n("agent_unable")?,
                auditor_approved: n("auditor_approved")?,
                auditor_rejected: n("auditor_rejected")?,
                expired: n("expired")?,
            });
        }
        Ok(out)
    }

    /// The failed checks of the requests created in the range, recomputed from the
    /// history: what [`Store::report_failures`] must equal.
    pub async fn recompute_failures(&self, range: &Range) -> Result<Vec<FailureRow>> {
        let events: Vec<String> = FAILURE_EVENTS
            .iter()
            .map(|(e, _)| format!("'{e}'"))
            .collect();
        let sql = format!(
            "SELECT {day} AS day, r.merchant_id, m.name AS merchant, h.event, \
               h.to_sub_status AS reason, COUNT(*) AS failures, \
               COUNT(DISTINCT h.request_id) AS requests \
             FROM requests r JOIN history h ON h.request_id = r.id \
             JOIN merchants m ON m.id = r.merchant_id \
             WHERE r.created_at >= $1 AND r.created_at < $2{merchant} \
               AND h.event IN ({events}) \
             GROUP BY {day}, r.merchant_id, m.name, h.event, h.to_sub_status \
             ORDER BY 1, 2, 4, 5",
            day = ist_day("r.created_at"),
            merchant = range.merchant_clause("r"),
            events = events.join(", "),
        );
        let rows = self.fetch_report(&sql, range).await?;
        failure_rows(&rows)
    }

    /// The times report ([`Store::report_times`]) recomputed from the calls and audits
    /// themselves, with the percentiles rounded as the roll-up's buckets are: what the
    /// roll-up must equal (it ranks every call of the range: a check, not a report).
    /// Per IST day, the count, median and 90th percentile (nearest rank) of four times:
    /// link to call (request created → each answered call, by the call's day), queue
    /// wait (joining the queue → the agent's invitation, by the invitation's day), call
    /// length (answered → ended, by the call's day) and the review turnaround (the
    /// agent's decision → the auditor's, by the auditor's day).
    pub async fn recompute_times(&self, range: &Range) -> Result<Vec<TimesRow>> {
        use super::rollups::work::bucket;
        let merchant = range.merchant_clause("r");
        // Only link to call needs the request itself; the others join it for a merchant.
        let join = |on: &str| match range.merchant {
            Some(_) => format!(" JOIN requests r ON r.id = {on}"),
            None => String::new(),
        };
        let sql = format!(
            "WITH v AS ( \
               SELECT 'link_to_call' AS measure, {accepted_day} AS day, \
                      c.accepted_at - r.created_at AS ms \
               FROM calls c JOIN requests r ON r.id = c.request_id \
               WHERE c.accepted_at >= $1 AND c.accepted_at < $2{merchant} \
               UNION ALL \
               SELECT 'queue_wait', {invited_day}, c.invited_at - q.enqueued_at \
               FROM calls c JOIN queue_entries q ON q.request_id = c.request_id{call_join} \
               WHERE c.invited_at >= $1 AND c.invited_at < $2 \
                 AND q.enqueued_at <= c.invited_at{merchant} \
               UNION ALL \
               SELECT 'call_length', {accepted_day}, c.ended_at - c.accepted_at \
               FROM calls c{call_join} \
               WHERE c.accepted_at >= $1 AND c.accepted_at < $2 \
                 AND c.ended_at IS NOT NULL{merchant} \
               UNION ALL \
               SELECT 'review_turnaround', {audit_day}, a.at - c.decided_at \
               FROM audits a JOIN calls c ON c.request_id = a.request_id{audit_join} \
               WHERE a.at >= $1 AND a.at < $2 AND c.decided_at IS NOT NULL{merchant} \
             ), ranked AS ( \
               SELECT measure, day, ms, \
                 ROW_NUMBER() OVER (PARTITION BY measure, day ORDER BY ms) AS rn, \
                 COUNT(*) OVER (PARTITION BY measure, day) AS n \
               FROM v) \
             SELECT day, measure, n, \
               MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN ms END) AS p50, \
               MAX(CASE WHEN rn = (n * 90 + 99) / 100 THEN ms END) AS p90 \
             FROM ranked GROUP BY day, measure, n ORDER BY day, measure",
            accepted_day = ist_day("c.accepted_at"),
            invited_day = ist_day("c.invited_at"),
            audit_day = ist_day("a.at"),
            call_join = join("c.request_id"),
            audit_join = join("a.request_id"),
        );
        let rows = self.fetch_report(&sql, range).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(TimesRow {
                day: r.try_get("day")?,
                measure: r.try_get("measure")?,
                count: r.try_get("n")?,
                p50_ms: bucket(r.try_get("p50")?),
                p90_ms: bucket(r.try_get("p90")?),
            });
        }
        Ok(out)
    }

    /// Every agent who was online or had a call or a decision in the range: time online
    /// (clipped to the range), answered calls and their total length (by answer time),
    /// decisions (by decision time), and how many of those decisions an auditor reviewed
    /// and overturned; the counts from the daily roll-up.
    pub async fn report_agents(&self, range: &Range) -> Result<Vec<AgentRow>> {
        let agents = self.agent_counts(range).await?;
        self.agents_with_presence(range, agents).await
    }

    /// The agents report with its counts taken from the calls and audits themselves:
    /// what [`Store::report_agents`] must equal.
    pub async fn recompute_agents(&self, range: &Range) -> Result<Vec<AgentRow>> {
        let (from, to) = (range.from_ms, range.to_ms);
        let mut agents: std::collections::BTreeMap<i64, AgentRow> = Default::default();
        let calls = sqlx::query(
            "SELECT agent_id, COUNT(*) AS calls, \
               CAST(SUM(CASE WHEN ended_at IS NULL THEN 0 ELSE ended_at - accepted_at END) \
                    AS BIGINT) AS ms \
             FROM calls WHERE accepted_at >= $1 AND accepted_at < $2 GROUP BY agent_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        for r in &calls {
            let row = agents.entry(r.try_get("agent_id")?).or_default();
            row.calls = r.try_get("calls")?;
            row.call_ms_total = r.try_get("ms")?;
        }
        let decisions = sqlx::query(
            "SELECT c.agent_id, \
               SUM(CASE WHEN c.decision = 'approved' THEN 1 ELSE 0 END) AS approved, \
               SUM(CASE WHEN c.decision = 'rejected' THEN 1 ELSE 0 END) AS rejected, \
               SUM(CASE WHEN c.decision = 'unable' THEN 1 ELSE 0 END) AS unable, \
               SUM(CASE WHEN a.id IS NOT NULL AND c.decision IN ('approved', 'rejected') \
                   THEN 1 ELSE 0 END) AS audited, \
               SUM(CASE WHEN c.decision IN ('approved', 'rejected') AND a.decision <> c.decision \
                   THEN 1 ELSE 0 END) AS reversed \
             FROM calls c LEFT JOIN audits a ON a.request_id = c.request_id \
             WHERE c.decided_at >= $1 AND c.decided_at < $2 GROUP BY c.agent_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        for r in &decisions {
            let row = agents.entry(r.try_get("agent_id")?).or_default();
            row.approved = r.try_get("approved")?;
            row.rejected = r.try_get("rejected")?;
            row.unable = r.try_get("unable")?;
            row.audited = r.try_get("audited")?;
            row.reversed = r.try_get("reversed")?;
        }
        self.agents_with_presence(range, agents).await
    }

    /// The agents' rows with their time online (clipped to the range) and their names.
    async fn agents_with_presence(
        &self,
        range: &Range,
        mut agents: std::collections::BTreeMap<i64, AgentRow>,
    ) -> Result<Vec<AgentRow>> {
        let (from, to) = (range.from_ms, range.to_ms);
        let online = sqlx::query(
            "SELECT staff_id, CAST(SUM( \
               (CASE WHEN COALESCE(ended_at, last_seen) < $2 \
                     THEN COALESCE(ended_at, last_seen) ELSE $2 END) \
               - (CASE WHEN started_at > $1 THEN started_at ELSE $1 END)) AS BIGINT) AS ms \
             FROM presence_log WHERE started_at < $2 AND COALESCE(ended_at, last_seen) > $1 \
             GROUP BY staff_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        for r in &online {
            let id: i64 = r.try_get("staff_id")?;
            agents.entry(id).or_default().online_ms = r.try_get("ms")?;
        }
        if agents.is_empty() {
            return Ok(Vec::new());
        }
        // The ids are numbers read from the database, so they go into the text as such.
        let ids: Vec<String> = agents.keys().map(i64::to_string).collect();
        let names = sqlx::query(&format!(
            "SELECT id, username FROM staff WHERE id IN ({})",
            ids.join(", ")
        ))
        .fetch_all(&self.read)
        .await?;
        for r in &names {
            let id: i64 = r.try_get("id")?;
            if let Some(row) = agents.get_mut(&id) {
                row.agent = r.try_get("username")?;
            }
        }
        let mut out: Vec<AgentRow> = agents
            .into_iter()
            .map(|(id, mut row)| {
                row.agent_id = id;
                row
            })
            .collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent).then(a.agent_id.cmp(&b.agent_id)));
        Ok(out)
    }

    /// The calls going on now and the agents on them.
    pub async fn report_live(&self) -> Result<LiveRow> {
        let r = sqlx::query(
            "SELECT COUNT(DISTINCT agent_id) AS agents, \
               SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END) AS active, \
               SUM(CASE WHEN state = 'invited' THEN 1 ELSE 0 END) AS invited \
             FROM calls WHERE state IN ('invited', 'active')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(LiveRow {
            agents_in_call: r.try_get("agents")?,
            calls_in_progress: r.try_get::<Option<i64>, _>("active")?.unwrap_or(0),
            invitations_ringing: r.try_get::<Option<i64>, _>("invited")?.unwrap_or(0),
        })
    }

    /// Whether merchant `id` exists.
    pub async fn merchant_exists(&self, id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM merchants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    /// Extends the agent's current stretch online to `now` (a heartbeat).
    pub(super) async fn log_heartbeat(&self, staff_id: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE presence_log SET last_seen = $1 WHERE staff_id = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(staff_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

/// Going online closes any stretch left open (at its last heartbeat: the agent was gone
/// since) and opens a new one; going offline closes the open one at `now`.
pub(super) async fn log_presence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    staff_id: i64,
    online: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    if !online {
        return log_offline(tx, staff_id, now).await;
    }
    sqlx::query(
        "UPDATE presence_log SET ended_at = last_seen WHERE staff_id = $1 AND ended_at IS NULL",
    )
    .bind(staff_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO presence_log (staff_id, started_at, last_seen) VALUES ($1, $2, $2)")
        .bind(staff_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Closes the agent's open stretch online at `now`.
pub(super) async fn log_offline(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    staff_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE presence_log SET ended_at = $1, last_seen = $1 \
         WHERE staff_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(staff_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Failure rows as read (day, merchant_id, merchant, event, reason, failures, requests),
/// with each event's step, in order of day, merchant, step and reason.
pub(super) fn failure_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<FailureRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let event: String = r.try_get("event")?;
        let step = FAILURE_EVENTS
            .iter()
            .find(|(e, _)| *e == event)
            .map_or("checks", |(_, s)| s);
        out.push(FailureRow {
            day: r.try_get("day")?,
            merchant_id: r.try_get("merchant_id")?,
            merchant: r.try_get("merchant")?,
            step: step.to_string(),
            reason: r.try_get("reason")?,
            failures: r.try_get("failures")?,
            requests: r.try_get("requests")?,
        });
    }
    // Failures of one step together, whichever event they came from.
    out.sort_by(|a, b| {
        (a.day, a.merchant_id, &a.step, &a.reason).cmp(&(b.day, b.merchant_id, &b.step, &b.reason))
    });
    Ok(out)
}
