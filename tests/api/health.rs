//! What an orchestrator and a passer-by see: `/healthz` (the process answers),
//! `/readyz` (the database answers with this build's migrations applied, the relay
//! bound) and the `/` page.

use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use serde_json::Value;

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn live_ready_and_the_home_page() {
    let app = spawn_app().await;
    let live = get(&app, "/healthz").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.unwrap(), "ok");

    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["database"]["detail"], "migrations applied", "{body}");
    assert!(
        body["relay"]["detail"]
            .as_str()
            .unwrap()
            .ends_with("shard(s) bound"),
        "{body}"
    );

    let home = app.client.get(&app.base).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = home.text().await.unwrap();
    for link in [
        "href=\"/desk\"",
        "href=\"/verification/openapi.json\"",
        "href=\"/healthz\"",
        "href=\"/readyz\"",
    ] {
        assert!(page.contains(link), "{link} in {page}");
    }
}

#[tokio::test]
async fn not_ready_while_a_migration_is_missing() {
    let app = spawn_app().await;
    // As if the database were an older one this build has not migrated.
    let pool = app.pool().await;
    let last: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "DELETE FROM _sqlx_migrations WHERE version = {last}"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(
        body["database"]["detail"],
        format!("migration {last} has not been applied"),
        "{body}"
    );
    // Liveness does not depend on the database.
    let live = get(&app, "/healthz").await;
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn ready_without_a_relay_where_calls_are_off() {
    let app = spawn_app_with(|c| c.media.enabled = false).await;
    let body: Value = get(&app, "/readyz").await.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["relay"]["detail"], "off", "{body}");
}
