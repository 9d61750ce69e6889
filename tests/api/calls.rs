//! The video call without media: assignment, invitation, decline, miss, drop, the
//! agent's checks and decision, the auditor's review with four eyes, who may call what,
//! the webhooks of the call path, and signed recording links. Neither browser ever
//! connects media here (the sweep treats both sides as lost from the moment of accept).

use crate::helpers::*;
use crate::journey::{customer, Customer};
use base64::Engine;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// An 8x8 JPEG made with ffmpeg (223 bytes, decodes with djpeg).
pub(crate) const JPEG_B64: &str = "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgoKC8oLzc3Nzc3N0E8QUNDQ0FBQUFDQ0NISEhVVVVISEhDQ0hIUFBVVVxfXFdXVVdfX2RkZHh4c3OMjJGsrM//xABLAAEBAAAAAAAAAAAAAAAAAAAABAEBAAAAAAAAAAAAAAAAAAAABhABAAAAAAAAAAAAAAAAAAAAABEBAAAAAAAAAAAAAAAAAAAAAP/AABEIAAgACAMBIgACEQADEQD/2gAMAwEAAhEDEQA/ALABQmf/2Q==";

pub(crate) fn jpeg() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(JPEG_B64)
        .unwrap()
}

/// The desk open all day, agents never stale, invitations and drops as given, webhooks
/// to local receivers.
pub(crate) async fn calls_app(invite_seconds: u64, drop_grace_seconds: u64) -> TestApp {
    spawn_app_with(|c| calls_config(c, invite_seconds, drop_grace_seconds)).await
}

/// [`calls_app`]'s settings, for a server started otherwise.
pub(crate) fn calls_config(
    c: &mut vkyc::config::Config,
    invite_seconds: u64,
    drop_grace_seconds: u64,
) {
    c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    c.journey.working_hours = "00:00-24:00".into();
    c.agent_stale_seconds = 3600;
    c.calls.invite_seconds = invite_seconds;
    c.calls.drop_grace_seconds = drop_grace_seconds;
    c.webhook_allow_private_addresses = true;
    c.webhook_interval_ms = 50;
}

/// The merchant's details: Aadhaar given (no Aadhaar step) and two security questions.
pub(crate) fn request_extra() -> Value {
    json!({
        "aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
                            "dob": "01-01-1990", "name": "Asha Rao",
                            "photo_link": "https://example.in/p.jpg", "gender": "F"},
        "security_questions": [
            {"order": 1, "question": "What is your mother's maiden name?", "answer": "Rao"},
            {"order": 2, "question": "Which bank holds your salary account?", "answer": "SBI"}
        ]
    })
}

// ---- the desk ----

pub(crate) struct Desk<'a> {
    pub(crate) app: &'a TestApp,
    /// The staff member's id.
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Desk<'_> {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/desk/api{path}", self.app.base)
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        send(
            self.app
                .client
                .get(self.url(path))
                .header(COOKIE, &self.cookie),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        send(
            self.app
                .client
                .post(self.url(path))
                .header(COOKIE, &self.cookie)
                .header("x-csrf-token", &self.csrf)
                .json(&body),
        )
        .await
    }

    async fn post_without_csrf(&self, path: &str, body: Value) -> Reply {
        send(
            self.app
                .client
                .post(self.url(path))
                .header(COOKIE, &self.cookie)
                .json(&body),
        )
        .await
    }

    /// `GET /desk/api/agent/call`.
    pub(crate) async fn call_view(&self) -> Value {
        self.get("/agent/call").await.ok()
    }
}

/// `vkyc staff create` (generated password), then a login; returns the session.
pub(crate) async fn staff<'a>(app: &'a TestApp, username: &str, role: &str) -> Desk<'a> {
    let out = app.cli(&["staff", "create", "--username", username, "--role", role]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password")
        .to_string();
    PASSWORDS.lock().unwrap().push((
        app.database_url.clone(),
        username.to_string(),
        password.clone(),
    ));
    login(app, username, &password).await
}

/// The passwords the CLI generated, to sign in again after a role change.
static PASSWORDS: std::sync::Mutex<Vec<(String, String, String)>> =
    std::sync::Mutex::new(Vec::new());

fn password_of(app: &TestApp, username: &str) -> String {
    PASSWORDS
        .lock()
        .unwrap()
        .iter()
        .find(|(db, u, _)| *db == app.database_url && u == username)
        .map(|(_, _, p)| p.clone())
        .unwrap()
}

pub(crate) async fn login<'a>(app: &'a TestApp, username: &str, password: &str) -> Desk<'a> {
    let reply = send(
        app.client
            .post(format!("{}/desk/api/login", app.base))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    assert!(
        reply.headers.contains_key(SET_COOKIE),
        "{} {}",
        reply.status,
        reply.body
    );
    let cookie = reply.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = reply.ok();
    let member = app.store.staff_by_username(username).await.unwrap();
    Desk {
        app,
        id: member.expect("the staff member").id,
        username: username.to_string(),
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// An agent, signed in and online.
pub(crate) async fn agent<'a>(app: &'a TestApp, username: &str) -> Desk<'a> {
    let desk = staff(app, username, "agent").await;
    let online = desk.post("/agent/online", json!({})).await.ok();
    assert_eq!(online["online"], true);
    desk
}

/// `GET /desk/api/captures/<id>`: the status and, when it is a JPEG, its bytes.
async fn capture(desk: &Desk<'_>, id: i64) -> (u16, Vec<u8>) {
    let res = desk
        .app
        .client
        .get(desk.url(&format!("/captures/{id}")))
        .header(COOKIE, &desk.cookie)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    (status, res.bytes().await.unwrap().to_vec())
}

