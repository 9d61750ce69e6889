//! The staff desk: accounts made with the CLI, login, lock-out, TOTP, CSRF, roles, agent
//! presence and the staff audit log.

use crate::helpers::*;
use hmac::{Hmac, Mac};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};
use std::io::Write;
use vkyc::clock::now_ms;

const PASSWORD: &str = "correct horse battery staple";

/// `vkyc staff create` with the password on standard input.
fn create_staff(app: &TestApp, username: &str, role: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args([
            "staff",
            "create",
            "--username",
            username,
            "--role",
            role,
            "--password-stdin",
        ])
        .env("VKYC_DATA_DIR", app._dir.path())
        .env("VKYC_DATABASE_URL", &app.database_url)
        .env_remove("VKYC_CONFIG")
        .env_remove("VKYC_MASTER_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vkyc runs");
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(PASSWORD), "a given password is not echoed");
}

fn desk_url(app: &TestApp, path: &str) -> String {
    format!("{}/desk{path}", app.base)
}

/// A signed-in desk session.
struct Desk {
    cookie: String,
    csrf: String,
}

async fn login_reply(app: &TestApp, body: Value) -> Reply {
    send(
        app.client
            .post(desk_url(app, "/api/login"))
            .json(&body)
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await
}

async fn login(app: &TestApp, username: &str, password: &str) -> Desk {
    let reply = login_reply(app, json!({"username": username, "password": password})).await;
    let set_cookie = reply.headers[SET_COOKIE].to_str().unwrap().to_string();
    let body = reply.ok();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    Desk {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

async fn post(app: &TestApp, desk: &Desk, path: &str, csrf: Option<&str>) -> Reply {
    let mut req = app
        .client
        .post(desk_url(app, path))
        .header(COOKIE, &desk.cookie)
        .json(&json!({}));
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    send(req).await
}

async fn me(app: &TestApp, desk: &Desk) -> Reply {
    send(
        app.client
            .get(desk_url(app, "/api/me"))
            .header(COOKIE, &desk.cookie),
    )
    .await
}

async fn actions(app: &TestApp) -> Vec<(Option<i64>, String, Option<String>, Option<String>)> {
    let mut rows = app.store.staff_audit(None, 1000).await.unwrap();
    rows.reverse();
    rows.into_iter()
        .map(|r| (r.staff_id, r.action, r.target, r.ip))
        .collect()
}

async fn online_now(app: &TestApp) -> i64 {
    app.store.agents_online(now_ms(), 30_000).await.unwrap()
}

/// RFC 4648 base32, as in the otpauth URI.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u64, 0, Vec::new());
    for c in text.chars() {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// RFC 6238: HMAC-SHA-1 of the 30-second step, dynamic truncation, 6 digits.
fn totp(secret: &[u8], unix: u64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let o = (hash[19] & 15) as usize;
    let n = u32::from_be_bytes([hash[o] & 0x7f, hash[o + 1], hash[o + 2], hash[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

#[tokio::test]
async fn desk_cli_creates_staff_who_log_in_see_me_and_log_out() {
    let app = spawn_app().await;
    let out = app.cli(&[
        "staff",
        "create",
        "--username",
        "Asha.Rao",
        "--role",
        "admin",
    ]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed")
        .to_string();
    assert!(password.len() >= 20, "{out}");

    let page = app.client.get(desk_url(&app, "")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"));
    let script = app
        .client
        .get(desk_url(&app, "/assets/desk.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);

    let reply = login_reply(&app, json!({"username": "asha.rao", "password": password})).await;
    let set_cookie = reply.headers[SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/desk"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let value = set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("vkyc_desk=")
        .unwrap();
    assert_eq!(value.len(), 64, "256 random bits, hex");
    let body = reply.ok();
    assert_eq!(body["username"], "asha.rao");
    assert_eq!(body["role"], "admin");
    let desk = Desk {
        cookie: format!("vkyc_desk={value}"),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    };
    let who = me(&app, &desk).await.ok();
    assert_eq!(who["username"], "asha.rao");
    assert_eq!(who["role"], "admin");
    assert_eq!(who["csrf_token"], desk.csrf.as_str());
    assert_eq!(who["online"], Value::Null);

    let listed = app.cli(&["staff", "list"]);
    assert!(
        listed.contains("asha.rao\tadmin\tactive\tno-totp"),
        "{listed}"
    );
    assert!(!listed.contains(&password));

    // Logging out needs the CSRF token too, ends the session and clears the cookie.
    post(&app, &desk, "/api/logout", None)
        .await
        .assert_code(403, "csrf_token_invalid");
    let out = post(&app, &desk, "/api/logout", Some(&desk.csrf)).await;
    assert!(out.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    out.ok();
    me(&app, &desk).await.assert_code(401, "session_required");

    let staff = app
        .store
        .staff_by_username("asha.rao")
        .await
        .unwrap()
        .unwrap();
    let log = actions(&app).await;
    // The audit names who, what and from where (no trusted proxy: the socket's address).
    assert_eq!(
        log,
        vec![
            (
                None,
                "staff_created".to_string(),
                Some("asha.rao".to_string()),
                None
            ),
            (
                Some(staff.id),
                "login_ok".to_string(),
                Some("asha.rao".to_string()),
                Some("127.0.0.1".to_string())
            ),
            (
                Some(staff.id),
                "logout".to_string(),
                Some("asha.rao".to_string()),
                Some("127.0.0.1".to_string())
            ),
        ]
    );
    let rows = app.store.staff_audit(Some(staff.id), 10).await.unwrap();
    assert!(rows.iter().all(|r| r.at > 0 && r.at <= now_ms()));
    // The audit log is append-only, in the database itself.
    let db = app.pool().await;
    for sql in [
        "UPDATE staff_audit SET action = 'x'",
        "DELETE FROM staff_audit",
    ] {
        assert!(sqlx::query(sql).execute(&db).await.is_err(), "{sql}");
    }
    db.close().await;
    assert_eq!(actions(&app).await.len(), 3);
}

#[tokio::test]
async fn desk_wrong_passwords_and_unknown_users_get_one_answer() {
    let app = spawn_app().await;
    create_staff(&app, "ravi", "agent");
    let wrong = login_reply(&app, json!({"username": "ravi", "password": "nope"})).await;
    let unknown = login_reply(&app, json!({"username": "nobody", "password": PASSWORD})).await;
    for reply in [&wrong, &unknown] {
        reply.assert_error(
            401,
            "authentication_error",
            "login_failed",
            "username, password or one-time code is incorrect.",
        );
        assert!(!reply.headers.contains_key(SET_COOKIE));
    }
    // Usernames are not case-sensitive; the right password works.
    login(&app, "RAVI", PASSWORD).await;
    let log = actions(&app).await;
    let kinds: Vec<&str> = log.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        kinds,
        ["staff_created", "login_failed", "login_failed", "login_ok"]
    );
    assert_eq!(log[2].0, None, "an unknown username has no staff id");
    assert_eq!(log[2].2.as_deref(), Some("nobody"));
}

#[tokio::test]
async fn desk_locks_an_account_after_five_failures() {
    let app = spawn_app().await;
    create_staff(&app, "meera", "auditor");
    for _ in 0..5 {
        login_reply(
            &app,
            json!({"username": "meera", "password": "wrong password"}),
        )
        .await
        .assert_code(401, "login_failed");
    }
    // Locked: even the right password gets the same answer, and no session.
    let locked = login_reply(&app, json!({"username": "meera", "password": PASSWORD})).await;
    locked.assert_error(
        401,
        "authentication_error",
        "login_failed",
        "username, password or one-time code is incorrect.",
    );
    assert!(!locked.headers.contains_key(SET_COOKIE));
    let staff = app.store.staff_by_username("meera").await.unwrap().unwrap();
    let until = staff.locked_until.expect("locked");
    let minutes = (until - now_ms()) as f64 / 60_000.0;
    assert!((14.9..=15.0).contains(&minutes), "{minutes}");
    let kinds: Vec<String> = actions(&app).await.into_iter().map(|r| r.1).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "login_failed").count(),
        5,
        "{kinds:?}"
    );
    // The fifth attempt locks the account as it is counted, and is still checked.
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["account_locked", "login_failed", "login_locked"]
    );
    let listed = app.cli(&["staff", "list"]);
    assert!(listed.contains("meera\tauditor\tlocked"), "{listed}");
}

#[tokio::test]
async fn desk_lockout_is_configurable_and_a_success_resets_the_count() {
    let app = spawn_app_with(|c| c.staff_lockout_attempts = 2).await;
    create_staff(&app, "kiran", "agent");
    login_reply(&app, json!({"username": "kiran", "password": "wrong one"}))
        .await
        .assert_code(401, "login_failed");
    login(&app, "kiran", PASSWORD).await;
    login_reply(&app, json!({"username": "kiran", "password": "wrong two"}))
        .await
        .assert_code(401, "login_failed");
    login(&app, "kiran", PASSWORD).await;
    login_reply(
        &app,
        json!({"username": "kiran", "password": "wrong three"}),
    )
    .await
    .assert_code(401, "login_failed");
    login_reply(&app, json!({"username": "kiran", "password": "wrong four"}))
        .await
        .assert_code(401, "login_failed");
    login_reply(&app, json!({"username": "kiran", "password": PASSWORD}))
        .await
        .assert_code(401, "login_failed");
}

#[tokio::test]
async fn desk_totp_is_required_and_checked() {
    let app = spawn_app().await;
    create_staff(&app, "arjun", "agent");
    let out = app.cli(&["staff", "totp", "--username", "arjun"]);
    let uri = out
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .expect("an otpauth URI")
        .to_string();
    let query = url::Url::parse(&uri).unwrap();
    let params: std::collections::HashMap<_, _> = query.query_pairs().into_owned().collect();
    assert_eq!(params["issuer"], "vkyc");
    assert_eq!(params["digits"], "6");
    assert_eq!(params["period"], "30");
    let secret = base32_decode(&params["secret"]);
    assert_eq!(secret.len(), 20);
    // Sealed at rest: the database does not hold the secret in the clear.
    let staff = app.store.staff_by_username("arjun").await.unwrap().unwrap();
    let sealed = staff.totp_secret_enc.unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains(&params["secret"]));
    assert!(app
        .cli(&["staff", "list"])
        .contains("arjun\tagent\tactive\ttotp"));

    login_reply(&app, json!({"username": "arjun", "password": PASSWORD}))
        .await
        .assert_error(
            401,
            "authentication_error",
            "otp_required",
            "a one-time code is required.",
        );
    let now = now_ms() as u64 / 1000;
    let right = totp(&secret, now);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    login_reply(
        &app,
        json!({"username": "arjun", "password": PASSWORD, "otp": wrong}),
    )
    .await
    .assert_code(401, "login_failed");
    // A code from three steps ago is refused; so is a right code with a wrong password.
    let old = totp(&secret, now - 90);
    if old != right && old != totp(&secret, now - 30) {
        login_reply(
            &app,
            json!({"username": "arjun", "password": PASSWORD, "otp": old}),
        )
        .await
        .assert_code(401, "login_failed");
    }
    login_reply(
        &app,
        json!({"username": "arjun", "password": "not it at all", "otp": right}),
    )
    .await
    .assert_code(401, "login_failed");
    login_reply(
        &app,
        json!({"username": "arjun", "password": PASSWORD, "otp": 123456}),
    )
    .await
    .assert_code(400, "otp_value_invalid");
    let reply = login_reply(
        &app,
        json!({"username": "arjun", "password": PASSWORD,
               "otp": totp(&secret, now_ms() as u64 / 1000)}),
    )
    .await;
    let used = reply.ok();
    assert_eq!(used["role"], "agent");
    // The same code again, while it is still valid, is a replay: refused.
    let replayed = login_reply(
        &app,
        json!({"username": "arjun", "password": PASSWORD,
               "otp": totp(&secret, now_ms() as u64 / 1000)}),
    )
    .await;
    if replayed.status.as_u16() == 200 {
        // The clock moved on to a new step between the two logins: a new code is fine.
        assert_ne!(totp(&secret, now), totp(&secret, now_ms() as u64 / 1000));
    } else {
        replayed.assert_code(401, "login_failed");
        let details: Vec<Option<String>> = app
            .store
            .staff_audit(None, 5)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.details)
            .collect();
        assert!(
            details.contains(&Some("one-time code already used".into())),
            "{details:?}"
        );
    }
    // Rotating the master key re-seals the TOTP secret too (beside the bootstrap
    // merchant's secret and the audit anchor key).
    let out = app.cli(&["master-key", "rotate"]);
    assert!(out.contains("3 values re-sealed"), "{out}");
    let new_key =
        vkyc::secrets::MasterKey::load_or_create(&app._dir.path().join("master.key")).unwrap();
    let resealed = app
        .store
        .staff_by_username("arjun")
        .await
        .unwrap()
        .unwrap()
        .totp_secret_enc
        .unwrap();
    assert_eq!(new_key.open(&resealed).unwrap(), secret);
    let kinds: Vec<String> = actions(&app).await.into_iter().map(|r| r.1).collect();
    assert!(kinds.contains(&"totp_enabled".to_string()));
    assert!(kinds.contains(&"login_otp_required".to_string()));
    assert!(kinds.contains(&"login_ok".to_string()));
}

/// Forty wrong passwords at once against a limit of five: the attempts are counted
/// before they are checked, so no more than five are ever checked against the password,
/// and the account is locked for the right one after.
#[tokio::test]
async fn desk_a_burst_of_logins_cannot_race_the_lockout() {
    let app = spawn_app_with(|c| c.staff_login_attempts_per_minute = 0).await;
    create_staff(&app, "burst", "agent");
    let tries = (0..40).map(|i| {
        login_reply(
            &app,
            json!({"username": "burst", "password": format!("wrong password {i}")}),
        )
    });
    for reply in futures::future::join_all(tries).await {
        assert!(
            matches!(reply.status.as_u16(), 401 | 429),
            "{} {}",
            reply.status,
            reply.body
        );
    }
    let rows = app.store.staff_audit(None, 1000).await.unwrap();
    let checked = rows
        .iter()
        .filter(|r| r.action == "login_failed" && r.details.as_deref() == Some("wrong password"))
        .count();
    assert!(
        checked <= 5,
        "{checked} attempts were checked against the password"
    );
    let staff = app.store.staff_by_username("burst").await.unwrap().unwrap();
    assert!(staff.locked_until.is_some(), "the burst locked the account");
    login_reply(&app, json!({"username": "burst", "password": PASSWORD}))
        .await
        .assert_code(401, "login_failed");
}

/// One address may try to sign in so many times a minute; past that it is told to wait,
/// before its body is even read.
#[tokio::test]
async fn desk_sign_ins_from_one_address_are_limited() {
    let app = spawn_app_with(|c| c.staff_login_attempts_per_minute = 3).await;
    create_staff(&app, "limited", "agent");
    for _ in 0..3 {
        login_reply(&app, json!({"username": "limited", "password": "wrong"}))
            .await
            .assert_code(401, "login_failed");
    }
    let over = login_reply(&app, json!({"username": "limited", "password": PASSWORD})).await;
    assert!(over.headers.get(SET_COOKIE).is_none());
    let wait: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    over.assert_code(429, "too_many_logins");
    // Even a body that could not be read is refused as one attempt too many.
    send(
        app.client
            .post(desk_url(&app, "/api/login"))
            .header("content-type", "application/json")
            .body("{"),
    )
    .await
    .assert_code(429, "too_many_logins");
}

#[tokio::test]
async fn desk_calls_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    create_staff(&app, "ravi", "agent");
    let desk = login(&app, "ravi", PASSWORD).await;
    post(&app, &desk, "/api/agent/online", None)
        .await
        .assert_error(
            403,
            "authentication_error",
            "csrf_token_invalid",
            "x-csrf-token is missing or does not match the session.",
        );
    let other = "0".repeat(64);
    post(&app, &desk, "/api/agent/online", Some(&other))
        .await
        .assert_code(403, "csrf_token_invalid");
    assert_eq!(online_now(&app).await, 0);
    let staff = app.store.staff_by_username("ravi").await.unwrap().unwrap();
    assert_eq!(app.store.presence(staff.id).await.unwrap(), None);
    assert!(!actions(&app).await.iter().any(|r| r.1 == "online"));
    // The right token works.
    post(&app, &desk, "/api/agent/online", Some(&desk.csrf))
        .await
        .ok();
    assert_eq!(online_now(&app).await, 1);
}

#[tokio::test]
async fn desk_agent_calls_are_for_agents_only() {
    let app = spawn_app().await;
    create_staff(&app, "meera", "auditor");
    create_staff(&app, "root", "admin");
    for name in ["meera", "root"] {
        let desk = login(&app, name, PASSWORD).await;
        for path in [
            "/api/agent/online",
            "/api/agent/offline",
            "/api/agent/heartbeat",
        ] {
            post(&app, &desk, path, Some(&desk.csrf))
                .await
                .assert_error(
                    403,
                    "authentication_error",
                    "role_forbidden",
                    "your role does not allow this action.",
                );
        }
    }
    assert_eq!(online_now(&app).await, 0);
    let log = actions(&app).await;
    assert_eq!(log.iter().filter(|r| r.1 == "forbidden").count(), 6);
}

#[tokio::test]
async fn desk_calls_without_a_session_get_401() {
    let app = spawn_app().await;
    create_staff(&app, "ravi", "agent");
    let no_session = |reply: Reply| {
        reply.assert_error(
            401,
            "authentication_error",
            "session_required",
            "sign in to the desk first.",
        )
    };
    no_session(send(app.client.get(desk_url(&app, "/api/me"))).await);
    no_session(send(app.client.post(desk_url(&app, "/api/agent/online"))).await);
    // Merchant credentials are no desk session.
    no_session(
        send(
            app.client
                .post(desk_url(&app, "/api/agent/online"))
                .header("x-client-id", &app.client_id)
                .header("x-client-secret", &app.secret)
                .header("x-api-version", "2024-12-01")
                .header("x-csrf-token", "x"),
        )
        .await,
    );
    // Nor is a made-up or malformed cookie.
    for cookie in [
        format!("vkyc_desk={}", "ab".repeat(32)),
        "vkyc_desk=1".to_string(),
        "vkyc_desk=".to_string(),
        "other=1".to_string(),
    ] {
        no_session(
            send(
                app.client
                    .get(desk_url(&app, "/api/me"))
                    .header(COOKIE, cookie),
            )
            .await,
        );
    }
    // A disabled account's sessions end at once.
    let desk = login(&app, "ravi", PASSWORD).await;
    me(&app, &desk).await.ok();
    app.cli(&["staff", "disable", "--username", "ravi"]);
    no_session(me(&app, &desk).await);
    login_reply(&app, json!({"username": "ravi", "password": PASSWORD}))
        .await
        .assert_code(401, "login_failed");
    assert!(app
        .cli(&["staff", "list"])
        .contains("ravi\tagent\tdisabled"));
}

#[tokio::test]
async fn desk_presence_follows_online_offline_and_heartbeats() {
    let app = spawn_app().await;
    create_staff(&app, "ravi", "agent");
    create_staff(&app, "sita", "agent");
    let ravi = login(&app, "ravi", PASSWORD).await;
    let sita = login(&app, "sita", PASSWORD).await;
    let ravi_id = app
        .store
        .staff_by_username("ravi")
        .await
        .unwrap()
        .unwrap()
        .id;
    let sita_id = app
        .store
        .staff_by_username("sita")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(online_now(&app).await, 0);
    assert_eq!(me(&app, &ravi).await.ok()["online"], false);

    let on = post(&app, &ravi, "/api/agent/online", Some(&ravi.csrf))
        .await
        .ok();
    assert_eq!(on["online"], true);
    assert!(on["since"].as_i64().unwrap() > 0);
    assert_eq!(me(&app, &ravi).await.ok()["online"], true);
    assert_eq!(online_now(&app).await, 1);
    post(&app, &sita, "/api/agent/online", Some(&sita.csrf))
        .await
        .ok();
    assert_eq!(online_now(&app).await, 2);
    assert_eq!(
        app.store.online_agents(now_ms(), 30_000).await.unwrap(),
        vec![ravi_id, sita_id],
        "online the longest first"
    );
    let listed = app.cli(&["staff", "list"]);
    assert!(
        listed.contains("ravi\tagent\tactive\tno-totp\tonline"),
        "{listed}"
    );

    // Without heartbeats an online agent goes stale; a heartbeat brings them back.
    let later = now_ms() + 60_000;
    assert_eq!(app.store.agents_online(later, 30_000).await.unwrap(), 0);
    let beat = post(&app, &ravi, "/api/agent/heartbeat", Some(&ravi.csrf))
        .await
        .ok();
    assert_eq!(beat, json!({"online": true}));
    assert_eq!(online_now(&app).await, 2);

    let off = post(&app, &ravi, "/api/agent/offline", Some(&ravi.csrf))
        .await
        .ok();
    assert_eq!(off["online"], false);
    assert_eq!(online_now(&app).await, 1);
    assert_eq!(
        app.store.online_agents(now_ms(), 30_000).await.unwrap(),
        vec![sita_id]
    );
    // A heartbeat does not bring an agent who went offline back online.
    let beat = post(&app, &ravi, "/api/agent/heartbeat", Some(&ravi.csrf))
        .await
        .ok();
    assert_eq!(beat, json!({"online": false}));
    assert_eq!(online_now(&app).await, 1);

    // Logging out takes an online agent offline.
    post(&app, &sita, "/api/logout", Some(&sita.csrf))
        .await
        .ok();
    assert_eq!(online_now(&app).await, 0);

    let log = actions(&app).await;
    let presence: Vec<(Option<i64>, &str)> = log
        .iter()
        .filter(|r| r.1 == "online" || r.1 == "offline")
        .map(|r| (r.0, r.1.as_str()))
        .collect();
    assert_eq!(
        presence,
        [
            (Some(ravi_id), "online"),
            (Some(sita_id), "online"),
            (Some(ravi_id), "offline"),
            (Some(sita_id), "offline"),
        ]
    );
}

#[tokio::test]
async fn desk_cookie_is_secure_behind_an_https_base_url_and_proxies_give_the_ip() {
    // The app's public URL is https, so talk to its socket directly.
    let dir = tempfile::tempdir().unwrap();
    let mut config = vkyc::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: test_database(dir.path()).await,
        public_base_url: "https://kyc.example.in".into(),
        trusted_proxies: vec!["127.0.0.1".into()],
        ..vkyc::config::Config::default()
    };
    config.media.udp_bind = "127.0.0.1:0".into();
    let app = vkyc::http::app::Application::build(config).await.unwrap();
    let addr = app.local_addr();
    let store = app.store().clone();
    tokio::spawn(app.run());
    let hash = vkyc::http::desk::hash_password(PASSWORD).unwrap();
    store
        .create_staff("ravi", vkyc::store::Role::Agent, &hash, now_ms())
        .await
        .unwrap()
        .unwrap();
    let reply = send(
        reqwest::Client::new()
            .post(format!("http://{addr}/desk/api/login"))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({"username": "ravi", "password": PASSWORD})),
    )
    .await;
    let cookie = reply.headers[SET_COOKIE].to_str().unwrap().to_string();
    reply.ok();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // Behind a trusted proxy, the audit keeps the forwarded address.
    let log = store.staff_audit(None, 1).await.unwrap();
    assert_eq!(log[0].action, "login_ok");
    assert_eq!(log[0].ip.as_deref(), Some("198.51.100.7"));
}

#[tokio::test]
async fn desk_bad_input_gets_400_never_500() {
    let app = spawn_app().await;
    create_staff(&app, "ravi", "agent");
    let url = desk_url(&app, "/api/login");
    let raw = |body: &'static str| {
        let req = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        async move { send(req).await }
    };
    raw("").await.assert_code(400, "request_body_missing");
    raw("{").await.assert_code(400, "request_body_invalid");
    raw("[1,2]").await.assert_code(400, "request_body_invalid");
    raw("\"ravi\"")
        .await
        .assert_code(400, "request_body_invalid");
    raw(r#"{"password": "x"}"#)
        .await
        .assert_code(400, "username_missing");
    raw(r#"{"username": "ravi"}"#)
        .await
        .assert_code(400, "password_missing");
    raw(r#"{"username": 5, "password": "x"}"#)
        .await
        .assert_code(400, "username_value_invalid");
    raw(r#"{"username": "ravi", "password": ["x"]}"#)
        .await
        .assert_code(400, "password_value_invalid");
    raw(r#"{"username": "ravi", "password": "x", "otp": {}}"#)
        .await
        .assert_code(400, "otp_value_invalid");
    login_reply(
        &app,
        json!({"username": "ravi", "password": "x".repeat(5000)}),
    )
    .await
    .assert_code(400, "password_value_invalid");
    for username in ["", " ", "ravi\u{0}", "रवि", &"r".repeat(500)] {
        login_reply(&app, json!({"username": username, "password": "x"}))
            .await
            .assert_code(401, "login_failed");
    }
    // Wrong methods and paths answer in the error shape.
    let get_login = send(app.client.get(&url)).await;
    assert_eq!(get_login.status.as_u16(), 405, "{}", get_login.body);
    send(app.client.get(desk_url(&app, "/api/nothing")))
        .await
        .assert_code(404, "route_not_found");
    // None of that counted against ravi, who was never named with a wrong password.
    login(&app, "ravi", PASSWORD).await;
}

/// A page on another site can post a form or `text/plain` to the login, and a browser
/// names that site in `Origin`: neither gets a session. The desk's own page does.
#[tokio::test]
async fn a_login_from_another_site_or_not_in_json_gets_no_session() {
    let app = spawn_app().await;
    create_staff(&app, "meera", "agent");
    let body = json!({"username": "meera", "password": PASSWORD}).to_string();
    let plain = send(
        app.client
            .post(desk_url(&app, "/api/login"))
            .header("content-type", "text/plain")
            .body(body.clone()),
    )
    .await;
    assert!(plain.headers.get(SET_COOKIE).is_none());
    plain.assert_code(415, "content_type_invalid");
    let form = send(
        app.client
            .post(desk_url(&app, "/api/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone()),
    )
    .await;
    form.assert_code(415, "content_type_invalid");
    let foreign = send(
        app.client
            .post(desk_url(&app, "/api/login"))
            .header("content-type", "application/json")
            .header("origin", "https://evil.example")
            .body(body.clone()),
    )
    .await;
    assert!(foreign.headers.get(SET_COOKIE).is_none());
    foreign.assert_code(403, "origin_not_allowed");
    // The customer's journey refuses another site's calls too.
    app.create_user("origin_user").await;
    let created = app.create_vkyc("origin_case", "origin_user").await;
    let token = created["vkyc_link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    send(
        app.client
            .post(format!("{}/v/{token}/api/consent", app.base))
            .header("origin", "https://evil.example")
            .json(&json!({"accepted": true})),
    )
    .await
    .assert_code(403, "origin_not_allowed");
    // The desk's own page, naming this server, signs in.
    let own = send(
        app.client
            .post(desk_url(&app, "/api/login"))
            .header("content-type", "application/json")
            .header("origin", app.base.trim_end_matches('/'))
            .body(body),
    )
    .await;
    assert!(own.headers.get(SET_COOKIE).is_some());
    own.ok();
}
