//! The daily roll-ups the times and agents reports read, kept in the same transaction as
//! the invitations, answers, ends, decisions and reviews they measure, so that a month's
//! report reads a few thousand small rows instead of every call of the month.
//!
//! **Times** are kept as a histogram per IST day, measure and merchant
//! (`report_times_daily`). A bucket is the time rounded to three significant digits, and to
//! at least 0.1 s: 0.1 s steps under 100 s, 1 s steps under 1,000 s, 10 s steps under
//! 10,000 s, and so on. Rounding never reorders two times, so the nearest-rank percentile
//! of the rounded times is the rounded percentile of the times: the report's p50 and p90
//! are exact to the precision it shows. Each measure falls on a day as the report has
//! always counted it: link to call and call length on the day the call was answered, queue
//! wait on the day of the invitation, review turnaround on the day of the review.
//!
//! **Agents**' calls, talk time, decisions and reviewed decisions are counted per IST day
//! and agent (`report_agents_daily`): calls and talk time on the day the call was
//! answered, decisions (and whether an auditor reviewed and overturned them) on the day
//! of the decision.
//!
//! Each counter is written by an upsert that adds to the row, from a query over the rows
//! just written (`{filter}` picks them); the rebuild runs the same queries over every row.

use super::super::reports::{ist_day, AgentRow, Range, TimesRow};
use super::super::Backend;
use super::bind_days;
use crate::error::Result;
use std::collections::BTreeMap;

/// The bucket of a time of `ms` milliseconds, as SQL (see the module's comment; a time
/// below zero, from the clocks of two processes disagreeing, counts as zero).
pub fn bucket_sql(ms: &str) -> String {
    let mut sql = format!("CASE WHEN {ms} < 0 THEN 0");
    let mut unit: i64 = 100;
    while unit < 10_000_000 {
        let limit = unit * 1000;
        let _ = std::fmt::Write::write_fmt(
            &mut sql,
            format_args!(
                " WHEN {ms} < {limit} THEN ({ms} + {half}) / {unit} * {unit}",
                half = unit / 2
            ),
        );
        unit *= 10;
    }
    sql + &format!(
        " ELSE ({ms} + {half}) / {unit} * {unit} END",
        half = unit / 2
    )
}

/// The same rounding as [`bucket_sql`], for the recomputation the roll-ups are checked
/// against.
pub fn bucket(ms: i64) -> i64 {
    if ms < 0 {
        return 0;
    }
    let mut unit: i64 = 100;
    while unit < 10_000_000 && ms >= unit * 1000 {
        unit *= 10;
    }
    (ms + unit / 2) / unit * unit
}

/// The times of one measure as `(day, merchant_id, ms)`, over the rows `filter` (an
/// `AND ...` clause, or nothing) picks.
fn times_source(measure: &str, filter: &str) -> String {
    match measure {
        "link_to_call" => format!(
            "SELECT {day} AS day, r.merchant_id AS merchant_id, \
               c.accepted_at - r.created_at AS ms \
             FROM calls c JOIN requests r ON r.id = c.request_id \
             WHERE c.accepted_at IS NOT NULL{filter}",
            day = ist_day("c.accepted_at"),
        ),
        "queue_wait" => format!(
            "SELECT {day} AS day, r.merchant_id AS merchant_id, \
               c.invited_at - q.enqueued_at AS ms \
             FROM calls c JOIN requests r ON r.id = c.request_id \
             JOIN queue_entries q ON q.request_id = c.request_id \
             WHERE q.enqueued_at <= c.invited_at{filter}",
            day = ist_day("c.invited_at"),
        ),
        "call_length" => format!(
            "SELECT {day} AS day, r.merchant_id AS merchant_id, \
               c.ended_at - c.accepted_at AS ms \
             FROM calls c JOIN requests r ON r.id = c.request_id \
             WHERE c.accepted_at IS NOT NULL AND c.ended_at IS NOT NULL{filter}",
            day = ist_day("c.accepted_at"),
        ),
        _ => format!(
            "SELECT {day} AS day, r.merchant_id AS merchant_id, a.at - c.decided_at AS ms \
             FROM audits a JOIN calls c ON c.request_id = a.request_id \
             JOIN requests r ON r.id = a.request_id \
             WHERE c.decided_at IS NOT NULL{filter}",
            day = ist_day("a.at"),
        ),
    }
}

pub const MEASURES: [&str; 4] = [
    "link_to_call",
    "queue_wait",
    "call_length",
    "review_turnaround",
];

/// Adds the times of `measure` over the rows `filter` picks to the histogram.
fn add_times(measure: &str, filter: &str, upsert: bool) -> String {
    let insert = format!(
        "INSERT INTO report_times_daily (day, measure, merchant_id, bucket, n) \
         SELECT day, '{measure}', merchant_id, bucket, COUNT(*) \
         FROM (SELECT day, merchant_id, {bucket} AS bucket FROM ({source}) s) b \
         GROUP BY day, merchant_id, bucket",
        bucket = bucket_sql("ms"),
        source = times_source(measure, filter),
    );
    if upsert {
        insert
            + " ON CONFLICT (day, measure, merchant_id, bucket) \
               DO UPDATE SET n = report_times_daily.n + excluded.n"
    } else {
        insert
    }
}

