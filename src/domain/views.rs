//! How a request is shown to merchants: the `GET /vkyc` body, which webhooks carry too,
//! and the time formats of the hosted API.

use crate::domain::request::Request;
use serde::Serialize;

/// `2025-08-03T00:00:00.000Z`, the form of `link_expiry` in the hosted API.
pub fn iso_millis(ms: i64) -> String {
    iso(ms, true)
}

/// `2025-07-19T14:30:00Z`, the form of `meeting_schedule`.
pub fn iso_seconds(ms: i64) -> String {
    iso(ms, false)
}

/// Written field by field: every `GET /vkyc` answer formats a time or two, and parsing a
/// strftime pattern each time showed in profiles. Years beyond four digits (never a
/// stored time) take chrono's own form.
fn iso(ms: i64, millis: bool) -> String {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    if !(0..=9999).contains(&t.year()) {
        let pattern = if millis {
            "%Y-%m-%dT%H:%M:%S%.3fZ"
        } else {
            "%Y-%m-%dT%H:%M:%SZ"
        };
        return t.format(pattern).to_string();
    }
    let (date, time) = (t.date_naive(), t.time());
    let head = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    if millis {
        format!("{head}.{:03}Z", ms.rem_euclid(1000))
    } else {
        head + "Z"
    }
}

/// The body of `GET /vkyc`, field for field as seed 000 shows it.
#[derive(Serialize)]
pub struct VkycStatus {
    pub verification_id: String,
    pub reference_id: i64,
    pub user_reference_id: i64,
    pub user_id: String,
    pub status: &'static str,
    pub sub_status: &'static str,
    pub vkyc_link: String,
    pub link_expiry: String,
    pub recording_link: Option<String>,
    pub meeting_schedule: Option<String>,
    pub auditor_remarks: Option<String>,
    pub agent_remarks: Option<String>,
}

impl VkycStatus {
    /// The body for `request`; a recording is shown as a link signed now, when a signer
    /// is given.
    pub fn of(
        request: &Request,
        base_url: &str,
        signer: Option<&crate::domain::recording_links::RecordingSigner>,
    ) -> VkycStatus {
        VkycStatus {
            verification_id: request.verification_id.clone(),
            reference_id: request.id,
            user_reference_id: request.user_ref,
            user_id: request.user_id.clone(),
            status: request.sub_status.status().as_str(),
            sub_status: request.sub_status.as_str(),
            vkyc_link: format!("{base_url}/v/{}", request.link_token),
            link_expiry: iso_millis(request.link_expires_at),
            recording_link: request.recording_link.as_deref().map(|r| match signer {
                Some(signer) => signer.link(base_url, r, crate::clock::now_ms()),
                None => r.to_string(),
            }),
            meeting_schedule: request.meeting_schedule.map(iso_seconds),
            auditor_remarks: request.auditor_remarks.clone(),
            agent_remarks: request.agent_remarks.clone(),
        }
    }
}

#[cfg(test)]
mod time_format_tests {
    use super::{iso_millis, iso_seconds};

    /// The field-by-field form is chrono's strftime form, for times across the range a
    /// request can hold (and either side of the epoch).
    #[test]
    fn times_read_as_chrono_writes_them() {
        let chrono = |ms: i64, pattern: &str| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format(pattern)
                .to_string()
        };
        let mut ms: i64 = -86_400_000 * 366;
        while ms < 253_402_300_799_000 {
            assert_eq!(iso_millis(ms), chrono(ms, "%Y-%m-%dT%H:%M:%S%.3fZ"), "{ms}");
            assert_eq!(iso_seconds(ms), chrono(ms, "%Y-%m-%dT%H:%M:%SZ"), "{ms}");
            ms += 7_919_993_311; // about 92 days and an odd number of milliseconds
        }
        assert_eq!(iso_millis(1_754_179_200_000), "2025-08-03T00:00:00.000Z");
        assert_eq!(iso_seconds(1_752_935_400_000), "2025-07-19T14:30:00Z");
        assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
    }
}
