//! Retention: what the rules purge and when, the tombstone a purge leaves (the API still
//! answers for the id, with its personal fields null and a header saying since when),
//! legal holds from the command line and the admin console, and the relationship's end
//! from the merchant API.

use crate::calls::{agent, calls_app, decided, staff, Desk};
use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;
use vkyc::workers::purge::purge_due;

const DAY: i64 = 86_400_000;
const PURGED: &str = "x-vkyc-personal-data-purged-at";

/// The test merchant as a live one (the sandbox rule purges test merchants' data after
/// 30 days whatever its state; these tests are about the live rules).
async fn live(app: &TestApp) {
    sqlx::query("UPDATE merchants SET env = 'live'")
        .execute(&app.pool().await)
        .await
        .unwrap();
}

/// `vkyc ...` expected to fail: its standard error.
fn cli_fails(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(args)
        .env("VKYC_DATA_DIR", app._dir.path())
        .env("VKYC_DATABASE_URL", &app.database_url)
        .env_remove("VKYC_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "vkyc {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

async fn reference(app: &TestApp, id: &str) -> i64 {
    app.status(id).await["reference_id"].as_i64().unwrap()
}

async fn audit(auditor: &Desk<'_>, app: &TestApp, id: &str, decision: &str) {
    let reference = reference(app, id).await;
    auditor
        .post(
            &format!("/audit/cases/{reference}/decision"),
            json!({"decision": decision, "remarks": "Asha Rao's papers checked"}),
        )
        .await
        .ok();
}

async fn count(app: &TestApp, sql: &str, id: i64) -> i64 {
    sqlx::query(sql)
        .bind(id)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn get_vkyc(app: &TestApp, id: &str) -> Reply {
    app.call(Method::GET, &format!("/vkyc?verification_id={id}"), None)
        .await
}

async fn relationship_end(app: &TestApp, body: Value) -> Reply {
    app.call(Method::POST, "/vkyc/relationship-end", Some(body))
        .await
}

#[tokio::test]
async fn retention_purges_what_is_due_keeps_a_tombstone_and_never_a_held_case() {
    let app = calls_app(600, 600).await;
    live(&app).await;
    let ravi = agent(&app, "ravi").await;
    let audra = staff(&app, "audra", "auditor").await;
    let now = vkyc::clock::now_ms();

    // A: rejected by the agent and the auditor (closed); B: approved (kept until the
    // relationship ends); C and D: links that expired (closed), D on legal hold;
    // E: in progress.
    let (_, call_a) = decided(&app, &ravi, "ret_a", "rejected").await;
    audit(&audra, &app, "ret_a", "rejected").await;
    let (_, call_b) = decided(&app, &ravi, "ret_b", "approved").await;
    audit(&audra, &app, "ret_b", "approved").await;
    for id in ["ret_c", "ret_d"] {
        app.create_user(&format!("{id}_user")).await;
        app.create_vkyc(id, &format!("{id}_user")).await;
    }
    vkyc::workers::expiry::expire_due(&app.store, now + 400 * DAY)
        .await
        .unwrap();
    app.create_user("ret_e_user").await;
    app.create_vkyc("ret_e", "ret_e_user").await;
    for (id, sub) in [
        ("ret_a", "AUDITOR_REJECTED"),
        ("ret_b", "AUDITOR_APPROVED"),
        ("ret_c", "VKYC_EXPIRED"),
        ("ret_d", "VKYC_EXPIRED"),
        ("ret_e", "LINK_GENERATED"),
    ] {
        assert_eq!(app.status(id).await["sub_status"], sub);
    }
    let (a, b) = (
        reference(&app, "ret_a").await,
        reference(&app, "ret_b").await,
    );
    // A's recording and its sidecar, where the call row says.
    let webm = app._dir.path().join(format!("{call_a}.webm"));
    let sidecar = app._dir.path().join(format!("{call_a}.json"));
    std::fs::write(&webm, b"webm bytes").unwrap();
    std::fs::write(&sidecar, br#"{"gps": {"latitude": 28.61}}"#).unwrap();
    // Sealed: its key is in the row. And a side copy the desk made of it.
    let sides = app._dir.path().join("recordings/sides");
    std::fs::create_dir_all(&sides).unwrap();
    let side = sides.join(format!("{call_a}-customer-0123456789abcdef.webm"));
    std::fs::write(&side, b"side bytes").unwrap();
    sqlx::query("UPDATE calls SET recording_path = $1, recording_key = $2 WHERE id = $3")
        .bind(webm.display().to_string())
        .bind(app.key.seal(&[7u8; 32]))
        .bind(call_a)
        .execute(&app.pool().await)
        .await
        .unwrap();
    let held = app.cli(&[
        "case",
        "hold",
        "--verification-id",
        "ret_d",
        "--reason",
        "court order 17/2026",
    ]);
    assert!(held.contains("is on legal hold"), "{held}");
    assert!(cli_fails(
        &app,
        &[
            "case",
            "hold",
            "--verification-id",
            "ret_d",
            "--reason",
            "again"
        ]
    )
    .contains("on hold already"));
    assert!(cli_fails(
        &app,
        &["case", "hold", "--verification-id", "nope", "--reason", "x"]
    )
    .contains("no such case"));

    // The report names what falls due in the next 200 days: the closed cases not held.
    let report = app.cli(&["retention", "report", "--days", "200"]);
    let listed: Vec<&str> = report
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    assert_eq!(listed.len(), 2, "{report}");
    assert!(
        listed.contains(&"ret_a") && listed.contains(&"ret_c"),
        "{report}"
    );
    assert!(report.contains("\tclosed\t"), "{report}");

    // Nothing is due yet.
    let history_before = app
        .call(Method::GET, "/vkyc/history?verification_id=ret_a", None)
        .await
        .ok();
    assert_eq!(
        purge_due(&app.store, &app.config, now).await.unwrap(),
        Default::default()
    );

    // 181 days on: A and C are purged, their files deleted; B, D and E are not.
    let pass = purge_due(&app.store, &app.config, now + 181 * DAY)
        .await
        .unwrap();
    // A's recording, its sidecar and its side copies (one deletion: the call's copies).
    assert_eq!((pass.requests, pass.files, pass.files_failed), (2, 3, 0));
    assert!(!webm.exists() && !sidecar.exists() && !side.exists());
    let tomb = get_vkyc(&app, "ret_a").await;
    assert_eq!(tomb.status, 200);
    assert!(tomb.headers.contains_key(PURGED), "{:?}", tomb.headers);
    assert_eq!(tomb.body["sub_status"], "AUDITOR_REJECTED");
    assert_eq!(tomb.body["reference_id"], a);
    for field in ["recording_link", "agent_remarks", "auditor_remarks"] {
        assert_eq!(tomb.body[field], Value::Null, "{field}: {}", tomb.body);
    }
    let history_after = app
        .call(Method::GET, "/vkyc/history?verification_id=ret_a", None)
        .await
        .ok();
    assert_eq!(history_after["history"], history_before["history"]);
    for sql in [
        "SELECT COUNT(*) FROM aadhaar_kyc WHERE request_id = $1",
        "SELECT COUNT(*) FROM captures WHERE call_id IN (SELECT id FROM calls WHERE request_id = $1)",
        "SELECT COUNT(*) FROM calls WHERE request_id = $1 AND (pan IS NOT NULL OR remarks IS NOT NULL \
           OR recording_path IS NOT NULL OR recording_key IS NOT NULL)",
        "SELECT COUNT(*) FROM users u JOIN requests r ON r.user_ref = u.id WHERE r.id = $1 \
           AND (u.name IS NOT NULL OR u.phone <> '')",
        "SELECT COUNT(*) FROM journey_steps WHERE request_id = $1 AND evidence IS NOT NULL",
        "SELECT COUNT(*) FROM requests WHERE id = $1 AND aadhaar_details IS NOT NULL",
        "SELECT COUNT(*) FROM consents WHERE request_id = $1 AND (ip <> '' OR user_agent <> '')",
        "SELECT COUNT(*) FROM webhook_events WHERE request_id = $1 AND body LIKE '%Asha%'",
    ] {
        assert_eq!(count(&app, sql, a).await, 0, "{sql}");
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM staff_audit WHERE action = 'personal_data_purged' \
             AND target = CAST($1 AS TEXT)",
            a
        )
        .await,
        1
    );
    // The consent itself stays: its text and when it was given.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM consents WHERE request_id = $1",
            a
        )
        .await,
        1
    );
    // B keeps everything.
    assert!(!get_vkyc(&app, "ret_b").await.headers.contains_key(PURGED));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM captures WHERE call_id = $1",
            call_b
        )
        .await,
        2
    );
    assert!(get_vkyc(&app, "ret_c").await.headers.contains_key(PURGED));
    assert!(!get_vkyc(&app, "ret_d").await.headers.contains_key(PURGED));
    assert!(!get_vkyc(&app, "ret_e").await.headers.contains_key(PURGED));
    // A second pass finds nothing more.
    assert_eq!(
        purge_due(&app.store, &app.config, now + 181 * DAY)
            .await
            .unwrap(),
        Default::default()
    );

    // The audit trail still holds: the purged rows' links are checked without their
    // personal data, and the purge is itself a link of the staff chain.
    let verified = app.cli(&["audit", "verify"]);
    assert!(!verified.contains("BROKEN"), "{verified}");

    // The admin's case file shows the tombstone.
    let admin = staff(&app, "boss", "admin").await;
    let file = admin.get(&format!("/cases/{a}")).await.ok();
    assert!(
        file["retention"]["personal_data_purged_at"].is_string(),
        "{file}"
    );
    assert_eq!(file["user"]["name"], Value::Null);

    // Released, D is purged on the next pass.
    app.cli(&[
        "case",
        "release",
        "--verification-id",
        "ret_d",
        "--reason",
        "order lifted",
    ]);
    let pass = purge_due(&app.store, &app.config, now + 181 * DAY)
        .await
        .unwrap();
    assert_eq!(pass.requests, 1);
    assert!(get_vkyc(&app, "ret_d").await.headers.contains_key(PURGED));

    // The admin console holds B; agents and auditors may not.
    ravi.post(&format!("/admin/cases/{b}/hold"), json!({"reason": "x"}))
        .await
        .assert_code(403, "role_forbidden");
    audra
        .post(&format!("/admin/cases/{b}/hold"), json!({"reason": "x"}))
        .await
        .assert_code(403, "role_forbidden");
    admin
        .post(&format!("/admin/cases/{b}/hold"), json!({}))
        .await
        .assert_code(400, "reason_missing");
    admin
        .post(
            &format!("/admin/cases/{b}/hold"),
            json!({"reason": "complaint 4411"}),
        )
        .await
        .ok();
    let file = admin.get(&format!("/cases/{b}")).await.ok();
    assert_eq!(file["retention"]["legal_hold"]["reason"], "complaint 4411");
    let audited = app.store.staff_audit(Some(admin.id), 50).await.unwrap();
    assert!(audited
        .iter()
        .any(|r| r.action == "case_hold" && r.target.as_deref() == Some(&b.to_string())));

    // The merchant says B's relationship ended in 2020: kept until 2025, so due now,
    // but held; released, it is purged.
    let ended = relationship_end(
        &app,
        json!({"verification_id": "ret_b", "relationship_end": "2020-01-01"}),
    )
    .await
    .ok();
    assert_eq!(ended["retained_until"], "2025-01-01");
    assert_eq!(ended["reference_id"], b);
    assert_eq!(
        purge_due(&app.store, &app.config, now)
            .await
            .unwrap()
            .requests,
        0
    );
    admin
        .post(
            &format!("/admin/cases/{b}/release"),
            json!({"reason": "complaint closed"}),
        )
        .await
        .ok();
    assert_eq!(
        purge_due(&app.store, &app.config, now)
            .await
            .unwrap()
            .requests,
        1
    );
    assert!(get_vkyc(&app, "ret_b").await.headers.contains_key(PURGED));
    relationship_end(
        &app,
        json!({"verification_id": "ret_b", "relationship_end": "2020-01-01"}),
    )
    .await
    .assert_code(409, "vkyc_personal_data_purged");
    admin
        .post(
            &format!("/admin/cases/{b}/hold"),
            json!({"reason": "too late"}),
        )
        .await
        .assert_code(409, "case_purged");
}

