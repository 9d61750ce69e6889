//! Crash safety: the real `vkyc` binary, SIGKILLed while webhook deliveries (and API calls)
//! are in flight, then restarted on the same data directory and database. Nothing may be
//! lost: every acknowledged call survives, and every event is delivered at least once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The webhook timeout given to the server. The delivery lease is this plus 30 s, so a
/// delivery claimed by a killed server is claimed again after about 31 s.
const WEBHOOK_TIMEOUT_SECONDS: u64 = 1;

/// One webhook call as the receiver saw it.
#[derive(Clone, Debug)]
struct Call {
    event_id: String,
    verification_id: String,
    seq: i64,
    sub_status: String,
    attempt: String,
    signed: bool,
}

/// A slow receiver: it records each call when it arrives, waits 200 to 500 ms, records
/// it again as answered, and answers 200. Calls cut off by a kill stay unanswered.
#[derive(Clone)]
struct SlowReceiver {
    secret: String,
    received: Arc<Mutex<Vec<Call>>>,
    answered: Arc<Mutex<Vec<Call>>>,
    /// Calls for sequence n + 1 that arrived before sequence n of the same request had
    /// been answered (the server promises each request's events in order).
    out_of_order: Arc<Mutex<Vec<String>>>,
}

impl SlowReceiver {
    fn new(secret: &str) -> SlowReceiver {
        SlowReceiver {
            secret: secret.to_string(),
            received: Arc::default(),
            answered: Arc::default(),
            out_of_order: Arc::default(),
        }
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.received.lock().unwrap().len(),
            self.answered.lock().unwrap().len(),
        )
    }

    fn answered_keys(&self) -> BTreeSet<(String, i64)> {
        self.answered
            .lock()
            .unwrap()
            .iter()
            .map(|c| (c.verification_id.clone(), c.seq))
            .collect()
    }
}