// ---- the customer ----

/// Polls `GET /vkyc` until the sub-status is `want` (the sweep runs every second).
pub(crate) async fn wait_for(app: &TestApp, id: &str, want: &str, seconds: u64) -> Value {
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

/// Joins the live queue and waits to be assigned an agent.
pub(crate) async fn queue_and_assign(c: &Customer<'_>) {
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
    wait_for(c.app, &c.verification_id, "AGENT_ASSIGNED_TO_USER", 15).await;
}

/// A customer through the checks, assigned an agent.
async fn assigned<'a>(app: &'a TestApp, id: &str) -> Customer<'a> {
    assigned_with(app, id, request_extra()).await
}

/// [`assigned`] for a request made with `extra` in its body.
async fn assigned_with<'a>(app: &'a TestApp, id: &str, extra: Value) -> Customer<'a> {
    let c = customer(app, id, extra).await;
    c.pass_checks().await;
    queue_and_assign(&c).await;
    c
}

/// A customer in an accepted call; returns the call id the agent sees.
pub(crate) async fn in_call<'a>(
    app: &'a TestApp,
    agent: &Desk<'_>,
    id: &str,
) -> (Customer<'a>, i64) {
    in_call_with(app, agent, id, request_extra()).await
}

/// [`in_call`] for a request made with `extra` in its body.
pub(crate) async fn in_call_with<'a>(
    app: &'a TestApp,
    agent: &Desk<'_>,
    id: &str,
    extra: Value,
) -> (Customer<'a>, i64) {
    let c = assigned_with(app, id, extra).await;
    let accepted = c.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    assert_eq!(c.sub_status().await, "USER_ACCEPTED_MEETING");
    let view = agent.call_view().await;
    assert_eq!(view["verification_id"], id, "{view}");
    assert_eq!(view["call"]["state"], "active");
    (c, view["call"]["id"].as_i64().unwrap())
}

/// Everything approval needs, marked during the call.
pub(crate) async fn complete_checks(agent: &Desk<'_>, call: i64) {
    let view = agent.call_view().await;
    let n = view["call"]["questions"].as_array().unwrap().len();
    for index in 0..n {
        agent
            .post(
                &format!("/calls/{call}/answers"),
                json!({"index": index, "answer": "correct"}),
            )
            .await
            .ok();
    }
    agent
        .post(
            &format!("/calls/{call}/liveness"),
            json!({"result": "passed"}),
        )
        .await
        .ok();
    agent
        .post(&format!("/calls/{call}/pan"), json!({"pan": "ABCDE1234F"}))
        .await
        .ok();
    for kind in ["face", "pan"] {
        agent
            .post(
                &format!("/calls/{call}/captures"),
                json!({"kind": kind, "image": JPEG_B64}),
            )
            .await
            .ok();
    }
}

/// A whole call the agent ends and decides; returns the customer and the call id.
pub(crate) async fn decided<'a>(
    app: &'a TestApp,
    agent: &Desk<'_>,
    id: &str,
    decision: &str,
) -> (Customer<'a>, i64) {
    let (c, call) = in_call(app, agent, id).await;
    complete_checks(agent, call).await;
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    let decided = agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": decision, "remarks": format!("{decision} by {}", agent.username)}),
        )
        .await
        .ok();
    assert!(decided["sub_status"]
        .as_str()
        .unwrap()
        .starts_with("AGENT_"));
    (c, call)
}

async fn history(app: &TestApp, id: &str) -> Vec<String> {
    app.call(
        Method::GET,
        &format!("/vkyc/history?verification_id={id}"),
        None,
    )
    .await
    .ok()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_sub_status"].as_str().unwrap().to_string())
        .collect()
}

/// A `GET /vkyc` body with its recording link cut to the path: the link is signed
/// afresh, with a new expiry, each time it is shown.
fn unsigned(mut status: Value) -> Value {
    if let Some(link) = status["recording_link"].as_str() {
        status["recording_link"] = json!(link.split('?').next().unwrap());
    }
    status
}

// ---- 1. assignment and invitation ----