/// The counters of `report_agents_daily`, in column order.
const AGENT_COLUMNS: [&str; 7] = [
    "calls", "call_ms", "approved", "rejected", "unable", "audited", "reversed",
];

/// One kind of agent counter as `(day, agent_id, calls, call_ms, approved, rejected,
/// unable, audited, reversed)`, over the rows `filter` picks.
fn agents_source(kind: AgentCount, filter: &str) -> String {
    match kind {
        AgentCount::Answered => format!(
            "SELECT {day} AS day, c.agent_id, 1 AS calls, 0 AS call_ms, 0 AS approved, \
               0 AS rejected, 0 AS unable, 0 AS audited, 0 AS reversed \
             FROM calls c WHERE c.accepted_at IS NOT NULL{filter}",
            day = ist_day("c.accepted_at"),
        ),
        AgentCount::Ended => format!(
            "SELECT {day} AS day, c.agent_id, 0 AS calls, \
               c.ended_at - c.accepted_at AS call_ms, 0 AS approved, 0 AS rejected, \
               0 AS unable, 0 AS audited, 0 AS reversed \
             FROM calls c WHERE c.accepted_at IS NOT NULL AND c.ended_at IS NOT NULL{filter}",
            day = ist_day("c.accepted_at"),
        ),
        AgentCount::Decided => format!(
            "SELECT {day} AS day, c.agent_id, 0 AS calls, 0 AS call_ms, \
               CASE WHEN c.decision = 'approved' THEN 1 ELSE 0 END AS approved, \
               CASE WHEN c.decision = 'rejected' THEN 1 ELSE 0 END AS rejected, \
               CASE WHEN c.decision = 'unable' THEN 1 ELSE 0 END AS unable, 0 AS audited, \
               0 AS reversed \
             FROM calls c WHERE c.decided_at IS NOT NULL{filter}",
            day = ist_day("c.decided_at"),
        ),
        AgentCount::Reviewed => format!(
            "SELECT {day} AS day, c.agent_id, 0 AS calls, 0 AS call_ms, 0 AS approved, \
               0 AS rejected, 0 AS unable, 1 AS audited, \
               CASE WHEN a.decision <> c.decision THEN 1 ELSE 0 END AS reversed \
             FROM audits a JOIN calls c ON c.request_id = a.request_id \
             WHERE c.decided_at IS NOT NULL AND c.decision IN ('approved', 'rejected'){filter}",
            day = ist_day("c.decided_at"),
        ),
    }
}

#[derive(Clone, Copy)]
enum AgentCount {
    Answered,
    Ended,
    Decided,
    Reviewed,
}

fn add_agents(sources: &[String], upsert: bool) -> String {
    let columns = &AGENT_COLUMNS;
    let sums: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect();
    let insert = format!(
        "INSERT INTO report_agents_daily (day, agent_id, {columns}) \
         SELECT day, agent_id, {sums} FROM ({union}) s GROUP BY day, agent_id",
        columns = columns.join(", "),
        sums = sums.join(", "),
        union = sources.join(" UNION ALL "),
    );
    if !upsert {
        return insert;
    }
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = report_agents_daily.{c} + excluded.{c}"))
        .collect();
    format!(
        "{insert} ON CONFLICT (day, agent_id) DO UPDATE SET {}",
        set.join(", ")
    )
}

