//! The numbers an on-call engineer watches, in Prometheus' model (`prometheus-client`).
//! Each running server has a [`Metrics`] of its own, with its own registry rather than
//! a process-wide one, so that servers sharing a process never mix their counts.
//!
//! Three sources: counters the server bumps as things happen (HTTP requests, recordings,
//! webhook attempts); the relay's atomic counters, read at each scrape; and gauges that
//! the scrape sets from the database just before encoding ([`Metrics::set_backlog`]).

use crate::media::Relay;
use crate::store::{Backlog, PoolUse};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The route label of a request that matched no route: one value for every unknown
/// path, so a scanner cannot grow the label set.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's template (`/verification/vkyc/{id}`), never the path itself.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolName {
    pool: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Request latencies from 5 ms to 10 s: the API answers in milliseconds, a sign-in's
/// password check takes a few hundred, an upload or a slow database seconds.
fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// One server's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    recordings_written: Counter,
    recording_uploads_failed: Counter,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    queued: Gauge,
    agents_online: Gauge,
    calls: Family<StateLabels, Gauge>,
    webhook_backlog: Gauge,
    notification_backlog: Gauge,
    worker_lag: Family<WorkerLabels, FloatGauge>,
    db_connections: Family<PoolLabels, Gauge>,
    db_max: Family<PoolName, Gauge>,
    database_up: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every series, and the relay's counters when there is a relay.
    pub fn new(relay: Option<&Relay>) -> Metrics {
        let mut registry = Registry::with_prefix("vkyc");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response's headers, by method and route",
            Unit::Seconds,
            http_duration.clone(),
        );
        let recordings_written = Counter::default();
        registry.register(
            "recordings_written",
            "Call recordings finished and kept (locally or uploaded)",
            recordings_written.clone(),
        );
        let recording_uploads_failed = Counter::default();
        registry.register(
            "recording_uploads_failed",
            "Recordings whose upload to the bucket failed (the local file is kept)",
            recording_uploads_failed.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        // Each outcome from the start at 0, so a rate over it exists before the first.
        for outcome in ["delivered", "retry", "failed"] {
            let _ = webhook_attempts.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome: delivered, retry (failed, tried again \
             later) or failed (failed, given up)",
            webhook_attempts.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let queued = gauge(
            &mut registry,
            "customers_queued",
            "Customers waiting in the live queue",
        );
        let agents_online = gauge(
            &mut registry,
            "agents_online",
            "Agents online with a recent heartbeat",
        );
        let calls = Family::<StateLabels, Gauge>::default();
        registry.register(
            "calls",
            "Calls by state: invited (waiting for the customer) or active (live)",
            calls.clone(),
        );
        let webhook_backlog = gauge(
            &mut registry,
            "webhook_backlog",
            "Webhook deliveries still to be made, due now or waiting for a retry",
        );
        let notification_backlog = gauge(
            &mut registry,
            "notification_backlog",
            "Messages to customers (email, SMS, WhatsApp) not yet sent",
        );
        let worker_lag = Family::<WorkerLabels, FloatGauge>::default();
        registry.register_with_unit(
            "worker_lag",
            "How long the oldest row due to each background worker has been waiting \
             (0 when none is due)",
            Unit::Seconds,
            worker_lag.clone(),
        );
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections open, by pool and state (idle or busy)",
            db_connections.clone(),
        );
        let db_max = Family::<PoolName, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections each database pool opens",
            db_max.clone(),
        );
        let database_up = gauge(
            &mut registry,
            "database_up",
            "1 when the scrape could read the database's gauges, else 0 (they then keep \
             their last values)",
        );
        if let Some(relay) = relay {
            registry.register_with_unit(
                "relay_reported_loss",
                "Packet loss from each call side to the relay, one observation per \
                 receiver report (about one a second per media line)",
                Unit::Ratios,
                relay.loss_histogram(),
            );
            registry.register_collector(Box::new(RelayCollector(relay.clone())));
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            recordings_written,
            recording_uploads_failed,
            webhook_attempts,
            queued,
            agents_online,
            calls,
            webhook_backlog,
            notification_backlog,
            worker_lag,
            db_connections,
            db_max,
            database_up,
        }
    }

    /// Counts one answered request; `route` is the matched template or [`UNMATCHED`].
    pub fn observe_request(
        &self,
        method: &axum::http::Method,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A recording finished; `upload_failed` when it was meant for the bucket and
    /// stayed local.
    pub fn recording_kept(&self, upload_failed: bool) {
        self.recordings_written.inc();
        if upload_failed {
            self.recording_uploads_failed.inc();
        }
    }

    /// A webhook attempt came to `outcome` ("delivered", "retry" or "failed").
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Sets the gauges that live in the database, as read at `now` (Unix ms).
    pub fn set_backlog(&self, backlog: &Backlog, now: i64) {
        self.queued.set(backlog.queued);
        self.agents_online.set(backlog.agents_online);
        self.calls
            .get_or_create(&StateLabels { state: "invited" })
            .set(backlog.calls_invited);
        self.calls
            .get_or_create(&StateLabels { state: "active" })
            .set(backlog.calls_active);
        self.webhook_backlog.set(backlog.webhook_backlog);
        self.notification_backlog.set(backlog.notification_backlog);
        for (worker, due) in &backlog.oldest_due {
            let lag = due.map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0);
            self.worker_lag
                .get_or_create(&WorkerLabels { worker })
                .set(lag);
        }
    }

    pub fn set_database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }

    /// Sets the connection-pool gauges.
    pub fn set_pools(&self, pools: &[PoolUse]) {
        for p in pools {
            let busy = p.open.saturating_sub(p.idle);
            for (state, n) in [("idle", p.idle), ("busy", busy)] {
                self.db_connections
                    .get_or_create(&PoolLabels {
                        pool: p.pool,
                        state,
                    })
                    .set(i64::from(n));
            }
            self.db_max
                .get_or_create(&PoolName { pool: p.pool })
                .set(i64::from(p.max));
        }
    }

    /// Everything, in the OpenMetrics text format that Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The method as a label: the standard ones by name, anything else as one value.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The relay's own counters (atomics the media tasks bump), read at each scrape.
