//! The admin console's API: staff, merchants, question banks, the desk's hours and
//! holidays. Each operation's effect, wrong input refused with nothing changed, the staff
//! audit rows, and only admins allowed on every route.

use crate::helpers::*;
use crate::journey::customer;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The desk open all day every day, agents never stale.
async fn admin_app() -> TestApp {
    spawn_app_with(|c| {
        c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec();
        c.journey.working_hours = "00:00-24:00".into();
        c.agent_stale_seconds = 3600;
    })
    .await
}

/// A signed-in desk session.
struct Desk<'a> {
    app: &'a TestApp,
    id: i64,
    cookie: String,
    csrf: String,
}

impl Desk<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/desk/api{path}", self.app.base)
    }

    async fn get(&self, path: &str) -> Reply {
        send(
            self.app
                .client
                .get(self.url(path))
                .header(COOKIE, &self.cookie),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
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
}

async fn login<'a>(app: &'a TestApp, username: &str, password: &str) -> Desk<'a> {
    let reply = send(
        app.client
            .post(format!("{}/desk/api/login", app.base))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let member = app
        .store
        .staff_by_username(username)
        .await
        .unwrap()
        .unwrap();
    Desk {
        app,
        id: member.id,
        cookie,
        csrf: reply.body["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// `vkyc staff create` with a generated password, then a login.
async fn staff<'a>(app: &'a TestApp, username: &str, role: &str) -> Desk<'a> {
    let out = app.cli(&["staff", "create", "--username", username, "--role", role]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password");
    login(app, username, password).await
}

/// The audit rows (action, target, staff id, address, details), oldest first.
async fn audit_rows(
    app: &TestApp,
) -> Vec<(
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
)> {
    let mut rows = app.store.staff_audit(None, 1000).await.unwrap();
    rows.reverse();
    rows.into_iter()
        .map(|r| (r.action, r.target, r.staff_id, r.ip, r.details))
        .collect()
}

/// Every admin route, with a body that would be accepted from an admin.
fn admin_routes() -> Vec<(Method, &'static str, Value)> {
    vec![
        (Method::GET, "/admin/staff", json!(null)),
        (
            Method::POST,
            "/admin/staff",
            json!({"username": "x.new", "role": "agent"}),
        ),
        (Method::POST, "/admin/staff/1/disable", json!({})),
        (
            Method::POST,
            "/admin/staff/1/role",
            json!({"role": "auditor"}),
        ),
        (Method::POST, "/admin/staff/1/hours", json!({"clear": true})),
        (Method::POST, "/admin/staff/1/totp", json!({})),
        (Method::POST, "/admin/staff/1/unlock", json!({})),
        (Method::GET, "/admin/merchants", json!(null)),
        (
            Method::POST,
            "/admin/merchants",
            json!({"name": "X", "env": "test"}),
        ),
        (
            Method::POST,
            "/admin/merchants/1/webhook",
            json!({"url": null}),
        ),
        (
            Method::POST,
            "/admin/merchants/1/rate-limit",
            json!({"limit": "5"}),
        ),
        (
            Method::POST,
            "/admin/merchants/1/allow-ips",
            json!({"ips": ["10.0.0.1"]}),
        ),
        (Method::POST, "/admin/merchants/1/signature", json!({})),
        (
            Method::POST,
            "/admin/merchants/1/second-factor/clear",
            json!({}),
        ),
        (
            Method::POST,
            "/admin/merchants/1/rotate-secret",
            json!({"client_id": "x"}),
        ),
        (
            Method::POST,
            "/admin/merchants/1/revoke-secret",
            json!({"client_id": "x"}),
        ),
        (Method::GET, "/admin/questions", json!(null)),
        (
            Method::POST,
            "/admin/questions",
            json!({"base_version": 0, "questions": []}),
        ),
        (Method::GET, "/admin/merchants/1/questions", json!(null)),
        (
            Method::POST,
            "/admin/merchants/1/questions",
            json!({"base_version": 0, "questions": []}),
        ),
        (Method::GET, "/admin/hours", json!(null)),
        (Method::POST, "/admin/hours", json!({"default": true})),
        (
            Method::POST,
            "/admin/holidays",
            json!({"dates": ["2030-01-01"]}),
        ),
        (
            Method::POST,
            "/admin/holidays/remove",
            json!({"date": "2030-01-01"}),
        ),
    ]
}

#[tokio::test]
async fn admin_every_route_is_for_admins_only() {
    let app = admin_app().await;
    let agent = staff(&app, "route.agent", "agent").await;
    let auditor = staff(&app, "route.auditor", "auditor").await;
    let before = audit_rows(&app).await.len();
    let routes = admin_routes();
    for (method, path, body) in &routes {
        let url = format!("{}/desk/api{path}", app.base);
        let mut anonymous = app.client.request(method.clone(), &url);
        if !body.is_null() {
            anonymous = anonymous.json(body);
        }
        send(anonymous).await.assert_code(401, "session_required");
        for desk in [&agent, &auditor] {
            let mut req = app
                .client
                .request(method.clone(), &url)
                .header(COOKIE, &desk.cookie)
                .header("x-csrf-token", &desk.csrf);
            if !body.is_null() {
                req = req.json(body);
            }
            let reply = send(req).await;
            reply.assert_code(403, "role_forbidden");
        }
    }
    // Nothing changed: no account, merchant, bank, hours or holiday.
    assert!(app
        .store
        .staff_by_username("x.new")
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.store.merchant_count().await.unwrap(), 1);
    assert!(app.store.holidays().await.unwrap().is_empty());
    assert!(app.store.desk_hours().await.unwrap().is_none());
    assert!(app.store.question_bank(0, None).await.unwrap().is_none());
    let agent_row = app.store.staff_by_id(agent.id).await.unwrap().unwrap();
    assert!(agent_row.totp_secret_enc.is_none() && agent_row.disabled_at.is_none());
    // Each refusal is audited under who tried.
    let rows = audit_rows(&app).await;
    let forbidden: Vec<_> = rows[before..]
        .iter()
        .filter(|r| r.0 == "forbidden")
        .collect();
    assert_eq!(forbidden.len(), routes.len() * 2);
    assert!(forbidden
        .iter()
        .all(|r| r.2 == Some(agent.id) || r.2 == Some(auditor.id)));
}

#[tokio::test]
async fn admin_manages_staff_as_the_cli_does_and_each_change_is_audited() {
    let app = admin_app().await;
    let admin = staff(&app, "root", "admin").await;

    // Create: the password is in the answer once, and it signs in.
    let created = admin
        .post(
            "/admin/staff",
            json!({"username": " Nadia ", "role": "agent"}),
        )
        .await
        .ok();
    assert_eq!(created["username"], "nadia");
    let password = created["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 20, "{created}");
    let nadia = login(&app, "nadia", &password).await;
    assert_eq!(nadia.get("/me").await.ok()["role"], "agent");
    let listed = admin.get("/admin/staff").await.ok();
    assert!(!listed.to_string().contains(&password), "never listed");
    let row = |listed: &Value, name: &str| -> Value {
        listed["staff"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["username"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&listed, "nadia")["state"], "active");
    assert_eq!(row(&listed, "nadia")["presence"], "offline");

    // Wrong input: a clear error, and nothing is created.
    let count = app.store.list_staff().await.unwrap().len();
    admin
        .post(
            "/admin/staff",
            json!({"username": "bad name!", "role": "agent"}),
        )
        .await
        .assert_code(400, "username_value_invalid");
    admin
        .post(
            "/admin/staff",
            json!({"username": "ok.name", "role": "boss"}),
        )
        .await
        .assert_code(400, "role_value_invalid");
    admin
        .post(
            "/admin/staff",
            json!({"username": "nadia", "role": "agent"}),
        )
        .await
        .assert_code(409, "username_taken");
    admin
        .post("/admin/staff", json!({"role": "agent"}))
        .await
        .assert_code(400, "username_missing");
    assert_eq!(app.store.list_staff().await.unwrap().len(), count);

    // Own hours: checked, saved, cleared.
    let path = format!("/admin/staff/{}/hours", nadia.id);
    admin
        .post(
            &path,
            json!({"days": ["mon", "someday"], "hours": "09:00-13:00"}),
        )
        .await
        .assert_code(400, "working_hours_value_invalid");
    admin
        .post(&path, json!({"days": ["mon"], "hours": "13:00-09:00"}))
        .await
        .assert_code(400, "working_hours_value_invalid");
    assert!(app
        .store
        .staff_by_id(nadia.id)
        .await
        .unwrap()
        .unwrap()
        .working_hours
        .is_none());
    let set = admin
        .post(
            &path,
            json!({"days": ["mon", "tue"], "hours": "09:00-13:00"}),
        )
        .await
        .ok();
    assert_eq!(
        set["working_hours"],
        json!({"days": ["mon", "tue"], "hours": "09:00-13:00"})
    );
    let cli_list = app.cli(&["staff", "list"]);
    assert!(
        cli_list.contains("nadia\tagent\tactive\tno-totp\toffline"),
        "{cli_list}"
    );
    admin.post(&path, json!({"clear": true})).await.ok();
    assert!(app
        .store
        .staff_by_id(nadia.id)
        .await
        .unwrap()
        .unwrap()
        .working_hours
        .is_none());

    let unlock = format!("/admin/staff/{}/unlock", nadia.id);
    admin
        .post(&unlock, json!({}))
        .await
        .assert_code(409, "staff_not_locked");

    // TOTP: a new secret, its URI shown once; the account then needs a code.
    let totp = admin
        .post(&format!("/admin/staff/{}/totp", nadia.id), json!({}))
        .await
        .ok();
    assert!(totp["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    assert_eq!(
        row(&admin.get("/admin/staff").await.ok(), "nadia")["totp"],
        true
    );
    let without_code = send(
        app.client
            .post(format!("{}/desk/api/login", app.base))
            .json(&json!({"username": "nadia", "password": password})),
    )
    .await;
    without_code.assert_code(401, "otp_required");

    // Unlock ends a lock-out (refused above when there was none).
    for _ in 0..5 {
        send(
            app.client
                .post(format!("{}/desk/api/login", app.base))
                .json(&json!({"username": "nadia", "password": "wrong password 123"})),
        )
        .await;
    }
    assert_eq!(
        row(&admin.get("/admin/staff").await.ok(), "nadia")["state"],
        "locked"
    );
    admin.post(&unlock, json!({})).await.ok();
    assert_eq!(
        row(&admin.get("/admin/staff").await.ok(), "nadia")["state"],
        "active"
    );

    // Role: refused for one's own account and to the same role; the change ends sessions.
    let role = format!("/admin/staff/{}/role", nadia.id);
    admin
        .post(&role, json!({"role": "agent"}))
        .await
        .assert_code(409, "role_unchanged");
    admin
        .post(
            &format!("/admin/staff/{}/role", admin.id),
            json!({"role": "agent"}),
        )
        .await
        .assert_code(409, "staff_self");
    admin.post(&role, json!({"role": "auditor"})).await.ok();
    assert_eq!(
        row(&admin.get("/admin/staff").await.ok(), "nadia")["role"],
        "auditor"
    );
    nadia.get("/me").await.assert_code(401, "session_required");

    // Disable: signed out and refused at sign-in; twice is refused.
    let meera = admin
        .post(
            "/admin/staff",
            json!({"username": "meera", "role": "auditor"}),
        )
        .await
        .ok();
    let meera_pw = meera["password"].as_str().unwrap().to_string();
    let meera_desk = login(&app, "meera", &meera_pw).await;
    let disable = format!("/admin/staff/{}/disable", meera_desk.id);
    admin.post(&disable, json!({})).await.ok();
    meera_desk
        .get("/me")
        .await
        .assert_code(401, "session_required");
    admin
        .post(&disable, json!({}))
        .await
        .assert_code(409, "staff_disabled");
    admin
        .post("/admin/staff/999999/disable", json!({}))
        .await
        .assert_code(404, "staff_not_found");
    admin
        .post("/admin/staff/abc/disable", json!({}))
        .await
        .assert_code(404, "staff_not_found");

    // The audit log: each change under the admin and their address, as the CLI's rows
    // (same actions) are under the command line.
    let rows = audit_rows(&app).await;
    let mine: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.2 == Some(admin.id) && r.0 != "login_ok")
        .map(|r| (r.0.clone(), r.1.clone().unwrap_or_default()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("staff_created", "nadia"),
        ("working_hours_set", "nadia"),
        ("working_hours_set", "nadia"),
        ("totp_enabled", "nadia"),
        ("staff_unlocked", "nadia"),
        ("staff_role_changed", "nadia"),
        ("staff_created", "meera"),
        ("staff_disabled", "meera"),
    ]
    .iter()
    .map(|(a, t)| (a.to_string(), t.to_string()))
    .collect();
    assert_eq!(mine, expected);
    assert!(rows
        .iter()
        .filter(|r| r.2 == Some(admin.id) && r.0 != "login_ok")
        .all(|r| r.3.as_deref() == Some("127.0.0.1")));
    let role_row = rows.iter().find(|r| r.0 == "staff_role_changed").unwrap();
    assert_eq!(role_row.4.as_deref(), Some("agent -> auditor"));
    // The CLI's own rows for the same action.
    app.cli(&[
        "staff",
        "create",
        "--username",
        "cli.made",
        "--role",
        "auditor",
    ]);
    let rows = audit_rows(&app).await;
    let last = rows.last().unwrap();
    assert_eq!(
        (
            last.0.as_str(),
            last.1.as_deref(),
            last.2,
            last.3.as_deref()
        ),
        ("staff_created", Some("cli.made"), None, None)
    );
}

#[tokio::test]
async fn admin_manages_merchants_and_never_shows_a_secret_again() {
    let app = admin_app().await;
    let admin = staff(&app, "root", "admin").await;
    let listed = admin.get("/admin/merchants").await.ok();
    let first = &listed["merchants"][0];
    let id = first["id"].as_i64().unwrap();
    assert_eq!(first["env"], "test");
    assert_eq!(first["credentials"][0]["client_id"], app.client_id.as_str());
    assert!(!listed.to_string().contains(&app.secret));

    // Rotate: the new secret is in the answer once and works beside the old one.
    let rotate = format!("/admin/merchants/{id}/rotate-secret");
    let rotated = admin
        .post(&rotate, json!({"client_id": app.client_id}))
        .await
        .ok();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    let listed = admin.get("/admin/merchants").await.ok();
    assert!(!listed.to_string().contains(&new_secret));
    assert_eq!(
        listed["merchants"][0]["credentials"][0]["active_secrets"],
        2
    );
    app.call_as(
        &app.client_id,
        &new_secret,
        Method::POST,
        "/user",
        Some(json!({"user_id": "m-1", "phone": "9876543210"})),
    )
    .await
    .ok();
    admin
        .post(&rotate, json!({"client_id": app.client_id}))
        .await
        .assert_code(409, "secret_rotation_pending");
    admin
        .post(&rotate, json!({"client_id": "CF_NOT_HERS"}))
        .await
        .assert_code(404, "client_id_not_found");
    // Revoke: the old secret stops working.
    admin
        .post(
            &format!("/admin/merchants/{id}/revoke-secret"),
            json!({"client_id": app.client_id}),
        )
        .await
        .ok();
    let old = app
        .call_as(
            &app.client_id,
            &app.secret,
            Method::GET,
            "/vkyc?verification_id=x",
            None,
        )
        .await;
    assert_eq!(old.status, 401, "{}", old.body);

    // Webhook URL, rate limit, allow-list: wrong input changes nothing.
    let webhook = format!("/admin/merchants/{id}/webhook");
    admin
        .post(&webhook, json!({"url": "ftp://example.in/hook"}))
        .await
        .assert_code(400, "webhook_url_value_invalid");
    admin
        .post(
            &webhook,
            json!({"url": "https://merchant.example.in/hooks"}),
        )
        .await
        .ok();
    let rate = format!("/admin/merchants/{id}/rate-limit");
    admin
        .post(&rate, json!({"limit": "lots"}))
        .await
        .assert_code(400, "rate_limit_value_invalid");
    admin.post(&rate, json!({"limit": "restricted"})).await.ok();
    let ips = format!("/admin/merchants/{id}/allow-ips");
    admin
        .post(&ips, json!({"ips": ["not-an-address"]}))
        .await
        .assert_code(400, "ip_allowlist_value_invalid");
    admin
        .post(&ips, json!({"ips": []}))
        .await
        .assert_code(400, "ip_allowlist_value_invalid");
    let m = &admin.get("/admin/merchants").await.ok()["merchants"][0];
    assert_eq!(m["webhook_url"], "https://merchant.example.in/hooks");
    assert_eq!(m["rate_limit_per_minute"], 5);
    assert_eq!(m["second_factor"], "none");
    admin
        .post(&ips, json!({"ips": ["127.0.0.1", "10.0.0.0/8"]}))
        .await
        .ok();
    let m = &admin.get("/admin/merchants").await.ok()["merchants"][0];
    assert_eq!(m["second_factor"], "ip");
    assert_eq!(m["ip_allowlist"], json!(["127.0.0.1/32", "10.0.0.0/8"]));
    admin
        .post(
            &format!("/admin/merchants/{id}/second-factor/clear"),
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        admin.get("/admin/merchants").await.ok()["merchants"][0]["second_factor"],
        "none"
    );
    admin.post(&webhook, json!({"url": null})).await.ok();
    assert!(admin.get("/admin/merchants").await.ok()["merchants"][0]["webhook_url"].is_null());
    admin
        .post("/admin/merchants/99999/webhook", json!({"url": null}))
        .await
        .assert_code(404, "merchant_not_found");

    // A new live merchant: its secret once.
    admin
        .post(
            "/admin/merchants",
            json!({"name": "Bank", "env": "production"}),
        )
        .await
        .assert_code(400, "env_value_invalid");
    let created = admin
        .post("/admin/merchants", json!({"name": "Bank", "env": "live"}))
        .await
        .ok();
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("cfsk_ma_prod_"),
        "{created}"
    );
    let listed = admin.get("/admin/merchants").await.ok();
    assert_eq!(listed["merchants"][1]["env"], "live");
    assert!(!listed
        .to_string()
        .contains(created["client_secret"].as_str().unwrap()));
    let actions: Vec<String> = audit_rows(&app)
        .await
        .into_iter()
        .filter(|r| r.2 == Some(admin.id))
        .map(|r| r.0)
        .collect();
    for action in [
        "merchant_secret_rotated",
        "merchant_secret_revoked",
        "merchant_webhook_set",
        "merchant_rate_limit_set",
        "merchant_allowlist_set",
        "merchant_second_factor_cleared",
        "merchant_created",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

/// The merchant's Aadhaar details (no Aadhaar step in the journey).
fn with_aadhaar() -> Value {
    json!({
        "aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
                            "dob": "01-01-1990", "name": "Asha Rao",
                            "photo_link": "https://example.in/p.jpg", "gender": "F"}
    })
}

/// Today's date in IST, as the desk counts days.
fn today_ist() -> chrono::NaiveDate {
    let ist = chrono::FixedOffset::east_opt(19_800).unwrap();
    chrono::Utc::now().with_timezone(&ist).date_naive()
}

#[tokio::test]
async fn admin_a_holiday_closes_the_queue_and_its_slots() {
    let app = admin_app().await;
    let admin = staff(&app, "root", "admin").await;
    let agent = staff(&app, "agent.one", "agent").await;
    agent.post("/agent/online", json!({})).await.ok();

    // The configuration's hours until an admin sets others.
    let hours = admin.get("/admin/hours").await.ok();
    assert_eq!(hours["from_config"], true);
    assert_eq!(hours["working_hours"], "00:00-24:00");

    // A file with a header, today and a later day; a bad file changes nothing.
    let today = today_ist();
    let later = today + chrono::Duration::days(30);
    admin
        .post(
            "/admin/holidays",
            json!({"file": format!("{today}\nnext tuesday\n")}),
        )
        .await
        .assert_code(400, "holidays_file_invalid");
    admin
        .post("/admin/holidays", json!({"dates": ["31-02-2027"]}))
        .await
        .assert_code(400, "dates_value_invalid");
    assert!(app.store.holidays().await.unwrap().is_empty());
    let file = format!(
        "date,name\n{today},Festival\n{},Later\n",
        later.format("%d/%m/%Y")
    );
    let added = admin
        .post("/admin/holidays", json!({"file": file}))
        .await
        .ok();
    assert_eq!(added["added"], 2);
    assert_eq!(
        added["holidays"],
        json!([today.to_string(), later.to_string()])
    );

    // Today is closed: no queue, and no slot today or on the later holiday.
    let c = customer(&app, "adm-holiday", with_aadhaar()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "NO_AGENT_FOUND", "{joined}");
    let slots = c.call(Method::GET, "slots", None).await.ok();
    let ist = chrono::FixedOffset::east_opt(19_800).unwrap();
    let days: Vec<chrono::NaiveDate> = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s["start"].as_str().unwrap())
                .unwrap()
                .with_timezone(&ist)
                .date_naive()
        })
        .collect();
    assert!(!days.is_empty(), "{slots}");
    assert!(!days.contains(&today) && !days.contains(&later), "{slots}");
    assert!(
        days.contains(&(today + chrono::Duration::days(1))),
        "{slots}"
    );
    // A booking on the holiday is refused.
    let on_holiday = format!("{}T10:00:00+05:30", later);
    c.call(
        Method::POST,
        "slots",
        Some(json!({"slot_start": on_holiday})),
    )
    .await
    .assert_code(400, "slot_start_value_invalid");

    // Working hours the desk never has are refused; removing today reopens the queue.
    admin
        .post(
            "/admin/hours",
            json!({"working_days": ["mon"], "working_hours": "18:00-09:00"}),
        )
        .await
        .assert_code(400, "working_hours_value_invalid");
    assert!(app.store.desk_hours().await.unwrap().is_none());
    admin
        .post("/admin/holidays/remove", json!({"date": today.to_string()}))
        .await
        .ok();
    admin
        .post("/admin/holidays/remove", json!({"date": today.to_string()}))
        .await
        .assert_code(409, "holiday_not_found");
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert!(
        ["USER_QUEUED", "AGENT_ASSIGNED_TO_USER"].contains(&joined["outcome"].as_str().unwrap()),
        "{joined}"
    );

    // Days set by an admin: today off closes the queue for the next customer too.
    let weekday = |d: chrono::NaiveDate| {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            [chrono::Datelike::weekday(&d).num_days_from_monday() as usize]
    };
    let others: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .into_iter()
        .filter(|d| *d != weekday(today))
        .collect();
    let set = admin
        .post(
            "/admin/hours",
            json!({"working_days": others, "working_hours": "00:00-24:00"}),
        )
        .await
        .ok();
    assert_eq!(set["from_config"], false);
    let d = customer(&app, "adm-closed-day", with_aadhaar()).await;
    d.pass_checks().await;
    let joined = d.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "NO_AGENT_FOUND", "{joined}");
    let back = admin
        .post("/admin/hours", json!({"default": true}))
        .await
        .ok();
    assert_eq!(back["from_config"], true);
    let actions: Vec<String> = audit_rows(&app).await.into_iter().map(|r| r.0).collect();
    for action in ["holidays_added", "holiday_removed", "desk_hours_set"] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}

/// The calls' questions and bank versions, oldest call first.
async fn calls(app: &TestApp) -> Vec<(Value, Value)> {
    use sqlx::Row;
    let pool = app.pool().await;
    let rows = sqlx::query("SELECT questions, question_banks FROM calls ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let q: String = r.try_get("questions").unwrap();
            let b: Option<String> = r.try_get("question_banks").unwrap();
            (
                serde_json::from_str(&q).unwrap(),
                b.map(|b| serde_json::from_str(&b).unwrap())
                    .unwrap_or(Value::Null),
            )
        })
        .collect()
}

