//! Several processes on one database: each relay registers as a node, a call is placed
//! on the least-loaded live node, its signalling reaches that node from any process,
//! and a node that goes away drops its calls while new ones go elsewhere. (The same with
//! real browsers and a killed process: tests/journey/cluster.test.js.)

use crate::calls::{agent, calls_config, queue_and_assign, request_extra, wait_for, Desk};
use crate::helpers::*;
use crate::journey::{customer, Customer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use vkyc::config::Config;

/// Calls as in `calls.rs`, with a grace period long enough that a call without media
/// outlives the test, and nodes dead after 3 s.
fn cluster(c: &mut Config) {
    calls_config(c, 120, 120);
    c.media.node_timeout_seconds = 3;
}

fn pg() -> bool {
    std::env::var("VKYC_TEST_PG_URL").is_ok_and(|u| !u.is_empty())
}

/// The node id of `app`'s relay, once registered (at the server's start).
async fn node_of(app: &TestApp) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = app.store.relay_nodes().await.unwrap();
        if let Some(node) = nodes.into_iter().find(|n| n.internal_url == app.base) {
            return node.id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} is no node",
            app.base
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A customer of `app` passed the checks and assigned an agent.
async fn assigned<'a>(app: &'a TestApp, id: &str) -> Customer<'a> {
    let c = customer(app, id, request_extra()).await;
    c.pass_checks().await;
    queue_and_assign(&c).await;
    c
}

/// The same customer's calls sent to `other`.
fn through<'a>(c: &Customer<'_>, other: &'a TestApp) -> Customer<'a> {
    Customer {
        app: other,
        key: c.key.clone(),
        verification_id: c.verification_id.clone(),
    }
}

/// The same staff session used on `other`.
fn desk_on<'a>(d: &Desk<'_>, other: &'a TestApp) -> Desk<'a> {
    Desk {
        app: other,
        id: d.id,
        username: d.username.clone(),
        cookie: d.cookie.clone(),
        csrf: d.csrf.clone(),
    }
}

async fn call_row(app: &TestApp, verification_id: &str) -> vkyc::store::Call {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT c.id FROM calls c JOIN requests r ON r.id = c.request_id \
         WHERE r.verification_id = $1 ORDER BY c.id DESC LIMIT 1",
    )
    .bind(verification_id)
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    app.store.call(row.get("id")).await.unwrap().unwrap()
}

/// What node `id`'s last heartbeat said of its live calls, once it says `want`.
async fn node_calls(app: &TestApp, id: &str, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let node = app.store.relay_node(id).await.unwrap().unwrap();
        if node.live_calls == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} says {} live calls, not {want}",
            node.live_calls
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn calls_go_to_the_least_loaded_live_relay_node_and_are_signalled_from_any_process() {
    if !pg() {
        // SQLite is one process per database file: there is no second node to place on.
        return;
    }
    // A runs no relay; B and C do. Every process reads and writes the one database.
    let a = spawn_app_with(|c| {
        cluster(c);
        c.media.enabled = false;
    })
    .await;
    let b = spawn_app_beside(&a, cluster).await;
    let c = spawn_app_beside(&a, cluster).await;
    let (node_b, node_c) = (node_of(&b).await, node_of(&c).await);
    assert_eq!(
        a.store.relay_nodes().await.unwrap().len(),
        2,
        "A is no node"
    );

    // The desk on A, the customer on B.
    let _agent1 = agent(&a, "agent.one").await;
    let first = assigned(&b, "node-1").await;
    let accepted = first.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    // Both nodes are empty: the longer-running one (B) takes it.
    let call1 = call_row(&a, "node-1").await;
    assert_eq!(call1.relay_node.as_deref(), Some(node_b.as_str()));
    // The second customer accepts through A, which has no relay at all.
    let agent2 = agent(&c, "agent.two").await;
    let second = through(&assigned(&a, "node-2").await, &a);
    let accepted = second.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    let call2 = call_row(&a, "node-2").await;
    assert_eq!(
        call2.relay_node.as_deref(),
        Some(node_c.as_str()),
        "B has a call, C none"
    );
    // C's relay holds the call that A placed there.
    node_calls(&a, &node_c, 1).await;
    node_calls(&a, &node_b, 1).await;

    // An offer through a process without a relay is answered by the call's node: a
    // bad one is refused there, in the API's shape.
    let on_a = desk_on(&agent2, &a);
    let view = on_a.call_view().await;
    let id2 = view["call"]["id"].as_i64().unwrap();
    assert_eq!(id2, call2.id);
    let refused = on_a
        .post(&format!("/calls/{id2}/offer"), json!({"sdp": "v=0"}))
        .await;
    refused.assert_code(400, "sdp_value_invalid");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .starts_with("the offer was refused"),
        "{}",
        refused.body
    );
    // The live quality comes from the node too (a relay's call, with no side yet).
    assert!(view["call"]["quality"].is_object(), "{view}");

    // The agent ends the call through B: C ends its media and the call is over.
    let on_b = desk_on(&agent2, &b);
    let ended = on_b.post(&format!("/calls/{id2}/end"), json!({})).await;
    assert_eq!(ended.status, 200, "{:?}", ended.body);
    assert_eq!(second.sub_status().await, "AGENT_ENDED_CALL");
    node_calls(&a, &node_c, 0).await;

    // C stops. Its row says so, its live calls drop, and new calls avoid it.
    let decided = on_b
        .post(
            &format!("/calls/{id2}/decision"),
            json!({"call_id": id2, "decision": "rejected", "remarks": "test"}),
        )
        .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let third = assigned(&c, "node-3").await;
    third.call(Method::POST, "call/accept", None).await.ok();
    let call3 = call_row(&a, "node-3").await;
    assert_eq!(call3.relay_node.as_deref(), Some(node_c.as_str()));
    c.shutdown.cancel();
    // Dropped well within the 120 s grace period: the node is gone, not a side's media.
    wait_for(&a, "node-3", "USER_DROPPED_OFF", 15).await;
    let dropped = call_row(&a, "node-3").await;
    assert_eq!(dropped.state, "dropped");
    assert_eq!(dropped.ended_by.as_deref(), Some("customer"));
    assert_eq!(dropped.recording_path, None, "the recording was on C");

    // The customer joins again and the next call is placed on B.
    let third = through(&third, &a);
    queue_and_assign(&third).await;
    third.call(Method::POST, "call/accept", None).await.ok();
    let call4 = call_row(&a, "node-3").await;
    assert_ne!(call4.id, call3.id);
    assert_eq!(call4.relay_node.as_deref(), Some(node_b.as_str()));

    // No live node at all: an accept is refused and the invitation stays open.
    b.shutdown.cancel();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a
        .store
        .relay_node(&node_b)
        .await
        .unwrap()
        .unwrap()
        .heartbeat_at
        != 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "B never said it stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _agent4 = agent(&a, "agent.four").await;
    let fourth = assigned(&a, "node-4").await;
    fourth
        .call(Method::POST, "call/accept", None)
        .await
        .assert_code(503, "media_unavailable");
    assert_eq!(fourth.sub_status().await, "AGENT_ASSIGNED_TO_USER");
}

