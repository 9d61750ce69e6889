//! How long a request's personal data is kept, as rules over its outcome (`[retention]`).
//!
//! - **Approved** (`AUDITOR_APPROVED`): the V-CIP record is kept for `approved_years` after
//!   the business relationship ends (RBI's KYC Master Direction, section 46: records of
//!   identification are kept at least five years after the relationship ends). Until the
//!   merchant (`POST /verification/vkyc/relationship-end`) or the operator
//!   (`vkyc case relationship-end`) gives that date, the record is kept.
//! - **Closed without approval** (any other final sub-status: rejected, expired, which is
//!   where abandoned links end, refused for balance): no relationship began, and the
//!   DPDP Act (section 8(7)) wants personal data erased once its purpose is served; kept
//!   `closed_days` (180 by default) after its last move, for disputes and the audit.
//! - **Sandbox** (requests of a `test` merchant): `sandbox_days` (30) after creation,
//!   whatever their state.
//!
//! A request under legal hold is never purged. Purging removes the personal data and
//! keeps a tombstone (ids, statuses, history, times): see `docs/records.md`.

use crate::domain::status::SubStatus;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;
const IST_OFFSET_MS: i64 = 19_800_000;

/// `[retention]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    pub approved_years: u32,
    pub closed_days: u32,
    pub sandbox_days: u32,
    /// How often the purge worker looks for due requests.
    pub purge_interval_seconds: u64,
    /// Requests purged per pass at most (the rest wait for the next pass).
    pub purge_batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            approved_years: 5,
            closed_days: 180,
            sandbox_days: 30,
            purge_interval_seconds: 3600,
            purge_batch: 500,
        }
    }
}

/// Which rule keeps a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Approved,
    Closed,
    Sandbox,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Approved => "approved",
            Rule::Closed => "closed",
            Rule::Sandbox => "sandbox",
        }
    }
}

/// The final sub-statuses other than approval: the closed rule's.
pub fn closed_sub_statuses() -> Vec<&'static str> {
    SubStatus::ALL
        .iter()
        .filter(|s| s.is_final() && **s != SubStatus::AuditorApproved)
        .map(|s| s.as_str())
        .collect()
}

/// The times before which each rule's requests are due at `now`: requests of a test
/// merchant created before `sandbox_created_before`; closed requests last moved before
/// `closed_before`; approved ones whose relationship ended before `approved_ended_before`
/// (an IST date, `YYYY-MM-DD`, which compares as text).
#[derive(Debug, Clone, PartialEq)]
pub struct Cutoffs {
    pub sandbox_created_before: i64,
    pub closed_before: i64,
    pub approved_ended_before: String,
}

pub fn cutoffs(settings: &RetentionSettings, now: i64) -> Cutoffs {
    let today = ist_date(now);
    let years = settings.approved_years as i32;
    // 29 February, years later, is 28 February in a year without it.
    let back = NaiveDate::from_ymd_opt(today.year() - years, today.month(), today.day())
        .or_else(|| NaiveDate::from_ymd_opt(today.year() - years, today.month(), 28))
        .unwrap_or(today);
    Cutoffs {
        sandbox_created_before: now - settings.sandbox_days as i64 * DAY_MS,
        closed_before: now - settings.closed_days as i64 * DAY_MS,
        approved_ended_before: back.format("%Y-%m-%d").to_string(),
    }
}

/// The IST calendar date of a time.
pub fn ist_date(ms: i64) -> NaiveDate {
    let days = (ms + IST_OFFSET_MS).div_euclid(DAY_MS);
    NaiveDate::from_num_days_from_ce_opt(719_163 + days as i32).unwrap_or_default()
}

/// A relationship's end date as given (`YYYY-MM-DD`), if it is one and not after today.
pub fn parse_relationship_end(text: &str, now: i64) -> Result<NaiveDate, &'static str> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == text)
        .ok_or("relationship_end must be a date, YYYY-MM-DD")?;
    if date > ist_date(now) {
        return Err("relationship_end cannot be in the future");
    }
    Ok(date)
}

