//! Webhooks: every status change reaches the merchant, signed, at least once.
//!
//! The store writes an event (the outbox) in the same transaction as each status move,
//! with one delivery row per webhook URL. The delivery worker claims due rows with a lease
//! (no transaction is held across the HTTP call), posts them, records each attempt, and
//! retries failures on [`RETRY_SCHEDULE`] with jitter, honouring `Retry-After`. A crash at
//! any point loses nothing: a claimed row whose lease runs out is claimed again.

use crate::secrets::MasterKey;
use crate::status::SubStatus;
use crate::store::{ClaimedDelivery, Store};
use crate::views::{iso_millis, VkycStatus};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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
    request: &crate::store::Request,
    base_url: &str,
    signer: Option<&crate::recordings::RecordingSigner>,
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

/// Seconds to wait after each failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
/// (about 27.6 hours in all), each with up to 20 % jitter either way. After the last one
/// the delivery is marked failed.
pub const RETRY_SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: u64 = 86_400;

/// When to try again after `attempts` failed attempts, or `None` when the schedule is
/// used up. `retry_after` (seconds) from the receiver wins over the schedule.
pub fn next_attempt(
    schedule: &[u64],
    attempts: usize,
    retry_after: Option<u64>,
    now: i64,
) -> Option<i64> {
    let base = *schedule.get(attempts.checked_sub(1)?)?;
    let delay_ms = match retry_after {
        Some(seconds) => seconds.min(MAX_RETRY_AFTER) * 1000,
        None => {
            let jitter = rand::thread_rng().gen_range(0.8..=1.2);
            (base as f64 * 1000.0 * jitter) as u64
        }
    };
    Some(now + delay_ms as i64)
}

/// Addresses a webhook may not reach unless the operator allows it: loopback, private,
/// link-local, shared (CGNAT), unique-local, unspecified, multicast and documentation
/// ranges. This is what keeps a merchant from using the server against its own network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// Checks a webhook URL given by an operator or a merchant: http(s), a host, and no
/// internal address literal unless allowed. Host names are checked again at each
/// delivery, on the addresses they resolve to then.
pub fn check_url(text: &str, allow_internal: bool) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(text).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    if text.chars().count() > 2000 {
        return Err("the URL is too long");
    }
    let internal = match url.host() {
        None => return Err("the URL has no host"),
        Some(url::Host::Ipv4(ip)) => is_internal(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal(ip.into()),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
    };
    if internal && !allow_internal {
        return Err("internal addresses are not allowed");
    }
    Ok(url)
}

