//! Per-merchant rate limits, driven through `vkyc::ratelimit::RateLimiter` against the
//! suite's backend (SQLite by default: counted in memory; PostgreSQL with
//! `VKYC_TEST_PG_URL`: counted in `rate_counters`, shared by every process).
//!
//! Times are passed explicitly, so a test never straddles a minute boundary by accident.
//!
//! HTTP tests to add once the limiter is wired into the request path:
//! - a merchant set to 5/min (`store.set_rate_limit(id, Some(5))`) gets 200 (or its usual
//!   answer) for 5 calls of `GET /verification/vkyc?...` and then 429 with the exact body
//!   `{"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "Too many
//!   requests: the limit is 5 calls per minute."}` and a `Retry-After` header of 1..=60;
//! - the deployment default applies to a merchant without its own limit
//!   (`spawn_app_with(|c| c.<default limit> = 3)`), and a merchant's own limit overrides
//!   it, both ways (higher and lower), including 0 = unlimited;
//! - another merchant (`app.other_merchant()`) is still served while the first is
//!   refused;
//! - calls that fail authentication are not counted against the merchant (a wrong secret
//!   for its client id does not use up its budget), and are answered 401/400, not 429;
//! - every merchant API route is limited (POST /user, GET /user, POST /vkyc, GET /vkyc,
//!   the sub-resources), while `/healthz` and the customer journey pages are not;
//! - on PostgreSQL, two servers built on one database (`Application::build` twice with
//!   the same `database_url`) allow the limit in total, not per server.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use vkyc::error::Error;
use vkyc::ratelimit::{self, RateLimiter, WINDOW_MS};
use vkyc::store::{Backend, Store};

/// The start of the current minute: windows in these tests are near the real clock, as
/// in service, but given explicitly.
fn this_window() -> i64 {
    ratelimit::window_start(vkyc::clock::now_ms())
}

async fn merchant_id(app: &TestApp, client_id: &str) -> i64 {
    app.store
        .credential(client_id)
        .await
        .unwrap()
        .expect("the merchant exists")
        .merchant_id
}