/// When a request falls due under its rule, for the retention report: `None` when it is
/// kept until something happens (in progress, or approved with no relationship end).
pub fn due_at(
    settings: &RetentionSettings,
    sandbox: bool,
    sub_status: SubStatus,
    created_at: i64,
    last_move_at: i64,
    relationship_end: Option<&str>,
) -> Option<(Rule, i64)> {
    if sandbox {
        return Some((
            Rule::Sandbox,
            created_at + settings.sandbox_days as i64 * DAY_MS,
        ));
    }
    if sub_status == SubStatus::AuditorApproved {
        let end = NaiveDate::parse_from_str(relationship_end?, "%Y-%m-%d").ok()?;
        let years = settings.approved_years as i32;
        let until = NaiveDate::from_ymd_opt(end.year() + years, end.month(), end.day())
            .or_else(|| NaiveDate::from_ymd_opt(end.year() + years, end.month(), 28))?;
        // Due from the IST midnight after that day.
        let day = until.num_days_from_ce() as i64 - 719_163 + 1;
        return Some((Rule::Approved, day * DAY_MS - IST_OFFSET_MS));
    }
    if sub_status.is_final() {
        return Some((
            Rule::Closed,
            last_move_at + settings.closed_days as i64 * DAY_MS,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> i64 {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        (d.num_days_from_ce() as i64 - 719_163) * DAY_MS - IST_OFFSET_MS + 3_600_000
    }

    #[test]
    fn ist_dates_and_cutoffs() {
        assert_eq!(ist_date(at("2026-12-04")).to_string(), "2026-12-04");
        let s = RetentionSettings::default();
        let c = cutoffs(&s, at("2026-12-04"));
        assert_eq!(c.approved_ended_before, "2021-12-04");
        assert_eq!(c.closed_before, at("2026-12-04") - 180 * DAY_MS);
        assert_eq!(c.sandbox_created_before, at("2026-12-04") - 30 * DAY_MS);
        assert_eq!(
            cutoffs(&s, at("2028-02-29")).approved_ended_before,
            "2023-02-28"
        );
    }

    #[test]
    fn closed_statuses_are_the_final_ones_but_approval() {
        let closed = closed_sub_statuses();
        assert!(closed.contains(&"VKYC_EXPIRED"));
        assert!(closed.contains(&"AUDITOR_REJECTED"));
        assert!(!closed.contains(&"AUDITOR_APPROVED"));
        assert!(!closed.contains(&"USER_QUEUED"));
    }

    #[test]
    fn due_dates_follow_the_rules() {
        let s = RetentionSettings::default();
        let created = at("2026-01-10");
        assert_eq!(
            due_at(&s, true, SubStatus::UserQueued, created, created, None),
            Some((Rule::Sandbox, created + 30 * DAY_MS))
        );
        assert_eq!(
            due_at(
                &s,
                false,
                SubStatus::VkycExpired,
                created,
                created + 5,
                None
            ),
            Some((Rule::Closed, created + 5 + 180 * DAY_MS))
        );
        assert_eq!(
            due_at(&s, false, SubStatus::UserQueued, created, created, None),
            None
        );
        assert_eq!(
            due_at(
                &s,
                false,
                SubStatus::AuditorApproved,
                created,
                created,
                None
            ),
            None
        );
        let (rule, due) = due_at(
            &s,
            false,
            SubStatus::AuditorApproved,
            created,
            created,
            Some("2026-03-31"),
        )
        .unwrap();
        assert_eq!(rule, Rule::Approved);
        assert_eq!(ist_date(due).to_string(), "2031-04-01");
        assert_eq!(due, at("2031-04-01") - 3_600_000);
    }

    #[test]
    fn relationship_ends_are_past_dates() {
        let now = at("2026-12-04");
        assert!(parse_relationship_end("2026-12-04", now).is_ok());
        assert!(parse_relationship_end("2026-12-05", now).is_err());
        assert!(parse_relationship_end("2026-2-1", now).is_err());
        assert!(parse_relationship_end("yesterday", now).is_err());
    }
}
