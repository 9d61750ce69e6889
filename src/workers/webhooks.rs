//! The webhook delivery worker: every status change reaches the merchant, signed, at
//! least once.
//!
//! The store writes an event (the outbox) in the same transaction as each status move,
//! with one delivery row per webhook URL. This worker claims due rows with a lease (no
//! transaction is held across the HTTP call), posts them, records each attempt, and
//! retries failures on [`RETRY_SCHEDULE`] with jitter, honouring `Retry-After`. A crash at
//! any point loses nothing: a claimed row whose lease runs out is claimed again.

use crate::clock::now_ms;
use crate::domain::events::signature;
use crate::outbound::check_url;
use crate::secrets::MasterKey;
use crate::store::{ClaimedDelivery, Outcome, Store};
use rand::Rng;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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
/// How much of a receiver's reply is kept with the attempt (and all that is read).
pub const SNIPPET_BYTES: usize = 256;

/// Settings of the delivery worker.
#[derive(Clone)]
pub struct DeliverySettings {
    pub schedule: Vec<u64>,
    pub timeout: Duration,
    pub concurrency: usize,
    pub batch: i64,
    pub lease: Duration,
    pub allow_internal: bool,
    /// The operator's proxy for deliveries; never the environment's.
    pub proxy: Option<String>,
    /// Where each attempt's outcome is counted.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
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
        let client = crate::outbound::guarded_client(
            settings.allow_internal,
            settings.proxy.as_deref(),
            settings.timeout,
            concat!("vkyc-webhooks/", env!("CARGO_PKG_VERSION")),
        )?;
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
                        now_ms(),
                    )
                };
                (delivery, outcome, next)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (_, outcome, next) in &results {
            self.settings
                .metrics
                .webhook_attempt(match (outcome.succeeded(), next) {
                    (true, _) => "delivered",
                    (false, Some(_)) => "retry",
                    (false, None) => "failed",
                });
        }
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
        let url = match check_url(&delivery.url, self.settings.allow_internal) {
            Ok(url) => url,
            Err(reason) => return failed(format!("refused: {reason}")),
        };
        // Through a proxy our resolver is not asked: check the target's addresses here.
        if self.settings.proxy.is_some() && !self.settings.allow_internal {
            if let Err(reason) = crate::outbound::check_resolved(&url).await {
                return failed(format!("refused: {reason}"));
            }
        }
        let secret = match self.key.open(&delivery.secret_enc) {
            Ok(secret) => secret,
            Err(err) => return failed(format!("cannot open the signing secret: {err}")),
        };
        let timestamp = now_ms();
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
                // Only what is kept is read; the rest of the reply is never read (the
                // connection is dropped with it), however long or slow it is.
                let mut response = response;
                let mut kept: Vec<u8> = Vec::with_capacity(SNIPPET_BYTES);
                while kept.len() < SNIPPET_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = SNIPPET_BYTES - kept.len();
                            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                drop(response);
                let snippet: String = String::from_utf8_lossy(&kept).into();
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

/// Passes under way at once. A pass spends most of its time waiting: on the claim, on
/// the receivers, on the commit of its results. A second pass claims other rows (a
/// request's next event is never due while its previous one is claimed) and fills
/// those waits, so a backlog drains about twice as fast.
const PASSES: usize = 2;

pub async fn run(deliverer: Deliverer, every: Duration, shutdown: CancellationToken) {
    // Staggered, so that while idle the receivers wait `every / PASSES` for a new event.
    let passes = (0..PASSES).map(|i| {
        let start = every * i as u32 / PASSES as u32;
        let (deliverer, shutdown) = (&deliverer, &shutdown);
        async move {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(start) => {}
            }
            passes(deliverer, every, shutdown).await
        }
    });
    futures::future::join_all(passes).await;
}

/// One loop of passes: at once again after a full batch, else after `every`.
async fn passes(deliverer: &Deliverer, every: Duration, shutdown: &CancellationToken) {
    loop {
        let worked = match deliverer.deliver_due(now_ms()).await {
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
}
