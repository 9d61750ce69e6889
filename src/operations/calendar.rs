//! The desk's working days, hours and holidays. They live in the database, so that every
//! process on one database sees an admin's change at once; until an admin sets hours, the
//! configuration's `[journey] working_days` and `working_hours` apply. The queue, the
//! assignment of calls and slot booking all read the desk's hours through [`desk_hours`].

use super::{invalid, refused, Actor};
use crate::clock::now_ms;
use crate::config::Config;
use crate::domain::slots::Hours;
use crate::error::{Error, Result};
use crate::store::Store;
use chrono::NaiveDate;

/// Most dates one import may carry.
pub const MAX_IMPORT: usize = 1000;

/// The desk's hours now, holidays included.
pub async fn desk_hours(store: &Store, config: &Config) -> Result<Hours> {
    let (days, hours) = days_and_hours(store, config).await?;
    let hours = Hours::parse(&days, &hours, config.journey.slot_minutes).or_else(|err| {
        // Stored hours were checked when saved; should the check ever tighten, the
        // configuration's (checked at start) keep the desk working.
        tracing::warn!(error = %err, "the stored desk hours do not parse; using the configuration's");
        config.journey.hours()
    });
    let hours = hours.map_err(Error::internal)?;
    let holidays = store
        .holidays()
        .await?
        .iter()
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect::<Vec<_>>();
    Ok(hours.with_holidays(holidays))
}

/// The days and hours in force, and whether they are the configuration's.
/// The desk's working days and hours (`HH:MM-HH:MM`, IST): the admin's, else the
/// configuration's.
pub async fn days_and_hours(store: &Store, config: &Config) -> Result<(Vec<String>, String)> {
    Ok(match store.desk_hours().await? {
        Some((days, hours)) => (
            days.split(',')
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect(),
            hours,
        ),
        None => (
            config.journey.working_days.clone(),
            config.journey.working_hours.clone(),
        ),
    })
}

/// What the console shows.
#[derive(Debug, serde::Serialize)]
pub struct CalendarView {
    pub working_days: Vec<String>,
    pub working_hours: String,
    /// True while the configuration's hours apply (no admin has set any).
    pub from_config: bool,
    pub holidays: Vec<String>,
}

pub async fn view(store: &Store, config: &Config) -> Result<CalendarView> {
    let from_config = store.desk_hours().await?.is_none();
    let (working_days, working_hours) = days_and_hours(store, config).await?;
    Ok(CalendarView {
        working_days,
        working_hours,
        from_config,
        holidays: store.holidays().await?,
    })
}

/// Sets the desk's days and hours, or with `None` returns to the configuration's.
pub async fn set_hours(
    store: &Store,
    config: &Config,
    actor: &Actor,
    hours: Option<(&[String], &str)>,
) -> Result<()> {
    let stored = match hours {
        None => None,
        Some((days, hours)) => {
            if days.is_empty() {
                return Err(invalid(
                    "working_days_missing",
                    "give at least one working day (mon..sun)",
                ));
            }
            Hours::parse(days, hours, config.journey.slot_minutes)
                .map_err(|e| invalid("working_hours_value_invalid", e.to_string()))?;
            let mut days: Vec<String> = days.iter().map(|d| d.to_ascii_lowercase()).collect();
            days.dedup();
            Some((days.join(","), hours.trim().to_string()))
        }
    };
    store
        .set_desk_hours(
            stored.as_ref().map(|(d, h)| (d.as_str(), h.as_str())),
            now_ms(),
        )
        .await?;
    let details = match &stored {
        Some((d, h)) => format!("{d} {h}"),
        None => "the configuration's hours".into(),
    };
    actor
        .audit(store, "desk_hours_set", "desk", Some(&details))
        .await
}

/// One date as an admin may write it: `2026-12-25`, `25-12-2026` or `25/12/2026`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
}

/// The dates of an imported file: one per line, the date first (a CSV line's first
/// field); blank lines, `#` comments and a header line are skipped. Any other line that
/// does not start with a date refuses the whole file, naming the line.
pub fn parse_file(text: &str) -> Result<Vec<NaiveDate>> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line
            .split([',', ';', '\t'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        match parse_date(first) {
            Some(day) => out.push(day),
            // A header such as "date,name".
            None if index == 0 && first.starts_with(|c: char| c.is_alphabetic()) => {}
            None => {
                return Err(invalid(
                    "holidays_file_invalid",
                    format!(
                        "line {}: {first:?} is not a date (YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY)",
                        index + 1
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Adds holidays; returns how many were new.
pub async fn add_holidays(store: &Store, actor: &Actor, days: &[NaiveDate]) -> Result<u64> {
    if days.is_empty() {
        return Err(invalid("holidays_missing", "give at least one date"));
    }
    if days.len() > MAX_IMPORT {
        return Err(invalid(
            "holidays_value_invalid",
            format!("at most {MAX_IMPORT} dates at once"),
        ));
    }
    let mut days: Vec<String> = days
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    days.sort();
    days.dedup();
    let added = store.add_holidays(&days, now_ms()).await?;
    actor
        .audit(store, "holidays_added", "desk", Some(&days.join(",")))
        .await?;
    Ok(added)
}

pub async fn remove_holiday(store: &Store, actor: &Actor, day: NaiveDate) -> Result<()> {
    let day = day.format("%Y-%m-%d").to_string();
    if !store.remove_holiday(&day).await? {
        return Err(refused(
            "holiday_not_found",
            format!("{day} is not a holiday"),
        ));
    }
    actor
        .audit(store, "holiday_removed", "desk", Some(&day))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_dates_is_read_line_by_line() {
        let text = "date,name\n2026-12-25,Christmas\n\n# comment\n26/01/2027\n15-08-2027;x\n";
        let days = parse_file(text).unwrap();
        assert_eq!(
            days,
            [
                NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
                NaiveDate::from_ymd_opt(2027, 1, 26).unwrap(),
                NaiveDate::from_ymd_opt(2027, 8, 15).unwrap(),
            ]
        );
        let err = parse_file("2026-12-25\nsoon\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(parse_file("2026-13-01").is_err());
    }
}
