//! What the on-call engineer's Prometheus sees: `/metrics` on its own listener (never on
//! the public port), requests counted by route template and status, the queue, the desk
//! and the workers' lag read from the database, and Debian's Prometheus itself scraping
//! a running server and answering queries about it.

use crate::helpers::{send, spawn_app_with, TestApp};
use crate::journey::customer;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A server with metrics on a free port, the desk open all day, agents never stale and
/// the expiry worker slow enough for its lag to show.
async fn metrics_app() -> TestApp {
    spawn_app_with(|c| {
        c.metrics_listen = "127.0.0.1:0".into();
        c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec();
        c.journey.working_hours = "00:00-24:00".into();
        c.agent_stale_seconds = 3600;
        c.expiry_interval_ms = 3_600_000;
    })
    .await
}

pub async fn scrape(app: &TestApp) -> String {
    let base = app.metrics.as_ref().expect("metrics are on");
    let res = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        res.headers()
    );
    res.text().await.unwrap()
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let all = labels.iter().all(|(k, v)| {
            series_labels
                .split(',')
                .any(|l| l == format!("{k}=\"{v}\""))
        });
        (series_name == name && all).then(|| value.parse().unwrap())
    })
}

#[track_caller]
fn assert_sample(text: &str, name: &str, labels: &[(&str, &str)], want: f64) {
    assert_eq!(
        sample(text, name, labels),
        Some(want),
        "{name} {labels:?} in:\n{text}"
    );
}

