//! The journey's steps as the user template sets them: the mobile OTP (sandbox and live,
//! tries, resends, waits, a hash only), the personal-details form, Aadhaar from the
//! DigiLocker sandbox, and the consent text per language.

use crate::helpers::*;
use crate::journey::{consent_text, customer, Customer};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// An SMS gateway on loopback that keeps every text it is given.
pub struct Gateway {
    pub url: String,
    texts: Arc<Mutex<Vec<Value>>>,
}

impl Gateway {
    pub async fn start() -> Gateway {
        let texts: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = Arc::clone(&texts);
        let app = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |body: axum::Json<Value>| {
                let kept = Arc::clone(&kept);
                async move {
                    kept.lock().unwrap().push(body.0);
                    "{\"status\":\"queued\"}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gateway { url, texts }
    }

    /// The server's SMS provider: this gateway.
    pub fn configure(&self, config: &mut vkyc::config::Config) {
        config.notify.sms = Some(vkyc::notify::HttpTemplate {
            url: self.url.clone(),
            method: "POST".into(),
            headers: Default::default(),
            body: r#"{"to":"{{to}}","text":"{{text}}"}"#.into(),
        });
    }

    pub fn texts(&self) -> Vec<Value> {
        self.texts.lock().unwrap().clone()
    }

    /// The six digits of the last text.
    pub fn last_code(&self) -> String {
        let texts = self.texts();
        let text = texts.last().expect("a text was sent")["text"]
            .as_str()
            .unwrap()
            .to_string();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code")
            .to_string()
    }
}

async fn state(c: &Customer<'_>) -> Value {
    c.call(Method::GET, "state", None).await.ok()
}

async fn verify(c: &Customer<'_>, code: &str) -> Reply {
    c.call(Method::POST, "otp/verify", Some(json!({ "code": code })))
        .await
}

/// Moves the last code's send back in time, as if `ms` had passed.
async fn age_otp(app: &TestApp, c: &Customer<'_>, ms: i64) {
    let reference = app.status(&c.verification_id).await["reference_id"]
        .as_i64()
        .unwrap();
    let pool = app.pool().await;
    sqlx::query(
        "UPDATE journey_otps SET sent_at = sent_at - $1, expires_at = expires_at - $1, \
         locked_until = locked_until - $1 WHERE request_id = $2",
    )
    .bind(ms)
    .bind(reference)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn the_sandbox_otp_is_recorded_and_five_wrong_codes_make_the_step_wait() {
    let app = spawn_app().await;
    let c = customer(&app, "otp-sandbox", json!({"notification_types": ["sms"]})).await;
    let s = state(&c).await;
    assert_eq!(s["step"], "mobile_otp");
    assert_eq!(s["steps"][0], "mobile_otp");
    assert_eq!(s["otp"]["to"], "••••••3210");
    assert_eq!(s["otp"]["sent"], false);
    verify(&c, "123456").await.assert_code(409, "otp_not_sent");

    let sent = c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    assert_eq!(sent["channel"], "sms");
    assert_eq!(sent["state"]["otp"]["sent"], true);
    assert_eq!(sent["state"]["otp"]["tries_left"], 5);
    assert_eq!(sent["state"]["otp"]["resends_left"], 3);
    // The sandbox records the message instead of sending it, with its fixed code.
    let listed = app
        .call(
            Method::GET,
            "/vkyc/notifications?verification_id=otp-sandbox",
            None,
        )
        .await
        .ok();
    let otp = listed["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "otp")
        .expect("the OTP is listed")
        .clone();
    assert_eq!(otp["state"], "recorded");
    assert!(otp["body"].as_str().unwrap().contains("123456"), "{otp}");
    // A resend at once is refused; 30 s later it goes.
    c.call(Method::POST, "otp", Some(json!({})))
        .await
        .assert_code(429, "otp_resend_too_soon");

    // Wrong codes: counted, each answer says how many are left.
    for left in (1..=4).rev() {
        let wrong = verify(&c, "000000").await;
        wrong.assert_code(400, "otp_value_invalid");
        let message = wrong.body["message"].as_str().unwrap();
        assert!(message.contains(&format!("{left} tr")), "{message}");
    }
    verify(&c, "12345")
        .await
        .assert_code(400, "code_value_invalid");
    // The fifth wrong code: the step waits, and even the right code is refused now.
    let fifth = verify(&c, "000000").await;
    fifth.assert_code(429, "otp_attempts_exhausted");
    assert!(fifth.body["message"].as_str().unwrap().contains("IST"));
    verify(&c, "123456")
        .await
        .assert_code(429, "otp_attempts_exhausted");
    c.call(Method::POST, "otp", Some(json!({})))
        .await
        .assert_code(429, "otp_attempts_exhausted");
    let s = state(&c).await;
    assert_eq!(s["step"], "mobile_otp");
    assert!(s["otp"]["waiting_until"].is_string(), "{}", s["otp"]);
    assert_eq!(c.sub_status().await, "LINK_GENERATED", "no status moves");

    // Half an hour on, a new code may be sent and the counts start again.
    age_otp(&app, &c, 31 * 60_000).await;
    let again = c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    assert_eq!(again["state"]["otp"]["tries_left"], 5);
    let right = verify(&c, "123456").await.ok();
    assert_eq!(right["verified"], true);
    assert_eq!(right["state"]["step"], "consent");

    // The step's evidence; the code itself is nowhere.
    let journey = app
        .call(
            Method::GET,
            "/vkyc/journey?verification_id=otp-sandbox",
            None,
        )
        .await
        .ok();
    let step = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "mobile_otp" && !s["ended_at"].is_null())
        .unwrap()
        .clone();
    assert_eq!(step["outcome"], "MOBILE_VERIFIED");
    assert_eq!(step["evidence"]["channel"], "sms");
    assert_eq!(step["evidence"]["tries"], 1);
    let pool = app.pool().await;
    let (hash,): (String,) = sqlx::query_as("SELECT code_hash FROM journey_otps")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains("123456"));
    // Done: the step is closed to further codes.
    verify(&c, "123456")
        .await
        .assert_code(409, "journey_step_invalid");
}

#[tokio::test]
async fn resends_are_limited_to_three_then_the_step_waits() {
    let app = spawn_app().await;
    let c = customer(&app, "otp-resends", json!({})).await;
    for n in 0..4 {
        let sent = c.call(Method::POST, "otp", Some(json!({}))).await.ok();
        assert_eq!(sent["state"]["otp"]["resends_left"], 3 - n);
        age_otp(&app, &c, 31_000).await;
    }
    let fifth = c.call(Method::POST, "otp", Some(json!({}))).await;
    fifth.assert_code(429, "otp_attempts_exhausted");
    assert!(fifth.body["message"].as_str().unwrap().contains("new code"));
}

#[tokio::test]
async fn a_live_server_sends_a_random_code_and_keeps_only_its_hash() {
    let gateway = Gateway::start().await;
    let app = spawn_app_with(|config| {
        config.environment = vkyc::config::Environment::Production;
        gateway.configure(config);
    })
    .await;
    let c = customer(&app, "otp-live", json!({})).await;
    assert_eq!(state(&c).await["otp"]["sandbox_code"], Value::Null);
    c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    let texts = gateway.texts();
    assert_eq!(texts.len(), 1);
    assert!(texts[0]["to"].as_str().unwrap().ends_with("9876543210"));
    let code = gateway.last_code();
    assert!(!texts[0]["text"].as_str().unwrap().contains("http"));
    // The record of the message masks the code.
    let listed = app
        .call(
            Method::GET,
            "/vkyc/notifications?verification_id=otp-live",
            None,
        )
        .await
        .ok();
    let body = listed["notifications"][0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listed["notifications"][0]["state"], "sent");
    assert!(!body.contains(&code) && body.contains("••••••"), "{body}");

    // Ten wrong codes at once: exactly five are counted, the rest wait.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let tries: Vec<Reply> = futures::future::join_all((0..10).map(|_| verify(&c, wrong))).await;
    let counted = tries.iter().filter(|r| r.status == 400).count();
    let refused = tries.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (counted, refused),
        (4, 6),
        "the fifth wrong try starts the wait"
    );
    // The right code waits too, until the wait is over.
    verify(&c, &code)
        .await
        .assert_code(429, "otp_attempts_exhausted");
    age_otp(&app, &c, 31 * 60_000).await;
    c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    let fresh = gateway.last_code();
    // The old code is no longer the code.
    if fresh != code {
        verify(&c, &code)
            .await
            .assert_code(400, "otp_value_invalid");
    }
    verify(&c, &fresh).await.ok();
    assert_eq!(c.step().await, "consent");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let c = customer(&app, "otp-expired", json!({})).await;
    c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    age_otp(&app, &c, 6 * 60_000).await;
    verify(&c, "123456").await.assert_code(400, "otp_expired");
    age_otp(&app, &c, 0).await;
    c.call(Method::POST, "otp", Some(json!({}))).await.ok();
    verify(&c, "123456").await.ok();
}

#[tokio::test]
async fn the_personal_details_form_is_checked_kept_sealed_and_shown() {
    let app = spawn_app().await;
    let c = customer(
        &app,
        "details",
        json!({"user_template": "vkyc_user_template_v1"}),
    )
    .await;
    c.confirm_mobile().await;
    let s = state(&c).await;
    assert_eq!(s["step"], "personal_details");
    let names: Vec<&str> = s["personal_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "employment_type",
            "monthly_income",
            "gender",
            "father_or_guardian_name"
        ]
    );
    // Consent is not open before the form.
    let digest = hex::encode(Sha256::digest(consent_text("en").as_bytes()));
    c.call(
        Method::POST,
        "consent",
        Some(json!({"lang": "en", "agree": true, "text_sha256": digest})),
    )
    .await
    .assert_code(409, "journey_step_invalid");

