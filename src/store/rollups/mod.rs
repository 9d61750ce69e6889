//! The daily roll-ups the funnel and failures reports read, kept in the same transaction
//! as the changes they count, so a month's report reads a few rows per day and merchant
//! instead of every history event of every request.
//!
//! Each request keeps in `requests.stages` a bit per funnel stage it has reached. A stage
//! is counted when a guarded update sets its bit (`WHERE stages & bit = 0`): of two moves
//! racing to the same stage only one sets it (PostgreSQL re-reads the row after the
//! first commits; SQLite has one writer), so a request counts once per stage. The counts
//! go to `report_funnel_daily` on the request's creation day (its cohort), spread over a
//! few slots so that concurrent writers of one day and merchant do not all wait on the
//! lock of one row: each transaction adds all its counts to one slot drawn at random (a
//! group commit of many creates then locks one row per stage, not every slot's). Failed
//! checks are counted per event and reason in `report_failures_daily`;
//! `request_failures` (one row per request, event and reason) says whether the request
//! was already counted in `requests`.
//!
//! The counter rows of a transaction are written in key order, so two transactions that
//! touch the same ones take their locks in the same order.

pub mod work;

use super::reports::{
    failure_rows, FailureRow, FunnelRow, Range, DAY_MS, FAILURE_EVENTS, IST_OFFSET_MS,
};
use super::Backend;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Counter rows per day, merchant and stage: enough that the writers of several
/// processes seldom draw the same one.
const SLOTS: i64 = 16;

/// The funnel's stages that requests reach, with their bit in `requests.stages` and the
/// history events that mark them (`opened` is a journey step being shown, not an event;
/// `created` is counted at creation and needs no bit).
pub const STAGES: &[(&str, i64, &[&str])] = &[
    ("opened", 1 << 1, &[]),
    ("aadhaar_passed", 1 << 2, &["aadhaar_verified"]),
    (
        "aadhaar_failed",
        1 << 3,
        &["aadhaar_failed", "aadhaar_session_expired"],
    ),
    ("ip_passed", 1 << 4, &["ip_verified"]),
    ("ip_failed", 1 << 5, &["proxy_detected", "ip_outside_india"]),
    ("location_passed", 1 << 6, &["location_verified"]),
    (
        "location_failed",
        1 << 7,
        &["location_outside_india", "location_permission_denied"],
    ),
    ("devices_passed", 1 << 8, &["device_check_passed"]),
    (
        "devices_failed",
        1 << 9,
        &["audio_check_failed", "video_check_failed"],
    ),
    ("queued", 1 << 10, &["queued", "scheduled_arrived"]),
    ("call", 1 << 11, &["invite_accepted"]),
    ("agent_approved", 1 << 12, &["agent_approved"]),
    ("agent_rejected", 1 << 13, &["agent_rejected"]),
    ("agent_unable", 1 << 14, &["agent_unable_to_validate"]),
    ("auditor_approved", 1 << 15, &["auditor_approved"]),
    ("auditor_rejected", 1 << 16, &["auditor_rejected"]),
    ("expired", 1 << 17, &["link_expired"]),
];

/// The stage an event marks, if any, and its bit.
pub fn stage_of_event(event: &str) -> Option<(&'static str, i64)> {
    STAGES
        .iter()
        .find(|(_, _, events)| events.contains(&event))
        .map(|(stage, bit, _)| (*stage, *bit))
}

fn bit_of(stage: &str) -> i64 {
    STAGES
        .iter()
        .find(|(s, _, _)| *s == stage)
        .map_or(0, |(_, bit, _)| *bit)
}

/// The IST day a time falls on.
pub fn day_of(t: i64) -> i64 {
    (t + IST_OFFSET_MS).div_euclid(DAY_MS)
}

/// One history event of a move, as the roll-ups see it.
pub(super) struct Counted<'a> {
    pub request_id: i64,
    pub merchant_id: i64,
    pub created_at: i64,
    pub event: &'a str,
    pub to_sub_status: &'a str,
}

