//! The admin's reports: a small known history made through the real paths (the
//! merchant API, the sandbox, the customer's journey, the agent's and the auditor's
//! desk), then each report's numbers checked exactly, its CSV against its JSON, who may
//! read it, and wrong input.

use crate::calls::{agent, calls_app, decided, in_call, staff, Desk};
use crate::helpers::*;
use reqwest::header::COOKIE;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

const IST_MS: i64 = 19_800_000;
const DAY_MS: i64 = 86_400_000;

fn today_ist() -> String {
    let day = (vkyc::clock::now_ms() + IST_MS) / DAY_MS;
    (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

/// The report as JSON, and its CSV, checked to hold the same columns and rows.
async fn report(admin: &Desk<'_>, name: &str, query: &str) -> Value {
    let body = admin.get(&format!("/reports/{name}?{query}")).await.ok();
    let res = admin
        .app
        .client
        .get(admin.url_of(&format!("/reports/{name}.csv?{query}")))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"vkyc-"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(lines[0], columns.join(","));
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(lines.len() - 1, rows.len(), "{csv}");
    for (line, row) in lines[1..].iter().zip(rows) {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match &row[*c] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                // Whole numbers as the browser shows them (50, not 50.0).
                Value::Number(n) if n.is_f64() && n.as_f64().unwrap().fract() == 0.0 => {
                    format!("{}", n.as_f64().unwrap() as i64)
                }
                other => other.to_string(),
            })
            .collect();
        assert_eq!(*line, cells.join(","));
    }
    // The same rows by ?format=csv.
    let by_format = admin
        .app
        .client
        .get(admin.url_of(&format!("/reports/{name}?{query}&format=csv")))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if name != "live" {
        assert_eq!(by_format, csv);
    }
    body
}

impl Desk<'_> {
    fn url_of(&self, path: &str) -> String {
        format!("{}/desk/api{path}", self.app.base)
    }
}

