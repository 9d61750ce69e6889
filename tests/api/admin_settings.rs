//! The admin console's question banks and the desk's hours and holidays: a holiday
//! closes the queue and its slots; a call assigned after a bank edit carries the new
//! questions while an earlier call keeps its own.

use crate::admin::{admin_app, audit_rows};
use crate::calls::staff;
use crate::helpers::*;
use crate::journey::customer;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

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