#[tokio::test]
async fn calls_an_agent_is_assigned_and_the_invitation_is_shown_declined_and_renewed() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.a").await;
    assert_eq!(agent.call_view().await, json!({"call": null}));
    let c = assigned(&app, "call-invite").await;
    assert_eq!(c.step().await, "call");

    let invite = c.call(Method::GET, "call", None).await.ok();
    assert_eq!(invite["state"], "invited");
    assert_eq!(invite["sub_status"], "AGENT_ASSIGNED_TO_USER");
    assert!(invite["invite_expires_at"].is_string());
    let call_id = invite["call_id"].as_i64().unwrap();

    // The agent sees who is coming and what to ask.
    let view = agent.call_view().await;
    assert_eq!(view["verification_id"], "call-invite");
    assert_eq!(view["sub_status"], "AGENT_ASSIGNED_TO_USER");
    assert_eq!(view["user"]["name"], "Asha Rao");
    assert_eq!(view["location"]["latitude"], 28.61);
    assert_eq!(view["location"]["longitude"], 77.21);
    assert_eq!(view["ip"]["ip"], "127.0.0.1");
    assert!(view["consent"]["time"].is_string(), "{view}");
    assert_eq!(view["aadhaar"]["source"], "merchant");
    let call = &view["call"];
    assert_eq!(call["id"], call_id);
    assert_eq!(call["state"], "invited");
    let code = call["liveness_code"].as_str().unwrap();
    assert!(
        code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let questions = call["questions"].as_array().unwrap();
    let text = |source: &str| -> Vec<String> {
        let mut t: Vec<String> = questions
            .iter()
            .filter(|q| q["source"] == source)
            .map(|q| q["question"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        text("merchant"),
        [
            "What is your mother's maiden name?",
            "Which bank holds your salary account?"
        ]
    );
    assert_eq!(
        text("deployment"),
        [
            "Please tell me the city you live in.",
            "Please tell me your date of birth.",
            "Please tell me your full name."
        ]
    );
    let maiden = questions
        .iter()
        .find(|q| q["question"] == "What is your mother's maiden name?")
        .unwrap();
    assert_eq!(maiden["expected"], "Rao");
    assert!(questions.iter().all(|q| q["answer"].is_null()));
    // Nothing to mark before the customer accepts.
    agent
        .post(
            &format!("/calls/{call_id}/liveness"),
            json!({"result": "passed"}),
        )
        .await
        .assert_code(409, "call_not_active");

    // Declined: back to waiting, the agent free.
    let declined = c.call(Method::POST, "call/decline", None).await.ok();
    assert_eq!(declined["state"], "declined");
    assert_eq!(c.sub_status().await, "USER_REJECTED_MEETING");
    assert_eq!(c.step().await, "waiting");
    assert_eq!(agent.call_view().await, json!({"call": null}));
    c.call(Method::GET, "call", None)
        .await
        .assert_code(409, "call_not_live");
    c.call(Method::POST, "call/accept", None)
        .await
        .assert_code(409, "call_not_live");

    // Joining again gives a new invitation.
    queue_and_assign(&c).await;
    let again = agent.call_view().await;
    assert_eq!(again["call"]["state"], "invited");
    assert_ne!(again["call"]["id"], call_id);
    let moves = history(&app, "call-invite").await;
    assert_eq!(
        moves[moves.len() - 5..],
        [
            "USER_QUEUED",
            "AGENT_ASSIGNED_TO_USER",
            "USER_REJECTED_MEETING",
            "USER_QUEUED",
            "AGENT_ASSIGNED_TO_USER"
        ]
    );
}

#[tokio::test]
async fn calls_an_unanswered_invitation_is_missed_and_frees_the_agent() {
    let app = calls_app(1, 3600).await;
    let agent = agent(&app, "agent.miss").await;
    let c = customer(&app, "call-miss", request_extra()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED");
    wait_for(&app, "call-miss", "USER_MISSED_MEETING", 15).await;
    assert_eq!(c.step().await, "waiting");
    assert_eq!(agent.call_view().await, json!({"call": null}));
    c.call(Method::POST, "call/accept", None)
        .await
        .assert_code(409, "call_not_live");
    let moves = history(&app, "call-miss").await;
    assert_eq!(
        moves[moves.len() - 2..],
        ["AGENT_ASSIGNED_TO_USER", "USER_MISSED_MEETING"]
    );
}

// ---- 2. accept and drop ----

#[tokio::test]
async fn calls_an_accepted_call_without_media_drops_and_the_customer_queues_again() {
    let app = calls_app(60, 1).await;
    let agent = agent(&app, "agent.drop").await;
    let c = assigned(&app, "call-drop").await;
    let accepted = c.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    let first = accepted["call_id"].as_i64().unwrap();
    // The relay is not there for this test: an offer is refused, nothing more.
    c.call(Method::POST, "call/offer", Some(json!({"sdp": "v=0"})))
        .await
        .assert_code(400, "sdp_value_invalid");
    // Neither side ever connects media: the customer counts as dropped first.
    wait_for(&app, "call-drop", "USER_DROPPED_OFF", 15).await;
    assert_eq!(c.step().await, "waiting");
    let view = agent.call_view().await;
    assert_eq!(view["call"]["id"], first);
    assert_eq!(view["call"]["state"], "dropped");
    assert_eq!(view["call"]["ended_by"], "customer");
    // A dropped call cannot be approved.
    agent
        .post(
            &format!("/calls/{first}/decision"),
            json!({"call_id": first, "decision": "approved", "remarks": "fine"}),
        )
        .await
        .assert_code(409, "approval_incomplete");

    // The customer comes back before the agent decides: a new call.
    queue_and_assign(&c).await;
    let view = agent.call_view().await;
    let second = view["call"]["id"].as_i64().unwrap();
    assert_ne!(second, first);
    assert_eq!(view["call"]["state"], "invited");
    c.call(Method::POST, "call/accept", None).await.ok();
    wait_for(&app, "call-drop", "USER_DROPPED_OFF", 15).await;
    // The first call is not this case's any more: it is neither shown nor decidable.
    let view = agent.call_view().await;
    assert_eq!(view["call"]["id"], second);
    agent
        .post(
            &format!("/calls/{first}/decision"),
            json!({"call_id": first, "decision": "rejected", "remarks": "left"}),
        )
        .await
        .assert_code(409, "call_not_decidable");
    assert_eq!(c.sub_status().await, "USER_DROPPED_OFF");
    // After a drop the agent may still reject.
    let done = agent
        .post(
            &format!("/calls/{second}/decision"),
            json!({"call_id": second, "decision": "rejected", "remarks": "dropped twice"}),
        )
        .await
        .ok();
    assert_eq!(done["sub_status"], "AGENT_REJECTED");
    assert_eq!(agent.call_view().await, json!({"call": null}));
}

// ---- 3. the agent's checks and decision ----

#[tokio::test]
async fn calls_the_agent_checks_ends_and_decides() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.check").await;

    // Approval: every check, each refused when malformed.
    let (c, call) = in_call(&app, &agent, "call-ok").await;
    let path = |p: &str| format!("/calls/{call}/{p}");
    let view = agent.call_view().await;
    let n = view["call"]["questions"].as_array().unwrap().len();
    assert_eq!(n, 5);
    agent
        .post(&path("answers"), json!({"index": n, "answer": "correct"}))
        .await
        .assert_code(400, "index_value_invalid");
    agent
        .post(&path("answers"), json!({"index": -1, "answer": "correct"}))
        .await
        .assert_code(400, "index_value_invalid");
    agent
        .post(&path("answers"), json!({"index": 0, "answer": "maybe"}))
        .await
        .assert_code(400, "answer_value_invalid");
    agent
        .post(&path("liveness"), json!({"result": "perhaps"}))
        .await
        .assert_code(400, "result_value_invalid");
    agent
        .post(&path("pan"), json!({"pan": "ABCDE12345"}))
        .await
        .assert_code(400, "pan_value_invalid");
    agent
        .post(
            &path("captures"),
            json!({"kind": "face", "image": base64::engine::general_purpose::STANDARD
                .encode(b"\x89PNG\r\n\x1a\n not a jpeg at all, but long enough to pass the size check ......")}),
        )
        .await
        .assert_code(400, "image_value_invalid");
    agent
        .post(&path("captures"), json!({"kind": "face", "image": "***"}))
        .await
        .assert_code(400, "image_value_invalid");
    agent
        .post(
            &path("captures"),
            json!({"kind": "selfie", "image": JPEG_B64}),
        )
        .await
        .assert_code(400, "kind_value_invalid");

    for index in 0..n {
        let marked = agent
            .post(
                &path("answers"),
                json!({"index": index, "answer": "correct"}),
            )
            .await
            .ok();
        assert_eq!(marked["questions"][index]["answer"], "correct");
    }
    agent
        .post(&path("liveness"), json!({"result": "passed"}))
        .await
        .ok();
    let pan = agent
        .post(&path("pan"), json!({"pan": " abcde1234f "}))
        .await
        .ok();
    assert_eq!(pan["pan"], "ABCDE1234F");
    let face = agent
        .post(
            &path("captures"),
            json!({"kind": "face", "image": format!("data:image/jpeg;base64,{JPEG_B64}")}),
        )
        .await
        .ok();
    assert_eq!(
        face["url"],
        format!("/desk/api/captures/{}", face["id"].as_i64().unwrap())
    );
    let (status, image) = capture(&agent, face["id"].as_i64().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(image, jpeg(), "the still as taken");

    // No decision during the call.
    agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "ok"}),
        )
        .await
        .assert_code(409, "call_not_decidable");
    let ended = agent.post(&path("end"), json!({})).await.ok();
    assert_eq!(ended["state"], "ended");
    assert_eq!(c.sub_status().await, "AGENT_ENDED_CALL");
    // Nothing is added once the call is over.
    agent
        .post(&path("captures"), json!({"kind": "pan", "image": JPEG_B64}))
        .await
        .assert_code(409, "call_not_active");
    // The PAN card was never captured: approval is refused and nothing changes.
    let refused = agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "all good"}),
        )
        .await;
    refused.assert_code(409, "approval_incomplete");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("a capture of the PAN card"),
        "{}",
        refused.body
    );
    let status = app.status("call-ok").await;
    assert_eq!(status["sub_status"], "AGENT_ENDED_CALL");
    assert!(status["agent_remarks"].is_null());
    agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "approved"}),
        )
        .await
        .assert_code(400, "remarks_missing");
    agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "maybe", "remarks": "x"}),
        )
        .await
        .assert_code(400, "decision_value_invalid");
    let done = agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "unable_to_validate", "remarks": "no PAN card shown"}),
        )
        .await
        .ok();
    assert_eq!(done["sub_status"], "AGENT_UNABLE_TO_VALIDATE");
    let status = app.status("call-ok").await;
    assert_eq!(status["status"], "AGENT_REVIEWED");
    assert_eq!(status["agent_remarks"], "no PAN card shown");
    // Once only.
    agent
        .post(
            &path("decision"),
            json!({"call_id": call, "decision": "rejected", "remarks": "again"}),
        )
        .await
        .assert_code(409, "call_not_decidable");
    assert_eq!(agent.call_view().await, json!({"call": null}));

    // A whole call, everything marked: approved.
    let (_, call) = decided(&app, &agent, "call-approve", "approved").await;
    let status = app.status("call-approve").await;
    assert_eq!(status["sub_status"], "AGENT_APPROVED");
    assert_eq!(status["agent_remarks"], "approved by agent.check");
    agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "twice"}),
        )
        .await
        .assert_code(409, "call_not_decidable");

    // The customer ends the call; the agent rejects.
    let (c, call) = in_call(&app, &agent, "call-user-end").await;
    let ended = c.call(Method::POST, "call/end", None).await.ok();
    assert_eq!(ended["state"], "ended");
    assert_eq!(c.sub_status().await, "USER_ENDED_CALL");
    c.call(Method::POST, "call/end", None)
        .await
        .assert_code(409, "call_not_live");
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .assert_code(409, "call_not_active");
    let view = agent.call_view().await;
    assert_eq!(view["call"]["id"], call);
    assert_eq!(view["call"]["ended_by"], "customer");
    let done = agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "rejected", "remarks": "face does not match"}),
        )
        .await
        .ok();
    assert_eq!(done["sub_status"], "AGENT_REJECTED");
    assert_eq!(
        app.status("call-user-end").await["agent_remarks"],
        "face does not match"
    );
}

