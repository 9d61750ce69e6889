//! Recordings kept in an S3-compatible bucket: a real S3 server (moto, started by
//! tests/support/s3-server, installed on first use) receives the recording when the call
//! ends; playback reads ranges of the object through the same signed links.
//! Nothing here is skipped: if the S3 server cannot be installed or started, these fail.

use crate::helpers::*;
use crate::journey::customer;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A moto server on a free port, stopped when dropped (or when this process ends: it
/// serves until its stdin closes).
pub(crate) struct S3Server {
    child: Child,
    url: String,
}

impl S3Server {
    pub(crate) fn start() -> S3Server {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/s3-server");
        let mut child = Command::new(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {script}: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        if !url.starts_with("http://") {
            let status = child.wait().unwrap();
            panic!("tests/support/s3-server did not start an S3 server ({status}); see stderr");
        }
        S3Server { child, url }
    }

    /// Creates a bucket in Mumbai (no signature needed: moto takes any caller).
    pub(crate) async fn create_bucket(&self, bucket: &str) {
        let res = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.url))
            .body(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>ap-south-1</LocationConstraint></CreateBucketConfiguration>",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    /// An object's bytes, or None when it does not exist (read with signed requests,
    /// through the server's own client).
    pub(crate) async fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let mut config = vkyc::config::Config::default();
        with_store(self, &format!("s3://{bucket}"))(&mut config);
        let vkyc::storage::RecordingStore::S3(store) =
            vkyc::storage::RecordingStore::from_settings(&config.media).unwrap()
        else {
            panic!("an S3 store")
        };
        let key = object_store::path::Path::from(key);
        store.head(&key).await.unwrap()?;
        Some(store.read_all(&key).await.unwrap())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn with_store(s3: &S3Server, store: &str) -> impl FnOnce(&mut vkyc::config::Config) {
    let (endpoint, store) = (s3.url.clone(), store.to_string());
    move |c| {
        c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec();
        c.journey.working_hours = "00:00-24:00".into();
        c.agent_stale_seconds = 3600;
        c.calls.drop_grace_seconds = 3600;
        c.media.recordings_store = store;
        c.media.recordings_s3_endpoint = endpoint;
        c.media.recordings_s3_access_key = "testing".into();
        c.media.recordings_s3_secret_key = "testing".into();
    }
}

/// An agent signed in and online; a customer through the checks, assigned, accepted and
/// the call ended by the customer. Answers the call id.
pub(crate) async fn call_and_end(app: &TestApp, id: &str) -> i64 {
    let username = format!("agent.{id}");
    let out = app.cli(&[
        "staff",
        "create",
        "--username",
        &username,
        "--role",
        "agent",
    ]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password");
    let login = send(
        app.client
            .post(format!("{}/desk/api/login", app.base))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    let cookie = login.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = login.ok()["csrf_token"].as_str().unwrap().to_string();
    send(
        app.client
            .post(format!("{}/desk/api/agent/online", app.base))
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({})),
    )
    .await
    .ok();

    let extra = json!({
        "aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
                            "dob": "01-01-1990", "name": "Asha Rao",
                            "photo_link": "https://example.in/p.jpg", "gender": "F"}
    });
    let c = customer(app, id, extra).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while c.sub_status().await != "AGENT_ASSIGNED_TO_USER" {
        assert!(std::time::Instant::now() < deadline, "never assigned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = c.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    let view = send(
        app.client
            .get(format!("{}/desk/api/agent/call", app.base))
            .header(COOKIE, &cookie),
    )
    .await
    .ok();
    let call = view["call"]["id"].as_i64().unwrap();
    c.call(Method::POST, "call/end", None).await.ok();
    call
}

async fn recording_path(app: &TestApp, call: i64) -> String {
    let db = app.pool().await;
    let row: (Option<String>,) = sqlx::query_as("SELECT recording_path FROM calls WHERE id = $1")
        .bind(call)
        .fetch_one(&db)
        .await
        .unwrap();
    db.close().await;
    row.0.expect("the call has a recording")
}

pub(crate) async fn set_recording_path(app: &TestApp, call: i64, path: &str) {
    let db = app.pool().await;
    sqlx::query("UPDATE calls SET recording_path = $1 WHERE id = $2")
        .bind(path)
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
}

async fn fetch(
    app: &TestApp,
    link: &str,
    method: Method,
    range: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.request(method, link);
    if let Some(range) = range {
        req = req.header("range", range);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn recordings_s3_are_uploaded_when_the_call_ends_and_served_by_range() {
    let s3 = S3Server::start();
    s3.create_bucket("vkyc-recs").await;
    let app = spawn_app_with(with_store(&s3, "s3://vkyc-recs/in/calls")).await;
    let call = call_and_end(&app, "s3-rec").await;

    // The row points at the object; the object and its sidecar are in the bucket; the
    // local files are gone.
    let key = format!("in/calls/{call}.webm");
    assert_eq!(
        recording_path(&app, call).await,
        format!("s3://vkyc-recs/{key}")
    );
    let object = s3.object("vkyc-recs", &key).await.expect("the WebM object");
    assert_eq!(&object[..4], [0x1a, 0x45, 0xdf, 0xa3], "an EBML header");
    let sidecar: Value = serde_json::from_slice(
        &s3.object("vkyc-recs", &format!("in/calls/{call}.json"))
            .await
            .expect("the sidecar object"),
    )
    .unwrap();
    assert!(sidecar.is_object(), "{sidecar}");
    let local = app._dir.path().join("recordings");
    assert!(!local.join(format!("{call}.webm")).exists());
    assert!(!local.join(format!("{call}.json")).exists());

    // The signed link serves the object's bytes, whole and by range.
    let link = app.status("s3-rec").await["recording_link"]
        .as_str()
        .unwrap()
        .to_string();
    let len = object.len();
    assert!(len > 100, "{len}");
    let whole = fetch(&app, &link, Method::GET, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-length"], len.to_string().as_str());
    assert_eq!(whole.bytes().await.unwrap().to_vec(), object);
    let part = fetch(&app, &link, Method::GET, Some("bytes=10-49")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-49/{len}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap().to_vec(), object[10..50]);
    let tail = fetch(&app, &link, Method::GET, Some("bytes=-16")).await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().to_vec(), object[len - 16..]);
    let head = fetch(&app, &link, Method::HEAD, None).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    assert!(head.bytes().await.unwrap().is_empty());
    let beyond = fetch(&app, &link, Method::GET, Some(&format!("bytes={len}-"))).await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    // Altered or unsigned links are refused, as for local files.
    let url = url::Url::parse(&link).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let (expires, sig) = (&q["expires"], &q["sig"]);
    let flipped = format!(
        "{}{}",
        &sig[..63],
        if sig.ends_with('0') { "1" } else { "0" }
    );
    let base = format!("{}/recordings", app.base);
    for bad in [
        format!("{base}/{call}.webm?expires={expires}&sig={flipped}"),
        format!("{base}/{call}.webm?expires=1{expires}&sig={sig}"),
        format!("{base}/{}.webm?expires={expires}&sig={sig}", call + 1),
        format!("{base}/{call}.webm"),
    ] {
        let res = fetch(&app, &bad, Method::GET, Some("bytes=0-9")).await;
        assert_eq!(res.status(), 403, "{bad}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "recording_link_invalid"
        );
    }

    // A recording larger than one part goes up as a multipart upload; ranges across a
    // part boundary read back right.
    let big = app._dir.path().join("big.webm");
    let bytes: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i: usize| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let mut config = vkyc::config::Config::default();
    with_store(&s3, "s3://vkyc-recs/in/calls")(&mut config);
    let vkyc::storage::RecordingStore::S3(store) =
        vkyc::storage::RecordingStore::from_settings(&config.media).unwrap()
    else {
        panic!("an S3 store")
    };
    let recording = vkyc::media::Recording {
        path: big.clone(),
        sidecar: app._dir.path().join("big.json"),
        started_at_ms: 0,
        duration_ms: 1,
        bytes: bytes.len() as u64,
        quality: Default::default(),
    };
    let stored = vkyc::storage::upload(&store, 999_999, &recording)
        .await
        .unwrap();
    assert_eq!(stored, "s3://vkyc-recs/in/calls/999999.webm");
    assert_eq!(
        s3.object("vkyc-recs", "in/calls/999999.webm").await,
        Some(bytes.clone())
    );
    set_recording_path(&app, call, &stored).await;
    let boundary = 8 * 1024 * 1024;
    let range = format!("bytes={}-{}", boundary - 5, boundary + 4);
    let across = fetch(&app, &link, Method::GET, Some(&range)).await;
    assert_eq!(across.status(), 206);
    assert_eq!(
        across.bytes().await.unwrap().to_vec(),
        bytes[boundary - 5..boundary + 5]
    );
    let whole = fetch(&app, &link, Method::GET, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().len(), bytes.len());

    // An object gone from the bucket: 404, not a server error.
    set_recording_path(&app, call, "s3://vkyc-recs/in/calls/0.webm").await;
    let gone = fetch(&app, &link, Method::GET, None).await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn recordings_s3_a_failed_upload_keeps_the_local_file() {
    let s3 = S3Server::start();
    // No such bucket: every upload fails.
    let app = spawn_app_with(|c| {
        with_store(&s3, "s3://no-such-bucket/x")(c);
        c.metrics_listen = "127.0.0.1:0".into();
    })
    .await;
    let call = call_and_end(&app, "s3-fail").await;
    // The on-call engineer sees it.
    let text = crate::metrics::scrape(&app).await;
    let failed = crate::metrics::sample(&text, "vkyc_recording_uploads_failed_total", &[]);
    assert_eq!(failed, Some(1.0), "{text}");
    let path = recording_path(&app, call).await;
    let local = app
        ._dir
        .path()
        .join("recordings")
        .join(format!("{call}.webm"));
    assert_eq!(path, local.display().to_string());
    let bytes = std::fs::read(&local).expect("the local file is kept");
    assert!(local.with_extension("json").exists());

    // It plays from the local file.
    let link = app.status("s3-fail").await["recording_link"]
        .as_str()
        .unwrap()
        .to_string();
    let res = fetch(&app, &link, Method::GET, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);
}

/// A purge removes the recording and its sidecar from the bucket (here under the sandbox
/// rule: a test merchant's request, 30 days on).
#[tokio::test]
async fn recordings_s3_a_purge_deletes_the_objects() {
    let s3 = S3Server::start();
    s3.create_bucket("vkyc-recs").await;
    let app = spawn_app_with(with_store(&s3, "s3://vkyc-recs/p")).await;
    let call = call_and_end(&app, "s3-purge").await;
    let keys = [format!("p/{call}.webm"), format!("p/{call}.json")];
    for key in &keys {
        assert!(s3.object("vkyc-recs", key).await.is_some(), "{key}");
    }
    let now = vkyc::clock::now_ms();
    let early = vkyc::workers::purge::purge_due(&app.store, &app.config, now + 29 * 86_400_000)
        .await
        .unwrap();
    assert_eq!(early.requests, 0);
    let pass = vkyc::workers::purge::purge_due(&app.store, &app.config, now + 31 * 86_400_000)
        .await
        .unwrap();
    // The object, its sidecar, and the desk's side copies of the call (none made here).
    assert_eq!((pass.requests, pass.files, pass.files_failed), (1, 3, 0));
    for key in &keys {
        assert!(
            s3.object("vkyc-recs", key).await.is_none(),
            "{key} is still there"
        );
    }
    let status = app
        .call(Method::GET, "/vkyc?verification_id=s3-purge", None)
        .await;
    assert_eq!(status.body["recording_link"], Value::Null);
    assert!(status
        .headers
        .contains_key("x-vkyc-personal-data-purged-at"));
    // The customer's link is over, as an expired one is.
    let link = status.body["vkyc_link"].as_str().unwrap().to_string();
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 410, "{link}");
}
