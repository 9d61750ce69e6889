//! The "local receiver" of `bench/webhooks`: a minimal webhook endpoint that answers 200 to
//! every `POST /hooks` and remembers, per call, when it arrived and what the body says the
//! event is (`event_id`, `event_time`, `sequence`), so that delivery latency (status change
//! -> receiver) and throughput can be computed afterwards. Signatures are not checked: the
//! receiver must cost next to nothing, so that what is measured is `vkyc`'s delivery.
//!
//!     cargo run --release --example webhook_receiver -- 127.0.0.1:0
//!
//! Prints the bound address (`listening on 127.0.0.1:PORT`) on stdout, then serves until
//! killed:
//! - `POST /hooks`: records the call and answers 200 with an empty body.
//! - `GET /count`: `{"count": N}`, the calls recorded so far (cheap, for polling).
//! - `GET /stats`: count, distinct event ids, duplicates, bodies that could not be read,
//!   retried attempts (`x-webhook-attempt` > 1), first/last receive time and first/last
//!   event time (Unix ms), and percentiles (p50, p90, p99, max, mean) in ms of
//!   receive time - `event_time` (`latency_ms`: status change -> receiver, first arrival of
//!   each event), of the same for first events of a request (`sequence` 1) and later ones,
//!   and of `x-webhook-timestamp` - `event_time` (`queued_ms`: status change -> sent).
//! - `POST /reset`: forgets everything recorded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// One call to `POST /hooks`.
struct Call {
    /// Receive time, Unix microseconds.
    received_us: i64,
    /// `event_time` of the body, Unix milliseconds (`None` when unreadable).
    event_ms: Option<i64>,
    /// `x-webhook-timestamp`, Unix milliseconds: when vkyc signed and sent it.
    sent_ms: Option<i64>,
    event_id: Option<String>,
    sequence: Option<i64>,
    attempt: Option<i64>,
}

#[derive(Default)]
struct Recorded {
    calls: Vec<Call>,
}

type Shared = Arc<Mutex<Recorded>>;

/// Only the fields we need; the rest of the body (`data`, ...) is skipped by serde.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event_id: Option<&'a str>,
    #[serde(borrow)]
    event_time: Option<&'a str>,
    sequence: Option<i64>,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

async fn hook(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let received_us = now_us();
    let parsed: Option<Envelope> = serde_json::from_slice(&body).ok();
    let call = Call {
        received_us,
        event_ms: parsed
            .as_ref()
            .and_then(|e| e.event_time)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis()),
        sent_ms: header_i64(&headers, "x-webhook-timestamp"),
        event_id: parsed.as_ref().and_then(|e| e.event_id).map(str::to_owned),
        sequence: parsed.as_ref().and_then(|e| e.sequence),
        attempt: header_i64(&headers, "x-webhook-attempt"),
    };
    shared.lock().unwrap().calls.push(call);
    StatusCode::OK
}

async fn count(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "count": shared.lock().unwrap().calls.len() }))
}

async fn reset(State(shared): State<Shared>) -> StatusCode {
    shared.lock().unwrap().calls.clear();
    StatusCode::NO_CONTENT
}

/// p50, p90, p99, max and mean of `values` (ms), nearest rank; nulls when empty.
fn percentiles(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return json!({ "n": 0, "p50": null, "p90": null, "p99": null, "max": null, "mean": null });
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| {
        let i = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[i.clamp(1, values.len()) - 1]
    };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "n": values.len(),
        "p50": round(rank(50.0)),
        "p90": round(rank(90.0)),
        "p99": round(rank(99.0)),
        "max": round(values[values.len() - 1]),
        "mean": round(values.iter().sum::<f64>() / values.len() as f64),
    })
}

async fn stats(State(shared): State<Shared>) -> Json<Value> {
    let recorded = shared.lock().unwrap();
    let calls = &recorded.calls;
    let mut seen: HashSet<&str> = HashSet::with_capacity(calls.len());
    let (mut unreadable, mut duplicates, mut retried) = (0u64, 0u64, 0u64);
    let (mut latency, mut latency_first, mut latency_later, mut queued) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut first_event_ms: Option<i64> = None;
    let mut last_event_ms: Option<i64> = None;
    for call in calls.iter() {
        if call.attempt.is_some_and(|a| a > 1) {
            retried += 1;
        }
        let (Some(id), Some(event_ms)) = (call.event_id.as_deref(), call.event_ms) else {
            unreadable += 1;
            continue;
        };
        // Latency counts each event once, at its first arrival: a second copy is a duplicate.
        if !seen.insert(id) {
            duplicates += 1;
            continue;
        }
        first_event_ms = Some(first_event_ms.map_or(event_ms, |f| f.min(event_ms)));
        last_event_ms = Some(last_event_ms.map_or(event_ms, |l| l.max(event_ms)));
        let ms = (call.received_us - event_ms * 1000) as f64 / 1000.0;
        latency.push(ms);
        if call.sequence == Some(1) {
            latency_first.push(ms);
        } else {
            latency_later.push(ms);
        }
        if let Some(sent) = call.sent_ms {
            queued.push((sent - event_ms) as f64);
        }
    }
    let first_receive_ms = calls.iter().map(|c| c.received_us / 1000).min();
    let last_receive_ms = calls.iter().map(|c| c.received_us / 1000).max();
    Json(json!({
        "count": calls.len(),
        "distinct": seen.len(),
        "duplicates": duplicates,
        "unreadable": unreadable,
        "retried": retried,
        "first_receive_ms": first_receive_ms,
        "last_receive_ms": last_receive_ms,
        "first_event_ms": first_event_ms,
        "last_event_ms": last_event_ms,
        "latency_ms": percentiles(latency),
        "latency_first_event_ms": percentiles(latency_first),
        "latency_later_events_ms": percentiles(latency_later),
        "queued_ms": percentiles(queued),
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let shared: Shared = Arc::new(Mutex::new(Recorded {
        calls: Vec::with_capacity(1 << 16),
    }));
    let app = Router::new()
        .route("/hooks", post(hook))
        .route("/count", get(count))
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .with_state(shared);
    axum::serve(listener, app).await
}
