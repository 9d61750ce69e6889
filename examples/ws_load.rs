//! A load client for the queue WebSocket (`/v/<key>/ws`): opens one socket per key and
//! keeps them all open, counting what arrives. Used by `bench/websockets`.
//!
//!   cargo run --release --example ws_load -- --base ws://127.0.0.1:8080 --keys keys.txt
//!
//! Options: `--base URL` (ws://host:port of the server), `--keys FILE` (one journey key a
//! line), `--connect-concurrency N` (handshakes in flight at once, default 200).
//!
//! It prints `OPENED ...` once every socket has been tried, then obeys commands on
//! standard input, one a line, and answers each with one line on standard output:
//!
//!   stats  -> `STATS open=.. closed=.. messages=.. kinds=type:step=count,..`
//!   mark   -> waits (up to 60 s) until every socket still open has received a message
//!             after the mark, then `REACHED sockets=.. of=.. first_ms=.. p50_ms=..
//!             p99_ms=.. last_ms=..` (milliseconds since the mark)
//!   quit   -> closes every socket and exits (so does the end of standard input)
//!
//! Sockets the server closes are counted, not reopened: a socket that closes while its
//! request should still be waiting is exactly what a benchmark wants to see.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What every socket task shares with the command loop.
struct Shared {
    start: Instant,
    /// Per socket: still open.
    open: Vec<AtomicBool>,
    /// Per socket: when its last message arrived, in µs since `start` (0: never).
    last_at_us: Vec<AtomicU64>,
    messages: AtomicU64,
    closed: AtomicU64,
    /// Messages by `type` (and `step` for status messages), to see what the server said.
    kinds: Mutex<BTreeMap<String, u64>>,
    quit: Notify,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = arg(&args, "--base").context("--base ws://host:port is required")?;
    let keys_file = arg(&args, "--keys").context("--keys FILE is required")?;
    let concurrency: usize = arg(&args, "--connect-concurrency")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(200);
    let keys: Vec<String> = std::fs::read_to_string(&keys_file)
        .with_context(|| format!("reading {keys_file}"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if keys.is_empty() {
        bail!("no keys in {keys_file}");
    }

    let shared = Arc::new(Shared {
        start: Instant::now(),
        open: keys.iter().map(|_| AtomicBool::new(false)).collect(),
        last_at_us: keys.iter().map(|_| AtomicU64::new(0)).collect(),
        messages: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        kinds: Mutex::new(BTreeMap::new()),
        quit: Notify::new(),
    });

    // Open them all, `concurrency` handshakes at a time; each socket then lives in its
    // own task, as a browser's would.
    let gate = Arc::new(Semaphore::new(concurrency));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut handshakes = Vec::with_capacity(keys.len());
    let mut sockets = Vec::with_capacity(keys.len());
    let began = Instant::now();
    for (index, key) in keys.iter().enumerate() {
        let permit = gate.clone().acquire_owned().await?;
        let url = format!("{base}/v/{key}/ws");
        let shared = shared.clone();
        let failures = failures.clone();
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
        handshakes.push(opened_rx);
        sockets.push(tokio::spawn(async move {
            // A small read buffer: the server's messages are tiny, and tungstenite's
            // default (128 KiB, zero-filled on the first read) would make this client's
            // memory, not the server's, what 10,000 sockets cost on a shared machine.
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let connected =
                tokio_tungstenite::connect_async_with_config(&url, Some(config), true).await;
            drop(permit);
            let mut ws = match connected {
                Ok((ws, _)) => ws,
                Err(err) => {
                    failures.lock().unwrap().push(err.to_string());
                    return;
                }
            };
            shared.open[index].store(true, Relaxed);
            let _ = opened_tx.send(());
            loop {
                let next = tokio::select! {
                    next = ws.next() => next,
                    _ = shared.quit.notified() => break,
                };
                match next {
                    Some(Ok(Message::Text(text))) => {
                        let at = shared.start.elapsed().as_micros() as u64;
                        shared.last_at_us[index].store(at.max(1), Relaxed);
                        shared.messages.fetch_add(1, Relaxed);
                        let kind = serde_json::from_str::<serde_json::Value>(&text)
                            .map(|v| match (v["type"].as_str(), v["step"].as_str()) {
                                (Some(t), Some(s)) => format!("{t}:{s}"),
                                (Some(t), None) => t.to_string(),
                                _ => "other".to_string(),
                            })
                            .unwrap_or_else(|_| "not-json".to_string());
                        *shared.kinds.lock().unwrap().entry(kind).or_default() += 1;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        shared.open[index].store(false, Relaxed);
                        shared.closed.fetch_add(1, Relaxed);
                        return;
                    }
                    Some(Ok(_)) => {}
                }
            }
            // Quitting: say goodbye properly so the server frees its side at once.
            shared.open[index].store(false, Relaxed);
            let _ = ws.close(None).await;
        }));
    }
    let mut ok = 0;
    for rx in handshakes {
        if rx.await.is_ok() {
            ok += 1;
        }
    }
    let failed = failures.lock().unwrap().clone();
    println!(
        "OPENED ok={ok} failed={} ms={} first_error={:?}",
        failed.len(),
        began.elapsed().as_millis(),
        failed.first().map(String::as_str).unwrap_or("")
    );

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "stats" => {
                let open = shared.open.iter().filter(|o| o.load(Relaxed)).count();
                let kinds = shared
                    .kinds
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect::<Vec<_>>()
                    .join(",");
                println!(
                    "STATS open={open} closed={} messages={} kinds={kinds}",
                    shared.closed.load(Relaxed),
                    shared.messages.load(Relaxed)
                );
            }
            "mark" => println!("{}", reach_all(&shared).await),
            "quit" => break,
            "" => {}
            other => println!("ERROR unknown command {other:?}"),
        }
    }
    shared.quit.notify_waiters();
    for socket in sockets {
        let _ = tokio::time::timeout(Duration::from_secs(5), socket).await;
    }
    Ok(())
}

/// Waits until every open socket has had a message after now; the spread of arrivals.
async fn reach_all(shared: &Shared) -> String {
    let mark = shared.start.elapsed().as_micros() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut arrivals = Vec::new();
        let mut open = 0;
        for (i, is_open) in shared.open.iter().enumerate() {
            if !is_open.load(Relaxed) {
                continue;
            }
            open += 1;
            let at = shared.last_at_us[i].load(Relaxed);
            if at > mark {
                arrivals.push(at - mark);
            }
        }
        let done = arrivals.len() == open && open > 0;
        if done || Instant::now() >= deadline {
            arrivals.sort_unstable();
            let ms = |q: f64| -> String {
                if arrivals.is_empty() {
                    return "-".into();
                }
                let i = ((arrivals.len() as f64 - 1.0) * q).round() as usize;
                format!("{:.1}", arrivals[i] as f64 / 1000.0)
            };
            return format!(
                "REACHED sockets={} of={open} timed_out={} first_ms={} p50_ms={} p99_ms={} last_ms={}",
                arrivals.len(),
                !done,
                ms(0.0),
                ms(0.5),
                ms(0.99),
                ms(1.0)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
