//! What the agent's and the auditor's screens rest on: each call event written with the
//! change it records (the checklist's and the player's markers), the Aadhaar photo shown
//! beside the live face (the merchant's `photo_link` fetched by the server through the
//! webhook guard), and the auditor's work queue.

use crate::calls::{agent, calls_app, decided, in_call, request_extra, staff, Desk, JPEG_B64};
use crate::helpers::*;
use crate::journey::customer;
use base64::Engine;
use reqwest::header::COOKIE;
use serde_json::{json, Value};

fn kinds(view: &Value) -> Vec<String> {
    view["call"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn call_events_are_written_with_each_check_in_order() {
    let app = calls_app(60, 60).await;
    let agent = agent(&app, "ev-agent").await;
    let (_customer, call) = in_call(&app, &agent, "ev-1").await;
    let steps: [(&str, Value); 8] = [
        ("events", json!({"kind": "question_asked", "index": 0})),
        ("answers", json!({"index": 0, "answer": "incorrect"})),
        ("events", json!({"kind": "liveness_asked"})),
        ("liveness", json!({"result": "passed"})),
        ("captures", json!({"kind": "face", "image": JPEG_B64})),
        ("pan", json!({"pan": "ABCDE1234F"})),
        ("events", json!({"kind": "location_confirmed"})),
        ("end", json!({})),
    ];
    for (path, body) in steps {
        agent
            .post(&format!("/calls/{call}/{path}"), body)
            .await
            .ok();
    }
    let view = agent.call_view().await;
    assert_eq!(
        kinds(&view),
        [
            "started",
            "question_asked",
            "question_answered",
            "liveness_asked",
            "liveness_marked",
            "capture",
            "pan_entered",
            "location_confirmed",
            "ended"
        ],
        "{view}"
    );
    let events = view["call"]["events"].as_array().unwrap();
    assert_eq!(
        events[2]["detail"],
        json!({"index": 0, "answer": "incorrect"})
    );
    assert_eq!(events[4]["detail"], json!({"result": "passed"}));
    assert_eq!(events[5]["detail"]["kind"], "face");
    assert_eq!(
        events[8]["detail"],
        json!({"state": "ended", "by": "agent"})
    );
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn checklist_events_refuse_wrong_input_and_record_nothing() {
    let app = calls_app(60, 60).await;
    let agent = agent(&app, "ev-agent-2").await;
    let other = agent_desk(&app, "ev-agent-3").await;
    let (_customer, call) = in_call(&app, &agent, "ev-2").await;
    let before = kinds(&agent.call_view().await).len();
    let path = format!("/calls/{call}/events");
    for (body, code) in [
        (json!({"kind": "coffee_break"}), 400),
        (json!({"kind": "question_asked"}), 400),
        (json!({"kind": "question_asked", "index": 99}), 400),
        (json!({"kind": "question_asked", "index": "first"}), 400),
        (json!({"kind": 7}), 400),
        (json!([]), 400),
    ] {
        let reply = agent.post(&path, body.clone()).await;
        assert_eq!(reply.status.as_u16(), code, "{body}: {:?}", reply.body);
        assert!(reply.body["message"].is_string(), "{:?}", reply.body);
    }
    // Another agent's call is no call of theirs.
    let reply = other.post(&path, json!({"kind": "liveness_asked"})).await;
    assert_eq!(reply.status.as_u16(), 404);
    assert_eq!(kinds(&agent.call_view().await).len(), before);
    // Once the call is over the checklist is closed.
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    let reply = agent.post(&path, json!({"kind": "liveness_asked"})).await;
    assert_eq!(reply.status.as_u16(), 409);
    assert_eq!(reply.body["code"], "call_not_active");
    assert_eq!(
        kinds(&agent.call_view().await).len(),
        before + 1,
        "only the end"
    );
}

async fn agent_desk<'a>(app: &'a TestApp, name: &str) -> Desk<'a> {
    staff(app, name, "agent").await
}

/// A server in the test that plays the merchant's photo host.
async fn photo_host() -> String {
    use axum::routing::get;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(JPEG_B64)
        .unwrap();
    let router = axum::Router::new()
        .route(
            "/photo.jpg",
            get(move || async move { ([("content-type", "image/jpeg")], jpeg) }),
        )
        .route(
            "/page.html",
            get(|| async {
                (
                    [("content-type", "image/jpeg")],
                    "<html>not an image</html>",
                )
            }),
        )
        .route(
            "/huge.jpg",
            get(|| async {
                let mut big = vec![0xFFu8, 0xD8, 0xFF];
                big.resize(3 * 1024 * 1024, 0);
                ([("content-type", "image/jpeg")], big)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

async fn photo(desk: &Desk<'_>, reference: i64) -> (u16, Vec<u8>, Value) {
    let reply = desk
        .app
        .client
        .get(desk.url(&format!("/photos/{reference}")))
        .header(COOKIE, &desk.cookie)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let bytes = reply.bytes().await.unwrap().to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, bytes, json)
}

/// A request whose merchant details link the photo at `link`; its reference id.
async fn with_photo_link(app: &TestApp, id: &str, link: &str) -> i64 {
    let mut extra = request_extra();
    extra["aadhaar_details"]["photo_link"] = json!(link);
    customer(app, id, extra).await;
    app.status(id).await["reference_id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_aadhaar_photo_is_fetched_by_the_server_through_the_guard() {
    let host = photo_host().await;
    let app = calls_app(60, 60).await;
    let admin = staff(&app, "photo-admin", "admin").await;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(JPEG_B64)
        .unwrap();

    let good = with_photo_link(&app, "ph-1", &format!("{host}/photo.jpg")).await;
    let (status, bytes, _) = photo(&admin, good).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, jpeg, "the merchant's image, as served");

    // What is not a JPEG or PNG, or is larger than 2 MiB, is not shown.
    for (id, path) in [
        ("ph-2", "page.html"),
        ("ph-3", "huge.jpg"),
        ("ph-4", "gone.jpg"),
    ] {
        let reference = with_photo_link(&app, id, &format!("{host}/{path}")).await;
        let (status, _, body) = photo(&admin, reference).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "photo_not_found", "{path}: {body}");
    }

    // The agent of the case sees it; another agent does not; an unknown case is 404.
    let agent = agent(&app, "photo-agent").await;
    let (_customer, _call) = in_call(&app, &agent, "ph-5").await;
    let view = agent.call_view().await;
    let reference = view["reference_id"].as_i64().unwrap();
    assert_eq!(view["aadhaar_photo"]["source"], "photo_link", "{view}");
    assert_eq!(
        view["aadhaar_photo"]["url"],
        format!("/desk/api/photos/{reference}")
    );
    let stranger = agent_desk(&app, "photo-stranger").await;
    assert_eq!(photo(&stranger, reference).await.0, 404);
    assert_eq!(photo(&admin, 999_999).await.0, 404);

    // Where internal addresses are not allowed, a link to one is never fetched.
    let strict = spawn_app_with(|c| c.webhook_allow_private_addresses = false).await;
    let admin = staff(&strict, "photo-admin-2", "admin").await;
    let inside = with_photo_link(&strict, "ph-6", &format!("{host}/photo.jpg")).await;
    let (status, _, body) = photo(&admin, inside).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "photo_not_found", "{body}");
}

#[tokio::test]
async fn the_auditor_queue_shows_who_and_how_long_and_searches() {
    let app = calls_app(60, 60).await;
    let asha = agent(&app, "queue-asha").await;
    decided(&app, &asha, "queue-1", "approved").await;
    // One agent online at a time, so each case goes to the agent it names.
    asha.post("/agent/offline", json!({})).await.ok();
    let ravi = agent(&app, "queue-ravi").await;
    decided(&app, &ravi, "queue-2", "rejected").await;
    let auditor = staff(&app, "queue-auditor", "auditor").await;

    let all = auditor.get("/audit/cases").await.ok();
    let cases = all["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{all}");
    let first = &cases[0];
    assert_eq!(first["verification_id"], "queue-1", "oldest first");
    assert_eq!(first["customer_name"], "Asha Rao");
    assert_eq!(first["agent"], "queue-asha");
    assert!(first["call_ms"].as_i64().unwrap() >= 0, "{first}");
    assert!(first["waiting_ms"].as_i64().unwrap() >= 0, "{first}");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    let ids = |v: &Value| -> Vec<String> {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["verification_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&auditor.get("/audit/cases?q=RAVI").await.ok()),
        ["queue-2"]
    );
    assert_eq!(
        ids(&auditor.get("/audit/cases?q=queue-1").await.ok()),
        ["queue-1"]
    );
    assert_eq!(
        ids(&auditor.get("/audit/cases?q=asha%20rao").await.ok()).len(),
        2
    );
    // LIKE's own characters are matched as themselves.
    assert!(ids(&auditor.get("/audit/cases?q=%25").await.ok()).is_empty());
    let by_agent = auditor
        .get(&format!("/audit/cases?agent={}", first["agent_id"]))
        .await
        .ok();
    assert_eq!(ids(&by_agent), ["queue-1"]);
    for bad in ["agent=ravi", &format!("q={}", "x".repeat(101))] {
        let reply = auditor.get(&format!("/audit/cases?{bad}")).await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}");
    }
    // Agents have no queue.
    assert_eq!(asha.get("/audit/cases").await.status.as_u16(), 403);
}