// ---- 4. the auditor, and 7. the webhooks of the call path ----

#[tokio::test]
async fn calls_the_auditor_reviews_cases_oldest_first_and_webhooks_follow_the_call() {
    let app = calls_app(60, 3600).await;
    let receiver = crate::webhooks::Receiver::default();
    let url = crate::webhooks::start_receiver(receiver.clone(), None).await;
    let merchant = app
        .store
        .merchant_by_client_id(&app.client_id)
        .await
        .unwrap()
        .unwrap();
    app.store
        .set_webhook_url(merchant.id, Some(&url))
        .await
        .unwrap();
    let agent = agent(&app, "agent.rev").await;
    // Signed in, never online: never given a call.
    let other = staff(&app, "agent.other", "agent").await;
    let auditor = staff(&app, "auditor.one", "auditor").await;
    assert_eq!(auditor.get("/audit/cases").await.ok(), json!({"cases": []}));

    decided(&app, &agent, "aud-first", "approved").await;
    decided(&app, &agent, "aud-second", "rejected").await;
    let first = app.status("aud-first").await;
    let second = app.status("aud-second").await;

    let list = auditor.get("/audit/cases").await.ok();
    let cases = list["cases"].as_array().unwrap();
    let ids: Vec<&str> = cases
        .iter()
        .map(|c| c["verification_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["aud-first", "aud-second"], "oldest first");
    assert_eq!(cases[0]["sub_status"], "AGENT_APPROVED");
    assert_eq!(cases[0]["agent_remarks"], "approved by agent.rev");
    assert_eq!(cases[1]["sub_status"], "AGENT_REJECTED");

    // The case: the customer, the call with its marks and stills, the timeline.
    let case = auditor
        .get(&format!("/audit/cases/{}", first["reference_id"]))
        .await
        .ok();
    assert_eq!(case["verification_id"], "aud-first");
    assert_eq!(case["agent_remarks"], "approved by agent.rev");
    assert_eq!(case["user"]["name"], "Asha Rao");
    let call = &case["call"];
    assert_eq!(call["state"], "ended");
    assert_eq!(call["decision"], "approved");
    assert_eq!(call["pan"], "ABCDE1234F");
    assert_eq!(call["liveness_result"], "passed");
    let questions = call["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 5);
    assert!(questions.iter().all(|q| q["answer"] == "correct"));
    let captures = call["captures"].as_array().unwrap();
    let kinds: Vec<&str> = captures
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["face", "pan"]);
    let timeline: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to_sub_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        timeline[timeline.len() - 5..],
        [
            "USER_QUEUED",
            "AGENT_ASSIGNED_TO_USER",
            "USER_ACCEPTED_MEETING",
            "AGENT_ENDED_CALL",
            "AGENT_APPROVED"
        ]
    );
    // The stills: for auditors and the call's agent, not for another agent.
    for c in captures {
        let id = c["id"].as_i64().unwrap();
        assert_eq!(c["url"], format!("/desk/api/captures/{id}"));
        let (status, bytes) = capture(&auditor, id).await;
        assert_eq!((status, bytes), (200, jpeg()));
        assert_eq!(capture(&agent, id).await.0, 200);
        let (status, _) = capture(&other, id).await;
        assert_eq!(status, 404);
    }
    assert_eq!(capture(&auditor, 999_999).await.0, 404);

    // Decisions.
    let path = |r: &Value| format!("/audit/cases/{}/decision", r["reference_id"]);
    auditor
        .post(&path(&first), json!({"decision": "approved"}))
        .await
        .assert_code(400, "remarks_missing");
    auditor
        .post(
            &path(&first),
            json!({"decision": "unable_to_validate", "remarks": "x"}),
        )
        .await
        .assert_code(400, "decision_value_invalid");
    let done = auditor
        .post(
            &path(&first),
            json!({"decision": "approved", "remarks": "checked the recording"}),
        )
        .await
        .ok();
    assert_eq!(done["sub_status"], "AUDITOR_APPROVED");
    let status = app.status("aud-first").await;
    assert_eq!(status["status"], "AUDITOR_REVIEWED");
    assert_eq!(status["auditor_remarks"], "checked the recording");
    assert_eq!(status["agent_remarks"], "approved by agent.rev");
    auditor
        .post(
            &path(&first),
            json!({"decision": "rejected", "remarks": "changed my mind"}),
        )
        .await
        .assert_code(409, "case_not_reviewable");
    auditor
        .get(&format!("/audit/cases/{}", first["reference_id"]))
        .await
        .assert_code(409, "case_not_reviewable");
    assert_eq!(
        app.status("aud-first").await["sub_status"],
        "AUDITOR_APPROVED"
    );
    let list = auditor.get("/audit/cases").await.ok();
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    assert_eq!(list["cases"][0]["verification_id"], "aud-second");
    let done = auditor
        .post(
            &path(&second),
            json!({"decision": "rejected", "remarks": "the agent missed a forged PAN"}),
        )
        .await
        .ok();
    assert_eq!(done["sub_status"], "AUDITOR_REJECTED");
    assert_eq!(
        app.status("aud-second").await["auditor_remarks"],
        "the agent missed a forged PAN"
    );
    assert_eq!(auditor.get("/audit/cases").await.ok(), json!({"cases": []}));

    // One webhook per status change of each request, in order, the call path included.
    for id in ["aud-first", "aud-second"] {
        let moves = history(&app, id).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let got = loop {
            let got: Vec<String> = receiver
                .bodies()
                .iter()
                .filter(|b| b["data"]["verification_id"] == id)
                .map(|b| b["data"]["sub_status"].as_str().unwrap().to_string())
                .collect();
            if got.len() >= moves.len() || std::time::Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(got, moves, "{id}");
        assert!(moves.ends_with(&[
            "AGENT_ASSIGNED_TO_USER".to_string(),
            "USER_ACCEPTED_MEETING".into(),
            "AGENT_ENDED_CALL".into(),
            if id == "aud-first" {
                "AGENT_APPROVED".into()
            } else {
                "AGENT_REJECTED".into()
            },
            if id == "aud-first" {
                "AUDITOR_APPROVED".into()
            } else {
                "AUDITOR_REJECTED".into()
            },
        ]));
    }
}

// ---- 5. four eyes ----

/// `vkyc ...` expected to fail; returns its standard error.
fn cli_fails(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(args)
        .env("VKYC_DATA_DIR", app._dir.path())
        .env("VKYC_DATABASE_URL", &app.database_url)
        .env_remove("VKYC_CONFIG")
        .env_remove("VKYC_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success(), "vkyc {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn calls_an_agent_who_becomes_auditor_cannot_review_their_own_calls() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.four").await;
    let to_auditor = [
        "staff",
        "set-role",
        "--username",
        "agent.four",
        "--role",
        "auditor",
    ];
    // Refused while a call of theirs waits for their decision.
    let (_, call) = in_call(&app, &agent, "four-eyes").await;
    complete_checks(&agent, call).await;
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    let err = cli_fails(&app, &to_auditor);
    assert!(err.contains("waiting for their decision"), "{err}");
    agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "all checks passed"}),
        )
        .await
        .ok();
    let case = app.status("four-eyes").await;
    assert_eq!(case["sub_status"], "AGENT_APPROVED");
    let reference = case["reference_id"].as_i64().unwrap();

    // Refused while on a call.
    let c = assigned(&app, "four-busy").await;
    let err = cli_fails(&app, &to_auditor);
    assert!(err.contains("on a call"), "{err}");
    c.call(Method::POST, "call/decline", None).await.ok();
    let err = cli_fails(
        &app,
        &[
            "staff",
            "set-role",
            "--username",
            "agent.four",
            "--role",
            "agent",
        ],
    );
    assert!(err.contains("already agent"), "{err}");
    let err = cli_fails(
        &app,
        &[
            "staff",
            "set-role",
            "--username",
            "agent.four",
            "--role",
            "boss",
        ],
    );
    assert!(err.contains("role must be"), "{err}");

    let out = app.cli(&[
        "staff",
        "set-role",
        "--username",
        "Agent.Four",
        "--role",
        "auditor",
    ]);
    assert!(out.contains("agent.four is now auditor"), "{out}");
    let listed = app.cli(&["staff", "list"]);
    assert!(listed.contains("agent.four\tauditor\tactive"), "{listed}");
    let row = app.store.staff_audit(None, 1).await.unwrap().remove(0);
    assert_eq!(row.action, "staff_role_changed");
    assert_eq!(row.target.as_deref(), Some("agent.four"));
    assert_eq!(row.staff_id, None);
    assert_eq!(row.details.as_deref(), Some("vkyc cli: agent -> auditor"));
    // The old session ended with the old role; the new one is an auditor's.
    agent
        .get("/agent/call")
        .await
        .assert_code(401, "session_required");
    let me = login(&app, "agent.four", &password_of(&app, "agent.four")).await;
    assert_eq!(me.get("/me").await.ok()["role"], "auditor");
    assert_eq!(app.store.agents_online(0, 1).await.unwrap(), 0);

    assert_eq!(me.get("/audit/cases").await.ok(), json!({"cases": []}));
    me.get(&format!("/audit/cases/{reference}"))
        .await
        .assert_code(403, "four_eyes");
    me.post(
        &format!("/audit/cases/{reference}/decision"),
        json!({"decision": "approved", "remarks": "my own work is fine"}),
    )
    .await
    .assert_code(403, "four_eyes");
    let after = app.status("four-eyes").await;
    assert_eq!(unsigned(after), unsigned(case), "nothing changed");

    // Another auditor may.
    let auditor = staff(&app, "auditor.two", "auditor").await;
    let list = auditor.get("/audit/cases").await.ok();
    assert_eq!(list["cases"][0]["verification_id"], "four-eyes");
    auditor
        .post(
            &format!("/audit/cases/{reference}/decision"),
            json!({"decision": "approved", "remarks": "second pair of eyes"}),
        )
        .await
        .ok();
    assert_eq!(
        app.status("four-eyes").await["sub_status"],
        "AUDITOR_APPROVED"
    );
}

// ---- 6. refusals ----

#[tokio::test]
async fn calls_staff_apis_refuse_the_wrong_role_session_or_call_and_change_nothing() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.mine").await;
    let (c, call) = in_call(&app, &agent, "refuse").await;
    let auditor = staff(&app, "auditor.r", "auditor").await;
    let other = staff(&app, "agent.theirs", "agent").await;
    let before = app.status("refuse").await;
    let reference = before["reference_id"].as_i64().unwrap();
    let view_before = agent.call_view().await;

    let agent_posts = [
        (format!("/calls/{call}/offer"), json!({"sdp": "v=0"})),
        (
            format!("/calls/{call}/answers"),
            json!({"index": 0, "answer": "correct"}),
        ),
        (
            format!("/calls/{call}/liveness"),
            json!({"result": "passed"}),
        ),
        (
            format!("/calls/{call}/captures"),
            json!({"kind": "face", "image": JPEG_B64}),
        ),
        (format!("/calls/{call}/pan"), json!({"pan": "ABCDE1234F"})),
        (format!("/calls/{call}/end"), json!({})),
        (
            format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "rejected", "remarks": "x"}),
        ),
    ];
    let audit_posts = [(
        format!("/audit/cases/{reference}/decision"),
        json!({"decision": "approved", "remarks": "x"}),
    )];

    // An auditor on every agent API; an agent on every audit API.
    auditor
        .get("/agent/call")
        .await
        .assert_code(403, "role_forbidden");
    for (path, body) in &agent_posts {
        auditor
            .post(path, body.clone())
            .await
            .assert_code(403, "role_forbidden");
    }
    auditor
        .post("/agent/online", json!({}))
        .await
        .assert_code(403, "role_forbidden");
    agent
        .get("/audit/cases")
        .await
        .assert_code(403, "role_forbidden");
    agent
        .get(&format!("/audit/cases/{reference}"))
        .await
        .assert_code(403, "role_forbidden");
    for (path, body) in &audit_posts {
        agent
            .post(path, body.clone())
            .await
            .assert_code(403, "role_forbidden");
    }

    // Another agent: no such call for them.
    assert_eq!(other.call_view().await, json!({"call": null}));
    for (path, body) in &agent_posts {
        other
            .post(path, body.clone())
            .await
            .assert_code(404, "call_not_found");
    }

    // No session, a merchant's credentials, the customer's key: not signed in.
    for (path, body) in agent_posts.iter().chain(&audit_posts) {
        let url = format!("{}/desk/api{path}", app.base);
        send(app.client.post(&url).json(body))
            .await
            .assert_code(401, "session_required");
        send(
            app.client
                .post(&url)
                .header("x-client-id", &app.client_id)
                .header("x-client-secret", &app.secret)
                .header("x-api-version", "2024-12-01")
                .json(body),
        )
        .await
        .assert_code(401, "session_required");
        send(
            app.client
                .post(&url)
                .header(COOKIE, format!("vkyc_desk={}", c.key))
                .header("x-csrf-token", &agent.csrf)
                .json(body),
        )
        .await
        .assert_code(401, "session_required");
    }
    for path in ["/agent/call", "/audit/cases", "/captures/1"] {
        let url = format!("{}/desk/api{path}", app.base);
        send(app.client.get(&url))
            .await
            .assert_code(401, "session_required");
        send(
            app.client
                .get(&url)
                .header("x-client-id", &app.client_id)
                .header("x-client-secret", &app.secret),
        )
        .await
        .assert_code(401, "session_required");
    }
    // The customer's key as a call id.
    agent
        .post(&format!("/calls/{}/end", c.key), json!({}))
        .await
        .assert_code(404, "call_not_found");
    agent
        .get(&format!("/captures/{}", c.key))
        .await
        .assert_code(404, "call_not_found");

    // Without the CSRF token, or with another session's.
    for (path, body) in &agent_posts {
        agent
            .post_without_csrf(path, body.clone())
            .await
            .assert_code(403, "csrf_token_invalid");
        send(
            app.client
                .post(agent.url(path))
                .header(COOKIE, &agent.cookie)
                .header("x-csrf-token", &other.csrf)
                .json(body),
        )
        .await
        .assert_code(403, "csrf_token_invalid");
    }

    // Nothing changed: the request, and the call as the agent sees it.
    assert_eq!(unsigned(app.status("refuse").await), unsigned(before));
    let mut view_after = agent.call_view().await;
    let mut view_before = view_before;
    view_after["server_time"] = Value::Null;
    view_before["server_time"] = Value::Null;
    assert_eq!(view_after, view_before);
    assert!(view_after["call"]["captures"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(view_after["call"]["pan"].is_null());
    assert_eq!(
        c.call(Method::GET, "call", None).await.ok()["state"],
        "active"
    );
}

// ---- recording links ----

#[tokio::test]
async fn calls_recording_links_are_signed_expire_and_serve_ranges() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.rec").await;
    let (c, call) = in_call(&app, &agent, "rec").await;
    c.call(Method::POST, "call/end", None).await.ok();

    // The row holds the reference; the call has no file (whatever the relay made).
    let db = app.pool().await;
    sqlx::query("UPDATE requests SET recording_link = $1 WHERE verification_id = 'rec'")
        .bind(format!("call:{call}"))
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE calls SET recording_path = NULL WHERE id = $1")
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    let now = vkyc::clock::now_ms();
    let link = app.status("rec").await["recording_link"]
        .as_str()
        .unwrap()
        .to_string();
    let url = url::Url::parse(&link).unwrap();
    assert!(link.starts_with(&app.base), "{link}");
    assert_eq!(url.path(), format!("/recordings/{call}.webm"));
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let expires: i64 = q["expires"].parse().unwrap();
    assert!((expires - (now + 3_600_000)).abs() < 60_000, "{expires}");
    assert_eq!(q["sig"].len(), 64);

    let fetch = |link: String, range: Option<&'static str>| {
        let mut req = app.client.get(link);
        if let Some(range) = range {
            req = req.header("range", range);
        }
        async move { req.send().await.unwrap() }
    };
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "recording_link_invalid");
    };
    // A valid link to a call that has no file yet.
    refused(fetch(link.clone(), None).await).await;

    // A file where the call row says.
    let file = app._dir.path().join("call.webm");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
    std::fs::write(&file, &bytes).unwrap();
    sqlx::query("UPDATE calls SET recording_path = $1 WHERE id = $2")
        .bind(file.display().to_string())
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    let whole = fetch(link.clone(), None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.bytes().await.unwrap().to_vec(), bytes);
    let part = fetch(link.clone(), Some("bytes=100-199")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/4000");
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[100..200]);

    // Altered, moved to another call, expired, or unsigned: refused.
    let sig = &q["sig"];
    let flipped = format!(
        "{}{}",
        &sig[..63],
        if sig.ends_with('0') { "1" } else { "0" }
    );
    let base = format!("{}/recordings", app.base);
    for bad in [
        format!("{base}/{call}.webm?expires={expires}&sig={flipped}"),
        format!("{base}/{call}.webm?expires={}&sig={sig}", expires + 1),
        format!("{base}/{}.webm?expires={expires}&sig={sig}", call + 1),
        format!("{base}/{call}.webm?expires={expires}"),
        format!("{base}/{call}.webm"),
        format!("{base}/{call}.mp4?expires={expires}&sig={sig}"),
        format!("{base}/{call}.webm?expires=soon&sig={sig}"),
    ] {
        refused(fetch(bad, Some("bytes=0-9")).await).await;
    }
    // Signed with the server's key, but expired.
    let signer = vkyc::domain::recording_links::RecordingSigner::new(&app.key, 60);
    let old = signer.link(&app.base, &format!("call:{call}"), now - 120_000);
    refused(fetch(old, None).await).await;
    let fresh = signer.link(&app.base, &format!("call:{call}"), now);
    assert_eq!(fetch(fresh, None).await.status(), 200);
}