/// A DNS resolver for the webhook client that drops internal addresses (unless allowed),
/// so that a host name cannot lead a delivery into the operator's network.
struct GuardedResolver {
    allow_internal: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_internal;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || !is_internal(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} resolves to no allowed address", name.as_str()).into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Settings of the delivery worker.
#[derive(Clone)]
pub struct DeliverySettings {
    pub schedule: Vec<u64>,
    pub timeout: Duration,
    pub concurrency: usize,
    pub batch: i64,
    pub lease: Duration,
    pub allow_internal: bool,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub snippet: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<u64>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

pub struct Deliverer {
    store: Store,
    key: MasterKey,
    client: reqwest::Client,
    settings: DeliverySettings,
}

impl Deliverer {
    pub fn new(
        store: Store,
        key: MasterKey,
        settings: DeliverySettings,
    ) -> anyhow::Result<Deliverer> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                allow_internal: settings.allow_internal,
            }))
            .user_agent(concat!("vkyc-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            store,
            key,
            client,
            settings,
        })
    }

    /// One step of the worker: claims the deliveries that are due (at most one per request
    /// and URL at a time, so each receiver gets a request's events in order), posts them
    /// concurrently, and records each outcome. Returns how many were attempted.
    pub async fn deliver_due(&self, now: i64) -> anyhow::Result<usize> {
        let lease_until = now + self.settings.lease.as_millis() as i64;
        let claimed = self
            .store
            .claim_deliveries(now, lease_until, self.settings.batch)
            .await?;
        let count = claimed.len();
        use futures::StreamExt;
        let results: Vec<(ClaimedDelivery, Outcome, Option<i64>)> = futures::stream::iter(claimed)
            .map(|delivery| async move {
                let outcome = self.attempt(&delivery).await;
                let next = if outcome.succeeded() {
                    None
                } else {
                    next_attempt(
                        &self.settings.schedule,
                        delivery.attempts as usize + 1,
                        outcome.retry_after,
                        crate::store::now_ms(),
                    )
                };
                (delivery, outcome, next)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        // One commit for the pass. If it fails, the leases run out and the deliveries
        // are sent again: at least once.
        if let Err(err) = self.store.record_attempts(&results).await {
            tracing::warn!(error = ?err, deliveries = results.len(), "recording webhook attempts failed");
        }
        Ok(count)
    }

    async fn attempt(&self, delivery: &ClaimedDelivery) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status_code: None,
            latency_ms: started.elapsed().as_millis() as i64,
            snippet: None,
            error: Some(error),
            retry_after: None,
        };
        if let Err(reason) = check_url(&delivery.url, self.settings.allow_internal) {
            return failed(format!("refused: {reason}"));
        }
        let secret = match self.key.open(&delivery.secret_enc) {
            Ok(secret) => secret,
            Err(err) => return failed(format!("cannot open the signing secret: {err}")),
        };
        let timestamp = crate::store::now_ms();
        let response = self
            .client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("x-webhook-timestamp", timestamp.to_string())
            .header(
                "x-webhook-signature",
                signature(&secret, timestamp, &delivery.body),
            )
            .header("x-webhook-version", "2024-12-01")
            .header("x-webhook-attempt", (delivery.attempts + 1).to_string())
            .header("x-webhook-id", &delivery.event_id)
            .body(delivery.body.clone())
            .send()
            .await;
        match response {
            Err(err) => failed(error_text(&err)),
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let bytes = response.bytes().await.unwrap_or_default();
                let snippet: String =
                    String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into();
                Outcome {
                    status_code: Some(status),
                    latency_ms: started.elapsed().as_millis() as i64,
                    snippet: Some(snippet),
                    error: None,
                    retry_after,
                }
            }
        }
    }
}

fn error_text(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

pub async fn run(deliverer: Deliverer, every: Duration, shutdown: CancellationToken) {
    loop {
        let worked = match deliverer.deliver_due(crate::store::now_ms()).await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(error = ?err, "webhook delivery pass failed; retrying");
                0
            }
        };
        // A full batch means more may be waiting: go again at once.
        if worked as i64 >= deliverer.settings.batch {
            if shutdown.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
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

    #[test]
    fn retries_follow_the_schedule_then_stop_and_honour_retry_after() {
        let now = 1_000_000;
        let first = next_attempt(&RETRY_SCHEDULE, 1, None, now).unwrap();
        assert!((now + 4_000..=now + 6_000).contains(&first));
        let total: u64 = RETRY_SCHEDULE.iter().sum();
        assert!(total >= 24 * 3600, "at least a day of retries");
        assert_eq!(
            next_attempt(&RETRY_SCHEDULE, RETRY_SCHEDULE.len() + 1, None, now),
            None
        );
        assert_eq!(
            next_attempt(&RETRY_SCHEDULE, 1, Some(120), now),
            Some(now + 120_000)
        );
        assert_eq!(
            next_attempt(&RETRY_SCHEDULE, 1, Some(10_000_000), now),
            Some(now + MAX_RETRY_AFTER as i64 * 1000)
        );
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://localhost:8080/",
            "http://100.64.0.1/",
            "ftp://example.in/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("https://merchant.example.in/hooks", false).is_ok());
        assert!(check_url("https://8.8.8.8/hooks", false).is_ok());
    }
}

#[cfg(test)]
mod resolver_tests {
    use super::*;
    use reqwest::dns::Resolve;
    use std::str::FromStr;

    #[tokio::test]
    async fn names_that_resolve_only_to_internal_addresses_are_refused() {
        let strict = GuardedResolver {
            allow_internal: false,
        };
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = strict
            .resolve(name)
            .await
            .err()
            .expect("localhost is internal");
        assert!(err.to_string().contains("no allowed address"), "{err}");
        let open = GuardedResolver {
            allow_internal: true,
        };
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