    let good = json!({
        "employment_type": "Self-employed", "monthly_income": "₹25,000 to ₹50,000",
        "gender": "Female", "father_or_guardian_name": "Ramesh Kumar",
    });
    let send =
        |details: Value| c.call(Method::POST, "details", Some(json!({ "details": details })));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("gender");
    send(missing).await.assert_code(400, "gender_missing");
    let mut wrong = good.clone();
    wrong["monthly_income"] = json!("a lot");
    send(wrong)
        .await
        .assert_code(400, "monthly_income_value_invalid");
    let mut typed = good.clone();
    typed["father_or_guardian_name"] = json!(["Ramesh"]);
    send(typed)
        .await
        .assert_code(400, "father_or_guardian_name_value_invalid");
    let mut unknown = good.clone();
    unknown["pan"] = json!("ABCDE1234F");
    send(unknown)
        .await
        .assert_code(400, "details_value_invalid");
    c.call(Method::POST, "details", Some(json!({"details": "x"})))
        .await
        .assert_code(400, "details_value_invalid");
    c.call(Method::POST, "details", Some(json!({})))
        .await
        .assert_code(400, "details_missing");
    let stored = send(good.clone()).await.ok();
    assert_eq!(stored["state"]["step"], "consent");
    send(good.clone())
        .await
        .assert_code(409, "journey_step_invalid");

