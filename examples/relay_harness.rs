//! A tiny server around `vkyc::media::Relay` for browser tests and for
//! measuring CPU/memory per concurrent call.
//!
//!   cargo run --example relay_harness
//!
//! Environment: HARNESS_ADDR (default 127.0.0.1:0), MEDIA_UDP (127.0.0.1:0),
//! ADVERTISED_IP (127.0.0.1), RECORDINGS_DIR (./recordings).
//!
//! Routes:
//!   GET  /?call=ID&side=customer|agent   test page: camera+mic out, the other side in
//!   POST /open/{call_id}                 JSON metadata, e.g. {"customer_gps":{"lat":..,"lon":..}}
//!   POST /join/{call_id}/{side}          body: SDP offer -> SDP answer (opens the call if needed)
//!   POST /end/{call_id}                  -> Recording JSON (or null)
//!   GET  /events/{call_id}               -> MediaEvents seen for the call, with ms since harness start
//!   GET  /stats                          -> RelayStats

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use vkyc::media::{MediaConfig, MediaEvent, Relay, Side};

#[derive(Clone)]
struct App {
    relay: Relay,
    events: Arc<Mutex<HashMap<String, Vec<Value>>>>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,str0m=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let relay = Relay::start(MediaConfig {
        udp_bind: env_or("MEDIA_UDP", "127.0.0.1:0").parse()?,
        advertised_ip: env_or("ADVERTISED_IP", "127.0.0.1").parse()?,
        recordings_dir: env_or("RECORDINGS_DIR", "recordings").into(),
        // UDP only unless MEDIA_TCP is set; the server's default grace.
        tcp_bind: std::env::var("MEDIA_TCP")
            .ok()
            .map(|a| a.parse())
            .transpose()?,
        drop_grace: std::time::Duration::from_secs(20),
        // One relay task per core unless MEDIA_SHARDS says otherwise.
        shards: std::env::var("MEDIA_SHARDS")
            .ok()
            .map(|n| n.parse())
            .transpose()?
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    })
    .await?;

    let app = App {
        relay: relay.clone(),
        events: Default::default(),
    };
    let mut rx = relay.events();
    let log = app.events.clone();
    let t0 = Instant::now();
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let (MediaEvent::Connected { call_id, .. } | MediaEvent::Disconnected { call_id, .. }) =
                &ev;
            let entry = json!({ "at_ms": t0.elapsed().as_millis() as u64, "event": ev });
            log.lock()
                .unwrap()
                .entry(call_id.clone())
                .or_default()
                .push(entry);
        }
    });

    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/open/{call_id}", post(open))
        .route("/join/{call_id}/{side}", post(join))
        .route("/end/{call_id}", post(end))
        .route("/events/{call_id}", get(events))
        .route(
            "/stats",
            get(|State(app): State<App>| async move { Json(app.relay.stats()) }),
        )
        .with_state(app);
    let addr: SocketAddr = env_or("HARNESS_ADDR", "127.0.0.1:0").parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The test reads this line to find the server.
    println!(
        "HARNESS_URL=http://{} MEDIA_UDP={}",
        listener.local_addr()?,
        relay.local_addr()
    );
    axum::serve(listener, router).await?;
    Ok(())
}

fn fail(e: anyhow::Error) -> Response {
    (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response()
}

async fn open(
    State(app): State<App>,
    Path(call_id): Path<String>,
    Json(meta): Json<Value>,
) -> Response {
    match app.relay.open_call(&call_id, meta).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(e),
    }
}

async fn join(
    State(app): State<App>,
    Path((call_id, side)): Path<(String, String)>,
    offer: String,
) -> Response {
    let side = match side.as_str() {
        "customer" => Side::Customer,
        "agent" => Side::Agent,
        _ => return (StatusCode::NOT_FOUND, "side is customer or agent").into_response(),
    };
    // Benchmarks just join; opening an already open call does nothing.
    if let Err(e) = app
        .relay
        .open_call(&call_id, json!({ "source": "relay_harness" }))
        .await
    {
        return fail(e);
    }
    match app.relay.join(&call_id, side, &offer).await {
        Ok(answer) => answer.into_response(),
        Err(e) => fail(e),
    }
}

async fn end(State(app): State<App>, Path(call_id): Path<String>) -> Response {
    match app.relay.end_call(&call_id).await {
        Ok(rec) => Json(rec).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
    }
}

async fn events(State(app): State<App>, Path(call_id): Path<String>) -> Json<Vec<Value>> {
    Json(
        app.events
            .lock()
            .unwrap()
            .get(&call_id)
            .cloned()
            .unwrap_or_default(),
    )
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>vkyc relay harness</title>
<style>video{width:320px;background:#222}</style>
<p id="status">starting</p>
<video id="local" autoplay playsinline muted></video>
<video id="remote" autoplay playsinline muted></video>
<script>
const q = new URLSearchParams(location.search);
const side = q.get('side') || 'customer';
const call = q.get('call') || 'demo';
const status = (s) => { document.getElementById('status').textContent = side + ': ' + s; };
window.harness = { side, call, connectedAfterMs: null, error: null };
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  document.getElementById('local').srcObject = stream;
  // No ICE servers: the relay is ICE-lite with one host candidate.
  const pc = new RTCPeerConnection();
  window.pc = pc;
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  const remote = new MediaStream();
  window.remoteStream = remote;
  pc.ontrack = (e) => { remote.addTrack(e.track); document.getElementById('remote').srcObject = remote; };
  pc.onconnectionstatechange = () => {
    status(pc.connectionState);
    if (pc.connectionState === 'connected' && window.harness.connectedAfterMs === null) {
      window.harness.connectedAfterMs = Math.round(performance.now() - t0);
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  const t0 = performance.now();
  const res = await fetch(`/join/${encodeURIComponent(call)}/${side}`, { method: 'POST', body: pc.localDescription.sdp });
  if (!res.ok) throw new Error(await res.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  status('negotiated');
})().catch((e) => { window.harness.error = String(e); status('error: ' + e); });
</script>
"#;