/// Counts the requests just created (their `created` column).
pub(super) async fn count_created(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    created: &[(i64, i64)],
) -> Result<(), sqlx::Error> {
    let mut counts: BTreeMap<(i64, i64, &str), i64> = BTreeMap::new();
    for &(merchant_id, created_at) in created {
        *counts
            .entry((day_of(created_at), merchant_id, "created"))
            .or_default() += 1;
    }
    add_funnel(tx, &counts).await
}

/// Marks `stage` reached by `request_id` and counts it if it is the first time.
pub(super) async fn reach(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    request_id: i64,
    stage: &'static str,
) -> Result<(), sqlx::Error> {
    let mut counts = BTreeMap::new();
    mark(tx, &[request_id], stage, &mut counts).await?;
    add_funnel(tx, &counts).await
}

/// Counts the funnel stages and failed checks that `events` reach.
pub(super) async fn count_events(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    events: &[Counted<'_>],
) -> Result<(), sqlx::Error> {
    let mut by_stage: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for e in events {
        if let Some((stage, _)) = stage_of_event(e.event) {
            by_stage.entry(stage).or_default().push(e.request_id);
        }
    }
    let mut counts = BTreeMap::new();
    for (stage, ids) in &by_stage {
        mark(tx, ids, stage, &mut counts).await?;
    }
    add_funnel(tx, &counts).await?;
    let mut failures: BTreeMap<(i64, i64, &str, &str), (i64, i64)> = BTreeMap::new();
    for e in events {
        if !FAILURE_EVENTS.iter().any(|(f, _)| *f == e.event) {
            continue;
        }
        let first = sqlx::query(
            "INSERT INTO request_failures (request_id, event, reason) VALUES ($1, $2, $3) \
             ON CONFLICT (request_id, event, reason) DO NOTHING",
        )
        .bind(e.request_id)
        .bind(e.event)
        .bind(e.to_sub_status)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let key = (
            day_of(e.created_at),
            e.merchant_id,
            e.event,
            e.to_sub_status,
        );
        let slot = failures.entry(key).or_default();
        slot.0 += 1;
        slot.1 += first as i64;
    }
    for ((day, merchant_id, event, reason), (count, requests)) in failures {
        sqlx::query(
            "INSERT INTO report_failures_daily (day, merchant_id, event, reason, failures, \
             requests) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (day, merchant_id, event, reason) DO UPDATE SET \
             failures = report_failures_daily.failures + excluded.failures, \
             requests = report_failures_daily.requests + excluded.requests",
        )
        .bind(day)
        .bind(merchant_id)
        .bind(event)
        .bind(reason)
        .bind(count)
        .bind(requests)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Sets `stage`'s bit on those of `ids` that lack it, and adds them to `counts`.
async fn mark(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ids: &[i64],
    stage: &'static str,
    counts: &mut BTreeMap<(i64, i64, &'static str), i64>,
) -> Result<(), sqlx::Error> {
    let bit = bit_of(stage);
    for chunk in ids.chunks(1000) {
        // Ids are numbers from the database: safe to write into the statement.
        let mut list = String::new();
        for (n, id) in chunk.iter().enumerate() {
            let _ = write!(list, "{}{id}", if n == 0 { "" } else { ", " });
        }
        let sql = format!(
            "UPDATE requests SET stages = stages | $1 \
             WHERE id IN ({list}) AND (stages & $1) = 0 RETURNING merchant_id, created_at"
        );
        let rows = sqlx::query(&sql)
            .persistent(chunk.len() == 1)
            .bind(bit)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            use sqlx::Row;
            let key = (
                day_of(row.try_get("created_at")?),
                row.try_get("merchant_id")?,
                stage,
            );
            *counts.entry(key).or_default() += 1;
        }
    }
    Ok(())
}

async fn add_funnel(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    counts: &BTreeMap<(i64, i64, &str), i64>,
) -> Result<(), sqlx::Error> {
    let slot = rand::Rng::gen_range(&mut rand::thread_rng(), 0..SLOTS);
    // One statement for all the counter rows; the keys are distinct and in order, so one
    // upsert may touch each row once.
    let counts: Vec<_> = counts.iter().collect();
    for chunk in counts.chunks(super::ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO report_funnel_daily (day, merchant_id, stage, slot, n) VALUES {} \
             ON CONFLICT (day, merchant_id, stage, slot) \
             DO UPDATE SET n = report_funnel_daily.n + excluded.n",
            super::value_rows(chunk.len(), 5)
        );
        // A group of creates of one merchant and day touches one row (one per stage a
        // batch of moves reaches): the texts for a few rows stay prepared, longer ones
        // are rare.
        let mut query = sqlx::query(&sql).persistent(chunk.len() <= 4);
        for (key, n) in chunk {
            let (day, merchant_id, stage) = **key;
            query = query
                .bind(day)
                .bind(merchant_id)
                .bind(stage)
                .bind(slot)
                .bind(**n);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The statements that rebuild the roll-ups from the base tables (the migration that
/// added them runs the same ones; a bulk load that writes the tables directly runs them
/// after).
pub fn rebuild_statements(backend: Backend) -> Vec<String> {
    let day = format!("((r.created_at + {IST_OFFSET_MS}) / {DAY_MS})");
    // A rebuild spreads its counts over the 8 slots the migration that first filled the
    // tables used (readers sum all slots, so which ones hold a count does not matter).
    const REBUILT_SLOTS: i64 = 8;
    let mut bits = String::new();
    for (_, bit, events) in STAGES.iter().filter(|(_, _, e)| !e.is_empty()) {
        let list: Vec<String> = events.iter().map(|e| format!("'{e}'")).collect();
        let _ = write!(bits, "WHEN h.event IN ({}) THEN {bit} ", list.join(", "));
    }
    let mut selects = vec![format!(
        "SELECT {day}, r.merchant_id, 'created', r.id % {REBUILT_SLOTS}, COUNT(*) FROM requests r \
         WHERE EXISTS (SELECT 1 FROM history h WHERE h.request_id = r.id) \
         GROUP BY {day}, r.merchant_id, r.id % {REBUILT_SLOTS}"
    )];
    for (stage, bit, _) in STAGES {
        selects.push(format!(
            "SELECT {day}, r.merchant_id, '{stage}', r.id % {REBUILT_SLOTS}, COUNT(*) FROM requests r \
             WHERE (r.stages & {bit}) <> 0 GROUP BY {day}, r.merchant_id, r.id % {REBUILT_SLOTS}"
        ));
    }
    let failures: Vec<String> = FAILURE_EVENTS
        .iter()
        .map(|(e, _)| format!("'{e}'"))
        .collect();
    let failures = failures.join(", ");
    let bigint = match backend {
        Backend::Sqlite => "INTEGER",
        Backend::Postgres => "BIGINT",
    };
    vec![
        "DELETE FROM report_funnel_daily".into(),
        "DELETE FROM report_failures_daily".into(),
        "DELETE FROM request_failures".into(),
        // A sum of distinct powers of two is their bitwise or (SQLite has no BIT_OR).
        format!(
            "UPDATE requests SET stages = \
             (CASE WHEN EXISTS (SELECT 1 FROM journey_steps s WHERE s.request_id = requests.id) \
              THEN {opened} ELSE 0 END) \
             + COALESCE((SELECT CAST(SUM(DISTINCT CASE {bits}ELSE 0 END) AS {bigint}) \
                         FROM history h WHERE h.request_id = requests.id), 0)",
            opened = bit_of("opened"),
        ),
        format!(
            "INSERT INTO report_funnel_daily (day, merchant_id, stage, slot, n) {}",
            selects.join(" UNION ALL ")
        ),
        format!(
            "INSERT INTO request_failures (request_id, event, reason) \
             SELECT DISTINCT request_id, event, to_sub_status FROM history \
             WHERE event IN ({failures})"
        ),
        format!(
            "INSERT INTO report_failures_daily (day, merchant_id, event, reason, failures, \
             requests) \
             SELECT {day}, r.merchant_id, h.event, h.to_sub_status, COUNT(*), \
               COUNT(DISTINCT h.request_id) \
             FROM requests r JOIN history h ON h.request_id = r.id \
             WHERE h.event IN ({failures}) \
             GROUP BY {day}, r.merchant_id, h.event, h.to_sub_status"
        ),
    ]
}

/// Sets the column `stage` of a funnel row.
fn set_stage(row: &mut FunnelRow, stage: &str, n: i64) {
    let field = match stage {
        "created" => &mut row.created,
        "opened" => &mut row.opened,
        "aadhaar_passed" => &mut row.aadhaar_passed,
        "aadhaar_failed" => &mut row.aadhaar_failed,
        "ip_passed" => &mut row.ip_passed,
        "ip_failed" => &mut row.ip_failed,
        "location_passed" => &mut row.location_passed,
        "location_failed" => &mut row.location_failed,
        "devices_passed" => &mut row.devices_passed,
        "devices_failed" => &mut row.devices_failed,
        "queued" => &mut row.queued,
        "call" => &mut row.call,
        "agent_approved" => &mut row.agent_approved,
        "agent_rejected" => &mut row.agent_rejected,
        "agent_unable" => &mut row.agent_unable,
        "auditor_approved" => &mut row.auditor_approved,
        "auditor_rejected" => &mut row.auditor_rejected,
        "expired" => &mut row.expired,
        _ => return,
    };
    *field = n;
}

/// `$1..$2` as IST days (the range runs from one IST midnight to another), and maybe
/// the merchant as `$3`.
pub(super) fn bind_days<'q>(
    range: &Range,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let query = query.bind(day_of(range.from_ms)).bind(day_of(range.to_ms));
    match range.merchant {
        Some(m) => query.bind(m),
        None => query,
    }
}

impl super::Store {
    /// The funnel of the requests created in the range, per IST day and merchant, from
    /// the daily roll-up (a few rows per day, merchant and stage).
    pub async fn report_funnel(&self, range: &Range) -> crate::error::Result<Vec<FunnelRow>> {
        use sqlx::Row;
        let merchant = match range.merchant {
            Some(_) => " AND f.merchant_id = $3",
            None => "",
        };
        let sql = format!(
            "SELECT f.day, f.merchant_id, m.name AS merchant, f.stage,                CAST(SUM(f.n) AS BIGINT) AS n              FROM report_funnel_daily f JOIN merchants m ON m.id = f.merchant_id              WHERE f.day >= $1 AND f.day < $2{merchant}              GROUP BY f.day, f.merchant_id, m.name, f.stage ORDER BY f.day, f.merchant_id"
        );
        let rows = bind_days(range, sqlx::query(&sql))
            .fetch_all(&self.read)
            .await?;
        let mut out: Vec<FunnelRow> = Vec::new();
        for r in &rows {
            let (day, merchant_id): (i64, i64) = (r.try_get("day")?, r.try_get("merchant_id")?);
            if out.last().map(|l| (l.day, l.merchant_id)) != Some((day, merchant_id)) {
                out.push(FunnelRow {
                    day,
                    merchant_id,
                    merchant: r.try_get("merchant")?,
                    ..FunnelRow::default()
                });
            }
            let stage: String = r.try_get("stage")?;
            if let Some(row) = out.last_mut() {
                set_stage(row, &stage, r.try_get("n")?);
            }
        }
        Ok(out)
    }

    /// The failed checks of the requests created in the range, per IST day, merchant,
    /// step and reason (the sub-status the failure produced), from the daily roll-up.
    pub async fn report_failures(&self, range: &Range) -> crate::error::Result<Vec<FailureRow>> {
        let merchant = match range.merchant {
            Some(_) => " AND f.merchant_id = $3",
            None => "",
        };
        let sql = format!(
            "SELECT f.day, f.merchant_id, m.name AS merchant, f.event, f.reason, f.failures,                f.requests              FROM report_failures_daily f JOIN merchants m ON m.id = f.merchant_id              WHERE f.day >= $1 AND f.day < $2{merchant} ORDER BY 1, 2, 4, 5"
        );
        let rows = bind_days(range, sqlx::query(&sql))
            .fetch_all(&self.read)
            .await?;
        failure_rows(&rows)
    }

    /// Rebuilds the roll-ups from the base tables, in one transaction.
    pub async fn rebuild_report_rollups(&self) -> crate::error::Result<()> {
        let mut tx = self.write.begin().await?;
        let statements = rebuild_statements(self.backend)
            .into_iter()
            .chain(work::rebuild_statements(self.backend));
        for sql in statements {
            sqlx::query(&sql)
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
