//! Working hours and bookable slots, as pure functions of the configuration and a time.
//!
//! The desk works in India Standard Time (UTC+05:30, no daylight saving), so hours are
//! read in IST and every instant is a UTC Unix millisecond time.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use std::collections::BTreeSet;

const IST_SECONDS: i32 = 5 * 3600 + 30 * 60;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(IST_SECONDS).expect("a valid offset")
}

/// When the desk works, and how long a slot is.
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight IST; `close` may be 24:00.
    open: u32,
    close: u32,
    pub slot_minutes: u32,
    /// Dates (IST) on which the desk is closed all day.
    holidays: BTreeSet<NaiveDate>,
}

impl Hours {
    /// An agent's own hours, stored as `{"days": [..], "hours": "HH:MM-HH:MM"}`.
    pub fn of_agent(stored: &str, slot_minutes: u32) -> anyhow::Result<Hours> {
        #[derive(serde::Deserialize)]
        struct Stored {
            days: Vec<String>,
            hours: String,
        }
        let stored: Stored = serde_json::from_str(stored)?;
        Hours::parse(&stored.days, &stored.hours, slot_minutes)
    }

    /// Days (`mon`..`sun`) and `"HH:MM-HH:MM"` in IST.
    pub fn parse(
        working_days: &[String],
        working_hours: &str,
        slot_minutes: u32,
    ) -> anyhow::Result<Hours> {
        let mut days = [false; 7];
        for day in working_days {
            let index = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day))
                .ok_or_else(|| anyhow::anyhow!("unknown working day {day:?} (mon..sun)"))?;
            days[index] = true;
        }
        let (open, close) = working_hours
            .split_once('-')
            .ok_or_else(|| anyhow::anyhow!("working_hours must look like \"09:00-18:00\""))?;
        let minutes = |s: &str| -> anyhow::Result<u32> {
            let s = s.trim();
            if s == "24:00" {
                return Ok(24 * 60);
            }
            let t = NaiveTime::parse_from_str(s, "%H:%M")
                .map_err(|_| anyhow::anyhow!("{s:?} is not a time of day (HH:MM)"))?;
            Ok(t.hour() * 60 + t.minute())
        };
        let (open, close) = (minutes(open)?, minutes(close)?);
        anyhow::ensure!(open < close, "working_hours must open before they close");
        anyhow::ensure!(
            (5..=240).contains(&slot_minutes),
            "slot_minutes must be between 5 and 240"
        );
        Ok(Hours {
            days,
            open,
            close,
            slot_minutes,
            holidays: BTreeSet::new(),
        })
    }

    /// The same hours, closed all day on `holidays`.
    pub fn with_holidays(mut self, holidays: impl IntoIterator<Item = NaiveDate>) -> Hours {
        self.holidays = holidays.into_iter().collect();
        self
    }

    fn works_on(&self, day: NaiveDate) -> bool {
        self.days[day.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&day)
    }

    /// Whether the desk works at `at_ms`.
    pub fn is_open(&self, at_ms: i64) -> bool {
        let Some(local) = local(at_ms) else {
            return false;
        };
        let minute = local.hour() * 60 + local.minute();
        self.works_on(local.date_naive()) && minute >= self.open && minute < self.close
    }

    /// The starts of every whole slot inside working hours that begins after `from_ms`
    /// and before `until_ms`, in order.
    pub fn slots(&self, from_ms: i64, until_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let Some(start) = local(from_ms) else {
            return out;
        };
        let mut day = start.date_naive();
        let step = self.slot_minutes;
        loop {
            let midnight = ist()
                .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
                .single()
                .expect("IST has no gaps");
            if midnight.timestamp_millis() >= until_ms {
                break;
            }
            if self.works_on(day) {
                let mut minute = self.open;
                while minute + step <= self.close {
                    let at = (midnight + Duration::minutes(minute.into())).timestamp_millis();
                    if at > from_ms && at < until_ms {
                        out.push(at);
                    }
                    minute += step;
                }
            }
            day = match day.succ_opt() {
                Some(next) => next,
                None => break,
            };
        }
        out
    }

    /// Whether `at_ms` is the start of a slot (what a booking must name).
    pub fn is_slot_start(&self, at_ms: i64) -> bool {
        self.slots(at_ms - 1, at_ms + 1) == [at_ms]
    }
}

