//! Whole journeys as a customer and a merchant observe them: the Aadhaar upload against a
//! real (test) UIDAI signer, the IP check against real MaxMind databases, the live queue
//! and its WebSocket with an agent on the desk, booked slots, and slot messages.

use crate::helpers::{send, spawn_app, spawn_app_with, Reply, TestApp};
use crate::journey::{customer, Customer};
use crate::support::{support_dir, Signer};
use chrono::{DateTime, Duration as Days, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use vkyc::clock::now_ms;

// ---- fixtures ----

/// A signed e-KYC file for Asha Rani, with an Aadhaar number in free text that must never
/// be shown in full, and `extra` arguments of make-aadhaar-zip.
fn asha_zip(signer: &Signer, extra: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "--name",
        "Asha Rani",
        "--last4",
        "4321",
        "--careof",
        "S/O Ravi (2345 6789 4321)",
    ];
    args.extend_from_slice(extra);
    signer.zip(&args)
}

/// `at` as make-aadhaar-zip's --generated (IST wall clock).
fn ist(at: DateTime<Utc>) -> String {
    (at + Days::minutes(330))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn make_mmdb(dir: &Path, name: &str, db_type: &str, spec: &Value) -> String {
    let out = dir.join(name);
    let mut child = Command::new(support_dir().join("make-mmdb"))
        .args(["--type", db_type, "--ip-version", "6", "--out"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/support/make-mmdb");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "make-mmdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_str().unwrap().to_string()
}

/// Every day, all day: the desk is open whenever the test runs.
fn always_open(config: &mut vkyc::config::Config) {
    config.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    config.journey.working_hours = "00:00-24:00".into();
}

fn with_aadhaar() -> Value {
    json!({"aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
           "dob": "01-01-1990", "name": "Asha Rao", "photo_link": "https://example.in/p.jpg",
           "gender": "F"}})
}

async fn journey_of(app: &TestApp, id: &str) -> Value {
    app.call(
        Method::GET,
        &format!("/vkyc/journey?verification_id={id}"),
        None,
    )
    .await
    .ok()
}

async fn history_of(app: &TestApp, id: &str) -> Vec<String> {
    let history = app
        .call(
            Method::GET,
            &format!("/vkyc/history?verification_id={id}"),
            None,
        )
        .await
        .ok();
    history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_sub_status"].as_str().unwrap().to_string())
        .collect()
}

async fn upload(c: &Customer<'_>, body: Vec<u8>, share_code: Option<&str>) -> Reply {
    let mut req = c
        .app
        .client
        .post(format!("{}/v/{}/api/aadhaar", c.app.base, c.key))
        .header("content-type", "application/zip")
        .body(body);
    if let Some(code) = share_code {
        req = req.header("x-share-code", code);
    }
    send(req).await
}

async fn reference_id(app: &TestApp, id: &str) -> i64 {
    app.status(id).await["reference_id"].as_i64().unwrap()
}

/// Polls `GET /vkyc` until the sub-status is `want` (the workers run on their own).
async fn wait_for(app: &TestApp, id: &str, want: &str, seconds: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let status = app.status(id).await;
        if status["sub_status"] == want {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} never reached {want}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// True when `text` holds a 12-digit number (alone, or as 4+4+4 with spaces or dashes).
fn has_aadhaar_number(text: &str) -> bool {
    let digits_only: String = text
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    let b = digits_only.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            let end = i + run;
            let alone = end == b.len() || !b[end].is_ascii_alphanumeric();
            if run == 12 && alone {
                return true;
            }
            // 4 + 4 + 4 with separators.
            let groups: Vec<&[u8]> = b[i..].splitn(4, |&c| c == b'_').take(3).collect();
            if groups.len() == 3
                && groups[..2]
                    .iter()
                    .all(|g| g.len() == 4 && g.iter().all(u8::is_ascii_digit))
                && groups[2].len() >= 4
                && groups[2][..4].iter().all(u8::is_ascii_digit)
                && groups[2].get(4).is_none_or(|c| !c.is_ascii_alphanumeric())
            {
                return true;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    false
}

/// An agent made with the CLI, as an operator would; returns its staff id.
async fn agent(app: &TestApp, username: &str) -> i64 {
    app.cli(&["staff", "create", "--username", username, "--role", "agent"]);
    app.store
        .staff_by_username(username)
        .await
        .unwrap()
        .expect("the agent exists")
        .id
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(c: &Customer<'_>) -> Socket {
    let url = format!("{}/v/{}/ws", c.app.base.replacen("http", "ws", 1), c.key);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON message, or None once the server closed the socket.
async fn next_message(ws: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(40), ws.next())
            .await
            .expect("a message within 40 s");
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(_)) => {}
        }
    }
}

/// Reads messages until one satisfies `want`.
async fn message_where(ws: &mut Socket, want: impl Fn(&Value) -> bool) -> Value {
    let mut seen = vec![];
    loop {
        match next_message(ws).await {
            Some(m) if want(&m) => return m,
            Some(m) => seen.push(m),
            None => panic!("the socket closed; messages seen: {seen:?}"),
        }
    }
}

// ---- 1. Aadhaar ----

#[tokio::test]
async fn aadhaar_offline_ekyc_is_verified_through_the_api() {
    let signer = Signer::new();
    let limit = 60_000;
    let cert = signer.cert.clone();
    let app = spawn_app_with(move |config| {
        config.journey.uidai_certificate = cert;
        config.journey.aadhaar_max_upload_bytes = limit;
    })
    .await;
    let c = customer(&app, "fa-aadhaar", json!({})).await;
    c.consent().await;
    assert_eq!(c.step().await, "aadhaar");

    let good = asha_zip(&signer, &["--generated", &ist(Utc::now() - Days::hours(1))]);
    assert!(good.len() < limit);

    // Refused before any check: no share code, or a file too large. Nothing changes.
    let before = journey_of(&app, "fa-aadhaar").await;
    upload(&c, good.clone(), None)
        .await
        .assert_code(400, "share_code_missing");
    upload(&c, good.clone(), Some("  "))
        .await
        .assert_code(400, "share_code_missing");
    upload(&c, vec![b'P'; limit + 1], Some("1234"))
        .await
        .assert_code(413, "file_too_large");
    assert_eq!(journey_of(&app, "fa-aadhaar").await, before);
    assert_eq!(c.sub_status().await, "LINK_GENERATED");

    // Wrong share code, tampered, too old: each a failure with its reason; retried.
    for (file, code, reason) in [
        (good.clone(), "9999", "wrong_share_code"),
        (asha_zip(&signer, &["--tamper"]), "1234", "bad_signature"),
        (
            asha_zip(&signer, &["--generated", &ist(Utc::now() - Days::days(4))]),
            "1234",
            "too_old",
        ),
    ] {
        let reply = upload(&c, file, Some(code)).await.ok();
        assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_FAILED", "{reply}");
        assert_eq!(reply["reason"], reason, "{reply}");
        assert_eq!(reply["state"]["step"], "aadhaar");
        assert_eq!(c.sub_status().await, "AADHAAR_VERIFICATION_FAILED");
        assert_eq!(c.step().await, "aadhaar");
        let state = c.call(Method::GET, "state", None).await.ok();
        assert_eq!(state["last_reason"], reason);
    }
    // The IP step is still closed.
    c.call(Method::POST, "ip", None)
        .await
        .assert_code(409, "journey_step_invalid");

    let reply = upload(&c, good, Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_SUCCESS", "{reply}");
    assert!(reply["reason"].is_null());
    assert_eq!(reply["state"]["step"], "ip");
    assert_eq!(c.sub_status().await, "AADHAAR_VERIFICATION_SUCCESS");
    assert_eq!(c.step().await, "ip");

    let journey = journey_of(&app, "fa-aadhaar").await;
    assert_eq!(journey["aadhaar"]["source"], "offline_ekyc", "{journey}");
    let details = &journey["aadhaar"]["details"];
    assert_eq!(details["name"], "Asha Rani");
    assert_eq!(details["aadhaar_last4"], "4321");
    assert!(
        details["address"]["careof"]
            .as_str()
            .unwrap()
            .contains("XXXXXXXX4321"),
        "{details}"
    );
    let text = journey.to_string();
    assert!(!has_aadhaar_number(&text), "{text}");
    assert!(!text.contains("2345 6789 4321") && !text.contains("234567894321"));
    let outcomes: Vec<&str> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "aadhaar")
        .filter_map(|s| s["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "AADHAAR_VERIFICATION_FAILED",
            "AADHAAR_VERIFICATION_FAILED",
            "AADHAAR_VERIFICATION_FAILED",
            "AADHAAR_VERIFICATION_SUCCESS"
        ]
    );
    let last = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["outcome"] == "AADHAAR_VERIFICATION_SUCCESS")
        .unwrap();
    assert_eq!(last["evidence"]["signature"], "valid");
    assert_eq!(last["evidence"]["aadhaar_last4"], "4321");
    // A finished step cannot be uploaded to again.
    upload(&c, vec![1, 2, 3], Some("1234"))
        .await
        .assert_code(409, "journey_step_invalid");
}

#[tokio::test]
async fn aadhaar_without_a_uidai_certificate_is_a_technical_failure_and_is_retried() {
    let signer = Signer::new();
    let app = spawn_app_with(|_| {}).await;
    let c = customer(&app, "fa-nocert", json!({})).await;
    c.consent().await;
    let reply = upload(&c, asha_zip(&signer, &[]), Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "TECHNICAL_FAILURE", "{reply}");
    assert_eq!(reply["reason"], "uidai_certificate_unavailable");
    assert_eq!(c.sub_status().await, "TECHNICAL_FAILURE");
    assert_eq!(c.step().await, "aadhaar");
    // The retry is the Aadhaar step again. A file above max_body_bytes but within the
    // Aadhaar limit is accepted for checking.
    let reply = upload(&c, vec![b'P'; 100_000], Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "TECHNICAL_FAILURE", "{reply}");
    assert_eq!(c.step().await, "aadhaar");
    assert!(journey_of(&app, "fa-nocert").await["aadhaar"].is_null());
}

// ---- 2. Aadhaar session ----

#[tokio::test]
async fn an_aadhaar_step_left_open_too_long_expires_and_reopens() {
    let signer = Signer::new();
    let cert = signer.cert.clone();
    let app = spawn_app_with(move |config| {
        config.journey.uidai_certificate = cert;
        config.journey.aadhaar_session_minutes = 15;
    })
    .await;
    let pool = app.pool().await;
    let age = "UPDATE journey_steps SET started_at = started_at - 3600000 \
               WHERE step = 'aadhaar' AND ended_at IS NULL";
    let c = customer(&app, "fa-session", json!({})).await;
    c.consent().await;
    let state = c.call(Method::GET, "state", None).await.ok();
    assert_eq!(state["step"], "aadhaar");
    assert!(state["step_started_at"].is_string());

    // Coming back after the session: the state says it expired, and a new one opens.
    sqlx::query(age).execute(&pool).await.unwrap();
    let state = c.call(Method::GET, "state", None).await.ok();
    assert_eq!(
        state["sub_status"], "AADHAAR_VERIFICATION_EXPIRED",
        "{state}"
    );
    assert_eq!(state["step"], "aadhaar");
    assert_eq!(state["last_reason"], "session_expired");
    assert_eq!(c.sub_status().await, "AADHAAR_VERIFICATION_EXPIRED");
    let opened = chrono::DateTime::parse_from_rfc3339(state["step_started_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(now_ms() - opened < 60_000, "a fresh session: {state}");

    // Uploading after the session: expired too, and the file is not looked at.
    sqlx::query(age).execute(&pool).await.unwrap();
    let good = asha_zip(&signer, &[]);
    let reply = upload(&c, good.clone(), Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_EXPIRED", "{reply}");
    assert_eq!(reply["reason"], "session_expired");
    assert_eq!(reply["state"]["step"], "aadhaar");

    // The step reopens; a good file now succeeds.
    assert_eq!(c.step().await, "aadhaar");
    let reply = upload(&c, good, Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_SUCCESS", "{reply}");
    assert_eq!(c.step().await, "ip");
    let journey = journey_of(&app, "fa-session").await;
    let aadhaar: Vec<(&str, &Value)> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "aadhaar")
        .map(|s| (s["outcome"].as_str().unwrap_or("open"), &s["evidence"]))
        .collect();
    assert_eq!(
        aadhaar.iter().map(|a| a.0).collect::<Vec<_>>(),
        [
            "AADHAAR_VERIFICATION_EXPIRED",
            "AADHAAR_VERIFICATION_EXPIRED",
            "AADHAAR_VERIFICATION_SUCCESS"
        ],
        "{journey}"
    );
    assert_eq!(aadhaar[0].1["reason"], "session_expired");
    assert_eq!(
        history_of(&app, "fa-session").await,
        [
            "LINK_GENERATED",
            "AADHAAR_VERIFICATION_EXPIRED",
            "AADHAAR_VERIFICATION_EXPIRED",
            "AADHAAR_VERIFICATION_SUCCESS"
        ]
    );
}

// ---- 3. IP ----

struct IpFiles {
    _dir: tempfile::TempDir,
    country: String,
    anonymous: String,
    proxies: String,
}

fn ip_files() -> IpFiles {
    let dir = tempfile::tempdir().unwrap();
    let country = make_mmdb(
        dir.path(),
        "country.mmdb",
        "GeoLite2-Country",
        &json!({
            "49.36.0.0/14": {"country": {"iso_code": "IN"}},
            "8.8.8.0/24": {"country": {"iso_code": "US"}},
            "103.10.0.0/16": {"country": {"iso_code": "IN"}},
        }),
    );
    let anonymous = make_mmdb(
        dir.path(),
        "anonymous.mmdb",
        "GeoIP2-Anonymous-IP",
        &json!({"103.10.0.0/16": {"is_anonymous": true, "is_anonymous_vpn": true}}),
    );
    let proxies = dir.path().join("proxies.txt");
    std::fs::write(&proxies, "# known proxies\n49.37.5.5\n").unwrap();
    IpFiles {
        country,
        anonymous,
        proxies: proxies.to_str().unwrap().to_string(),
        _dir: dir,
    }
}

#[tokio::test]
async fn the_ip_step_uses_the_configured_databases_behind_a_trusted_proxy() {
    let files = ip_files();
    let (country, anonymous, proxies) = (
        files.country.clone(),
        files.anonymous.clone(),
        files.proxies.clone(),
    );
    let app = spawn_app_with(move |config| {
        config.journey.ip_country_db = country;
        config.journey.ip_anonymous_db = anonymous;
        config.journey.ip_proxy_lists = vec![proxies];
        config.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let c = customer(&app, "fa-ip", with_aadhaar()).await;
    c.consent().await;
    assert_eq!(c.step().await, "ip");
    for (ip, outcome, reason) in [
        ("8.8.8.8", "USER_LOCATION_OUTSIDE_INDIA", "ip_outside_india"),
        ("103.10.1.1", "USER_PROXY_DETECTED", "proxy_detected"),
        ("49.37.5.5", "USER_PROXY_DETECTED", "proxy_detected"),
        ("8.8.8.8", "USER_LOCATION_OUTSIDE_INDIA", "ip_outside_india"),
    ] {
        let reply = c.call_from(Method::POST, "ip", None, Some(ip)).await.ok();
        assert_eq!(reply["outcome"], outcome, "{ip}: {reply}");
        assert_eq!(reply["reason"], reason, "{ip}: {reply}");
        assert_eq!(reply["state"]["step"], "ip", "{ip}: {reply}");
        assert_eq!(c.sub_status().await, outcome);
        assert_eq!(c.step().await, "ip", "{ip}: the IP step is retried");
    }
    // The location step stays closed until the IP passes.
    c.call(
        Method::POST,
        "location",
        Some(json!({"permission": "granted", "latitude": 28.61, "longitude": 77.21})),
    )
    .await
    .assert_code(409, "journey_step_invalid");

    let reply = c
        .call_from(Method::POST, "ip", None, Some("49.36.1.1"))
        .await
        .ok();
    assert_eq!(
        reply["outcome"], "USER_IP_VERIFICATION_SUCCESSFUL",
        "{reply}"
    );
    assert_eq!(c.step().await, "location");

    let journey = journey_of(&app, "fa-ip").await;
    let ips: Vec<&Value> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "ip")
        .collect();
    assert_eq!(ips.len(), 5, "{journey}");
    let last = &ips[4]["evidence"];
    assert_eq!(last["ip"], "49.36.1.1", "{last}");
    assert_eq!(last["verdict"]["Allowed"]["country"], "IN", "{last}");
    assert!(last.get("sandbox").is_none(), "{last}");
    assert_eq!(ips[0]["evidence"]["ip"], "8.8.8.8");
    assert_eq!(
        ips[0]["evidence"]["verdict"]["OutsideIndia"]["country"],
        "US"
    );
    assert_eq!(ips[1]["evidence"]["ip"], "103.10.1.1");
    assert!(ips[2]["evidence"]["verdict"]["Proxy"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("list:"));
    // The merchant's aadhaar_details are kept beside, once the IP passed.
    assert_eq!(journey["aadhaar"]["source"], "merchant");
}

#[tokio::test]
async fn a_production_deployment_without_an_ip_database_cannot_decide() {
    let gateway = crate::journey_templates::Gateway::start().await;
    let app = spawn_app_with(|config| {
        config.environment = vkyc::config::Environment::Production;
        gateway.configure(config);
    })
    .await;
    let c = customer(&app, "fa-ip-prod", with_aadhaar()).await;
    // A live server sends a real code: the customer types what reached their phone.
    c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    c.call(
        Method::POST,
        "otp/verify",
        Some(json!({ "code": gateway.last_code() })),
    )
    .await
    .ok();
    c.consent().await;
    let reply = c.call(Method::POST, "ip", None).await.ok();
    assert_eq!(reply["outcome"], "TECHNICAL_FAILURE", "{reply}");
    assert_eq!(reply["reason"], "ip_database_unavailable");
    assert_eq!(c.sub_status().await, "TECHNICAL_FAILURE");
    assert_eq!(c.step().await, "ip", "the retry is the IP step");
    let journey = journey_of(&app, "fa-ip-prod").await;
    let ip = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "ip")
        .unwrap();
    assert_eq!(ip["outcome"], "TECHNICAL_FAILURE");
    assert!(ip["evidence"]["verdict"]["Unavailable"].is_object(), "{ip}");
}

#[tokio::test]
async fn a_garbage_ip_database_is_a_technical_failure() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(
        &garbage,
        b"this is not a MaxMind database at all".repeat(20),
    )
    .unwrap();
    let path = garbage.to_str().unwrap().to_string();
    let app = spawn_app_with(move |config| {
        config.journey.ip_country_db = path;
    })
    .await;
    let c = customer(&app, "fa-ip-garbage", with_aadhaar()).await;
    c.consent().await;
    let reply = c.call(Method::POST, "ip", None).await.ok();
    assert_eq!(reply["outcome"], "TECHNICAL_FAILURE", "{reply}");
    assert_eq!(c.sub_status().await, "TECHNICAL_FAILURE");
    assert_eq!(c.step().await, "ip");
}

// ---- 4. the live queue ----

#[tokio::test]
async fn queued_customers_see_their_place_and_are_told_when_no_agent_remains() {
    let app = spawn_app_with(|config| {
        always_open(config);
        config.journey.queue_interval_ms = 100;
        config.agent_stale_seconds = 11;
    })
    .await;
    let agent = agent(&app, "agent.queue").await;
    app.store.set_presence(agent, true, now_ms()).await.unwrap();
    let first = customer(&app, "fa-q1", with_aadhaar()).await;
    let second = customer(&app, "fa-q2", with_aadhaar()).await;
    first.pass_checks().await;
    second.pass_checks().await;
    app.store.heartbeat(agent, now_ms()).await.unwrap();
    for c in [&first, &second] {
        let joined = c.call(Method::POST, "queue", None).await.ok();
        assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
        assert_eq!(c.sub_status().await, "USER_QUEUED");
        assert_eq!(c.step().await, "queue");
    }

    let mut ws = socket(&second).await;
    let place = message_where(&mut ws, |m| m["type"] == "queue" && m["waiting"] == 2).await;
    assert_eq!(
        place,
        json!({"type": "queue", "position": 2, "waiting": 2, "agents_online": 1,
               "expected_wait_seconds": 600, "open": true})
    );

    // The agent leaves: the wait can no longer be told, and the sweep sends both away.
    app.store
        .set_presence(agent, false, now_ms())
        .await
        .unwrap();
    let gone = message_where(&mut ws, |m| m["type"] == "queue" && m["agents_online"] == 0).await;
    assert!(gone["expected_wait_seconds"].is_null(), "{gone}");
    for id in ["fa-q1", "fa-q2"] {
        wait_for(&app, id, "NO_AGENT_FOUND", 40).await;
    }
    let status = message_where(&mut ws, |m| m["type"] == "status").await;
    assert_eq!(status["sub_status"], "NO_AGENT_FOUND", "{status}");
    assert_eq!(status["step"], "waiting");
    assert!(next_message(&mut ws).await.is_none(), "the socket closes");
    assert_eq!(second.step().await, "waiting");
    assert_eq!(
        history_of(&app, "fa-q2").await.last().unwrap(),
        "NO_AGENT_FOUND"
    );

    // The agent is back: the customer joins again, first in line this time.
    app.store.set_presence(agent, true, now_ms()).await.unwrap();
    let joined = second.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
    let mut ws = socket(&second).await;
    let place = message_where(&mut ws, |m| m["type"] == "queue").await;
    assert_eq!(place["position"], 1, "{place}");
    assert_eq!(place["waiting"], 1, "{place}");
    assert_eq!(place["expected_wait_seconds"], 300, "{place}");

    // Waiting, the customer books a slot instead: out of the queue, and told so.
    let slots = second.call(Method::GET, "slots", None).await.ok();
    let start = slots["slots"][0]["start"].clone();
    let booked = second
        .call(Method::POST, "slots", Some(json!({"slot_start": start})))
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED", "{booked}");
    let status = message_where(&mut ws, |m| m["type"] == "status").await;
    assert_eq!(status["step"], "scheduled", "{status}");
    assert!(next_message(&mut ws).await.is_none(), "the socket closes");
    assert_eq!(app.status("fa-q2").await["meeting_schedule"], start);
}

/// A customer who leaves the queue between two reads of the board never appears in a
/// snapshot, so the board does not change; the socket must still say where they went.
#[tokio::test]
async fn a_customer_who_leaves_the_queue_unseen_by_the_board_is_still_told() {
    let app = spawn_app_with(|config| {
        always_open(config);
        // Long enough that the board (almost surely) reads nothing between the join and
        // the booking below.
        config.journey.queue_interval_ms = 5_000;
        config.agent_stale_seconds = 120;
    })
    .await;
    let agent = agent(&app, "agent.unseen").await;
    app.store.set_presence(agent, true, now_ms()).await.unwrap();
    let c = customer(&app, "fa-unseen", with_aadhaar()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
    let mut ws = socket(&c).await;
    let first = next_message(&mut ws).await.expect("a first message");
    assert!(
        first["type"] == "status" || first["type"] == "queue",
        "{first}"
    );

    let slots = c.call(Method::GET, "slots", None).await.ok();
    let start = slots["slots"][0]["start"].clone();
    let booked = c
        .call(Method::POST, "slots", Some(json!({"slot_start": start})))
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED", "{booked}");
    // Within a few ticks; nothing else on the board changes (the agent stays fresh well
    // beyond this), so only the socket's own look can tell.
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        message_where(&mut ws, |m| m["type"] == "status" && m["step"] != "queue"),
    )
    .await
    .expect("told within 15 s");
    assert_eq!(status["step"], "scheduled", "{status}");
    assert_eq!(status["sub_status"], "USER_MEETING_SCHEDULED", "{status}");
    assert!(next_message(&mut ws).await.is_none(), "the socket closes");
}

// ---- 5. slots ----

fn slot_starts(slots: &Value) -> Vec<String> {
    slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect()
}

fn millis(iso: &str) -> i64 {
    DateTime::parse_from_rfc3339(iso)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn customers_book_reschedule_cancel_miss_and_come_for_slots() {
    let app = spawn_app_with(|config| {
        always_open(config);
        config.journey.queue_interval_ms = 100;
        config.journey.slot_grace_minutes = 0;
    })
    .await;
    let pool = app.pool().await;
    let agent = agent(&app, "agent.slots").await;
    let a = customer(&app, "fa-slot-a", with_aadhaar()).await;
    let b = customer(&app, "fa-slot-b", with_aadhaar()).await;
    a.pass_checks().await;
    b.pass_checks().await;

    let slots = a.call(Method::GET, "slots", None).await.ok();
    assert!(
        slots["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["free"] == 1),
        "{slots}"
    );
    let starts = slot_starts(&slots);
    assert!(starts.len() > 10, "{slots}");
    for s in &starts {
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.ends_with(":00Z") && millis(s) > now_ms(), "{s}");
    }
    let (s1, s2, s3) = (&starts[1], &starts[2], &starts[3]);

    let booked = a
        .call(Method::POST, "slots", Some(json!({"slot_start": s1})))
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED", "{booked}");
    assert_eq!(booked["state"]["step"], "scheduled");
    assert_eq!(booked["state"]["booking_state"], "booked");
    assert_eq!(app.status("fa-slot-a").await["meeting_schedule"], *s1);
    assert!(!slot_starts(&b.call(Method::GET, "slots", None).await.ok()).contains(s1));

    b.call(Method::POST, "slots", Some(json!({"slot_start": s1})))
        .await
        .assert_code(409, "slot_full");
    assert_eq!(b.sub_status().await, "USER_DEVICE_CHECK_SUCCESS");
    let booked = b
        .call(Method::POST, "slots", Some(json!({"slot_start": s2})))
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED");

    // A moves to another slot; the first one is free again.
    let moved = a
        .call(Method::POST, "slots", Some(json!({"slot_start": s3})))
        .await
        .ok();
    assert_eq!(moved["outcome"], "USER_MEETING_SCHEDULED", "{moved}");
    let status = app.status("fa-slot-a").await;
    assert_eq!(status["meeting_schedule"], *s3);
    let history = history_of(&app, "fa-slot-a").await;
    assert_eq!(
        history[history.len() - 3..],
        [
            "USER_MEETING_SCHEDULED",
            "USER_MEETING_CANCELLED",
            "USER_MEETING_SCHEDULED"
        ]
    );
    let free = slot_starts(&b.call(Method::GET, "slots", None).await.ok());
    assert!(free.contains(s1) && !free.contains(s3) && !free.contains(s2));

    // Not a slot start, or in the past: refused, nothing changes.
    let off = (DateTime::parse_from_rfc3339(s3).unwrap() + Days::minutes(1)).to_rfc3339();
    let past = (DateTime::parse_from_rfc3339(s3).unwrap() - Days::days(8)).to_rfc3339();
    let earlier = (Utc::now() - Days::hours(1)).to_rfc3339();
    for bad in [off, past, earlier] {
        a.call(Method::POST, "slots", Some(json!({"slot_start": bad})))
            .await
            .assert_code(400, "slot_start_value_invalid");
    }
    assert_eq!(app.status("fa-slot-a").await["meeting_schedule"], *s3);

    // A cancels.
    let cancelled = a.call(Method::DELETE, "slots", None).await.ok();
    assert_eq!(
        cancelled["outcome"], "USER_MEETING_CANCELLED",
        "{cancelled}"
    );
    let status = app.status("fa-slot-a").await;
    assert_eq!(status["sub_status"], "USER_MEETING_CANCELLED");
    assert!(status["meeting_schedule"].is_null(), "{status}");
    assert_eq!(a.step().await, "waiting");
    a.call(Method::DELETE, "slots", None)
        .await
        .assert_code(409, "journey_step_invalid");
    assert!(slot_starts(&b.call(Method::GET, "slots", None).await.ok()).contains(s3));

    // B does not come: the slot passes (moved into the past), and the sweep marks it.
    let b_id = reference_id(&app, "fa-slot-b").await;
    let hour_ago = now_ms() - 3_600_000;
    sqlx::query("UPDATE slot_bookings SET slot_start = $1 WHERE request_id = $2")
        .bind(hour_ago)
        .bind(b_id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE requests SET meeting_schedule = $1 WHERE id = $2")
        .bind(hour_ago)
        .bind(b_id)
        .execute(&pool)
        .await
        .unwrap();
    wait_for(&app, "fa-slot-b", "USER_MISSED_MEETING", 15).await;
    let state = b.call(Method::GET, "state", None).await.ok();
    assert_eq!(state["step"], "waiting");
    assert_eq!(state["booking_state"], "missed");

    // C comes at the time of a booked slot, with a walk-in already waiting: C is first.
    app.store.set_presence(agent, true, now_ms()).await.unwrap();
    let c = customer(&app, "fa-slot-c", with_aadhaar()).await;
    let walk_in = customer(&app, "fa-slot-d", with_aadhaar()).await;
    c.pass_checks().await;
    walk_in.pass_checks().await;
    let booked = c
        .call(Method::POST, "slots", Some(json!({"slot_start": s1})))
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED");
    c.call(Method::POST, "queue", None)
        .await
        .assert_code(409, "slot_not_open");
    app.store.heartbeat(agent, now_ms()).await.unwrap();
    // The agent is given a first customer (the queue assigns at once), so the two below
    // wait for that call to end.
    let first = customer(&app, "fa-slot-e", with_aadhaar()).await;
    first.pass_checks().await;
    first.call(Method::POST, "queue", None).await.ok();
    wait_for(&app, "fa-slot-e", "AGENT_ASSIGNED_TO_USER", 15).await;
    let joined = walk_in.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");

    let c_id = reference_id(&app, "fa-slot-c").await;
    let soon = now_ms() + 60_000;
    sqlx::query("UPDATE slot_bookings SET slot_start = $1 WHERE request_id = $2")
        .bind(soon)
        .bind(c_id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE requests SET meeting_schedule = $1 WHERE id = $2")
        .bind(soon)
        .bind(c_id)
        .execute(&pool)
        .await
        .unwrap();
    let arrived = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(arrived["outcome"], "SCHEDULED_USER_QUEUED", "{arrived}");
    assert_eq!(c.step().await, "queue");
    assert_eq!(arrived["state"]["booking_state"], "arrived");

    let mut ws = socket(&c).await;
    let place = message_where(&mut ws, |m| m["type"] == "queue" && m["waiting"] == 2).await;
    assert_eq!(place["position"], 1, "{place}");
    let mut ws = socket(&walk_in).await;
    let place = message_where(&mut ws, |m| m["type"] == "queue" && m["waiting"] == 2).await;
    assert_eq!(place["position"], 2, "{place}");
    // Still there a few sweeps later: the booked customer is not sent away as missed.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(c.sub_status().await, "SCHEDULED_USER_QUEUED");

    // Waiting for the agent, C would rather take a later slot.
    let later = slot_starts(&c.call(Method::GET, "slots", None).await.ok())[4].clone();
    let rebooked = c
        .call(Method::POST, "slots", Some(json!({"slot_start": later})))
        .await;
    let rebooked = rebooked.ok();
    assert_eq!(rebooked["outcome"], "USER_MEETING_SCHEDULED", "{rebooked}");
    assert_eq!(app.status("fa-slot-c").await["meeting_schedule"], later);
    let history = history_of(&app, "fa-slot-c").await;
    assert_eq!(
        history[history.len() - 3..],
        [
            "SCHEDULED_USER_QUEUED",
            "USER_MEETING_CANCELLED",
            "USER_MEETING_SCHEDULED"
        ]
    );
    let place = message_where(&mut ws, |m| m["type"] == "queue" && m["waiting"] == 1).await;
    assert_eq!(place["position"], 1, "the walk-in moves up: {place}");
}

// ---- 6. slot messages ----

#[tokio::test]
async fn booking_a_slot_sends_its_message_and_one_reminder() {
    let app = spawn_app_with(|config| {
        always_open(config);
        config.journey.slot_reminder_minutes = 60 * 24 * 10;
    })
    .await;
    agent(&app, "agent.notify").await;
    let mut extra = with_aadhaar();
    extra["notification_types"] = json!(["email"]);
    let c = customer(&app, "fa-notify", extra).await;
    c.pass_checks().await;
    let slots = c.call(Method::GET, "slots", None).await.ok();
    let slot = &slots["slots"][5];
    let booked = c
        .call(
            Method::POST,
            "slots",
            Some(json!({"slot_start": slot["start"]})),
        )
        .await
        .ok();
    assert_eq!(booked["outcome"], "USER_MEETING_SCHEDULED");

    let kinds = |n: &Value| -> Vec<(String, String)> {
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["kind"].as_str().unwrap().to_string(),
                    m["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let notifications = loop {
        let n = app
            .call(
                Method::GET,
                "/vkyc/notifications?verification_id=fa-notify",
                None,
            )
            .await
            .ok();
        let k = kinds(&n);
        let recorded = |kind: &str| k.iter().any(|(a, b)| a == kind && b == "recorded");
        if recorded("slot_booked") && recorded("slot_reminder") {
            break n;
        }
        assert!(std::time::Instant::now() < deadline, "{n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let booked = notifications["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "slot_booked")
        .unwrap();
    assert_eq!(booked["channel"], "email");
    assert_eq!(booked["to"], "asha@example.in");
    let label = slot["label"].as_str().unwrap();
    assert!(
        booked["body"].as_str().unwrap().contains(label),
        "{booked} should name {label}"
    );

    // Later sweeps do not remind again.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let n = app
        .call(
            Method::GET,
            "/vkyc/notifications?verification_id=fa-notify",
            None,
        )
        .await
        .ok();
    let reminders = kinds(&n)
        .iter()
        .filter(|(kind, _)| kind == "slot_reminder")
        .count();
    assert_eq!(reminders, 1, "{n}");
    let booked_count = kinds(&n)
        .iter()
        .filter(|(kind, _)| kind == "slot_booked")
        .count();
    assert_eq!(booked_count, 1, "{n}");
}

/// Guessing a share code: five uploads in a window, then the step waits. The fifth failure
/// ends the step as `too_many_attempts`; a sixth try, even with the right code, is told to
/// wait (429 with `Retry-After`) and changes nothing; once the window has passed, it goes.
#[tokio::test]
async fn failed_aadhaar_uploads_are_bounded_per_window() {
    let signer = Signer::new();
    let cert = signer.cert.clone();
    let app = spawn_app_with(move |config| config.journey.uidai_certificate = cert).await;
    let pool = app.pool().await;
    let c = customer(&app, "fa-guess", json!({})).await;
    c.consent().await;
    let good = asha_zip(&signer, &[]);
    for (i, code) in ["1111", "2222", "3333", "4444", "5555"].iter().enumerate() {
        let reply = upload(&c, good.clone(), Some(code)).await.ok();
        assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_FAILED", "{reply}");
        let want = if i == 4 {
            "too_many_attempts"
        } else {
            "wrong_share_code"
        };
        assert_eq!(reply["reason"], want, "try {}: {reply}", i + 1);
    }
    let before = journey_of(&app, "fa-guess").await;
    let refused = upload(&c, good.clone(), Some("1234")).await;
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    refused.assert_code(429, "too_many_attempts");
    assert_eq!(
        journey_of(&app, "fa-guess").await,
        before,
        "nothing changed"
    );
    assert_eq!(c.sub_status().await, "AADHAAR_VERIFICATION_FAILED");
    // Sixteen minutes later (the window moved by SQL), the right code goes through.
    sqlx::query("UPDATE journey_attempts SET at = at - 960000")
        .execute(&pool)
        .await
        .unwrap();
    let reply = upload(&c, good, Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_SUCCESS", "{reply}");
}

/// The Aadhaar session starts when the step becomes current, not when the page first asks
/// for the state: an upload long after consent, with no state call in between, has expired.
#[tokio::test]
async fn the_aadhaar_session_runs_from_consent_even_without_a_state_call() {
    let signer = Signer::new();
    let cert = signer.cert.clone();
    let app = spawn_app_with(move |config| {
        config.journey.uidai_certificate = cert;
        config.journey.aadhaar_session_minutes = 15;
    })
    .await;
    let pool = app.pool().await;
    let c = customer(&app, "fa-skip", json!({})).await;
    c.consent().await;
    sqlx::query(
        "UPDATE journey_steps SET started_at = started_at - 3600000, ended_at = ended_at - 3600000",
    )
    .execute(&pool)
    .await
    .unwrap();
    let reply = upload(&c, asha_zip(&signer, &[]), Some("1234")).await.ok();
    assert_eq!(reply["outcome"], "AADHAAR_VERIFICATION_EXPIRED", "{reply}");
    assert_eq!(reply["reason"], "session_expired");
}

/// An upload to a link that does not exist is refused from its headers: the answer comes
/// while the body is still on its way (it never finishes here), so a made-up link cannot
/// make the server hold a file in memory.
#[tokio::test]
async fn an_upload_to_a_made_up_link_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v/{}/api/aadhaar HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/zip\r\n\
         x-share-code: 1234\r\ncontent-length: 1000000\r\n\r\n",
        "ab".repeat(20)
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[b'P'; 1000]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("an answer before the body is complete")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
}

/// An e-KYC file is tied to its customer: the mobile number its `Poi/@m` was made from
/// (hashed by the test's own script, with sha256sum) and the name are compared with the
/// user the merchant created. A mismatch is shown to the agent, not a failure.
#[tokio::test]
async fn an_ekyc_file_is_compared_with_its_customer() {
    let signer = Signer::new();
    let cert = signer.cert.clone();
    let app = spawn_app_with(move |config| config.journey.uidai_certificate = cert).await;
    for (id, mobile, name, last4, want_mobile, want_name) in [
        (
            "tie-same",
            "9876543210",
            "Asha Rao",
            "4327",
            "match",
            "match",
        ),
        (
            "tie-other",
            "9123456780",
            "asha  RAO.",
            "4320",
            "mismatch",
            "match",
        ),
        (
            "tie-name",
            "9876543210",
            "Meera Iyer",
            "4321",
            "match",
            "mismatch",
        ),
    ] {
        let c = customer(&app, id, json!({})).await;
        c.consent().await;
        let file = signer.zip(&["--mobile", mobile, "--name", name, "--last4", last4]);
        let reply = upload(&c, file, Some("1234")).await.ok();
        assert_eq!(
            reply["outcome"], "AADHAAR_VERIFICATION_SUCCESS",
            "{id}: {reply}"
        );
        let journey = journey_of(&app, id).await;
        let evidence = journey["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "aadhaar" && s["outcome"] == "AADHAAR_VERIFICATION_SUCCESS")
            .map(|s| s["evidence"].clone())
            .expect("the Aadhaar step's evidence");
        assert_eq!(evidence["mobile"], want_mobile, "{id}: {evidence}");
        assert_eq!(evidence["name"], want_name, "{id}: {evidence}");
    }
}
