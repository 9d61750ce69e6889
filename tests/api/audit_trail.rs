//! The tamper-evident audit trail as an operator meets it: `vkyc audit verify` over a
//! deployment that did real work passes; a row changed behind vkyc's back is named, and
//! the command fails; writers racing on one request do not fork its chain; rows written
//! before the chain existed are chained by the next start; a chain rewritten with fresh
//! hashes is caught by the daily anchor kept outside the database.

use crate::helpers::{spawn_app_with, TestApp};
use crate::journey::customer;
use serde_json::json;
use sqlx::Row;
use vkyc::domain::status::{self, Event};
use vkyc::store::{Backend, Changes};

fn always_open(config: &mut vkyc::config::Config) {
    config.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    config.journey.working_hours = "00:00-24:00".into();
}

fn with_aadhaar() -> serde_json::Value {
    json!({"aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
        "dob": "01-01-1990", "name": "Asha Rao", "photo_link": "https://example.in/p.jpg",
        "gender": "F"}})
}

/// `vkyc` on the app's data directory and database, with `env`; (exit code, stdout).
fn vkyc(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(args)
        .env("VKYC_DATA_DIR", app._dir.path())
        .env("VKYC_DATABASE_URL", &app.database_url)
        .envs(env.iter().copied())
        .env_remove("VKYC_CONFIG")
        .env_remove("VKYC_MASTER_KEY")
        .output()
        .expect("vkyc runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

fn broken_lines(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("BROKEN "))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

async fn request_id(app: &TestApp, verification_id: &str) -> i64 {
    app.status(verification_id).await["reference_id"]
        .as_i64()
        .unwrap()
}

/// Lets the test change rows of the append-only staff audit, as someone with the
/// database's owner rights could.
async fn allow_staff_audit_changes(app: &TestApp, pool: &sqlx::AnyPool) {
    let sql = match app.store.backend() {
        Backend::Sqlite => "DROP TRIGGER staff_audit_no_update",
        Backend::Postgres => "ALTER TABLE staff_audit DISABLE TRIGGER staff_audit_append_only",
    };
    sqlx::query(sql).execute(pool).await.unwrap();
}

#[tokio::test]
async fn verify_passes_on_real_work_and_names_exactly_the_rows_changed_in_sql() {
    let app = spawn_app_with(always_open).await;
    for id in ["chain-a", "chain-b", "chain-c"] {
        let c = customer(&app, id, with_aadhaar()).await;
        c.pass_checks().await;
    }
    app.cli(&["staff", "create", "--username", "asha", "--role", "agent"]);
    app.cli(&["staff", "create", "--username", "ravi", "--role", "auditor"]);
    app.cli(&["staff", "disable", "--username", "ravi"]);
    app.cli(&["audit", "anchor"]);

    let (code, out) = vkyc(&app, &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: every chain and anchor holds"), "{out}");
    let pool = app.pool().await;
    // Every move, closed step and consent of each request is a link.
    let b = request_id(&app, "chain-b").await;
    let links: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM history WHERE request_id = $1) \
         + (SELECT COUNT(*) FROM journey_steps WHERE request_id = $1 AND ended_at IS NOT NULL) \
         + (SELECT COUNT(*) FROM consents WHERE request_id = $1) AS n",
    )
    .bind(b)
    .fetch_one(&pool)
    .await
    .unwrap()
    .get("n");
    let head: i64 = sqlx::query("SELECT seq FROM audit_heads WHERE chain = $1")
        .bind(b)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("seq");
    assert!(links >= 9, "{links}");
    assert_eq!(head, links);

    // One move of chain-b and one staff action, changed behind vkyc's back.
    let history_id: i64 = sqlx::query(
        "SELECT id FROM history WHERE request_id = $1 AND event <> 'created' ORDER BY id LIMIT 1",
    )
    .bind(b)
    .fetch_one(&pool)
    .await
    .unwrap()
    .get("id");
    sqlx::query("UPDATE history SET actor = 'agent' WHERE id = $1")
        .bind(history_id)
        .execute(&pool)
        .await
        .unwrap();
    let staff_id: i64 = sqlx::query("SELECT id FROM staff_audit WHERE action = 'staff_disabled'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("id");
    allow_staff_audit_changes(&app, &pool).await;
    sqlx::query("UPDATE staff_audit SET action = 'staff_unlocked' WHERE id = $1")
        .bind(staff_id)
        .execute(&pool)
        .await
        .unwrap();

    let (code, out) = vkyc(&app, &["audit", "verify"], &[]);
    assert_eq!(code, 1, "{out}");
    let broken = broken_lines(&out);
    assert_eq!(broken.len(), 2, "{out}");
    assert!(
        broken[0].starts_with(&format!("BROKEN request {b}: history row {history_id}: ")),
        "{out}"
    );
    assert!(
        broken[1].starts_with(&format!("BROKEN staff chain: staff_audit row {staff_id}: ")),
        "{out}"
    );
    assert!(out.contains("does not hold"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_on_one_request_and_on_the_staff_audit_do_not_fork_the_chains() {
    let app = spawn_app_with(always_open).await;
    let _c = customer(&app, "race", with_aadhaar()).await;
    let id = request_id(&app, "race").await;
    let walk = [
        Event::AadhaarFailed,
        Event::AadhaarVerified,
        Event::ProxyDetected,
        Event::IpOutsideIndia,
        Event::IpVerified,
        Event::LocationPermissionDenied,
        Event::LocationVerified,
    ];
    // Where each event leads, one after the other.
    let mut targets = Vec::new();
    let mut state = app
        .store
        .request_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .sub_status;
    for event in walk {
        state = status::next(state, event).unwrap();
        targets.push(state);
    }
    let mut tasks = Vec::new();
    // Two movers try each event at the same moment: one wins, the other finds the
    // request moved; they meet again before the next event.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    for _ in 0..2 {
        let store = app.store.clone();
        let barrier = barrier.clone();
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            for (event, target) in walk.into_iter().zip(targets) {
                loop {
                    let request = store.request_by_id(id).await.unwrap().unwrap();
                    if request.sub_status == target {
                        break;
                    }
                    match store
                        .apply(&request, &[event], event.actor(), None, &Changes::default())
                        .await
                    {
                        Ok(_) | Err(vkyc::store::MoveError::Lost) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                barrier.wait().await;
            }
        }));
    }
    // Consents and staff actions, all at once.
    for n in 0..12 {
        let store = app.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .insert_consent(id, "en", "text", "digest", "127.0.0.1", &format!("ua-{n}"))
                .await
                .unwrap();
            store
                .insert_staff_audit(None, n, "race", Some(&n.to_string()), None, None)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let pool = app.pool().await;
    let moves: i64 = sqlx::query("SELECT COUNT(*) AS n FROM history WHERE request_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(moves, 1 + walk.len() as i64, "each event moved once");
    // Seqs 1..n, each once, across the request's tables.
    let seqs: Vec<i64> = sqlx::query(
        "SELECT chain_seq FROM history WHERE request_id = $1 \
         UNION ALL SELECT chain_seq FROM consents WHERE request_id = $1 \
         UNION ALL SELECT chain_seq FROM journey_steps WHERE request_id = $1 \
         AND ended_at IS NOT NULL ORDER BY 1",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs.len() as i64, moves + 12 + 12);
    let (code, out) = vkyc(&app, &["audit", "verify"], &[]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn rows_from_before_the_chain_are_chained_and_an_anchor_catches_a_rewritten_chain() {
    let app = spawn_app_with(always_open).await;
    let c = customer(&app, "old", with_aadhaar()).await;
    c.pass_checks().await;
    let id = request_id(&app, "old").await;
    let pool = app.pool().await;
    let anchors = tempfile::tempdir().unwrap();
    let anchor_dir = anchors.path().join("anchors");
    let env = [("VKYC_AUDIT__ANCHOR_DIR", anchor_dir.to_str().unwrap())];

    // A row written the way versions before the chain wrote it: not a link yet.
    let old: i64 = sqlx::query(
        "INSERT INTO history (request_id, at, actor, event, from_status, from_sub_status, \
         to_status, to_sub_status) VALUES ($1, 1, 'system', 'imported', 'RECEIVED', \
         'LINK_GENERATED', 'RECEIVED', 'LINK_GENERATED') RETURNING id",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap()
    .get("id");
    let (code, out) = vkyc(&app, &["audit", "verify"], &env);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        broken_lines(&out),
        [format!(
            "BROKEN request {id}: history row {old}: the row is not in the chain (added \
             outside vkyc)"
        )]
    );
    // The upgrade path (`vkyc migrate`, or the server's start) chains it, and says so.
    let (code, out) = vkyc(&app, &["migrate"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 rows added to the audit trail's chains"),
        "{out}"
    );
    let recorded: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM staff_audit WHERE action = 'audit_chain_extended'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
    assert_eq!(recorded, 1);

    // (The server takes its first anchor a minute after it starts; this one covers the request.)
    let (code, out) = vkyc(&app, &["audit", "anchor"], &env);
    assert_eq!(code, 0, "{out}");
    let file = std::fs::read_to_string(anchor_dir.join("anchors.jsonl")).unwrap();
    assert_eq!(file.lines().count(), 1);
    let anchor: serde_json::Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    let anchor_id = anchor["id"].as_i64().unwrap();
    assert!(out.starts_with(&format!("anchor {anchor_id}: ")), "{out}");
    assert!(anchor["public_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let (code, out) = vkyc(&app, &["audit", "verify"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{} anchors checked", anchor_id + 1)),
        "the database's and the file's: {out}"
    );

    // Someone changes a move and rebuilds the request's whole chain with fresh hashes:
    // the chain holds in itself, the anchor kept outside shows it was rewritten.
    let first_move: i64 =
        sqlx::query("SELECT id FROM history WHERE request_id = $1 AND event = 'created'")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("id");
    sqlx::query("UPDATE history SET actor = 'agent' WHERE id = $1")
        .bind(first_move)
        .execute(&pool)
        .await
        .unwrap();
    for table in ["history", "journey_steps"] {
        sqlx::query(&format!(
            "UPDATE {table} SET chain_seq = NULL, personal_digest = NULL, chain_hash = NULL \
             WHERE request_id = $1"
        ))
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    let consent = match app.store.backend() {
        Backend::Sqlite => "DROP TRIGGER consents_chained_once",
        Backend::Postgres => "ALTER TABLE consents DISABLE TRIGGER consents_append_only",
    };
    sqlx::query(consent).execute(&pool).await.unwrap();
    sqlx::query(
        "UPDATE consents SET chain_seq = NULL, personal_digest = NULL, chain_hash = NULL \
         WHERE request_id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM audit_heads WHERE chain = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let (code, out) = vkyc(&app, &["migrate"], &env);
    assert_eq!(code, 0, "{out}");
    let (code, out) = vkyc(&app, &["audit", "verify"], &env);
    assert_eq!(code, 1, "{out}");
    let broken = broken_lines(&out);
    assert_eq!(broken.len(), 1, "{out}");
    assert!(
        broken[0].starts_with(&format!("BROKEN request {id}: "))
            && broken[0].ends_with("recorded another hash for this link (the chain was rewritten)"),
        "{out}"
    );

    // Removing the anchor from the database does not help: the file still has it.
    sqlx::query("DELETE FROM audit_anchor_entries")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_anchors")
        .execute(&pool)
        .await
        .unwrap();
    let (code, out) = vkyc(&app, &["audit", "verify"], &env);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("ANCHOR anchor {anchor_id} (in "))
            && out.contains("is missing from the database"),
        "{out}"
    );
}
