//! Webhook events: which event each status move announces, the body it carries (the
//! `GET /vkyc` body at that moment) and the signature the receiver checks. Pure: the
//! store writes these in the same transaction as the move; a worker sends them.

use crate::domain::recording_links::RecordingSigner;
use crate::domain::request::Request;
use crate::domain::status::SubStatus;
use crate::domain::views::{iso_millis, VkycStatus};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The event a move to `to` announces. The hosted service names ten events; the other
/// sub-statuses get names of our own (marked "ours" in docs/webhooks.md) so that no
/// status change is silent.
pub fn event_type(to: SubStatus) -> &'static str {
    use SubStatus as S;
    match to {
        S::LinkGenerated => "VKYC_USER_LINK_GENERATED",
        S::VkycExpired => "VKYC_USER_LINK_EXPIRED",
        S::AadhaarVerificationSuccess => "VKYC_USER_AADHAAR_VERIFIED",
        S::UserMeetingScheduled => "VKYC_USER_CALL_SCHEDULED",
        S::AadhaarVerificationFailed
        | S::AadhaarVerificationExpired
        | S::UserProxyDetected
        | S::TechnicalFailure
        | S::UserLocationOutsideIndia
        | S::UserLocationPermissionDisabled
        | S::UserAudioCheckFailed
        | S::UserVideoCheckFailed => "VKYC_USER_PRECHECK_FAILED",
        S::UserQueued | S::ScheduledUserQueued => "VKYC_USER_CALL_QUEUED",
        S::UserAcceptedMeeting => "VKYC_USER_CALL_STARTED",
        S::UserDroppedOff | S::AgentDroppedOff => "VKYC_USER_DROPOFF_FROM_CALL",
        S::UserEndedCall | S::AgentEndedCall => "VKYC_USER_CALL_COMPLETED",
        S::AuditorApproved | S::AuditorRejected => "VKYC_AUDITOR_REVIEW_COMPLETED",
        // Ours.
        S::UserIpVerificationSuccessful
        | S::UserLocationVerificationSuccess
        | S::UserDeviceCheckSuccess => "VKYC_USER_PRECHECK_PASSED",
        S::NoAgentFound => "VKYC_USER_NO_AGENT_FOUND",
        S::AgentAssignedToUser => "VKYC_USER_AGENT_ASSIGNED",
        S::UserMeetingCancelled => "VKYC_USER_CALL_CANCELLED",
        S::UserRejectedMeeting | S::UserMissedMeeting => "VKYC_USER_CALL_MISSED",
        S::TechnicalError => "VKYC_USER_CALL_FAILED",
        S::AgentApproved | S::AgentRejected | S::AgentUnableToValidate => {
            "VKYC_AGENT_REVIEW_COMPLETED"
        }
        S::InsufficientBalance => "VKYC_REQUEST_REJECTED",
    }
}

/// The names the hosted service documents; the rest of [`event_type`]'s are ours.
pub const HOSTED_EVENTS: [&str; 10] = [
    "VKYC_USER_LINK_GENERATED",
    "VKYC_USER_LINK_EXPIRED",
    "VKYC_USER_AADHAAR_VERIFIED",
    "VKYC_USER_CALL_SCHEDULED",
    "VKYC_USER_PRECHECK_FAILED",
    "VKYC_USER_CALL_QUEUED",
    "VKYC_USER_CALL_STARTED",
    "VKYC_USER_DROPOFF_FROM_CALL",
    "VKYC_USER_CALL_COMPLETED",
    "VKYC_AUDITOR_REVIEW_COMPLETED",
];

/// The body of one event: `{event_type, event_time, version, event_id, sequence, data}`,
/// `data` being the `GET /vkyc` body at that moment.
pub fn envelope(
    request: &Request,
    base_url: &str,
    signer: Option<&RecordingSigner>,
    event_id: &str,
    seq: i64,
    at: i64,
) -> String {
    let body = serde_json::json!({
        "event_type": event_type(request.sub_status),
        "event_time": iso_millis(at),
        "version": "v1",
        "event_id": event_id,
        "sequence": seq,
        "data": VkycStatus::of(request, base_url, signer),
    });
    body.to_string()
}

pub fn new_event_id() -> String {
    format!("evt_{}", hex::encode(rand::random::<[u8; 12]>()))
}

/// `x-webhook-signature`: Base64(HMAC-SHA256(client secret, timestamp + raw body)).
pub fn signature(secret: &[u8], timestamp_ms: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_status_announces_an_event_and_the_hosted_names_are_all_used() {
        let used: std::collections::BTreeSet<&str> =
            SubStatus::ALL.iter().map(|s| event_type(*s)).collect();
        for name in HOSTED_EVENTS {
            assert!(used.contains(name), "{name}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // Known answer computed independently: echo -n '1700000000000{"a":1}' |
        // openssl dgst -sha256 -hmac secret -binary | base64
        assert_eq!(
            signature(b"secret", 1_700_000_000_000, "{\"a\":1}"),
            "0pM2GdttJSewPFhxsH1nVKvgeUeQD/mx7t0F5acVYpI="
        );
    }
}