/// Polls the live board until `column` shows `want` (at most 10 s).
async fn wait_live(admin: &Desk<'_>, column: &str, want: i64) {
    for _ in 0..100 {
        let live = admin.get("/reports/live").await.ok();
        if live["rows"][0][column] == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the live board never showed {column} = {want}");
}

/// Nearest-rank percentile of `values` (sorted here).
fn nearest_rank(values: &mut [i64], p: usize) -> i64 {
    values.sort_unstable();
    values[(values.len() * p).div_ceil(100) - 1]
}

fn secs(ms: i64) -> Value {
    json!((ms as f64 / 100.0).round() / 10.0)
}

#[tokio::test]
async fn reports_count_a_known_history_exactly_and_csv_equals_json() {
    let app = calls_app(600, 600).await;
    let admin = staff(&app, "boss", "admin").await;
    let ravi = agent(&app, "ravi").await;
    let auditor = staff(&app, "audra", "auditor").await;
    let today = today_ist();
    let range = format!("from={today}&to={today}");

    // Two customers all the way through a call: the agent approves one and rejects the
    // other; the auditor approves both (so one of the agent's decisions is overturned).
    decided(&app, &ravi, "rep_a", "approved").await;
    decided(&app, &ravi, "rep_b", "rejected").await;
    for id in ["rep_a", "rep_b"] {
        let status = app.status(id).await;
        auditor
            .post(
                &format!("/audit/cases/{}/decision", status["reference_id"]),
                json!({"decision": "approved", "remarks": "checked"}),
            )
            .await
            .ok();
    }
    // One link never opened; one that fails the IP check (through the sandbox).
    app.create_user("rep_c_user").await;
    app.create_vkyc("rep_c", "rep_c_user").await;
    app.create_user("rep_d_user").await;
    app.create_vkyc("rep_d", "rep_d_user").await;
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "rep_d", "sub_status": "USER_PROXY_DETECTED"})),
    )
    .await
    .ok();

    // The funnel.
    let funnel = report(&admin, "funnel", &range).await;
    assert_eq!(funnel["from"], today.as_str());
    let rows = funnel["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{funnel}");
    let expected = json!({
        "day": today, "merchant_id": 1, "created": 4, "opened": 2, "opened_drop_pct": 50.0,
        "aadhaar_passed": 0, "aadhaar_failed": 0, "ip_passed": 2, "ip_failed": 1,
        "ip_drop_pct": 0.0, "location_passed": 2, "location_failed": 0,
        "location_drop_pct": 0.0, "devices_passed": 2, "devices_failed": 0,
        "devices_drop_pct": 0.0, "queued": 2, "queued_drop_pct": 0.0, "call": 2,
        "call_drop_pct": 0.0, "agent_approved": 1, "agent_rejected": 1, "agent_unable": 0,
        "auditor_approved": 2, "auditor_rejected": 0, "expired": 0,
    });
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&rows[0][key], want, "funnel {key}: {}", rows[0]);
    }

    // The failure reasons.
    let failures = report(&admin, "failures", &range).await;
    assert_eq!(
        failures["rows"],
        json!([{"day": today, "merchant_id": 1, "merchant": rows[0]["merchant"],
                "step": "ip", "reason": "USER_PROXY_DETECTED", "failures": 1, "requests": 1}])
    );

    // The times, against the calls and audits as stored.
    let pool = app.pool().await;
    let stored = sqlx::query(
        "SELECT c.invited_at, c.accepted_at, c.ended_at, c.decided_at, r.created_at, \
         q.enqueued_at, a.at AS audited_at FROM calls c JOIN requests r ON r.id = c.request_id \
         JOIN queue_entries q ON q.request_id = c.request_id \
         JOIN audits a ON a.request_id = c.request_id ORDER BY c.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 2);
    let col = |name: &str| -> Vec<i64> {
        stored
            .iter()
            .map(|r| r.try_get::<i64, _>(name).unwrap())
            .collect()
    };
    let diff =
        |a: &str, b: &str| -> Vec<i64> { col(a).iter().zip(col(b)).map(|(x, y)| x - y).collect() };
    let times = report(&admin, "times", &range).await;
    let row = &times["rows"][0];
    assert_eq!(times["rows"].as_array().unwrap().len(), 1);
    assert_eq!(row["day"], today.as_str());
    for (measure, mut values) in [
        ("link_to_call", diff("accepted_at", "created_at")),
        ("queue_wait", diff("invited_at", "enqueued_at")),
        ("call_length", diff("ended_at", "accepted_at")),
        ("review_turnaround", diff("audited_at", "decided_at")),
    ] {
        assert_eq!(row[format!("{measure}_count")], 2, "{row}");
        assert_eq!(
            row[format!("{measure}_p50_s")],
            secs(nearest_rank(&mut values, 50))
        );
        assert_eq!(
            row[format!("{measure}_p90_s")],
            secs(nearest_rank(&mut values, 90))
        );
    }

    // For merchant 1 (all of these calls), the same times; for merchant 2, none yet.
    let of_merchant = report(&admin, "times", &format!("{range}&merchant=1")).await;
    assert_eq!(of_merchant["rows"], times["rows"]);

    // The agents, against the presence log and the calls.
    let online: i64 = sqlx::query(
        "SELECT CAST(SUM(COALESCE(ended_at, last_seen) - started_at) AS BIGINT) AS ms \
         FROM presence_log p \
         JOIN staff s ON s.id = p.staff_id WHERE s.username = 'ravi'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .try_get("ms")
    .unwrap();
    let lengths = diff("ended_at", "accepted_at");
    let agents = report(&admin, "agents", &range).await;
    let hours = online as f64 / 3_600_000.0;
    assert_eq!(
        agents["rows"],
        json!([{
            "agent": "ravi", "online_hours": (hours * 100.0).round() / 100.0, "calls": 2,
            "calls_per_online_hour": (2.0 / hours * 100.0).round() / 100.0,
            "avg_call_s": secs((lengths[0] + lengths[1]) / 2),
            "approved": 1, "rejected": 1, "unable": 0, "approval_rate_pct": 50.0,
            "rejection_rate_pct": 50.0, "audited": 2, "reversed": 1, "reversal_rate_pct": 50.0,
        }])
    );

    // The times and agents reports read roll-ups kept with each call and review: they
    // equal a recomputation over the calls and audits themselves, and rebuilding the
    // roll-ups from those rows changes nothing.
    let day = (vkyc::clock::now_ms() + 19_800_000) / 86_400_000;
    let whole_day = vkyc::store::Range {
        from_ms: day * 86_400_000 - 19_800_000,
        to_ms: (day + 1) * 86_400_000 - 19_800_000,
        merchant: None,
    };
    let store = &app.store;
    let times = store.report_times(&whole_day).await.unwrap();
    let agents = store.report_agents(&whole_day).await.unwrap();
    assert_eq!(times.len(), 4, "{times:?}");
    assert_eq!(times, store.recompute_times(&whole_day).await.unwrap());
    assert_eq!(agents, store.recompute_agents(&whole_day).await.unwrap());
    store.rebuild_report_rollups().await.unwrap();
    assert_eq!(times, store.report_times(&whole_day).await.unwrap());
    assert_eq!(agents, store.report_agents(&whole_day).await.unwrap());

    // The live board: the agent online and free, then on a call. Its queue figures are
    // the queue board's latest reading, taken every second.
    wait_live(&admin, "customers_waiting", 0).await;
    let live = report(&admin, "live", "").await;
    assert_eq!(live["rows"][0]["agents_online"], 1, "{live}");
    assert_eq!(live["rows"][0]["agents_in_call"], 0);
    assert_eq!(live["rows"][0]["calls_in_progress"], 0);
    assert_eq!(live["rows"][0]["customers_waiting"], 0);
    let (_customer, _call) = in_call(&app, &ravi, "rep_e").await;
    let live = report(&admin, "live", "").await;
    assert_eq!(live["rows"][0]["agents_in_call"], 1, "{live}");
    assert_eq!(live["rows"][0]["calls_in_progress"], 1);

    // Another merchant's request shows only under that merchant, and not in merchant 1's.
    let (cid, secret) = app.other_merchant().await;
    app.call_as(
        &cid,
        &secret,
        Method::POST,
        "/user",
        Some(json!({"user_id": "o1", "phone": "9876543210"})),
    )
    .await
    .ok();
    app.call_as(
        &cid,
        &secret,
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "o_1", "user_id": "o1"})),
    )
    .await
    .ok();
    let mine = report(&admin, "funnel", &format!("{range}&merchant=1")).await;
    assert_eq!(mine["rows"][0]["created"], 5, "{mine}");
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1);
    let theirs = report(&admin, "funnel", &format!("{range}&merchant=2")).await;
    assert_eq!(theirs["rows"].as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs["rows"][0]["created"], 1);
    assert_eq!(theirs["rows"][0]["opened"], 0);
    let their_times = report(&admin, "times", &format!("{range}&merchant=2")).await;
    assert_eq!(their_times["rows"], json!([]));
    let all = report(&admin, "funnel", &range).await;
    assert_eq!(all["rows"].as_array().unwrap().len(), 2);
    // A day with nothing has no rows.
    let empty = report(&admin, "funnel", "from=2026-01-01&to=2026-01-31").await;
    assert_eq!(empty["rows"], json!([]));
}

