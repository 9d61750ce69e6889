//! The customer journey's API, step by step, as the pages call it: order, outcomes,
//! evidence, retries, refusals, slots, the queue and messages. (The pages themselves are
//! driven in a real browser by tests/journey/.)

use crate::helpers::{send, spawn_app_with, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AADHAAR: &str = r#"{"last_verified_at":"2026-11-30T10:00:00Z","care_of":"S/O Ravi","dob":"01-01-1990",
  "name":"Asha Rao","photo_link":"https://example.in/p.jpg","gender":"F"}"#;

/// Every day, all day: the desk is open whenever the test runs.
fn always_open(config: &mut vkyc::config::Config) {
    config.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    config.journey.working_hours = "00:00-24:00".into();
}

pub struct Customer<'a> {
    pub app: &'a TestApp,
    pub key: String,
    pub verification_id: String,
}

impl Customer<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_from(method, path, body, None).await
    }

    pub async fn call_from(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        forwarded_for: Option<&str>,
    ) -> Reply {
        let url = format!("{}/v/{}/api/{path}", self.app.base, self.key);
        let mut req = self.app.client.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(ip) = forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        send(req.header("user-agent", "journey-test")).await
    }

    pub async fn step(&self) -> String {
        let state = self.call(Method::GET, "state", None).await;
        assert_eq!(state.status, 200, "{:?}", state.body);
        state.body["step"].as_str().unwrap().to_string()
    }

    pub async fn sub_status(&self) -> String {
        self.app.status(&self.verification_id).await["sub_status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Confirms the mobile number with the sandbox's code.
    pub async fn confirm_mobile(&self) {
        let sent = self.call(Method::POST, "otp", Some(json!({}))).await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        let verified = self
            .call(Method::POST, "otp/verify", Some(json!({"code": "123456"})))
            .await;
        assert_eq!(verified.status, 200, "{:?}", verified.body);
    }

    /// Fills the personal-details form its state describes: each choice's first option,
    /// a name for each text.
    pub async fn give_details(&self) {
        let state = self.call(Method::GET, "state", None).await.ok();
        let mut details = serde_json::Map::new();
        for field in state["personal_details"].as_array().unwrap() {
            let value = match field["type"].as_str().unwrap() {
                "choice" => field["choices"][0].clone(),
                _ => json!("Ramesh Kumar"),
            };
            details.insert(field["name"].as_str().unwrap().to_string(), value);
        }
        let reply = self
            .call(Method::POST, "details", Some(json!({ "details": details })))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    /// Walks the evidence steps the request's user template puts first (mobile OTP,
    /// personal details), up to consent.
    pub async fn reach_consent(&self) {
        loop {
            match self.step().await.as_str() {
                "mobile_otp" => self.confirm_mobile().await,
                "personal_details" => self.give_details().await,
                _ => return,
            }
        }
    }

    /// Consent, after the steps before it.
    pub async fn consent(&self) {
        self.reach_consent().await;
        let text = consent_text("en");
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        let reply = self
            .call(
                Method::POST,
                "consent",
                Some(json!({"lang": "en", "agree": true, "text_sha256": digest})),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    pub async fn pass_checks(&self) {
        self.consent().await;
        assert_eq!(self.call(Method::POST, "ip", None).await.status, 200);
        let here = json!({"permission": "granted", "latitude": 28.61, "longitude": 77.21});
        assert_eq!(
            self.call(Method::POST, "location", Some(here)).await.status,
            200
        );
        let ok = json!({"camera": "ok", "microphone": "ok", "bandwidth_kbps": 2000});
        assert_eq!(
            self.call(Method::POST, "devices", Some(ok)).await.status,
            200
        );
        assert_eq!(self.sub_status().await, "USER_DEVICE_CHECK_SUCCESS");
    }
}

pub fn consent_text(lang: &str) -> String {
    let file = std::fs::read_to_string(format!(
        "{}/assets/journey/i18n/{lang}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let strings: Value = serde_json::from_str(&file).unwrap();
    strings["consent_text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A user and a request; `aadhaar` sends the merchant's `aadhaar_details` (skipping the
/// Aadhaar step).
pub async fn customer<'a>(app: &'a TestApp, id: &str, extra: Value) -> Customer<'a> {
    app.call(
        Method::POST,
        "/user",
        Some(
            json!({"user_id": id, "phone": "9876543210", "name": "Asha Rao",
                    "email": "asha@example.in"}),
        ),
    )
    .await
    .ok();
    let mut body = json!({"verification_id": id, "user_id": id});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = app.call(Method::POST, "/vkyc", Some(body)).await.ok();
    let link = created["vkyc_link"].as_str().unwrap();
    Customer {
        app,
        key: link.rsplit('/').next().unwrap().to_string(),
        verification_id: id.to_string(),
    }
}

fn with_aadhaar() -> Value {
    json!({ "aadhaar_details": serde_json::from_str::<Value>(AADHAAR).unwrap() })
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

#[tokio::test]
async fn steps_run_in_order_with_their_evidence_and_retries() {
    let app = spawn_app_with(always_open).await;
    let c = customer(&app, "j-order", with_aadhaar()).await;
    // The default template confirms the mobile number first: consent is not open yet.
    assert_eq!(c.step().await, "mobile_otp");
    let unverified = json!({"lang": "en", "agree": true,
                            "text_sha256": hex::encode(Sha256::digest(consent_text("en").as_bytes()))});
    c.call(Method::POST, "consent", Some(unverified))
        .await
        .assert_code(409, "journey_step_invalid");
    c.reach_consent().await;
    assert_eq!(c.step().await, "consent");

    // Out of turn: refused, nothing changes.
    let early = c
        .call(
            Method::POST,
            "location",
            Some(json!({"permission": "granted", "latitude": 28.6, "longitude": 77.2})),
        )
        .await;
    early.assert_code(409, "journey_step_invalid");
    assert_eq!(c.call(Method::POST, "ip", None).await.status, 409);
    assert_eq!(c.sub_status().await, "LINK_GENERATED");

    // Consent must be explicit and for the text this server shows.
    let wrong = c
        .call(
            Method::POST,
            "consent",
            Some(json!({"lang": "en", "agree": true, "text_sha256": "00"})),
        )
        .await;
    wrong.assert_code(400, "text_sha256_value_invalid");
    let unagreed = c
        .call(
            Method::POST,
            "consent",
            Some(json!({"lang": "en", "agree": false})),
        )
        .await;
    unagreed.assert_code(400, "agree_value_invalid");
    c.consent().await;
    // The merchant sent aadhaar_details: the IP check is next.
    assert_eq!(c.step().await, "ip");
    let again = json!({"lang": "en", "agree": true,
                       "text_sha256": hex::encode(Sha256::digest(consent_text("en").as_bytes()))});
    assert_eq!(
        c.call(Method::POST, "consent", Some(again)).await.status,
        409
    );

    // A sandbox without an IP database counts every address as Indian, and says so.
    let ip = c.call(Method::POST, "ip", None).await;
    assert_eq!(ip.body["outcome"], "USER_IP_VERIFICATION_SUCCESSFUL");
    assert_eq!(c.step().await, "location");

    // Outside India, then permission refused, then from Delhi.
    let london =
        json!({"permission": "granted", "latitude": 51.5, "longitude": -0.12, "accuracy": 20});
    let out = c.call(Method::POST, "location", Some(london)).await;
    assert_eq!(out.body["outcome"], "USER_LOCATION_OUTSIDE_INDIA");
    assert_eq!(c.sub_status().await, "USER_LOCATION_OUTSIDE_INDIA");
    assert_eq!(
        c.step().await,
        "location",
        "a location failure retries the location step"
    );
    let denied = c
        .call(
            Method::POST,
            "location",
            Some(json!({"permission": "denied"})),
        )
        .await;
    assert_eq!(denied.body["outcome"], "USER_LOCATION_PERMISSION_DISABLED");
    let bad = c
        .call(
            Method::POST,
            "location",
            Some(json!({"permission": "granted", "latitude": "north", "longitude": 1})),
        )
        .await;
    bad.assert_code(400, "latitude_value_invalid");
    let delhi =
        json!({"permission": "granted", "latitude": 28.61, "longitude": 77.21, "accuracy": 15});
    let ok = c.call(Method::POST, "location", Some(delhi)).await;
    assert_eq!(ok.body["outcome"], "USER_LOCATION_VERIFICATION_SUCCESS");

    // Devices: camera refused, then microphone missing, then both work.
    let cam = json!({"camera": "denied", "microphone": "ok"});
    let r = c.call(Method::POST, "devices", Some(cam)).await;
    assert_eq!(r.body["outcome"], "USER_VIDEO_CHECK_FAILED");
    let mic = json!({"camera": "ok", "microphone": "missing"});
    let r = c.call(Method::POST, "devices", Some(mic)).await;
    assert_eq!(r.body["outcome"], "USER_AUDIO_CHECK_FAILED");
    let junk = json!({"camera": "ok", "microphone": "ok", "bandwidth_kbps": -3});
    c.call(Method::POST, "devices", Some(junk))
        .await
        .assert_code(400, "bandwidth_kbps_value_invalid");
    let both = json!({"camera": "ok", "microphone": "ok", "video_width": 640, "video_height": 480,
                      "audio_peak": 0.4, "bandwidth_kbps": 3100});
    let r = c.call(Method::POST, "devices", Some(both)).await;
    assert_eq!(r.body["outcome"], "USER_DEVICE_CHECK_SUCCESS");
    assert_eq!(c.step().await, "waiting");

    // The merchant sees the consent and each step's evidence.
    let journey = journey_of(&app, "j-order").await;
    assert_eq!(journey["consent"]["lang"], "en");
    assert_eq!(journey["consent"]["user_agent"], "journey-test");
    assert_eq!(journey["consent"]["ip"], "127.0.0.1");
    assert_eq!(
        journey["consent"]["text_sha256"],
        hex::encode(Sha256::digest(consent_text("en").as_bytes()))
    );
    assert_eq!(journey["aadhaar"]["source"], "merchant");
    let outcomes: Vec<&str> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "MOBILE_VERIFIED",
            "CONSENT_GIVEN",
            "USER_IP_VERIFICATION_SUCCESSFUL",
            "USER_LOCATION_OUTSIDE_INDIA",
            "USER_LOCATION_PERMISSION_DISABLED",
            "USER_LOCATION_VERIFICATION_SUCCESS",
            "USER_VIDEO_CHECK_FAILED",
            "USER_AUDIO_CHECK_FAILED",
            "USER_DEVICE_CHECK_SUCCESS",
        ]
    );
    let steps: Vec<&Value> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"].is_string())
        .collect();
    assert!(steps
        .iter()
        .all(|s| s["started_at"].is_string() && s["ended_at"].is_string()));
    // The step the customer is at now is open: shown, not yet ended.
    let open = journey["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(open["step"], "waiting");
    assert!(open["ended_at"].is_null());
    assert_eq!(steps[0]["evidence"]["channel"], "sms");
    assert_eq!(steps[2]["evidence"]["ip"], "127.0.0.1");
    assert!(steps[2]["evidence"]["sandbox"].is_string());
    assert_eq!(steps[3]["evidence"]["inside_india"], false);
    assert_eq!(steps[8]["evidence"]["bandwidth_kbps"], 3100);

    // The history carries one row per move, with who made it.
    let history = app
        .call(Method::GET, "/vkyc/history?verification_id=j-order", None)
        .await
        .ok();
    let moves: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_sub_status"].as_str().unwrap())
        .collect();
    assert_eq!(moves.len(), 8, "{moves:?}");
    assert!(history["history"][1]["actor"] == "customer");
}

#[tokio::test]
async fn consent_is_stored_unalterably() {
    let app = spawn_app_with(|_| {}).await;
    let c = customer(&app, "j-consent", json!({})).await;
    c.consent().await;
    let id = app.status("j-consent").await["reference_id"]
        .as_i64()
        .unwrap();
    assert!(
        app.store.try_alter_consent(id).await.is_err(),
        "the database refuses to change a consent"
    );
    let journey = journey_of(&app, "j-consent").await;
    assert_eq!(journey["consent"]["ip"], "127.0.0.1");
    // Without aadhaar_details the Aadhaar step follows consent.
    assert_eq!(c.step().await, "aadhaar");
    assert_eq!(c.call(Method::POST, "ip", None).await.status, 409);
}

#[tokio::test]
async fn with_no_agent_online_the_customer_is_offered_slots() {
    let app = spawn_app_with(always_open).await;
    let c = customer(&app, "j-noagent", with_aadhaar()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await;
    assert_eq!(joined.body["outcome"], "NO_AGENT_FOUND");
    assert_eq!(c.sub_status().await, "NO_AGENT_FOUND");
    assert_eq!(c.step().await, "waiting");
}

#[tokio::test]
async fn unknown_expired_and_tampered_links_get_clear_answers() {
    let app = spawn_app_with(|_| {}).await;
    let c = customer(&app, "j-links", json!({})).await;
    let page = send(app.client.get(format!("{}/v/{}", app.base, c.key))).await;
    assert_eq!(page.status, 200);

    let mut tampered = c.key.clone();
    let last = if tampered.ends_with('a') { "b" } else { "a" };
    tampered.replace_range(39..40, last);
    let page = app
        .client
        .get(format!("{}/v/{tampered}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Link not found"));
    let api = send(
        app.client
            .get(format!("{}/v/{tampered}/api/state", app.base)),
    )
    .await;
    api.assert_code(404, "link_not_found");
    let junk = send(app.client.get(format!("{}/v/<script>/api/state", app.base))).await;
    assert_eq!(junk.status, 404);

    // Expire the link (as time would) and look again.
    let expired = customer(&app, "j-expired", json!({})).await;
    let pool = app.pool().await;
    sqlx::query("UPDATE requests SET link_expires_at = 1 WHERE verification_id = 'j-expired'")
        .execute(&pool)
        .await
        .unwrap();
    let page = app
        .client
        .get(format!("{}/v/{}", app.base, expired.key))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("Link expired"));
    expired
        .call(Method::POST, "ip", None)
        .await
        .assert_code(410, "link_expired");
}

#[tokio::test]
async fn an_access_token_opens_the_embedded_journey_for_one_request() {
    let app = spawn_app_with(|_| {}).await;
    let c = customer(&app, "j-embed", json!({})).await;
    let id = app.status("j-embed").await["reference_id"]
        .as_i64()
        .unwrap();
    let token = app
        .call(
            Method::POST,
            "/oauth/token",
            Some(json!({"app_id": app.client_id, "product": "VKYC", "metadata": {"vkyc_request_id": id},
                        "authenticated_user": {"identifier_type": "user_id", "identifier_value": "j-embed"}})),
        )
        .await
        .ok();
    let token = token["access_token"].as_str().unwrap().to_string();
    let embedded = Customer {
        app: &app,
        key: token.clone(),
        verification_id: "j-embed".into(),
    };
    let state = embedded.call(Method::GET, "state", None).await;
    assert_eq!(state.body["step"], "mobile_otp");
    assert_eq!(state.body["embedded"], true);
    embedded.consent().await;
    // The link sees the same request move.
    assert_eq!(c.step().await, "aadhaar");
    // Its page may be framed by the merchant's page; the link's may not.
    let framed = app
        .client
        .get(format!("{}/v/{token}", app.base))
        .send()
        .await
        .unwrap();
    let csp = framed.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    let link = app
        .client
        .get(format!("{}/v/{}", app.base, c.key))
        .send()
        .await
        .unwrap();
    let csp = link.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let script = app
        .client
        .get(format!("{}/embed.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(script
        .text()
        .await
        .unwrap()
        .contains("allow = \"camera; microphone; geolocation\""));
    // An altered token opens nothing.
    let mut altered = token;
    altered.replace_range(0..1, if altered.starts_with('0') { "1" } else { "0" });
    let reply = send(
        app.client
            .get(format!("{}/v/{altered}/api/state", app.base)),
    )
    .await;
    assert_eq!(reply.status, 410);
}

#[tokio::test]
async fn sandbox_records_the_messages_it_would_send() {
    let app = spawn_app_with(|_| {}).await;
    let _c = customer(
        &app,
        "j-notify",
        json!({"notification_types": ["email", "sms"]}),
    )
    .await;
    let mut notifications = Value::Null;
    for _ in 0..50 {
        notifications = app
            .call(
                Method::GET,
                "/vkyc/notifications?verification_id=j-notify",
                None,
            )
            .await
            .ok();
        let all = notifications["notifications"].as_array().unwrap();
        if all.len() == 2 && all.iter().all(|n| n["state"] == "recorded") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let all = notifications["notifications"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{notifications}");
    let link = app.status("j-notify").await["vkyc_link"]
        .as_str()
        .unwrap()
        .to_string();
    let email = all.iter().find(|n| n["channel"] == "email").unwrap();
    assert_eq!(email["state"], "recorded");
    assert_eq!(email["to"], "asha@example.in");
    assert!(email["body"].as_str().unwrap().contains(&link));
    let sms = all.iter().find(|n| n["channel"] == "sms").unwrap();
    assert_eq!(sms["to"], "+919876543210");
    assert!(sms["body"].as_str().unwrap().contains(&link));
}

use crate::support::smtp_receiver;

#[tokio::test]
async fn a_production_deployment_emails_the_link_through_the_operators_smtp_server() {
    let (port, mailbox) = smtp_receiver::start_smtp(false).await;
    let app = spawn_app_with(|config| {
        config.environment = vkyc::config::Environment::Production;
        config.notify.smtp_url = Some(format!("smtp://127.0.0.1:{port}?tls=none"));
        config.notify.email_from = Some("kyc@bank.example.in".into());
    })
    .await;
    let _c = customer(&app, "j-smtp", json!({"notification_types": ["email"]})).await;
    let link = app.status("j-smtp").await["vkyc_link"]
        .as_str()
        .unwrap()
        .to_string();
    let mut mails = vec![];
    for _ in 0..50 {
        mails = mailbox.mails();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 1, "one email, for the link");
    assert_eq!(mails[0].rcpt_to, ["asha@example.in"]);
    assert_eq!(mails[0].mail_from, "kyc@bank.example.in");
    // Long lines may be folded or encoded: compare without line breaks.
    let unfolded = mails[0].data.replace("=\r\n", "").replace("\r\n", "");
    assert!(unfolded.contains(&link), "{}", mails[0].data);
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = app
            .call(
                Method::GET,
                "/vkyc/notifications?verification_id=j-smtp",
                None,
            )
            .await
            .ok();
        if listed["notifications"][0]["state"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed["notifications"][0]["state"], "sent", "{listed}");
    assert!(listed["notifications"][0]["body"]
        .as_str()
        .unwrap()
        .contains(&link));
}

#[tokio::test]
async fn agents_take_customers_and_fill_slots_only_in_their_own_hours() {
    use chrono::Datelike;
    let app = spawn_app_with(always_open).await;
    app.cli(&["staff", "create", "--username", "nadia", "--role", "agent"]);
    // Nadia works every day but today (in IST).
    let ist = chrono::FixedOffset::east_opt(19_800).unwrap();
    let today = chrono::Utc::now().with_timezone(&ist).weekday();
    let days: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i as u32 != today.num_days_from_monday())
        .map(|(_, d)| d)
        .collect();
    let out = app.cli(&[
        "staff",
        "hours",
        "--username",
        "nadia",
        "--days",
        &days.join(","),
        "--hours",
        "00:00-24:00",
    ]);
    assert!(out.contains("nadia works"), "{out}");
    let nadia = app.store.staff_by_username("nadia").await.unwrap().unwrap();
    app.store
        .set_presence(nadia.id, true, vkyc::clock::now_ms())
        .await
        .unwrap();

    // Online, but not on duty today: nobody to talk to now.
    let c = customer(&app, "j-hours", with_aadhaar()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "NO_AGENT_FOUND", "{joined}");

    // Slots are offered only on her days.
    let slots = c.call(Method::GET, "slots", None).await.ok();
    let starts: Vec<chrono::DateTime<chrono::FixedOffset>> = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s["start"].as_str().unwrap()).unwrap())
        .collect();
    assert!(!starts.is_empty(), "{slots}");
    assert!(
        starts
            .iter()
            .all(|s| s.with_timezone(&ist).weekday() != today),
        "{slots}"
    );

    // Back on the desk's hours, she is given the customer.
    app.cli(&["staff", "hours", "--username", "nadia", "--clear"]);
    app.store
        .heartbeat(nadia.id, vkyc::clock::now_ms())
        .await
        .unwrap();
    let joined = c.call(Method::POST, "queue", None).await.ok();
    // The queue may give her the customer before the answer is read.
    assert!(
        ["USER_QUEUED", "AGENT_ASSIGNED_TO_USER"].contains(&joined["outcome"].as_str().unwrap()),
        "{joined}"
    );
}
