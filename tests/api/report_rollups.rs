//! The funnel and failures reports read daily roll-ups kept with each change. These tests
//! make a mix of moves (legal walks of the status machine, retried checks, journey steps,
//! expiries) and check the roll-ups against a recomputation over the history itself;
//! that racing writers count a request once; and that the migration fills the roll-ups
//! with the same statements as the rebuild.

use crate::helpers::*;
use sqlx::Row;
use vkyc::domain::status::{self, Actor, Event};
use vkyc::store::{Changes, Range};

const IST_MS: i64 = 19_800_000;
const DAY_MS: i64 = 86_400_000;

/// Today and tomorrow (IST), where every request of a test is created.
fn around_today() -> Range {
    let day = (vkyc::clock::now_ms() + IST_MS) / DAY_MS;
    Range {
        from_ms: (day - 1) * DAY_MS - IST_MS,
        to_ms: (day + 2) * DAY_MS - IST_MS,
        merchant: None,
    }
}

async fn request_id(app: &TestApp, verification_id: &str) -> i64 {
    app.create_user(&format!("u-{verification_id}")).await;
    app.create_vkyc(verification_id, &format!("u-{verification_id}"))
        .await;
    sqlx::query("SELECT id FROM requests WHERE verification_id = $1")
        .bind(verification_id)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
        .get("id")
}

/// Applies `event` to the request as it is now; whether it was applied.
async fn try_move(app: &TestApp, id: i64, event: Event) -> bool {
    let request = app.store.request_by_id(id).await.unwrap().unwrap();
    if status::next(request.sub_status, event).is_err() {
        return false;
    }
    app.store
        .apply(&request, &[event], event.actor(), None, &Changes::default())
        .await
        .is_ok()
}

async fn assert_rollups_equal_history(app: &TestApp) {
    let range = around_today();
    let funnel = app.store.report_funnel(&range).await.unwrap();
    assert!(!funnel.is_empty());
    assert_eq!(funnel, app.store.recompute_funnel(&range).await.unwrap());
    let failures = app.store.report_failures(&range).await.unwrap();
    assert_eq!(
        failures,
        app.store.recompute_failures(&range).await.unwrap()
    );
}

#[tokio::test]
async fn rollups_equal_a_recomputation_over_the_history_after_a_mix_of_moves() {
    let app = spawn_app().await;
    // Events that make walks through the checks, the queue, calls and decisions, with
    // failures and retries on the way.
    let walk = [
        Event::AadhaarFailed,
        Event::AadhaarVerified,
        Event::ProxyDetected,
        Event::IpOutsideIndia,
        Event::CheckTechnicalFailure,
        Event::IpVerified,
        Event::LocationPermissionDenied,
        Event::LocationOutsideIndia,
        Event::LocationVerified,
        Event::AudioCheckFailed,
        Event::VideoCheckFailed,
        Event::DeviceCheckPassed,
        Event::Queued,
        Event::AgentAssigned,
        Event::InviteRejected,
        Event::InviteAccepted,
        Event::UserDroppedOff,
        Event::AgentApproved,
        Event::AgentRejected,
        Event::AgentUnableToValidate,
        Event::AuditorApproved,
        Event::AuditorRejected,
    ];
    let mut seed: u64 = 7;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % n
    };
    let mut ids = Vec::new();
    let mut applied = 0;
    for i in 0..24 {
        let id = request_id(&app, &format!("mix-{i}")).await;
        ids.push(id);
        if i % 4 != 0 {
            app.store.open_step(id, "consent").await.unwrap();
            app.store.open_step(id, "location").await.unwrap();
        }
        // Up to 40 tries of events picked at random; the illegal ones are skipped.
        let stop = next(40);
        for _ in 0..stop {
            if try_move(&app, id, walk[next(walk.len())]).await {
                applied += 1;
            }
        }
    }
    assert!(applied > 40, "only {applied} moves applied");
    // Some links expire, in one batch (the expiry worker's path).
    let mut due = Vec::new();
    for &id in ids.iter().step_by(3) {
        let request = app.store.request_by_id(id).await.unwrap().unwrap();
        if status::next(request.sub_status, Event::LinkExpired).is_ok() {
            due.push(request);
        }
    }
    assert!(!due.is_empty());
    app.store
        .apply_each(&due, Event::LinkExpired, Actor::System)
        .await
        .unwrap();
    assert_rollups_equal_history(&app).await;
    let funnel = app.store.report_funnel(&around_today()).await.unwrap();
    let total = |f: fn(&vkyc::store::FunnelRow) -> i64| funnel.iter().map(f).sum::<i64>();
    assert_eq!(total(|r| r.created), 24);
    assert_eq!(total(|r| r.opened), 18);
    assert!(total(|r| r.expired) >= 1);
    assert!(total(|r| r.ip_failed) >= 1);

    // A rebuild from the base tables (what the migration does) gives the same numbers.
    app.store.rebuild_report_rollups().await.unwrap();
    assert_eq!(
        app.store.report_funnel(&around_today()).await.unwrap(),
        funnel
    );
    assert_rollups_equal_history(&app).await;
}