#[tokio::test]
async fn relationship_end_refuses_wrong_input_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("re_user").await;
    app.create_vkyc("re_1", "re_user").await;
    for (body, status, code) in [
        (
            json!({"verification_id": "re_1"}),
            400,
            "relationship_end_missing",
        ),
        (
            json!({"verification_id": "re_1", "relationship_end": "2020-13-01"}),
            400,
            "relationship_end_value_invalid",
        ),
        (
            json!({"verification_id": "re_1", "relationship_end": "2999-01-01"}),
            400,
            "relationship_end_value_invalid",
        ),
        (
            json!({"verification_id": "re_1", "relationship_end": 20200101}),
            400,
            "relationship_end_value_invalid",
        ),
        (
            json!({"verification_id": "nope", "relationship_end": "2020-01-01"}),
            404,
            "verification_id_not_found",
        ),
        (
            json!({"relationship_end": "2020-01-01"}),
            400,
            "verification_id_missing",
        ),
        (
            json!({"verification_id": "re_1", "relationship_end": "2020-01-01"}),
            409,
            "relationship_end_not_applicable",
        ),
    ] {
        let reply = relationship_end(&app, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.body["code"], code, "{body}: {}", reply.body);
    }
    let set = count(
        &app,
        "SELECT COUNT(*) FROM requests WHERE relationship_end IS NOT NULL AND id > $1",
        0,
    )
    .await;
    assert_eq!(set, 0);
}
