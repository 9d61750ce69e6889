//! Webhooks through real HTTP receivers started by the tests.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver got: headers and raw body of each call.
#[derive(Clone, Default)]
pub struct Receiver {
    pub calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answer this many calls with the given status before answering 200.
    pub fail_first: Arc<Mutex<(usize, u16, Option<u64>)>>,
}

impl Receiver {
    pub fn bodies(&self) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    r.calls.lock().unwrap().push((headers, body));
    let mut fail = r.fail_first.lock().unwrap();
    if fail.0 > 0 {
        fail.0 -= 1;
        let mut response = StatusCode::from_u16(fail.1).unwrap().into_response();
        if let Some(seconds) = fail.2 {
            response.headers_mut().insert("retry-after", seconds.into());
        }
        return response;
    }
    (StatusCode::OK, "thanks").into_response()
}

/// Starts a receiver on `listener` (or a fresh port) and returns its URL.
pub async fn start_receiver(
    receiver: Receiver,
    listener: Option<tokio::net::TcpListener>,
) -> String {
    let listener = match listener {
        Some(l) => l,
        None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Verifies `x-webhook-signature` with Python's standard library, as a merchant would.
fn python_verifies(secret: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let script = "import base64,hashlib,hmac,os,sys\n\
        mac=hmac.new(os.environ['S'].encode(),(os.environ['T']+os.environ['B']).encode(),hashlib.sha256)\n\
        sys.exit(0 if hmac.compare_digest(base64.b64encode(mac.digest()).decode(),os.environ['G']) else 1)";
    std::process::Command::new("python3")
        .args(["-c", script])
        .env("S", secret)
        .env("T", timestamp)
        .env("B", body)
        .env("G", signature)
        .status()
        .expect("python3 runs")
        .success()
}

pub async fn webhook_app(schedule: Vec<u64>) -> TestApp {
    spawn_app_with(|c| {
        c.webhook_allow_private_addresses = true;
        c.webhook_interval_ms = 50;
        c.webhook_retry_schedule_seconds = schedule;
    })
    .await
}

async fn set_webhook(app: &TestApp, url: &str) {
    let merchant = app
        .store
        .merchant_by_client_id(&app.client_id)
        .await
        .unwrap()
        .unwrap();
    app.store
        .set_webhook_url(merchant.id, Some(url))
        .await
        .unwrap();
}

/// Waits until `check` holds, up to 15 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn every_event_of_a_request_arrives_once_in_order_and_signed() {
    let app = webhook_app(vec![1, 1, 1]).await;
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone(), None).await;
    set_webhook(&app, &url).await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    let done = app
        .call(
            Method::POST,
            "/sandbox/vkyc/advance",
            Some(json!({"verification_id": "v", "sub_status": "AUDITOR_APPROVED"})),
        )
        .await
        .ok();
    let history = app
        .call(Method::GET, "/vkyc/history?verification_id=v", None)
        .await
        .ok();
    let moves = history["history"].as_array().unwrap().len();
    eventually("every event", || {
        receiver.calls.lock().unwrap().len() >= moves
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        moves,
        "one call per status change, no duplicates"
    );
    let bodies = receiver.bodies();
    let sequences: Vec<i64> = bodies
        .iter()
        .map(|b| b["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=moves as i64).collect::<Vec<_>>(),
        "in order"
    );
    for (i, (row, body)) in history["history"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&bodies)
        .enumerate()
    {
        assert_eq!(
            body["data"]["sub_status"], row["to_sub_status"],
            "event {i}"
        );
        assert_eq!(body["version"], "v1");
        assert!(body["event_id"].as_str().unwrap().starts_with("evt_"));
        let sub =
            vkyc::domain::status::SubStatus::parse(row["to_sub_status"].as_str().unwrap()).unwrap();
        assert_eq!(body["event_type"], vkyc::domain::events::event_type(sub));
    }
    assert_eq!(bodies[0]["event_type"], "VKYC_USER_LINK_GENERATED");
    assert_eq!(
        bodies.last().unwrap()["event_type"],
        "VKYC_AUDITOR_REVIEW_COMPLETED"
    );
    assert_eq!(
        bodies.last().unwrap()["data"],
        done,
        "data is the GET /vkyc body"
    );
    for (headers, body) in &calls {
        let h = |name: &str| headers[name].to_str().unwrap().to_string();
        assert!(python_verifies(
            &app.secret,
            &h("x-webhook-timestamp"),
            body,
            &h("x-webhook-signature")
        ));
        assert!(!python_verifies(
            "wrong secret",
            &h("x-webhook-timestamp"),
            body,
            &h("x-webhook-signature")
        ));
        assert_eq!(h("x-webhook-attempt"), "1");
        assert_eq!(h("x-webhook-version"), "2024-12-01");
    }
}

#[tokio::test]
async fn a_receiver_that_fails_then_succeeds_gets_the_event_with_each_attempt_recorded() {
    let app = webhook_app(vec![1, 1, 1, 1]).await;
    let receiver = Receiver::default();
    *receiver.fail_first.lock().unwrap() = (2, 500, None);
    let url = start_receiver(receiver.clone(), None).await;
    set_webhook(&app, &url).await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    eventually("three attempts", || {
        receiver.calls.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.calls.lock().unwrap().len(), 3);
    let attempts: Vec<String> = receiver
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h["x-webhook-attempt"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);

    let list = app
        .call(Method::GET, "/webhooks/deliveries?verification_id=v", None)
        .await
        .ok();
    let delivery = &list["deliveries"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 3);
    let detail = app
        .call(
            Method::GET,
            &format!("/webhooks/deliveries/{}", delivery["id"]),
            None,
        )
        .await
        .ok();
    let log = detail["attempt_log"].as_array().unwrap();
    let codes: Vec<i64> = log
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(log[2]["response"], "thanks");
    assert!(log.iter().all(|a| a["latency_ms"].as_i64().unwrap() >= 0));

    // Re-sending delivers the same event again.
    let again = app
        .call(
            Method::POST,
            &format!("/webhooks/deliveries/{}/resend", delivery["id"]),
            None,
        )
        .await
        .ok();
    assert_eq!(again["status"], "pending");
    eventually("the re-sent event", || {
        receiver.calls.lock().unwrap().len() >= 4
    })
    .await;
    let bodies = receiver.bodies();
    assert_eq!(
        bodies[3]["event_id"], bodies[0]["event_id"],
        "the same event, for the receiver to dedupe"
    );
    app.call(Method::POST, "/webhooks/deliveries/999999/resend", None)
        .await
        .assert_code(404, "delivery_id_not_found");
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_receiver_that_never_recovers_ends_failed() {
    let app = webhook_app(vec![1, 1]).await;
    let receiver = Receiver::default();
    *receiver.fail_first.lock().unwrap() = (usize::MAX, 503, Some(2));
    let url = start_receiver(receiver.clone(), None).await;
    set_webhook(&app, &url).await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    eventually("two attempts", || receiver.calls.lock().unwrap().len() >= 2).await;
    let list = app
        .call(Method::GET, "/webhooks/deliveries", None)
        .await
        .ok();
    let id = list["deliveries"][0]["id"].clone();
    // The receiver has answered twice; the server writes each attempt once its answer
    // is in, so read the log until it shows both.
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = app
            .call(Method::GET, &format!("/webhooks/deliveries/{id}"), None)
            .await
            .ok();
        if detail["attempt_log"]
            .as_array()
            .is_some_and(|l| l.len() >= 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = detail["attempt_log"].as_array().unwrap();
    assert!(log.len() >= 2, "{detail}");
    let at =
        |i: usize| chrono::DateTime::parse_from_rfc3339(log[i]["time"].as_str().unwrap()).unwrap();
    assert!(
        (at(1) - at(0)).num_milliseconds() >= 1900,
        "Retry-After: 2 was honoured over the 1 s schedule"
    );
    eventually("the third and last attempt", || {
        receiver.calls.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detail = app
        .call(Method::GET, &format!("/webhooks/deliveries/{id}"), None)
        .await
        .ok();
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(
        receiver.calls.lock().unwrap().len(),
        3,
        "nothing after the schedule ran out"
    );
}

#[tokio::test]
async fn events_wait_for_a_receiver_that_is_down_and_all_arrive_when_it_comes_up() {
    let app = webhook_app(vec![1, 1, 1, 1, 1, 1, 1, 1]).await;
    // Reserve a port, then close it: nothing listens there for now.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_webhook(&app, &format!("http://127.0.0.1:{port}/hooks")).await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "v", "sub_status": "USER_QUEUED"})),
    )
    .await
    .ok();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    start_receiver(receiver.clone(), Some(listener)).await;
    eventually("all five events", || {
        receiver.calls.lock().unwrap().len() >= 5
    })
    .await;
    let sequences: Vec<i64> = receiver
        .bodies()
        .iter()
        .map(|b| b["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    let list = app
        .call(Method::GET, "/webhooks/deliveries", None)
        .await
        .ok();
    let first = list["deliveries"].as_array().unwrap().last().unwrap();
    assert!(first["attempts"].as_i64().unwrap() >= 2);
}

#[tokio::test]
async fn a_request_can_name_a_second_url_and_internal_addresses_are_refused_unless_allowed() {
    let app = webhook_app(vec![1]).await;
    let (main, extra) = (Receiver::default(), Receiver::default());
    set_webhook(&app, &start_receiver(main.clone(), None).await).await;
    let extra_url = start_receiver(extra.clone(), None).await;
    app.create_user("u").await;
    app.call(
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "v", "user_id": "u", "webhook_url": extra_url})),
    )
    .await
    .ok();
    eventually("both receivers", || {
        !main.calls.lock().unwrap().is_empty() && !extra.calls.lock().unwrap().is_empty()
    })
    .await;

    let strict = spawn_app().await;
    strict.create_user("u").await;
    strict
        .call(Method::POST, "/vkyc", Some(json!({"verification_id": "v", "user_id": "u", "webhook_url": "http://127.0.0.1:9/x"})))
        .await
        .assert_error(400, "validation_error", "webhook_url_value_invalid", "webhook_url value is invalid: internal addresses are not allowed.");
    // A URL set behind the API's back (here straight in the database) is checked again
    // when it is delivered to: nothing is sent, and the refusal is recorded.
    set_webhook(&strict, "http://localhost:9/hooks").await;
    strict.create_vkyc("w", "u").await;
    let mut error = String::new();
    for _ in 0..100 {
        let list = strict
            .call(Method::GET, "/webhooks/deliveries?verification_id=w", None)
            .await
            .ok();
        if let Some(e) = list["deliveries"][0]["last_error"].as_str() {
            error = e.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(error, "refused: internal addresses are not allowed");
}

#[tokio::test]
async fn a_delivery_id_that_is_not_a_number_or_not_even_text_is_invalid() {
    let app = spawn_app().await;
    for id in ["abc", "0", "%FF", "1%00"] {
        app.call(Method::GET, &format!("/webhooks/deliveries/{id}"), None)
            .await
            .assert_error(
                400,
                "validation_error",
                "delivery_id_value_invalid",
                "delivery_id value is invalid.",
            );
        app.call(
            Method::POST,
            &format!("/webhooks/deliveries/{id}/resend"),
            None,
        )
        .await
        .assert_code(400, "delivery_id_value_invalid");
    }
    app.call(Method::GET, "/webhooks/deliveries/77", None)
        .await
        .assert_error(
            404,
            "validation_error",
            "delivery_id_not_found",
            "delivery_id does not exist.",
        );
}

/// A receiver that answers 200 and then sends its body forever, slowly: the delivery is
/// recorded at once with the first 256 bytes, and nothing more of the reply is read.
#[tokio::test]
async fn an_endless_reply_is_cut_at_what_is_kept() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 65536];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
                // Up to 60 s of 1 KiB every 10 ms, unless the client goes away.
                for _ in 0..6000 {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(1024, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    });
    let app = spawn_app_with(|c| {
        c.webhook_allow_private_addresses = true;
        c.webhook_interval_ms = 50;
        c.webhook_timeout_seconds = 30;
    })
    .await;
    set_webhook(&app, &url).await;
    app.create_user("u").await;
    app.create_vkyc("endless", "u").await;
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let list = app
            .call(
                Method::GET,
                "/webhooks/deliveries?verification_id=endless",
                None,
            )
            .await
            .ok();
        if list["deliveries"][0]["status"] == "delivered" {
            delivery = list["deliveries"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        delivery["status"], "delivered",
        "recorded within 5 s, long before the 30 s timeout"
    );
    let detail = app
        .call(
            Method::GET,
            &format!("/webhooks/deliveries/{}", delivery["id"]),
            None,
        )
        .await
        .ok();
    assert_eq!(detail["attempt_log"][0]["response"], "x".repeat(256));
    // The receiver notices the dropped connection: it stops being able to send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_drop = sent.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) - after_drop < 64 * 1024,
        "the connection was dropped, not drained"
    );
}

/// With HTTP_PROXY, HTTPS_PROXY and ALL_PROXY set in the server's environment, a delivery
/// never goes to that proxy (which would resolve the name itself, out of the guard's
/// sight): the guarded resolver refuses the name, and the proxy hears nothing.
#[tokio::test]
async fn the_environments_proxy_is_never_used_for_webhooks() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let heard = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = heard.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = proxy.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let database_url = test_database(dir.path()).await;
    let server = crate::crash::start_server_with(
        dir.path(),
        &database_url,
        0,
        &[
            ("HTTP_PROXY", &proxy_url),
            ("HTTPS_PROXY", &proxy_url),
            ("ALL_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("VKYC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "false"),
        ],
    )
    .await;
    let api = crate::crash::Api::of(&server);
    let call = |path: &str, body: Option<Value>| {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let api = api.clone();
        let path = path.to_string();
        async move { api.call(method, &path, body).await.expect("an answer").1 }
    };
    call(
        "/user",
        Some(json!({"user_id": "u", "phone": "9876543210"})),
    )
    .await;
    // A name for this machine is refused when it is given.
    let refused = call(
        "/vkyc",
        Some(json!({"verification_id": "p0", "user_id": "u", "webhook_url": "http://localhost./hook"})),
    )
    .await;
    assert_eq!(refused["code"], "webhook_url_value_invalid", "{refused}");
    let created = call(
        "/vkyc",
        Some(json!({"verification_id": "p1", "user_id": "u",
                    "webhook_url": "http://metadata.google.internal/hook"})),
    )
    .await;
    assert!(created["reference_id"].is_i64(), "{created}");
    for id in ["p1"] {
        let mut error = Value::Null;
        for _ in 0..100 {
            let list = call(&format!("/webhooks/deliveries?verification_id={id}"), None).await;
            let refused = list["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["url"].as_str().is_some_and(|u| u.ends_with("/hook")));
            if let Some(d) = refused {
                let detail = call(&format!("/webhooks/deliveries/{}", d["id"]), None).await;
                if !detail["attempt_log"][0]["error"].is_null() {
                    error = detail["attempt_log"][0]["error"].clone();
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(error.is_string(), "{id}: an attempt was made and failed");
    }
    assert_eq!(
        heard.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the proxy heard nothing"
    );
}