struct RelayCollector(Relay);

impl std::fmt::Debug for RelayCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayCollector")
    }
}

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let counters: [(&str, &str, Option<Unit>, u64); 6] = [
            (
                "relay_packets_received",
                "UDP datagrams and TCP frames the relay received",
                None,
                s.packets_in,
            ),
            (
                "relay_received",
                "Bytes the relay received",
                Some(Unit::Bytes),
                s.bytes_in,
            ),
            (
                "relay_packets_sent",
                "UDP datagrams and TCP frames the relay sent",
                None,
                s.packets_out,
            ),
            (
                "relay_sent",
                "Bytes the relay sent",
                Some(Unit::Bytes),
                s.bytes_out,
            ),
            (
                "relay_frames_forwarded",
                "Audio and video frames passed from one side of a call to the other",
                None,
                s.frames_forwarded,
            ),
            (
                "relay_frames_recorded",
                "Audio and video frames written to recordings",
                None,
                s.frames_recorded,
            ),
        ];
        for (name, help, unit, value) in counters {
            let counter = ConstCounter::new(value);
            let metric =
                encoder.encode_descriptor(name, help, unit.as_ref(), counter.metric_type())?;
            counter.encode(metric)?;
        }
        let gauges: [(&str, &str, u64); 3] = [
            (
                "relay_shards",
                "Relay tasks, each on its own ports",
                s.shards,
            ),
            ("relay_calls", "Calls open on the relay", s.calls),
            (
                "relay_peers",
                "Browser connections held by the relay",
                s.peers,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