/// The statements that rebuild these roll-ups from the calls and audits (migration 0016
/// runs the same ones).
pub fn rebuild_statements(_backend: Backend) -> Vec<String> {
    let mut out = vec![
        "DELETE FROM report_times_daily".to_string(),
        "DELETE FROM report_agents_daily".to_string(),
    ];
    for measure in MEASURES {
        out.push(add_times(measure, "", false));
    }
    let all: Vec<String> = [
        AgentCount::Answered,
        AgentCount::Ended,
        AgentCount::Decided,
        AgentCount::Reviewed,
    ]
    .into_iter()
    .map(|kind| agents_source(kind, ""))
    .collect();
    out.push(add_agents(&all, false));
    out
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn run(tx: &mut Tx, sql: &str, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// An agent was given a call: its queue wait.
pub(in crate::store) async fn invited(tx: &mut Tx, call_id: i64) -> Result<(), sqlx::Error> {
    run(
        tx,
        &add_times("queue_wait", " AND c.id = $1", true),
        call_id,
    )
    .await
}

/// The customer answered: the link-to-call time and the agent's call.
pub(in crate::store) async fn answered(tx: &mut Tx, call_id: i64) -> Result<(), sqlx::Error> {
    run(
        tx,
        &add_times("link_to_call", " AND c.id = $1", true),
        call_id,
    )
    .await?;
    let source = agents_source(AgentCount::Answered, " AND c.id = $1");
    run(tx, &add_agents(&[source], true), call_id).await
}

/// The call ended (for the first time): its length and the agent's talk time.
pub(in crate::store) async fn ended(tx: &mut Tx, call_id: i64) -> Result<(), sqlx::Error> {
    run(
        tx,
        &add_times("call_length", " AND c.id = $1", true),
        call_id,
    )
    .await?;
    let source = agents_source(AgentCount::Ended, " AND c.id = $1");
    run(tx, &add_agents(&[source], true), call_id).await
}

/// The agent decided the call.
pub(in crate::store) async fn decided(tx: &mut Tx, call_id: i64) -> Result<(), sqlx::Error> {
    let source = agents_source(AgentCount::Decided, " AND c.id = $1");
    run(tx, &add_agents(&[source], true), call_id).await
}

/// An auditor reviewed the request (audit `audit_id`): the review turnaround, and the
/// reviewed (maybe overturned) decisions of its agents.
pub(in crate::store) async fn reviewed(tx: &mut Tx, audit_id: i64) -> Result<(), sqlx::Error> {
    run(
        tx,
        &add_times("review_turnaround", " AND a.id = $1", true),
        audit_id,
    )
    .await?;
    let source = agents_source(AgentCount::Reviewed, " AND a.id = $1");
    run(tx, &add_agents(&[source], true), audit_id).await
}

impl super::super::Store {
    /// Per IST day, the count, median and 90th percentile (nearest rank, to the buckets'
    /// precision) of the four times, from the histogram: the running count of each day's
    /// buckets reaches a percentile's rank at its bucket.
    pub async fn report_times(&self, range: &Range) -> Result<Vec<TimesRow>> {
        use sqlx::Row;
        let merchant = match range.merchant {
            Some(_) => " AND merchant_id = $3",
            None => "",
        };
        let sql = format!(
            "WITH h AS ( \
               SELECT day, measure, bucket, CAST(SUM(n) AS BIGINT) AS n \
               FROM report_times_daily WHERE day >= $1 AND day < $2{merchant} \
               GROUP BY day, measure, bucket), \
             c AS ( \
               SELECT day, measure, bucket, \
                 CAST(SUM(n) OVER (PARTITION BY day, measure ORDER BY bucket \
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS running, \
                 CAST(SUM(n) OVER (PARTITION BY day, measure) AS BIGINT) AS total \
               FROM h) \
             SELECT day, measure, total, \
               MIN(CASE WHEN running * 100 >= total * 50 THEN bucket END) AS p50, \
               MIN(CASE WHEN running * 100 >= total * 90 THEN bucket END) AS p90 \
             FROM c GROUP BY day, measure, total ORDER BY day, measure"
        );
        let rows = bind_days(range, sqlx::query(&sql))
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(TimesRow {
                day: r.try_get("day")?,
                measure: r.try_get("measure")?,
                count: r.try_get("total")?,
                p50_ms: r.try_get("p50")?,
                p90_ms: r.try_get("p90")?,
            });
        }
        Ok(out)
    }

    /// Each agent's calls, talk time, decisions and reviewed decisions over the range's
    /// days, from the daily roll-up.
    pub(in crate::store) async fn agent_counts(
        &self,
        range: &Range,
    ) -> Result<BTreeMap<i64, AgentRow>> {
        use sqlx::Row;
        let sums: Vec<String> = AGENT_COLUMNS
            .iter()
            .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
            .collect();
        let sql = format!(
            "SELECT agent_id, {} FROM report_agents_daily WHERE day >= $1 AND day < $2 \
             GROUP BY agent_id",
            sums.join(", ")
        );
        let days = Range {
            merchant: None,
            ..*range
        };
        let rows = bind_days(&days, sqlx::query(&sql))
            .fetch_all(&self.read)
            .await?;
        let mut out = BTreeMap::new();
        for r in &rows {
            out.insert(
                r.try_get("agent_id")?,
                AgentRow {
                    calls: r.try_get("calls")?,
                    call_ms_total: r.try_get("call_ms")?,
                    approved: r.try_get("approved")?,
                    rejected: r.try_get("rejected")?,
                    unable: r.try_get("unable")?,
                    audited: r.try_get("audited")?,
                    reversed: r.try_get("reversed")?,
                    ..AgentRow::default()
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_keep_three_digits_and_at_least_a_tenth_of_a_second() {
        assert_eq!(bucket(-5), 0);
        assert_eq!(bucket(49), 0);
        assert_eq!(bucket(50), 100);
        assert_eq!(bucket(12_345), 12_300);
        assert_eq!(bucket(99_949), 99_900);
        assert_eq!(bucket(99_950), 100_000);
        assert_eq!(bucket(123_456), 123_000);
        assert_eq!(bucket(7_654_321), 7_650_000);
        assert_eq!(bucket(98_765_432_100), 98_770_000_000);
        // Rounding never reorders two times.
        let mut last = 0;
        for ms in (0..200_000_000).step_by(997) {
            assert!(bucket(ms) >= last, "{ms}");
            last = bucket(ms);
        }
    }
}
