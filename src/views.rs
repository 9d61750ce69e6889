//! How a request is shown to merchants: the `GET /vkyc` body, which webhooks carry too,
//! and the time formats of the hosted API.

use crate::store::Request;
use serde::Serialize;

/// `2025-08-03T00:00:00.000Z`, the form of `link_expiry` in the hosted API.
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `2025-07-19T14:30:00Z`, the form of `meeting_schedule`.
pub fn iso_seconds(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
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
        signer: Option<&crate::recordings::RecordingSigner>,
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
                Some(signer) => signer.link(base_url, r, crate::store::now_ms()),
                None => r.to_string(),
            }),
            meeting_schedule: request.meeting_schedule.map(iso_seconds),
            auditor_remarks: request.auditor_remarks.clone(),
            agent_remarks: request.agent_remarks.clone(),
        }
    }
}
