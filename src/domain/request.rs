//! A Video KYC request as every part of the server sees it: what the store reads and
//! writes, what `GET /vkyc` and webhook events show.

use crate::domain::status::SubStatus;

/// A Video KYC request row.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    pub merchant_id: i64,
    pub verification_id: String,
    pub user_ref: i64,
    pub user_id: String,
    pub link_token: String,
    pub link_expires_at: i64,
    pub sub_status: SubStatus,
    pub version: i64,
    pub notification_types: Option<String>,
    pub user_template: Option<String>,
    pub agent_template: Option<String>,
    /// The template versions the request was made under (None: made before templates).
    pub user_template_version: Option<i64>,
    pub agent_template_version: Option<i64>,
    /// The merchant's `aadhaar_details`, sealed: opened by `Store::merchant_aadhaar_details`
    /// only where they are shown or used.
    pub aadhaar_details: Option<crate::secrets::Sealed>,
    pub security_questions: Option<String>,
    pub recording_link: Option<String>,
    pub meeting_schedule: Option<i64>,
    pub agent_remarks: Option<String>,
    pub auditor_remarks: Option<String>,
    pub created_at: i64,
    pub webhook_url: Option<String>,
    /// How many webhook events the request has produced.
    pub event_seq: i64,
    /// When the retention rules removed its personal data (a tombstone since).
    pub purged_at: Option<i64>,
}