async fn assigned(app: &TestApp, id: &str) {
    let c = customer(app, id, with_aadhaar()).await;
    c.pass_checks().await;
    let joined = c.call(Method::POST, "queue", None).await.ok();
    assert_eq!(joined["outcome"], "USER_QUEUED", "{joined}");
    for _ in 0..75 {
        if app.status(id).await["sub_status"] == "AGENT_ASSIGNED_TO_USER" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{id} was never assigned");
}

#[tokio::test]
async fn admin_question_banks_are_versioned_and_a_past_call_keeps_its_questions() {
    let app = admin_app().await;
    let admin = staff(&app, "root", "admin").await;
    for name in ["qa.one", "qa.two"] {
        staff(&app, name, "agent")
            .await
            .post("/agent/online", json!({}))
            .await
            .ok();
    }
    // Never edited: the configuration's questions, all asked.
    let bank = admin.get("/admin/questions").await.ok();
    assert_eq!(bank["version"], 0);
    assert_eq!(bank["questions"].as_array().unwrap().len(), 3);
    assert!(bank["questions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["mandatory"] == true));

    // Wrong input: nothing saved.
    for (body, code) in [
        (json!({"questions": []}), "base_version_missing"),
        (
            json!({"base_version": 0, "questions": [{"en": " "}]}),
            "questions_value_invalid",
        ),
        (
            json!({"base_version": 0, "questions": [{"en": "a", "mandatory": "yes"}]}),
            "questions_value_invalid",
        ),
        (
            json!({"base_version": 0, "questions": [{"en": "a", "mandatory": true}], "random_count": 1}),
            "random_count_value_invalid",
        ),
    ] {
        admin
            .post("/admin/questions", body)
            .await
            .assert_code(400, code);
    }
    assert!(app.store.question_bank(0, None).await.unwrap().is_none());

    let v1 = json!({"base_version": 0, "random_count": 1, "questions": [
        {"en": "What is your full name?", "hi": "आपका पूरा नाम क्या है?", "mandatory": true},
        {"en": "Which city do you live in?", "hi": "आप किस शहर में रहते हैं?"},
        {"en": "What is your occupation?"},
    ]});
    assert_eq!(
        admin.post("/admin/questions", v1.clone()).await.ok()["version"],
        1
    );
    // Saving on a stale version is refused.
    admin
        .post("/admin/questions", v1)
        .await
        .assert_code(409, "questions_changed");
    // The merchant's own bank.
    let merchant_id = admin.get("/admin/merchants").await.ok()["merchants"][0]["id"]
        .as_i64()
        .unwrap();
    let own = json!({"base_version": 0, "questions": [{"en": "Why are you opening this account?", "mandatory": true}]});
    admin
        .post(&format!("/admin/merchants/{merchant_id}/questions"), own)
        .await
        .ok();

    assigned(&app, "adm-q-1").await;
    let (first, banks) = calls(&app).await.remove(0);
    assert_eq!(banks, json!({"deployment": 1, "merchant": 1}));
    let first = first.as_array().unwrap().clone();
    let deployment: Vec<&Value> = first
        .iter()
        .filter(|q| q["source"] == "deployment")
        .collect();
    assert_eq!(
        deployment.len(),
        2,
        "the mandatory one and one at random: {first:?}"
    );
    let name = deployment
        .iter()
        .find(|q| q["question"] == "What is your full name?")
        .unwrap();
    assert_eq!(name["question_hi"], "आपका पूरा नाम क्या है?");
    assert_eq!(name["bank_version"], 1);
    assert!(first
        .iter()
        .any(|q| q["source"] == "merchant_bank"
            && q["question"] == "Why are you opening this account?"));

    // Version 2: a call assigned now asks the new questions; the first keeps its own.
    let v2 = json!({"base_version": 1, "random_count": 0, "questions": [
        {"en": "Please show your PAN card.", "hi": "कृपया अपना पैन कार्ड दिखाएँ।", "mandatory": true},
    ]});
    assert_eq!(admin.post("/admin/questions", v2).await.ok()["version"], 2);
    assigned(&app, "adm-q-2").await;
    let all = calls(&app).await;
    assert_eq!(all[0].0.as_array().unwrap(), &first);
    let second = all[1].0.as_array().unwrap();
    let deployment: Vec<&Value> = second
        .iter()
        .filter(|q| q["source"] == "deployment")
        .collect();
    assert_eq!(deployment.len(), 1);
    assert_eq!(deployment[0]["question"], "Please show your PAN card.");
    assert_eq!(deployment[0]["question_hi"], "कृपया अपना पैन कार्ड दिखाएँ।");
    assert_eq!(all[1].1, json!({"deployment": 2, "merchant": 1}));
    // Version 1 can still be read as it was.
    let old = admin.get("/admin/questions?version=1").await.ok();
    assert_eq!(old["questions"].as_array().unwrap().len(), 3);
    admin
        .get("/admin/questions?version=9")
        .await
        .assert_code(404, "version_not_found");
    let saved: Vec<_> = audit_rows(&app)
        .await
        .into_iter()
        .filter(|r| r.0 == "questions_saved")
        .map(|r| r.1.unwrap())
        .collect();
    assert_eq!(
        saved,
        [
            "deployment questions",
            &format!("merchant {merchant_id} questions"),
            "deployment questions"
        ]
    );
}