// ---- wrap-up: one case at a time on the agent's desk ----

/// An agent ends customer E's call while F waits in the queue. F is not invited while E's
/// call waits for its decision; a decision that names another call is refused and changes
/// nothing; once E is decided, F is invited.
#[tokio::test]
async fn an_agent_in_wrap_up_gets_no_new_customer_and_a_decision_lands_only_on_its_call() {
    let app = calls_app(60, 20).await;
    let agent = agent(&app, "wrap-agent").await;
    let (_e, call_e) = in_call(&app, &agent, "wrap_e").await;
    complete_checks(&agent, call_e).await;
    agent
        .post(&format!("/calls/{call_e}/end"), json!({}))
        .await
        .ok();
    let f = customer(&app, "wrap_f", request_extra()).await;
    f.pass_checks().await;
    let joined = f.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");

    // Three sweeps later F still waits, and the desk still shows E's ended call.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.status("wrap_f").await["sub_status"], "USER_QUEUED");
    let view = agent.call_view().await;
    assert_eq!(view["verification_id"], "wrap_e", "{view}");
    assert_eq!(view["call"]["state"], "ended");

    // A form that names no call, or another call, is refused; E is unchanged.
    let path = format!("/calls/{call_e}/decision");
    agent
        .post(&path, json!({"decision": "approved", "remarks": "ok"}))
        .await
        .assert_code(400, "call_id_missing");
    agent
        .post(
            &path,
            json!({"call_id": call_e + 1, "decision": "approved", "remarks": "ok"}),
        )
        .await
        .assert_code(409, "call_mismatch");
    assert_eq!(app.status("wrap_e").await["sub_status"], "AGENT_ENDED_CALL");

    let decided = agent
        .post(
            &path,
            json!({"call_id": call_e, "decision": "approved", "remarks": "all checks passed"}),
        )
        .await
        .ok();
    assert_eq!(decided["sub_status"], "AGENT_APPROVED");
    wait_for(&app, "wrap_f", "AGENT_ASSIGNED_TO_USER", 15).await;
    let view = agent.call_view().await;
    assert_eq!(view["verification_id"], "wrap_f", "{view}");
    assert_eq!(app.status("wrap_e").await["sub_status"], "AGENT_APPROVED");
}

