//! The admin's reports under `/desk/api/reports/<name>` (`funnel`, `failures`, `times`,
//! `agents`, `live`), each as JSON or, with `?format=csv` or a `.csv` name, as CSV with
//! the same columns and rows. Parameters: `from` and `to` (IST days, `YYYY-MM-DD`, both
//! included, at most [`MAX_DAYS`] apart; by default the last 7 days) and `merchant`.

use super::StaffSession;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{AgentRow, FunnelRow, Range, Role, TimesRow};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

/// The longest span one report covers, in days.
pub const MAX_DAYS: i64 = 92;
const DAY_MS: i64 = 86_400_000;
const IST_OFFSET_MS: i64 = 19_800_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/reports/{name}", get(report))
}

/// What the caller asked for.
struct Params {
    from: NaiveDate,
    to: NaiveDate,
    merchant: Option<i64>,
    csv: bool,
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

/// The IST day number of a date (days since 1970-01-01).
fn day_number(date: NaiveDate) -> i64 {
    (date - epoch()).num_days()
}

fn day_text(day: i64) -> String {
    (epoch() + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

fn parse_date(field: &str, value: &str) -> Result<NaiveDate> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10);
    date.ok_or_else(|| {
        Error::validation(
            format!("{field}_value_invalid"),
            format!("{field} must be a date written YYYY-MM-DD."),
        )
    })
}

fn params(query: Option<&str>, csv_name: bool) -> Result<Params> {
    let today = day_text((now_ms() + IST_OFFSET_MS).div_euclid(DAY_MS));
    let (mut from, mut to, mut merchant, mut format) = (None, None, None, None);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "from" => &mut from,
            "to" => &mut to,
            "merchant" => &mut merchant,
            "format" => &mut format,
            other => {
                return Err(Error::validation(
                    "parameter_unknown",
                    format!(
                        "{} is not a parameter of reports (from, to, merchant, format).",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(Error::validation(
                format!("{key}_repeated"),
                format!("{key} is given more than once."),
            ));
        }
    }
    let to = parse_date("to", to.as_deref().unwrap_or(&today))?;
    let from = match from {
        Some(from) => parse_date("from", &from)?,
        None => to - chrono::Duration::days(6),
    };
    if from > to {
        return Err(Error::validation(
            "range_invalid",
            "from must not be after to.",
        ));
    }
    if day_number(to) - day_number(from) + 1 > MAX_DAYS {
        return Err(Error::validation(
            "range_too_long",
            format!("a report covers at most {MAX_DAYS} days."),
        ));
    }
    let merchant = match merchant {
        None => None,
        Some(m) => Some(
            m.parse::<i64>()
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| Error::invalid("merchant"))?,
        ),
    };
    let csv = match format.as_deref() {
        None | Some("json") => csv_name,
        Some("csv") => true,
        Some(_) => {
            return Err(Error::validation(
                "format_value_invalid",
                "format must be json or csv.",
            ))
        }
    };
    Ok(Params {
        from,
        to,
        merchant,
        csv,
    })
}

/// A report: its columns, in order, and its rows (objects with those keys).
struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Map<String, Value>>,
}

fn row(pairs: Vec<(&'static str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `part / whole` as a percentage with one decimal; null when `whole` is 0.
fn pct(part: i64, whole: i64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    json!((part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

/// Share lost between one stage and the next, in percent of the earlier one.
fn drop_pct(before: i64, after: i64) -> Value {
    pct(before - after, before)
}

/// ms as seconds with one decimal.
fn secs(ms: i64) -> Value {
    json!((ms as f64 / 100.0).round() / 10.0)
}

fn funnel_table(rows: Vec<FunnelRow>) -> Table {
    let columns = vec![
        "day",
        "merchant_id",
        "merchant",
        "created",
        "opened",
        "opened_drop_pct",
        "aadhaar_passed",
        "aadhaar_failed",
        "ip_passed",
        "ip_failed",
        "ip_drop_pct",
        "location_passed",
        "location_failed",
        "location_drop_pct",
        "devices_passed",
        "devices_failed",
        "devices_drop_pct",
        "queued",
        "queued_drop_pct",
        "call",
        "call_drop_pct",
        "agent_approved",
        "agent_rejected",
        "agent_unable",
        "auditor_approved",
        "auditor_rejected",
        "expired",
    ];
    let rows = rows
        .into_iter()
        .map(|f| {
            row(vec![
                ("day", json!(day_text(f.day))),
                ("merchant_id", json!(f.merchant_id)),
                ("merchant", json!(f.merchant)),
                ("created", json!(f.created)),
                ("opened", json!(f.opened)),
                ("opened_drop_pct", drop_pct(f.created, f.opened)),
                ("aadhaar_passed", json!(f.aadhaar_passed)),
                ("aadhaar_failed", json!(f.aadhaar_failed)),
                ("ip_passed", json!(f.ip_passed)),
                ("ip_failed", json!(f.ip_failed)),
                ("ip_drop_pct", drop_pct(f.opened, f.ip_passed)),
                ("location_passed", json!(f.location_passed)),
                ("location_failed", json!(f.location_failed)),
                (
                    "location_drop_pct",
                    drop_pct(f.ip_passed, f.location_passed),
                ),
                ("devices_passed", json!(f.devices_passed)),
                ("devices_failed", json!(f.devices_failed)),
                (
                    "devices_drop_pct",
                    drop_pct(f.location_passed, f.devices_passed),
                ),
                ("queued", json!(f.queued)),
                ("queued_drop_pct", drop_pct(f.devices_passed, f.queued)),
                ("call", json!(f.call)),
                ("call_drop_pct", drop_pct(f.queued, f.call)),
                ("agent_approved", json!(f.agent_approved)),
                ("agent_rejected", json!(f.agent_rejected)),
                ("agent_unable", json!(f.agent_unable)),
                ("auditor_approved", json!(f.auditor_approved)),
                ("auditor_rejected", json!(f.auditor_rejected)),
                ("expired", json!(f.expired)),
            ])
        })
        .collect();
    Table { columns, rows }
}

const MEASURES: [&str; 4] = [
    "link_to_call",
    "queue_wait",
    "call_length",
    "review_turnaround",
];

/// One row per day, with count, p50 and p90 (seconds) of each measure.
fn times_table(rows: Vec<TimesRow>) -> Table {
    let mut columns = vec!["day"];
    for m in MEASURES {
        columns.extend(match m {
            "link_to_call" => [
                "link_to_call_count",
                "link_to_call_p50_s",
                "link_to_call_p90_s",
            ],
            "queue_wait" => ["queue_wait_count", "queue_wait_p50_s", "queue_wait_p90_s"],
            "call_length" => [
                "call_length_count",
                "call_length_p50_s",
                "call_length_p90_s",
            ],
            _ => [
                "review_turnaround_count",
                "review_turnaround_p50_s",
                "review_turnaround_p90_s",
            ],
        });
    }
    let mut days: std::collections::BTreeMap<i64, Map<String, Value>> = Default::default();
    for t in rows {
        let day = days.entry(t.day).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("day".into(), json!(day_text(t.day)));
            for c in &columns[1..] {
                let empty = if c.ends_with("_count") {
                    json!(0)
                } else {
                    Value::Null
                };
                m.insert((*c).into(), empty);
            }
            m
        });
        day.insert(format!("{}_count", t.measure), json!(t.count));
        day.insert(format!("{}_p50_s", t.measure), secs(t.p50_ms));
        day.insert(format!("{}_p90_s", t.measure), secs(t.p90_ms));
    }
    Table {
        columns,
        rows: days.into_values().collect(),
    }
}

fn agents_table(rows: Vec<AgentRow>) -> Table {
    let columns = vec![
        "agent",
        "online_hours",
        "calls",
        "calls_per_online_hour",
        "avg_call_s",
        "approved",
        "rejected",
        "unable",
        "approval_rate_pct",
        "rejection_rate_pct",
        "audited",
        "reversed",
        "reversal_rate_pct",
    ];
    let rows = rows
        .into_iter()
        .map(|a| {
            let hours = a.online_ms as f64 / 3_600_000.0;
            let decided = a.approved + a.rejected + a.unable;
            row(vec![
                ("agent", json!(a.agent)),
                ("online_hours", json!((hours * 100.0).round() / 100.0)),
                ("calls", json!(a.calls)),
                (
                    "calls_per_online_hour",
                    if a.online_ms > 0 {
                        json!((a.calls as f64 / hours * 100.0).round() / 100.0)
                    } else {
                        Value::Null
                    },
                ),
                (
                    "avg_call_s",
                    if a.calls > 0 {
                        secs(a.call_ms_total / a.calls)
                    } else {
                        Value::Null
                    },
                ),
                ("approved", json!(a.approved)),
                ("rejected", json!(a.rejected)),
                ("unable", json!(a.unable)),
                ("approval_rate_pct", pct(a.approved, decided)),
                ("rejection_rate_pct", pct(a.rejected, decided)),
                ("audited", json!(a.audited)),
                ("reversed", json!(a.reversed)),
                ("reversal_rate_pct", pct(a.reversed, a.audited)),
            ])
        })
        .collect();
    Table { columns, rows }
}

async fn live_table(state: &AppState) -> Result<Table> {
    // The queue as the board last read it: the same figures the waiting customers see,
    // without reading the queue again on every refresh of every admin's screen.
    let snapshot = state.journey.board.current();
    let live = state.store.report_live().await?;
    let columns = vec![
        "customers_waiting",
        "agents_online",
        "agents_in_call",
        "calls_in_progress",
        "invitations_ringing",
        "expected_wait_s",
        "typical_call_s",
    ];
    let rows = vec![row(vec![
        ("customers_waiting", json!(snapshot.waiting)),
        ("agents_online", json!(snapshot.agents_online)),
        ("agents_in_call", json!(live.agents_in_call)),
        ("calls_in_progress", json!(live.calls_in_progress)),
        ("invitations_ringing", json!(live.invitations_ringing)),
        (
            "expected_wait_s",
            json!(snapshot.expected_wait_seconds(snapshot.waiting + 1)),
        ),
        ("typical_call_s", json!(snapshot.call_seconds)),
    ])];
    Ok(Table { columns, rows })
}

/// `GET /desk/api/reports/<name>[.csv]`: admins only.
async fn report(
    State(state): State<AppState>,
    session: StaffSession,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    session.require(&[Role::Admin])?;
    let (name, csv_name) = match name.strip_suffix(".csv") {
        Some(name) => (name.to_string(), true),
        None => (name, false),
    };
    if !["funnel", "failures", "times", "agents", "live"].contains(&name.as_str()) {
        return Err(Error::not_found("report"));
    }
    let p = params(query.as_deref(), csv_name)?;
    if let Some(m) = p.merchant {
        if name == "agents" || name == "live" {
            return Err(Error::validation(
                "merchant_not_applicable",
                format!("the {name} report covers every merchant; leave merchant out."),
            ));
        }
        if !state.store.merchant_exists(m).await? {
            return Err(Error::not_found("merchant"));
        }
    }
    let range = Range {
        from_ms: day_number(p.from) * DAY_MS - IST_OFFSET_MS,
        to_ms: (day_number(p.to) + 1) * DAY_MS - IST_OFFSET_MS,
        merchant: p.merchant,
    };
    let table = match name.as_str() {
        "funnel" => funnel_table(state.store.report_funnel(&range).await?),
        "failures" => {
            let rows = state.store.report_failures(&range).await?;
            Table {
                columns: vec![
                    "day",
                    "merchant_id",
                    "merchant",
                    "step",
                    "reason",
                    "failures",
                    "requests",
                ],
                rows: rows
                    .into_iter()
                    .map(|f| {
                        row(vec![
                            ("day", json!(day_text(f.day))),
                            ("merchant_id", json!(f.merchant_id)),
                            ("merchant", json!(f.merchant)),
                            ("step", json!(f.step)),
                            ("reason", json!(f.reason)),
                            ("failures", json!(f.failures)),
                            ("requests", json!(f.requests)),
                        ])
                    })
                    .collect(),
            }
        }
        "times" => times_table(state.store.report_times(&range).await?),
        "agents" => agents_table(state.store.report_agents(&range).await?),
        _ => live_table(&state).await?,
    };
    let from = p.from.format("%Y-%m-%d").to_string();
    let to = p.to.format("%Y-%m-%d").to_string();
    if p.csv {
        let filename = if name == "live" {
            "vkyc-live.csv".to_string()
        } else {
            format!("vkyc-{name}-{from}-to-{to}.csv")
        };
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            to_csv(&table),
        )
            .into_response());
    }
    Ok(Json(json!({
        "report": name,
        "from": from,
        "to": to,
        "merchant": p.merchant,
        "columns": table.columns,
        "rows": table.rows,
    }))
    .into_response())
}

/// One CSV cell: numbers as a browser writes them, text as is (quoted when it holds a comma,
/// quote or line break; a leading = + - @ is escaped with ' so that a spreadsheet does
/// not run it as a formula), null as empty.
fn csv_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        // A whole number as the browser shows it (50, not 50.0).
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn to_csv(table: &Table) -> String {
    let mut out = table.columns.join(",");
    out.push_str("\r\n");
    for r in &table.rows {
        let cells: Vec<String> = table
            .columns
            .iter()
            .map(|c| csv_cell(r.get(*c).unwrap_or(&Value::Null)))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