    // Returned to the merchant with the journey; sealed at rest; its digest in the step.
    let journey = app
        .call(Method::GET, "/vkyc/journey?verification_id=details", None)
        .await
        .ok();
    assert_eq!(journey["personal_details"], good);
    let step = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "personal_details")
        .unwrap()
        .clone();
    assert_eq!(step["outcome"], "DETAILS_GIVEN");
    assert_eq!(
        step["evidence"]["details_sha256"].as_str().unwrap().len(),
        64
    );
    let pool = app.pool().await;
    let (raw,): (String,) = sqlx::query_as("SELECT details FROM personal_details")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(!raw.contains("Ramesh"), "sealed at rest");
    // The case file shows the form with the template's labels, in its order.
    let reference = app.status("details").await["reference_id"].clone();
    let admin = crate::calls::staff(&app, "details.admin", "admin").await;
    let case = admin.get(&format!("/cases/{reference}")).await.ok();
    assert_eq!(case["personal_details"][0]["label"], "Employment type");
    assert_eq!(case["personal_details"][3]["value"], "Ramesh Kumar");
}

#[tokio::test]
async fn aadhaar_comes_from_the_digilocker_sandbox_or_fails_when_refused() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page_of = |url: String| {
        let client = no_redirects.clone();
        async move {
            let page = client.get(&url).send().await.unwrap();
            assert_eq!(page.status(), 200);
            page.text().await.unwrap()
        }
    };
    let link = |page: &str, id: &str| {
        let at = page.find(&format!("id=\"{id}\" href=\"")).unwrap() + id.len() + 12;
        page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&")
    };
    for (id, button, outcome) in [
        ("dl-allow", "allow", "AADHAAR_VERIFICATION_SUCCESS"),
        ("dl-deny", "deny", "AADHAAR_VERIFICATION_FAILED"),
    ] {
        let c = customer(&app, id, json!({"user_template": "vkyc_user_template_v1"})).await;
        c.consent().await;
        let s = state(&c).await;
        assert_eq!(s["step"], "aadhaar");
        assert_eq!(s["aadhaar_methods"][0], "digilocker");
        let started = c
            .call(Method::POST, "digilocker", Some(json!({})))
            .await
            .ok();
        let url = started["url"].as_str().unwrap().to_string();
        assert!(
            url.starts_with(&format!("{}/sandbox/digilocker?", app.base)),
            "{url}"
        );
        let page = page_of(url).await;
        let back = no_redirects.get(link(&page, button)).send().await.unwrap();
        assert_eq!(back.status(), 303);
        assert_eq!(
            back.headers()["location"].to_str().unwrap(),
            format!("/v/{}", c.key)
        );
        assert_eq!(c.sub_status().await, outcome);
        if button == "allow" {
            assert_eq!(c.step().await, "ip");
            let journey = app
                .call(
                    Method::GET,
                    &format!("/vkyc/journey?verification_id={id}"),
                    None,
                )
                .await
                .ok();
            assert_eq!(journey["aadhaar"]["source"], "digilocker");
            assert_eq!(
                journey["aadhaar"]["details"]["name"],
                "Sandbox DigiLocker Customer"
            );
        } else {
            assert_eq!(c.step().await, "aadhaar", "the customer may try again");
        }
    }

    // A forged return: a made-up code, or another request's state.
    let c = customer(
        &app,
        "dl-forged",
        json!({"user_template": "vkyc_user_template_v1"}),
    )
    .await;
    c.consent().await;
    let url = c
        .call(Method::POST, "digilocker", Some(json!({})))
        .await
        .ok()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let state_param = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let back = format!("{}/v/{}/digilocker", app.base, c.key);
    let other = no_redirects
        .get(format!("{back}?state={}&code=x", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert_eq!(c.sub_status().await, "LINK_GENERATED");
    let made_up = no_redirects
        .get(format!(
            "{back}?state={state_param}&code=sbx.{}.{}",
            "a".repeat(32),
            "b".repeat(64)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 303);
    assert_eq!(c.sub_status().await, "AADHAAR_VERIFICATION_FAILED");
    // The sandbox page sends a customer back only to a journey of this server.
    let elsewhere = no_redirects
        .get(format!(
            "{}/sandbox/digilocker?state={state_param}&return_to=https://evil.example/v/ab/digilocker",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 400);
    // The standard template does not offer it.
    let std = customer(&app, "dl-std", json!({})).await;
    std.consent().await;
    assert_eq!(
        state(&std).await["aadhaar_methods"],
        json!(["offline_ekyc", "merchant_details"])
    );
    std.call(Method::POST, "digilocker", Some(json!({})))
        .await
        .assert_code(409, "aadhaar_method_invalid");
}

#[tokio::test]
async fn a_template_sets_the_languages_and_its_own_consent_text() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let own = "I, the customer, agree that Asha Bank records this video call and keeps it as my KYC record.";
    let file = dir.path().join("english_only.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"english_only\"\nlanguages = [\"en\"]\n\
             steps = [\"consent\", \"aadhaar\", \"ip\", \"location\", \"devices\", \"waiting\"]\n\
             [consent_text]\nen = \"{own}\"\n"
        ),
    )
    .unwrap();
    let out = app.cli(&["template", "import", "user", file.to_str().unwrap()]);
    assert!(out.contains("version 1 added"), "{out}");
    let c = customer(&app, "lang-own", json!({"user_template": "english_only"})).await;
    let s = state(&c).await;
    assert_eq!(s["step"], "consent", "no OTP in this template");
    assert_eq!(s["languages"], json!(["en"]));
    assert_eq!(s["consent_text"]["en"], own);
    let vkyc_text = hex::encode(Sha256::digest(consent_text("en").as_bytes()));
    c.call(
        Method::POST,
        "consent",
        Some(json!({"lang": "en", "agree": true, "text_sha256": vkyc_text})),
    )
    .await
    .assert_code(400, "text_sha256_value_invalid");
    let hindi = hex::encode(Sha256::digest(consent_text("hi").as_bytes()));
    c.call(
        Method::POST,
        "consent",
        Some(json!({"lang": "hi", "agree": true, "text_sha256": hindi})),
    )
    .await
    .assert_code(400, "lang_value_invalid");
    let digest = hex::encode(Sha256::digest(own.as_bytes()));
    c.call(
        Method::POST,
        "consent",
        Some(json!({"lang": "en", "agree": true, "text_sha256": digest})),
    )
    .await
    .ok();
    let journey = app
        .call(Method::GET, "/vkyc/journey?verification_id=lang-own", None)
        .await
        .ok();
    assert_eq!(journey["consent"]["text_sha256"], digest);
}

/// A picture of `width` × `height` in the bank's colour, as PNG or JPEG bytes.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_pixel(width, height, image::Rgb([122, 31, 92]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

#[tokio::test]
async fn a_logo_is_uploaded_redrawn_served_and_shown_for_its_template() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    // Uploaded by the command line: a wide PNG with bytes after its end.
    let mut bytes = picture(1000, 300, image::ImageFormat::Png);
    bytes.extend_from_slice(b"<script>alert(1)</script>");
    let file = dir.path().join("asha.png");
    std::fs::write(&file, &bytes).unwrap();
    let out = app.cli(&["template", "logo", file.to_str().unwrap()]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert!(out.contains("480×144"), "{out}");

    // A template may name it; one naming a logo never uploaded is refused.
    let write = |name: &str, logo: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!("name = \"{name}\"\ndisplay_name = \"Asha Bank\"\nlogo = \"{logo}\"\n"),
        )
        .unwrap();
        path
    };
    let missing = write("no_logo_yet", &"a".repeat(64));
    let refused = app.cli_output(&["template", "import", "user", missing.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("logo: no uploaded logo"));
    let good = write("asha_logo", &id);
    app.cli(&["template", "import", "user", good.to_str().unwrap()]);

    // The journey shows it; the server serves it as a PNG of its own drawing.
    let c = customer(&app, "logo-journey", json!({"user_template": "asha_logo"})).await;
    let s = state(&c).await;
    assert_eq!(s["brand"]["logo"], format!("/brand/{id}.png"));
    let served = app
        .client
        .get(format!("{}/brand/{id}.png", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    let png = served.bytes().await.unwrap();
    assert!(!png.windows(8).any(|w| w == b"<script>"));
    let drawn = image::load_from_memory(&png).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (480, 144));
    for unknown in [
        format!("{}.png", "b".repeat(64)),
        "x.png".into(),
        id.clone(),
    ] {
        let reply = send(app.client.get(format!("{}/brand/{unknown}", app.base))).await;
        assert_eq!(reply.status, 404, "{unknown}");
    }
    // The agent and the auditor see the same logo beside the bank's name.
    let reference = app.status("logo-journey").await["reference_id"].clone();
    let admin = crate::calls::staff(&app, "logo.admin", "admin").await;
    let case = admin.get(&format!("/cases/{reference}")).await.ok();
    assert_eq!(case["display_name"], "Asha Bank");
    assert_eq!(case["brand_logo"], format!("/brand/{id}.png"));

    // Uploaded in the admin console: a JPEG is redrawn; other things are refused.
    let upload = |body: Vec<u8>| {
        send(
            app.client
                .post(admin.url("/admin/logos"))
                .header(reqwest::header::COOKIE, &admin.cookie)
                .header("x-csrf-token", &admin.csrf)
                .header("content-type", "application/octet-stream")
                .body(body),
        )
    };
    let jpeg = upload(picture(64, 64, image::ImageFormat::Jpeg)).await.ok();
    assert_eq!(
        (jpeg["width"].as_u64(), jpeg["height"].as_u64()),
        (Some(64), Some(64))
    );
    assert_eq!(
        jpeg["url"],
        format!("/brand/{}.png", jpeg["id"].as_str().unwrap())
    );
    upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec())
        .await
        .assert_code(400, "logo_value_invalid");
    upload(vec![0u8; 2 * 1024 * 1024])
        .await
        .assert_code(413, "logo_too_large");
    upload(Vec::new()).await.assert_code(400, "logo_missing");
    // Only an admin uploads.
    let agent = crate::calls::staff(&app, "logo.agent", "agent").await;
    let by_agent = send(
        app.client
            .post(agent.url("/admin/logos"))
            .header(reqwest::header::COOKIE, &agent.cookie)
            .header("x-csrf-token", &agent.csrf)
            .body(picture(8, 8, image::ImageFormat::Png)),
    )
    .await;
    assert_eq!(by_agent.status, 403, "{:?}", by_agent.body);
}