/// Past `wrap_up_seconds` an undecided call frees its agent, and the staff audit says so
/// once; the case can still be decided.
#[tokio::test]
async fn a_wrap_up_that_runs_out_frees_the_agent_and_is_audited_once() {
    let app = calls_app(60, 20).await;
    let agent = agent(&app, "slow-agent").await;
    let (_e, call_e) = in_call(&app, &agent, "slow_e").await;
    agent
        .post(&format!("/calls/{call_e}/end"), json!({}))
        .await
        .ok();
    let f = customer(&app, "slow_f", request_extra()).await;
    f.pass_checks().await;
    f.call(Method::POST, "queue", None).await.ok();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.status("slow_f").await["sub_status"], "USER_QUEUED");

    // The call ended longer ago than the wrap-up allows (900 s by default).
    let pool = app.pool().await;
    sqlx::query("UPDATE calls SET ended_at = ended_at - 1000000 WHERE id = $1")
        .bind(call_e)
        .execute(&pool)
        .await
        .unwrap();
    wait_for(&app, "slow_f", "AGENT_ASSIGNED_TO_USER", 15).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let expired: Vec<_> = app
        .store
        .staff_audit(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "wrap_up_expired")
        .collect();
    assert_eq!(expired.len(), 1, "audited once: {expired:?}");
    assert_eq!(
        expired[0].target.as_deref(),
        Some(call_e.to_string().as_str())
    );
    assert_eq!(app.status("slow_e").await["sub_status"], "AGENT_ENDED_CALL");
}