#[tokio::test]
async fn reports_are_for_admins_only_and_refuse_bad_input() {
    let app = calls_app(600, 600).await;
    let admin = staff(&app, "boss", "admin").await;
    let ravi = staff(&app, "ravi", "agent").await;
    let audra = staff(&app, "audra", "auditor").await;
    for name in [
        "funnel",
        "failures",
        "times",
        "agents",
        "live",
        "funnel.csv",
    ] {
        ravi.get(&format!("/reports/{name}"))
            .await
            .assert_code(403, "role_forbidden");
        audra
            .get(&format!("/reports/{name}"))
            .await
            .assert_code(403, "role_forbidden");
        let anonymous = send(
            app.client
                .get(format!("{}/desk/api/reports/{name}", app.base)),
        )
        .await;
        assert_eq!(anonymous.status, 401);
        admin.get(&format!("/reports/{name}")).await.ok();
    }
    for (query, status, code) in [
        ("from=2026-13-01&to=2026-12-01", 400, "from_value_invalid"),
        ("from=2026-11-01&to=yesterday", 400, "to_value_invalid"),
        ("from=2026-11-1&to=2026-11-02", 400, "from_value_invalid"),
        ("from=2026-11-05&to=2026-11-01", 400, "range_invalid"),
        ("from=2026-01-01&to=2026-12-01", 400, "range_too_long"),
        ("merchant=abc", 400, "merchant_value_invalid"),
        ("merchant=-1", 400, "merchant_value_invalid"),
        ("merchant=999", 404, "merchant_not_found"),
        ("format=xml", 400, "format_value_invalid"),
        ("form=2026-11-01", 400, "parameter_unknown"),
        ("from=2026-11-01&from=2026-11-02", 400, "from_repeated"),
    ] {
        let reply = admin.get(&format!("/reports/funnel?{query}")).await;
        reply.assert_code(status, code);
        assert!(reply.body["message"].as_str().unwrap().len() > 5);
    }
    admin
        .get("/reports/agents?merchant=1")
        .await
        .assert_code(400, "merchant_not_applicable");
    admin
        .get("/reports/nothing")
        .await
        .assert_code(404, "report_not_found");
    // Time online: each stretch from going online to going offline, in the presence log.
    ravi.post("/agent/online", json!({})).await.ok();
    ravi.post("/agent/heartbeat", json!({})).await.ok();
    ravi.post("/agent/online", json!({})).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    ravi.post("/agent/offline", json!({})).await.ok();
    let pool = app.pool().await;
    let stretches =
        sqlx::query("SELECT started_at, last_seen, ended_at FROM presence_log ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        stretches.len(),
        2,
        "going online again starts a new stretch"
    );
    let mut online_ms = 0;
    for row in &stretches {
        let started: i64 = row.try_get("started_at").unwrap();
        let ended: Option<i64> = row.try_get("ended_at").unwrap();
        let ended = ended.expect("every stretch is closed");
        assert!(ended >= started);
        online_ms += ended - started;
    }
    let today = today_ist();
    let agents = admin
        .get(&format!("/reports/agents?from={today}&to={today}"))
        .await
        .ok();
    let hours = online_ms as f64 / 3_600_000.0;
    assert_eq!(
        agents["rows"],
        json!([{"agent": "ravi", "online_hours": (hours * 100.0).round() / 100.0, "calls": 0,
                "calls_per_online_hour": 0.0, "avg_call_s": null, "approved": 0, "rejected": 0,
                "unable": 0, "approval_rate_pct": null, "rejection_rate_pct": null,
                "audited": 0, "reversed": 0, "reversal_rate_pct": null}])
    );

    // 92 days is the most one report covers.
    admin
        .get("/reports/times?from=2026-09-01&to=2026-12-01")
        .await
        .ok();
}