async fn slow_receive(
    State(r): State<SlowReceiver>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let v: Value = serde_json::from_str(&body).expect("a JSON body");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signed = header("x-webhook-timestamp")
        .parse::<i64>()
        .is_ok_and(|ts| {
            vkyc::domain::events::signature(r.secret.as_bytes(), ts, &body)
                == header("x-webhook-signature")
        });
    let call = Call {
        event_id: v["event_id"].as_str().unwrap_or_default().to_string(),
        verification_id: v["data"]["verification_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        seq: v["sequence"].as_i64().unwrap_or(-1),
        sub_status: v["data"]["sub_status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        attempt: header("x-webhook-attempt"),
        signed,
    };
    if call.seq > 1
        && !r
            .answered
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.verification_id == call.verification_id && a.seq == call.seq - 1)
    {
        r.out_of_order.lock().unwrap().push(format!(
            "{}#{} before #{} was answered",
            call.verification_id,
            call.seq,
            call.seq - 1
        ));
    }
    r.received.lock().unwrap().push(call.clone());
    let delay = 200 + rand::random::<u64>() % 301;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    r.answered.lock().unwrap().push(call);
    StatusCode::OK
}

async fn start_slow_receiver(receiver: SlowReceiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(slow_receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The environment the server and the command line share.
fn vkyc_command(dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vkyc"));
    command
        .env_remove("VKYC_CONFIG")
        .env_remove("VKYC_MASTER_KEY")
        .env("VKYC_DATA_DIR", dir)
        .env("VKYC_DATABASE_URL", database_url)
        .env("VKYC_LISTEN", "127.0.0.1:0")
        .env("VKYC_MEDIA__UDP_BIND", "127.0.0.1:0")
        .env("VKYC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
        .env("VKYC_WEBHOOK_INTERVAL_MS", "50")
        .env(
            "VKYC_WEBHOOK_RETRY_SCHEDULE_SECONDS",
            "[1,1,1,1,1,1,1,1,1,1]",
        )
        .env(
            "VKYC_WEBHOOK_TIMEOUT_SECONDS",
            WEBHOOK_TIMEOUT_SECONDS.to_string(),
        )
        .env("VKYC_DEFAULT_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn");
    command
}

/// A `vkyc serve` process; killed (SIGKILL) when dropped, so a failing test leaves none.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    /// The bootstrap merchant's (client id, secret), printed on the first start only.
    pub(crate) bootstrap: Option<(String, String)>,
    log: PathBuf,
}

impl Server {
    /// A server with `env` added to what `vkyc_command` sets.
    fn start_with(dir: &Path, database_url: &str, n: usize, env: &[(&str, &str)]) -> Server {
        let log = dir.join(format!("serve-{n}.log"));
        let mut command = vkyc_command(dir, database_url);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("vkyc serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = String::new();
        let mut base = None;
        let mut client_id = None;
        let mut secret = None;
        // Up to 30 s for the first lines, then a short while for the bootstrap lines,
        // which follow the API line at once when they come at all.
        let mut wait = Duration::from_secs(30);
        while let Ok(line) = rx.recv_timeout(wait) {
            printed.push_str(&line);
            printed.push('\n');
            let line = line.trim();
            if let Some(url) = line.strip_prefix("merchant API:") {
                base = Some(url.trim().trim_end_matches("/verification").to_string());
                wait = Duration::from_millis(300);
            } else if let Some(id) = line.strip_prefix("client id:") {
                client_id = Some(id.trim().to_string());
            } else if let Some(s) = line.strip_prefix("client secret:") {
                secret = Some(s.trim().to_string());
            }
            if base.is_some() && secret.is_some() {
                break;
            }
        }
        let mut server = Server {
            child,
            base: String::new(),
            bootstrap: client_id.zip(secret),
            log,
        };
        let Some(base) = base else {
            panic!(
                "vkyc serve printed no API URL: {printed}\nlog: {}",
                server.logs()
            );
        };
        server.base = base;
        server
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no graceful stop, no chance to record what is in flight.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server off the async threads (reading its output blocks).
async fn start_server(dir: &Path, database_url: &str, n: usize) -> Server {
    start_server_with(dir, database_url, n, &[]).await
}

/// The same, with more environment variables than `vkyc_command` sets.
pub(crate) async fn start_server_with(
    dir: &Path,
    database_url: &str,
    n: usize,
    env: &[(&str, &str)],
) -> Server {
    let (dir, url) = (dir.to_path_buf(), database_url.to_string());
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_with(&dir, &url, n, &env)
    })
    .await
    .unwrap()
}

/// The merchant API of a spawned server, as its bootstrap merchant.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    client_id: String,
    secret: String,
}

impl Api {
    /// The bootstrap merchant's API on `server` (first start of a fresh database).
    pub(crate) fn of(server: &Server) -> Api {
        let (client_id, secret) = server.bootstrap.clone().expect("bootstrap credentials");
        Api {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: server.base.clone(),
            client_id,
            secret,
        }
    }

    /// A call; `Err` when no answer came (the server died under it).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .client
            .request(method, format!("{}/verification{path}", self.base))
            .header("x-client-id", &self.client_id)
            .header("x-client-secret", &self.secret)
            .header("x-api-version", "2024-12-01");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub(crate) async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await.expect("an answer");
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// What the test asked of the server, and whether the server acknowledged it (2xx).
#[derive(Clone, Debug, Default)]
struct Asked {
    verification_id: String,
    created: Option<bool>,
    /// The sandbox target, and whether the advance was acknowledged.
    advanced: Option<(&'static str, bool)>,
}

/// Creates `verification_id` and optionally advances it; stops at the first call that
/// got no 2xx answer (the server may be gone).
async fn create_and_advance(
    api: &Api,
    verification_id: &str,
    target: Option<&'static str>,
    asked: &Mutex<Vec<Asked>>,
) -> bool {
    let index = {
        let mut asked = asked.lock().unwrap();
        asked.push(Asked {
            verification_id: verification_id.to_string(),
            ..Asked::default()
        });
        asked.len() - 1
    };
    let created = api
        .call(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": verification_id, "user_id": "u1"})),
        )
        .await
        .is_ok_and(|(status, _)| (200..300).contains(&status));
    asked.lock().unwrap()[index].created = Some(created);
    if !created {
        return false;
    }
    let Some(target) = target else { return true };
    let advanced = api
        .call(
            Method::POST,
            "/sandbox/vkyc/advance",
            Some(json!({"verification_id": verification_id, "sub_status": target})),
        )
        .await
        .is_ok_and(|(status, _)| (200..300).contains(&status));
    asked.lock().unwrap()[index].advanced = Some((target, advanced));
    advanced
}

/// Waits until `check` holds, up to `limit`.
async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_survive_sigkill_and_every_event_arrives_at_least_once() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::test_database(dir.path()).await;
    let mut timings = Vec::new();

    // First life: bootstrap merchant, webhook URL, requests, deliveries under way.
    let s1 = start_server(dir.path(), &database_url, 1).await;
    let (client_id, secret) = s1
        .bootstrap
        .clone()
        .expect("the first start prints the bootstrap merchant");
    let receiver = SlowReceiver::new(&secret);
    let hook_url = start_slow_receiver(receiver.clone()).await;
    let out = {
        let (dir, db, id, url) = (
            dir.path().to_path_buf(),
            database_url.clone(),
            client_id.clone(),
            hook_url.clone(),
        );
        tokio::task::spawn_blocking(move || {
            vkyc_command(&dir, &db)
                .args(["merchant", "webhook", "--client-id", &id, "--url", &url])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "vkyc merchant webhook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base: s1.base.clone(),
        client_id,
        secret,
    };
    api.ok(
        Method::POST,
        "/user",
        Some(json!({"user_id": "u1", "phone": "9876543210", "name": "Asha Rao"})),
    )
    .await;
    let asked = Arc::new(Mutex::new(Vec::<Asked>::new()));
    for i in 0..20 {
        let target = match i % 3 {
            0 => Some("AUDITOR_APPROVED"),
            1 => Some("USER_QUEUED"),
            _ => None,
        };
        assert!(create_and_advance(&api, &format!("a{i}"), target, &asked).await);
    }
    timings.push(format!(
        "first life: 20 requests made at {:?}",
        t0.elapsed()
    ));
    wait_for("deliveries in flight", Duration::from_secs(20), || {
        let (received, answered) = receiver.counts();
        answered >= 10 && received > answered
    })
    .await;
    let (received, answered) = receiver.counts();
    s1.kill();
    timings.push(format!(
        "kill 1 at {:?}: {received} calls received, {answered} answered, {} in flight",
        t0.elapsed(),
        received - answered
    ));

    // Second life: new requests made while it delivers; killed under both.
    let s2 = start_server(dir.path(), &database_url, 2).await;
    assert!(s2.bootstrap.is_none(), "the secret is printed only once");
    api.base = s2.base.clone();
    let maker = {
        let (api, asked) = (api.clone(), asked.clone());
        tokio::spawn(async move {
            for i in 0..40 {
                let target = (i % 2 == 0).then_some("USER_QUEUED");
                if !create_and_advance(&api, &format!("b{i}"), target, &asked).await {
                    break;
                }
            }
        })
    };
    let received_before = receiver.counts().0;
    wait_for(
        "deliveries of the second life in flight",
        Duration::from_secs(20),
        || {
            let (received, answered) = receiver.counts();
            let made = asked
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.verification_id.starts_with('b'))
                .count();
            (made >= 10 || maker.is_finished())
                && received >= received_before + 3
                && received > answered
        },
    )
    .await;
    let (received, answered) = receiver.counts();
    s2.kill();
    maker.await.unwrap();
    let b_made = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.verification_id.starts_with('b'))
        .count();
    timings.push(format!(
        "kill 2 at {:?}: {received} calls received, {answered} answered, {} in flight, \
         {b_made} second-life requests asked for",
        t0.elapsed(),
        received - answered
    ));

    // Third life: everything must come out.
    let s3 = start_server(dir.path(), &database_url, 3).await;
    assert!(s3.bootstrap.is_none());
    api.base = s3.base.clone();
    let asked: Vec<Asked> = asked.lock().unwrap().clone();

    // Every acknowledged call survived; the expected events are the history rows.
    let mut expected: BTreeMap<(String, i64), String> = BTreeMap::new();
    let mut unacknowledged = Vec::new();
    for a in &asked {
        let vid = &a.verification_id;
        let (status, body) = api
            .call(Method::GET, &format!("/vkyc?verification_id={vid}"), None)
            .await
            .unwrap();
        match (a.created, status) {
            (Some(true), 200) => {}
            (Some(true), _) => panic!("acknowledged request {vid} lost: {status} {body}"),
            (_, 200) | (_, 404) => unacknowledged.push(format!("create {vid}: {status}")),
            (_, _) => panic!("{vid}: {status} {body}"),
        }
        if status == 404 {
            continue;
        }
        let history = api
            .ok(
                Method::GET,
                &format!("/vkyc/history?verification_id={vid}"),
                None,
            )
            .await;
        let rows = history["history"].as_array().unwrap();
        let last = rows.last().unwrap()["to_sub_status"].as_str().unwrap();
        assert_eq!(body["sub_status"], last, "{vid}: {body} {history}");
        match a.advanced {
            Some((target, true)) => assert_eq!(last, target, "{vid}: acknowledged advance"),
            Some((target, false)) => {
                assert!(
                    last == target || rows.len() == 1,
                    "{vid}: all or nothing: {history}"
                );
                unacknowledged.push(format!("advance {vid}: now {last}"));
            }
            None => assert_eq!(rows.len(), 1, "{vid}: {history}"),
        }
        for (i, row) in rows.iter().enumerate() {
            let to = row["to_sub_status"].as_str().unwrap().to_string();
            expected.insert((vid.clone(), i as i64 + 1), to);
        }
    }

    // The deliveries the killed servers had claimed are claimed again when their lease
    // (timeout + 30 s) runs out: about 31 s after the kills.
    let deadline = Instant::now() + Duration::from_secs(55);
    let missing = loop {
        let got = receiver.answered_keys();
        let missing: Vec<&(String, i64)> = expected.keys().filter(|k| !got.contains(*k)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break format!("{missing:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        missing,
        "[]",
        "events never delivered after the restart (verification_id, sequence); server log: {}",
        s3.logs()
    );
    timings.push(format!(
        "every event answered at {:?} ({} events)",
        t0.elapsed(),
        expected.len()
    ));

    // The server too knows every delivery as delivered, once its records catch up.
    let key = vkyc::secrets::MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
    let store = vkyc::store::Store::open(&database_url, &key).await.unwrap();
    let merchant = store
        .merchant_by_client_id(&api.client_id)
        .await
        .unwrap()
        .unwrap();
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = store.deliveries(merchant.id, None, 100_000).await.unwrap();
        if deliveries.iter().all(|d| d.status == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
    let undelivered: Vec<String> = deliveries
        .iter()
        .filter(|d| d.status != "delivered")
        .map(|d| format!("{}#{} {}", d.verification_id, d.seq, d.status))
        .collect();
    assert!(undelivered.is_empty(), "{undelivered:?}");
    let stored: BTreeMap<(String, i64), String> = deliveries
        .iter()
        .map(|d| ((d.verification_id.clone(), d.seq), d.event_id.clone()))
        .collect();
    assert_eq!(stored.len(), deliveries.len(), "one delivery per event");
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the store holds one event per history row"
    );

    let received = receiver.received.lock().unwrap().clone();
    let answered = receiver.answered.lock().unwrap().clone();
    for call in &received {
        let key = (call.verification_id.clone(), call.seq);
        assert_eq!(
            stored.get(&key),
            Some(&call.event_id),
            "every call carries the stored event id: {call:?}"
        );
        assert_eq!(
            expected.get(&key),
            Some(&call.sub_status),
            "data is the request after that move: {call:?}"
        );
        assert!(call.signed, "signed with the merchant's secret: {call:?}");
    }
    let out_of_order = receiver.out_of_order.lock().unwrap().clone();
    assert!(
        out_of_order.is_empty(),
        "each request's events in order: {out_of_order:?}"
    );

    let distinct: BTreeSet<&String> = received.iter().map(|c| &c.event_id).collect();
    let duplicates = received.len() - distinct.len();
    let mut by_attempt: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &received {
        *by_attempt.entry(call.attempt.as_str()).or_default() += 1;
    }
    let logs: String = [1, 2, 3]
        .iter()
        .map(|n| std::fs::read_to_string(dir.path().join(format!("serve-{n}.log"))))
        .filter_map(Result::ok)
        .collect();
    println!(
        "crash test ({}): {}\n  {} events, {} calls received, {} answered, {duplicates} \
         duplicates, x-webhook-attempt counts {by_attempt:?}\n  unacknowledged calls: \
         {unacknowledged:?}\n  total {:?}\n  server warnings:\n{logs}",
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        timings.join("; "),
        expected.len(),
        received.len(),
        answered.len(),
        t0.elapsed(),
    );
    drop(s3);
}