/// The merchant gives the Aadhaar details, so the journey has no Aadhaar step.
fn aadhaar_given() -> Value {
    json!({
        "aadhaar_details": {"last_verified_at": "2026-11-30T10:00:00Z", "care_of": "S/O Ravi",
                            "dob": "01-01-1990", "name": "Asha Rao",
                            "photo_link": "https://example.in/p.jpg", "gender": "F"}
    })
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_show_the_queue_desk_and_workers() {
    let app = metrics_app().await;
    // Not on the public port; and the metrics port serves nothing else.
    let public = send(app.client.get(format!("{}/metrics", app.base))).await;
    public.assert_code(404, "route_not_found");
    let other = app
        .client
        .get(format!("{}/", app.metrics.as_ref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // Two users made (200), one refused (400), a path that is no route (404); two more
    // users come with the customers below.
    app.create_user("m-1").await;
    app.create_user("m-2").await;
    let bad = app
        .call(Method::POST, "/user", Some(json!({"user_id": "m-3"})))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let secret_path = "/no-such-page/9f86d081884c7d659a2feaa0c55ad015";
    let missing = send(app.client.get(format!("{}{secret_path}", app.base))).await;
    assert_eq!(missing.status, 404);
    // A known route with a method it does not take keeps its route label.
    let wrong_method = send(app.client.delete(app.url("/user"))).await;
    assert_eq!(wrong_method.status, 405);

    // One agent online, two customers queue: the first is invited, the second waits.
    crate::calls::agent(&app, "metrics-agent").await;
    let first = customer(&app, "m-q1", aadhaar_given()).await;
    first.pass_checks().await;
    let second = customer(&app, "m-q2", aadhaar_given()).await;
    second.pass_checks().await;
    assert_eq!(
        first.call(Method::POST, "queue", None).await.ok()["outcome"],
        "USER_QUEUED"
    );
    // The board invites the first within a second; only then does the second queue, so
    // that it is the one left waiting.
    let deadline = Instant::now() + Duration::from_secs(15);
    while first.sub_status().await != "AGENT_ASSIGNED_TO_USER" {
        assert!(
            Instant::now() < deadline,
            "the first customer was never assigned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        second.call(Method::POST, "queue", None).await.ok()["outcome"],
        "USER_QUEUED"
    );
    // A link that expired a minute ago, which the (hourly) expiry worker has not seen.
    let pool = app.pool().await;
    sqlx::query(&format!(
        "UPDATE requests SET link_expires_at = {} WHERE verification_id = 'm-q2'",
        vkyc::clock::now_ms() - 60_000
    ))
    .execute(&pool)
    .await
    .unwrap();

    let text = scrape(&app).await;
    let requests = "vkyc_http_requests_total";
    let user = ("route", "/verification/user");
    assert_sample(
        &text,
        requests,
        &[("method", "POST"), user, ("status", "200")],
        4.0,
    );
    assert_sample(
        &text,
        requests,
        &[("method", "POST"), user, ("status", "400")],
        1.0,
    );
    // The public `/metrics` and the made-up path: no route, one label.
    assert_sample(
        &text,
        requests,
        &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        2.0,
    );
    assert_sample(
        &text,
        requests,
        &[("method", "DELETE"), user, ("status", "405")],
        1.0,
    );
    // Journey routes are labelled by their template: no customer's link in the labels.
    assert_sample(
        &text,
        requests,
        &[
            ("method", "POST"),
            ("route", "/v/{key}/api/queue"),
            ("status", "200"),
        ],
        2.0,
    );
    assert!(!text.contains(&first.key) && !text.contains(&second.key));
    assert!(!text.contains("9f86d081884c7d659a2feaa0c55ad015"), "{text}");
    assert_sample(
        &text,
        "vkyc_http_request_duration_seconds_count",
        &[("method", "POST"), user],
        5.0,
    );
    assert_sample(
        &text,
        "vkyc_http_request_duration_seconds_bucket",
        &[("method", "POST"), user, ("le", "+Inf")],
        5.0,
    );

    assert_sample(&text, "vkyc_agents_online", &[], 1.0);
    assert_sample(&text, "vkyc_customers_queued", &[], 1.0);
    assert_sample(&text, "vkyc_calls", &[("state", "invited")], 1.0);
    assert_sample(&text, "vkyc_calls", &[("state", "active")], 0.0);
    assert_sample(&text, "vkyc_database_up", &[], 1.0);
    let lag = sample(&text, "vkyc_worker_lag_seconds", &[("worker", "expiry")]).unwrap();
    assert!((60.0..120.0).contains(&lag), "expiry lag {lag}");
    assert_sample(
        &text,
        "vkyc_worker_lag_seconds",
        &[("worker", "webhooks")],
        0.0,
    );
    assert!(sample(&text, "vkyc_notification_backlog", &[]).is_some());
    assert_sample(&text, "vkyc_webhook_backlog", &[], 0.0);
    // The relay's counters and the database pools are there too.
    assert_sample(&text, "vkyc_relay_calls", &[], 0.0);
    assert!(sample(&text, "vkyc_relay_packets_received_total", &[]).is_some());
    assert!(sample(&text, "vkyc_relay_reported_loss_ratios_count", &[]).is_some());
    let pool = match app.store.backend() {
        vkyc::store::Backend::Sqlite => "read",
        vkyc::store::Backend::Postgres => "main",
    };
    assert!(sample(&text, "vkyc_db_pool_max_connections", &[("pool", pool)]).unwrap() >= 1.0);
    assert!(sample(
        &text,
        "vkyc_db_pool_connections",
        &[("pool", pool), ("state", "idle")]
    )
    .is_some());
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_sample(&text, "vkyc_recordings_written_total", &[], 0.0);

    // The first customer takes the call and ends it: a recording is written (locally,
    // so no upload to fail), and the call is no longer active.
    let accepted = first.call(Method::POST, "call/accept", None).await.ok();
    assert_eq!(accepted["state"], "active");
    let text = scrape(&app).await;
    assert_sample(&text, "vkyc_calls", &[("state", "active")], 1.0);
    first.call(Method::POST, "call/end", None).await.ok();
    let text = scrape(&app).await;
    assert_sample(&text, "vkyc_recordings_written_total", &[], 1.0);
    assert_sample(&text, "vkyc_recording_uploads_failed_total", &[], 0.0);
    assert_sample(&text, "vkyc_calls", &[("state", "active")], 0.0);
}

#[tokio::test]
async fn without_metrics_listen_there_is_no_metrics_listener() {
    let app = spawn_app_with(|_| {}).await;
    assert!(app.metrics.is_none());
    let public = send(app.client.get(format!("{}/metrics", app.base))).await;
    public.assert_code(404, "route_not_found");
}

#[tokio::test]
async fn metrics_count_webhook_retries_and_failures_and_the_backlog() {
    let app = spawn_app_with(|c| {
        c.metrics_listen = "127.0.0.1:0".into();
        c.webhook_allow_private_addresses = true;
        c.webhook_interval_ms = 50;
        // One retry, 5 s (4 to 6 with jitter) after the first failure; then given up.
        c.webhook_retry_schedule_seconds = vec![5];
    })
    .await;
    // A receiver that is not there: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let merchant = app
        .store
        .merchant_by_client_id(&app.client_id)
        .await
        .unwrap()
        .unwrap();
    app.store
        .set_webhook_url(merchant.id, Some(&format!("http://{closed}/hook")))
        .await
        .unwrap();
    app.create_user("w-1").await;
    app.create_vkyc("w-1", "w-1").await;

    let attempts = "vkyc_webhook_attempts_total";
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let text = scrape(&app).await;
        if sample(&text, attempts, &[("outcome", "retry")]).unwrap() >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "no attempt failed:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Failed once, waiting for its retry: in the backlog, not yet given up.
    let retried = sample(&waiting, attempts, &[("outcome", "retry")]).unwrap();
    assert!(
        sample(&waiting, "vkyc_webhook_backlog", &[]).unwrap() >= 1.0,
        "{waiting}"
    );
    assert_sample(&waiting, attempts, &[("outcome", "delivered")], 0.0);
    let done = loop {
        let text = scrape(&app).await;
        if sample(&text, "vkyc_webhook_backlog", &[]) == Some(0.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the retries never ended:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each delivery failed twice: once retried, once given up.
    assert_sample(&done, attempts, &[("outcome", "failed")], retried);
    assert_sample(&done, attempts, &[("outcome", "retry")], retried);
    assert_sample(
        &done,
        "vkyc_worker_lag_seconds",
        &[("worker", "webhooks")],
        0.0,
    );
}

/// Debian's Prometheus, killed when the test ends, however it ends.
struct Prometheus {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second.
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vkyc\n    scrape_interval: 1s\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("/usr/bin/prometheus runs (Debian package prometheus)");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query`: the result vector (empty until the series has been scraped).
    async fn query(&self, client: &reqwest::Client, promql: &str) -> Vec<Value> {
        let Ok(res) = client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
        else {
            return vec![];
        };
        let body: Value = res.json().await.unwrap_or(Value::Null);
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `promql` has a result whose value is `want`, and returns it.
    async fn wait_for(&self, client: &reqwest::Client, promql: &str, want: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let result = self.query(client, promql).await;
            if result.iter().any(|r| r["value"][1] == want) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} never came to {want} (last {result:?}); Prometheus said:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn metrics_prometheus_scrapes_a_running_server() {
    let app = metrics_app().await;
    app.create_user("p-1").await;
    let missing = send(app.client.get(format!("{}/nothing-here", app.base))).await;
    assert_eq!(missing.status, 404);
    crate::calls::agent(&app, "prom-agent").await;

    let target = app.metrics.as_ref().unwrap().trim_start_matches("http://");
    let prometheus = Prometheus::start(target);
    let client = reqwest::Client::new();
    // The target is up: Prometheus read and understood the format.
    prometheus.wait_for(&client, "up{job=\"vkyc\"}", "1").await;
    let users = prometheus
        .wait_for(
            &client,
            "vkyc_http_requests_total{route=\"/verification/user\",status=\"200\"}",
            "1",
        )
        .await;
    assert_eq!(users[0]["metric"]["method"], "POST", "{users:?}");
    prometheus
        .wait_for(
            &client,
            "vkyc_http_requests_total{route=\"unmatched\",status=\"404\"}",
            "1",
        )
        .await;
    prometheus
        .wait_for(&client, "vkyc_agents_online", "1")
        .await;
    prometheus
        .wait_for(
            &client,
            "sum(vkyc_http_request_duration_seconds_count{route=\"/desk/api/agent/online\"})",
            "1",
        )
        .await;
    prometheus
        .wait_for(&client, "vkyc_relay_packets_received_total", "0")
        .await;
    prometheus
        .wait_for(
            &client,
            "vkyc_worker_lag_seconds{worker=\"notifications\"}",
            "0",
        )
        .await;
    // The series the dashboard draws all exist.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let names = dashboard_series(&dashboard);
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let found = prometheus
            .query(&client, &format!("count({{__name__=\"{name}\"}})"))
            .await;
        assert!(!found.is_empty(), "the dashboard's {name} is not scraped");
    }
}

/// The metric names (`vkyc_...`) in the dashboard's queries.
fn dashboard_series(dashboard: &Value) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("vkyc_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert(name);
            }
        }
    }
    names.into_iter().collect()
}