/// The HTTP answer an error becomes: status, `Retry-After`, JSON body.
async fn answer(err: Error) -> (u16, Option<u64>, Value) {
    let response = axum::response::IntoResponse::into_response(err);
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, retry_after, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_sixth_call_of_a_5_per_minute_merchant_is_refused_with_429() {
    let app = spawn_app().await;
    let merchant = merchant_id(&app, &app.client_id).await;
    let limiter = RateLimiter::new(app.store.clone());
    assert_eq!(
        limiter.is_shared(),
        app.store.backend() == Backend::Postgres
    );
    let now = this_window() + 1_500;
    for call in 1..=5 {
        limiter
            .check(merchant, 5, now)
            .await
            .unwrap_or_else(|e| panic!("call {call} refused: {e}"));
    }
    let (status, retry_after, body) =
        answer(limiter.check(merchant, 5, now).await.unwrap_err()).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
            "message": "Too many requests: the limit is 5 calls per minute.",
        })
    );
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // 58.5 seconds of the window are left: rounded up.
    assert_eq!(retry_after, 59);

    // Later in the same window: still refused (refused calls count too), and told to
    // wait less.
    let err = limiter.check(merchant, 5, now + 57_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                retry_after: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_next_window_allows_calls_again() {
    let app = spawn_app().await;
    let merchant = merchant_id(&app, &app.client_id).await;
    let limiter = RateLimiter::new(app.store.clone());
    let window = this_window();
    for _ in 0..5 {
        limiter.check(merchant, 5, window + 10_000).await.unwrap();
    }
    // Hammering through the rest of the window stays refused...
    for at in [10_000, 30_000, 59_999] {
        assert!(limiter.check(merchant, 5, window + at).await.is_err());
    }
    // ...and the first millisecond of the next window starts afresh.
    let next = window + WINDOW_MS;
    for _ in 0..5 {
        limiter.check(merchant, 5, next).await.unwrap();
    }
    let err = limiter.check(merchant, 5, next).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                retry_after: Some(60),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn merchants_are_counted_separately() {
    let app = spawn_app().await;
    let first = merchant_id(&app, &app.client_id).await;
    let (other_client, _) = app.other_merchant().await;
    let second = merchant_id(&app, &other_client).await;
    assert_ne!(first, second);
    let limiter = RateLimiter::new(app.store.clone());
    let now = this_window() + 5_000;
    for _ in 0..5 {
        limiter.check(first, 5, now).await.unwrap();
    }
    assert!(limiter.check(first, 5, now).await.is_err());
    // The second merchant has its whole budget, and a limit of its own.
    for _ in 0..200 {
        limiter.check(second, 200, now).await.unwrap();
    }
    assert!(limiter.check(second, 200, now).await.is_err());
    assert!(limiter.check(first, 5, now).await.is_err());
}

#[tokio::test]
async fn zero_is_unlimited() {
    let app = spawn_app().await;
    let merchant = merchant_id(&app, &app.client_id).await;
    let limiter = RateLimiter::new(app.store.clone());
    let now = this_window();
    for _ in 0..50 {
        limiter.check(merchant, 0, now).await.unwrap();
    }
    // Unlimited calls were not counted.
    limiter.check(merchant, 1, now).await.unwrap();
    assert!(limiter.check(merchant, 1, now).await.is_err());
}

#[tokio::test]
async fn concurrent_calls_on_one_limiter_allow_exactly_the_limit() {
    let app = spawn_app().await;
    let merchant = merchant_id(&app, &app.client_id).await;
    let limiter = std::sync::Arc::new(RateLimiter::new(app.store.clone()));
    let now = this_window() + 1_000;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check(merchant, 5, now).await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap() as usize;
    }
    assert_eq!(allowed, 5);
}

#[tokio::test]
async fn the_store_keeps_each_merchants_limit() {
    let app = spawn_app().await;
    let merchant = merchant_id(&app, &app.client_id).await;
    // A new merchant uses the deployment default.
    assert_eq!(app.store.rate_limit(merchant).await.unwrap(), None);
    assert_eq!(ratelimit::effective_limit(None, 100), 100);

    assert!(app
        .store
        .set_rate_limit(
            merchant,
            Some(ratelimit::tier("restricted").unwrap() as i64)
        )
        .await
        .unwrap());
    assert_eq!(app.store.rate_limit(merchant).await.unwrap(), Some(5));
    assert!(app.store.set_rate_limit(merchant, Some(0)).await.unwrap());
    assert_eq!(app.store.rate_limit(merchant).await.unwrap(), Some(0));
    assert!(app
        .store
        .set_rate_limit(merchant, Some(100_000))
        .await
        .unwrap());
    assert_eq!(app.store.rate_limit(merchant).await.unwrap(), Some(100_000));
    assert!(app.store.set_rate_limit(merchant, None).await.unwrap());
    assert_eq!(app.store.rate_limit(merchant).await.unwrap(), None);

    // No such merchant.
    assert!(!app.store.set_rate_limit(987_654, Some(5)).await.unwrap());
    assert_eq!(app.store.rate_limit(987_654).await.unwrap(), None);
}

#[tokio::test]
async fn the_store_counts_calls_per_merchant_per_window_and_prunes_old_windows() {
    // `count_call` is the PostgreSQL path; its SQL runs on both backends.
    let app = spawn_app().await;
    let window = this_window();
    for n in 1..=3 {
        assert_eq!(app.store.count_call(1, window).await.unwrap(), n);
    }
    assert_eq!(app.store.count_call(2, window).await.unwrap(), 1);
    assert_eq!(
        app.store.count_call(1, window - WINDOW_MS).await.unwrap(),
        1
    );
    assert_eq!(
        app.store
            .count_call(1, window - 3 * WINDOW_MS)
            .await
            .unwrap(),
        1
    );

    // Windows that started before the cut go; the rest keep their counts.
    assert_eq!(
        app.store
            .prune_rate_counters(window - WINDOW_MS)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app.store
            .prune_rate_counters(window - WINDOW_MS)
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.store.count_call(1, window).await.unwrap(), 4);
    assert_eq!(
        app.store.count_call(1, window - WINDOW_MS).await.unwrap(),
        2
    );
    assert_eq!(
        app.store
            .count_call(1, window - 3 * WINDOW_MS)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn processes_sharing_a_postgres_database_share_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database(dir.path()).await;
    // SQLite: one process per database file, counted in memory; there is no second
    // process to share with, so this test has nothing to check there.
    if !url.starts_with("postgres") {
        return;
    }
    // Two handles on one database, as two `vkyc` processes would have.
    let key = vkyc::secrets::MasterKey::generate();
    let first = Store::open(&url, &key).await.unwrap();
    let second = Store::open(&url, &key).await.unwrap();
    let a = std::sync::Arc::new(RateLimiter::new(first));
    let b = std::sync::Arc::new(RateLimiter::new(second));
    assert!(a.is_shared() && b.is_shared());
    let merchant = 1;

    // In turns: 5 calls in total, whichever process takes them.
    let window = this_window();
    for (n, limiter) in [&a, &b, &a, &b, &b].into_iter().enumerate() {
        limiter
            .check(merchant, 5, window + 1_000)
            .await
            .unwrap_or_else(|e| panic!("call {} refused: {e}", n + 1));
    }
    assert!(a.check(merchant, 5, window + 2_000).await.is_err());
    assert!(b.check(merchant, 5, window + 2_000).await.is_err());

    // Racing: 20 concurrent calls split over both processes, exactly 5 allowed.
    let next = window + WINDOW_MS + 1_000;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { limiter.check(merchant, 5, next).await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap() as usize;
    }
    assert_eq!(allowed, 5);
    // Everyone else is refused for the rest of that window, from either process.
    assert!(a.check(merchant, 5, next + 30_000).await.is_err());
    assert!(b.check(merchant, 5, next + 30_000).await.is_err());

    // A limit of 1,000 over three processes: each leases blocks of 10 calls (one write
    // per 10 calls). 1,200 calls racing over them: never more than the limit, and at most
    // one unused block's remainder per process (3 × 9 calls) refused early.
    let third = Store::open(&url, &key).await.unwrap();
    let c = std::sync::Arc::new(RateLimiter::new(third));
    let later = window + 2 * WINDOW_MS + 1_000;
    let tasks: Vec<_> = (0..1_200)
        .map(|i| {
            let limiter = [&a, &b, &c][i % 3].clone();
            tokio::spawn(async move { limiter.check(2, 1_000, later).await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap() as usize;
    }
    assert!((973..=1_000).contains(&allowed), "{allowed} allowed");
}

// ---- through HTTP, as a merchant meets the limit ----

#[tokio::test]
async fn a_merchant_over_its_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = spawn_app_with(|c| {
        c.default_rate_limit_per_minute = 5;
        c.credential_cache_seconds = 0;
    })
    .await;
    let (other_id, other_secret) = app.other_merchant().await;
    // A wrong secret does not spend the merchant's quota.
    for _ in 0..3 {
        app.call_as(
            &app.client_id,
            "cfsk_ma_test_wrong",
            Method::GET,
            "/vkyc?verification_id=x",
            None,
        )
        .await
        .assert_code(401, "authentication_failed");
    }
    // Near the end of a minute the window could turn over mid-test; start in a fresh one.
    let into_minute = vkyc::clock::now_ms() % 60_000;
    if into_minute > 50_000 {
        tokio::time::sleep(std::time::Duration::from_millis(
            (60_000 - into_minute + 100) as u64,
        ))
        .await;
    }
    for _ in 0..5 {
        app.call(Method::GET, "/vkyc?verification_id=x", None)
            .await
            .assert_code(404, "verification_id_not_found");
    }
    let refused = app.call(Method::GET, "/vkyc?verification_id=x", None).await;
    refused.assert_error(
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        "Too many requests: the limit is 5 calls per minute.",
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    app.call_as(
        &other_id,
        &other_secret,
        Method::GET,
        "/vkyc?verification_id=x",
        None,
    )
    .await
    .assert_code(404, "verification_id_not_found");

    // The operator moves the merchant to the medium tier: calls go through again.
    app.cli(&[
        "merchant",
        "rate-limit",
        "--client-id",
        &app.client_id,
        "--limit",
        "medium",
    ]);
    app.call(Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_code(404, "verification_id_not_found");
}