fn local(at_ms: i64) -> Option<DateTime<FixedOffset>> {
    Some(DateTime::<Utc>::from_timestamp_millis(at_ms)?.with_timezone(&ist()))
}

/// Whether an agent works at `at_ms`: the desk is open and, when the agent has hours of
/// their own, those are too. Hours that no longer parse count as the desk's.
pub fn on_duty(desk: &Hours, agent_hours: Option<&str>, at_ms: i64) -> bool {
    desk.is_open(at_ms)
        && agent_hours
            .and_then(|h| Hours::of_agent(h, desk.slot_minutes).ok())
            .is_none_or(|own| own.is_open(at_ms))
}

/// `2 Dec 2026, 11:30 IST`: a slot as customers read it.
pub fn format_ist(at_ms: i64) -> String {
    local(at_ms)
        .map(|t| t.format("%-d %b %Y, %H:%M IST").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hours with 15-minute slots, as the default configuration has them.
    fn hours(days: &[&str], hours: &str) -> anyhow::Result<Hours> {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        Hours::parse(&days, hours, 15)
    }

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn hours_are_read_in_ist() {
        let h = hours(&["tue"], "09:00-18:00").unwrap();
        // 2026-12-01 is a Tuesday; 03:30 UTC is 09:00 IST.
        assert!(h.is_open(at("2026-12-01T03:30:00Z")));
        assert!(!h.is_open(at("2026-12-01T03:29:59Z")));
        assert!(h.is_open(at("2026-12-01T12:29:59Z")));
        assert!(!h.is_open(at("2026-12-01T12:30:00Z")));
        assert!(
            !h.is_open(at("2026-12-02T05:00:00Z")),
            "Wednesday is closed"
        );
    }

    #[test]
    fn slots_fill_working_hours_and_skip_closed_days() {
        let h = hours(&["tue", "thu"], "09:00-10:00").unwrap();
        let slots = h.slots(at("2026-11-30T00:00:00Z"), at("2026-12-04T00:00:00Z"));
        let shown: Vec<String> = slots.iter().map(|&s| format_ist(s)).collect();
        assert_eq!(
            shown,
            [
                "1 Dec 2026, 09:00 IST",
                "1 Dec 2026, 09:15 IST",
                "1 Dec 2026, 09:30 IST",
                "1 Dec 2026, 09:45 IST",
                "3 Dec 2026, 09:00 IST",
                "3 Dec 2026, 09:15 IST",
                "3 Dec 2026, 09:30 IST",
                "3 Dec 2026, 09:45 IST",
            ]
        );
        assert!(h.is_slot_start(slots[1]));
        assert!(!h.is_slot_start(slots[1] + 60_000));
        // Only slots that start after `from`.
        assert_eq!(h.slots(slots[1], slots[3] + 1), [slots[2], slots[3]]);
    }

    #[test]
    fn a_holiday_is_closed_all_day_and_has_no_slots() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let h = hours(&["tue", "thu"], "09:00-10:00")
            .unwrap()
            .with_holidays([day]);
        assert!(!h.is_open(at("2026-12-01T04:00:00Z")));
        assert!(h.is_open(at("2026-12-03T04:00:00Z")));
        let slots = h.slots(at("2026-11-30T00:00:00Z"), at("2026-12-04T00:00:00Z"));
        assert_eq!(slots.len(), 4);
        assert!(slots.iter().all(|&s| format_ist(s).starts_with("3 Dec")));
    }

    #[test]
    fn bad_hours_are_refused() {
        assert!(hours(&["someday"], "09:00-18:00").is_err());
        assert!(hours(&["mon"], "18:00-09:00").is_err());
        assert!(hours(&["mon"], "9am-6pm").is_err());
        let all = hours(&DAYS, "00:00-24:00").unwrap();
        assert!(all.is_open(at("2026-12-06T18:29:00Z")));
    }
}