#[tokio::test]
async fn racing_writers_count_a_request_once() {
    let app = spawn_app().await;
    let id = request_id(&app, "race-1").await;
    // Steps shown at once on many connections: the request is opened once.
    let opens: Vec<_> = ["consent", "aadhaar", "location", "devices", "ip", "face"]
        .iter()
        .map(|step| {
            let store = app.store.clone();
            tokio::spawn(async move { store.open_step(id, step).await.unwrap() })
        })
        .collect();
    for open in opens {
        open.await.unwrap();
    }
    // Two moves from the same version to the same failure: one wins.
    let request = app.store.request_by_id(id).await.unwrap().unwrap();
    let moves: Vec<_> = (0..2)
        .map(|_| {
            let (store, request) = (app.store.clone(), request.clone());
            tokio::spawn(async move {
                store
                    .apply(
                        &request,
                        &[Event::ProxyDetected],
                        Actor::Customer,
                        None,
                        &Changes::default(),
                    )
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for m in moves {
        won += i32::from(m.await.unwrap());
    }
    assert_eq!(won, 1);
    let funnel = app.store.report_funnel(&around_today()).await.unwrap();
    assert_eq!(funnel.len(), 1);
    assert_eq!(
        (funnel[0].created, funnel[0].opened, funnel[0].ip_failed),
        (1, 1, 1)
    );
    let failures = app.store.report_failures(&around_today()).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].failures, failures[0].requests), (1, 1));
    assert_rollups_equal_history(&app).await;
}

/// The statements of a SQL text, each with its white space made single spaces.
fn statements(sql: &str) -> Vec<String> {
    let no_comments: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    no_comments
        .join("\n")
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn the_migration_fills_the_rollups_as_the_rebuild_does() {
    use vkyc::store::{rollups, Backend};
    let funnel: fn(Backend) -> Vec<String> = rollups::rebuild_statements;
    let work: fn(Backend) -> Vec<String> = |backend| {
        let mut all = rollups::work::rebuild_statements(backend);
        all.extend(vkyc::store::case_agents_statements());
        all
    };
    for (backend, rebuild, migration) in [
        (
            Backend::Sqlite,
            funnel,
            include_str!("../../migrations/sqlite/0015_report_rollups.sql"),
        ),
        (
            Backend::Postgres,
            funnel,
            include_str!("../../migrations/postgres/0015_report_rollups.sql"),
        ),
        (
            Backend::Sqlite,
            work,
            include_str!("../../migrations/sqlite/0016_work_rollups.sql"),
        ),
        (
            Backend::Postgres,
            work,
            include_str!("../../migrations/postgres/0016_work_rollups.sql"),
        ),
    ] {
        let migration = statements(migration);
        // The rebuild empties the roll-ups first; the migration has just made them.
        for sql in rebuild(backend).iter().filter(|s| !s.starts_with("DELETE")) {
            let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                migration.contains(&sql),
                "{backend:?}: not in the migration: {sql}"
            );
        }
    }
}