#[tokio::test]
async fn the_internal_api_takes_only_the_nodes_token_and_checks_it_before_the_body() {
    let app = spawn_app().await;
    let url = format!("{}/internal/relay/calls/1/join", app.base);
    let offer = json!({"side": "agent", "sdp": "v=0"});
    // No token, a wrong one: refused before anything is read.
    for auth in [None, Some("Bearer nope"), Some("Basic abc")] {
        let mut req = app.client.post(&url).json(&offer);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        send(req).await.assert_code(401, "authentication_failed");
    }
    let big = "x".repeat(1 << 20);
    send(app.client.post(&url).body(big.clone()))
        .await
        .assert_code(401, "authentication_failed");

    let token = hex::encode(app.key.derive("vkyc relay node signalling"));
    let bearer = format!("Bearer {token}");
    let post = |path: &str, body: Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .header("authorization", &bearer)
            .json(&body)
    };
    // The node's own checks, in the API's shape.
    send(post(
        "/internal/relay/calls/1/join",
        json!({"side": "both", "sdp": "v=0"}),
    ))
    .await
    .assert_code(400, "side_value_invalid");
    send(post("/internal/relay/calls/x/join", offer.clone()))
        .await
        .assert_code(400, "call_id_value_invalid");
    send(post("/internal/relay/calls/1/join", offer.clone()))
        .await
        .assert_code(400, "sdp_value_invalid");
    send(
        app.client
            .post(&url)
            .header("authorization", &bearer)
            .body(big),
    )
    .await
    .assert_code(413, "request_too_large");
    // A call the relay does not have: no quality, no recording.
    let q = send(post("/internal/relay/calls/99/quality", json!({})))
        .await
        .ok();
    assert_eq!(q["quality"], Value::Null);
    let end = send(post("/internal/relay/calls/99/end", json!({})))
        .await
        .ok();
    assert_eq!(end["recording"], Value::Null);
    // Only files of the recordings directory are removed.
    let outside = app.config.data_dir.join("keep-me.webm");
    std::fs::write(&outside, b"x").unwrap();
    let inside = app.config.data_dir.join("recordings").join("7.webm");
    std::fs::write(&inside, b"x").unwrap();
    let removed =
        json!({"leftovers": [outside.display().to_string(), inside.display().to_string()]});
    send(post("/internal/relay/calls/7/leftovers", removed))
        .await
        .ok();
    assert!(
        outside.exists(),
        "a file outside the recordings directory stays"
    );
    assert!(!inside.exists());
}
