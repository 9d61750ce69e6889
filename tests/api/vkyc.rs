use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn initiating_a_request_returns_a_link_and_its_status_reads_back() {
    let app = spawn_app().await;
    let user = app.create_user("user_1").await;
    let before = chrono::Utc::now();
    let created = app
        .call(
            Method::POST,
            "/vkyc",
            Some(json!({
                "verification_id": "vkyc_1",
                "user_reference_id": user["user_reference_id"],
                "notification_types": ["sms", "email"],
                "security_questions": [{"order": 1, "question": "Birth city?", "answer": "Pune"}],
                "aadhaar_details": {"last_verified_at": "2025-01-01", "care_of": "S/O X", "dob": "1990-01-01",
                    "gender": "F", "name": "Asha Rao", "photo_link": "https://example.in/p.jpg",
                    "split_address": {"country": "India", "dist": "Pune", "house": "1", "pincode": 411001,
                        "state": "MH", "street": "MG Road"}}
            })),
        )
        .await
        .ok();
    assert_eq!(
        keys(&created),
        [
            "verification_id",
            "reference_id",
            "status",
            "sub_status",
            "vkyc_link",
            "link_expiry",
            "user_reference_id",
            "user_id",
            "aadhaar_details",
            "security_questions"
        ]
    );
    assert_eq!(created["status"], "RECEIVED");
    assert_eq!(created["sub_status"], "LINK_GENERATED");
    assert_eq!(created["user_id"], "user_1");
    assert_eq!(
        created["aadhaar_details"]["split_address"]["pincode"],
        411001
    );
    let reference = created["reference_id"].as_i64().unwrap();
    let link = created["vkyc_link"].as_str().unwrap();
    let token = link
        .strip_prefix(&format!("{}/v/", app.base))
        .expect("link under the public base URL");
    assert_eq!(token.len(), 40, "160 random bits in hex");
    // The default lifetime is 72 hours.
    let expiry =
        chrono::DateTime::parse_from_rfc3339(created["link_expiry"].as_str().unwrap()).unwrap();
    let hours = (expiry.with_timezone(&chrono::Utc) - before).num_minutes() as f64 / 60.0;
    assert!((71.9..=72.1).contains(&hours), "{hours}");
    assert!(created["link_expiry"].as_str().unwrap().ends_with('Z'));

    let status = app.status("vkyc_1").await;
    assert_eq!(
        status,
        json!({"verification_id": "vkyc_1", "reference_id": reference,
               "user_reference_id": user["user_reference_id"], "user_id": "user_1",
               "status": "RECEIVED", "sub_status": "LINK_GENERATED", "vkyc_link": link,
               "link_expiry": created["link_expiry"], "recording_link": null,
               "meeting_schedule": null, "auditor_remarks": null, "agent_remarks": null})
    );
    let by_ref = app
        .call(
            Method::GET,
            &format!("/vkyc?reference_id={reference}"),
            None,
        )
        .await
        .ok();
    assert_eq!(by_ref, status);

    // The customer's link opens a page.
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Video KYC"));
}

#[tokio::test]
async fn links_are_unique_and_a_repeated_verification_id_is_a_conflict() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let a = app.create_vkyc("a", "u").await;
    let b = app.create_vkyc("b", "u").await;
    assert_ne!(a["vkyc_link"], b["vkyc_link"]);
    assert_ne!(a["reference_id"], b["reference_id"]);
    app.call(
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "a", "user_id": "u"})),
    )
    .await
    .assert_error(
        409,
        "validation_error",
        "verification_id_already_exists",
        "verification id already exists",
    );
    // The first request is untouched.
    assert_eq!(app.status("a").await["vkyc_link"], a["vkyc_link"]);
}

#[tokio::test]
async fn link_expiry_can_be_set_per_request_within_limits() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(5))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let created = app
        .call(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": "a", "user_id": "u", "link_expiry": at})),
        )
        .await
        .ok();
    assert_eq!(created["link_expiry"], at);
    for bad in ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "tomorrow"] {
        app.call(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": "b", "user_id": "u", "link_expiry": bad})),
        )
        .await
        .assert_code(400, "link_expiry_value_invalid");
    }
    app.call(Method::GET, "/vkyc?verification_id=b", None)
        .await
        .assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn get_vkyc_answers_the_documented_errors() {
    let app = spawn_app().await;
    app.call(Method::GET, "/vkyc", None).await.assert_error(
        400,
        "validation_error",
        "verification_id_missing",
        "verification_id is missing in the request.",
    );
    app.call(Method::GET, "/vkyc?verification_id=", None)
        .await
        .assert_error(
            400,
            "validation_error",
            "verification_id_value_missing",
            "verification_id is missing in the request.",
        );
    app.call(Method::GET, "/vkyc?verification_id=a%24b", None)
        .await
        .assert_error(
            400,
            "validation_error",
            "verification_id_value_invalid",
            "verification_id can include only alphanum, dot, hyphen and underscores.",
        );
    app.call(
        Method::GET,
        &format!("/vkyc?verification_id={}", "a".repeat(51)),
        None,
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "verification_id_value_invalid",
        "verification ID entered is invalid.",
    );
    app.call(Method::GET, "/vkyc?reference_id=", None)
        .await
        .assert_error(
            400,
            "validation_error",
            "reference_id_value_missing",
            "reference_id is missing in the request.",
        );
    for bad in ["abc", "-1", "0", "1.5", "99999999999999999999"] {
        app.call(Method::GET, &format!("/vkyc?reference_id={bad}"), None)
            .await
            .assert_error(
                400,
                "validation_error",
                "reference_id_value_invalid",
                "reference ID value is invalid.",
            );
    }
    app.call(Method::GET, "/vkyc?reference_id=424242", None)
        .await
        .assert_error(
            404,
            "validation_error",
            "reference_id_not_found",
            "reference_id does not exist.",
        );
    app.call(Method::GET, "/vkyc?verification_id=nothing", None)
        .await
        .assert_error(
            404,
            "validation_error",
            "verification_id_not_found",
            "verification_id does not exist.",
        );
}

#[tokio::test]
async fn post_vkyc_refuses_bad_fields_and_stores_nothing() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let cases = [
        (json!({"user_id": "u"}), 400, "verification_id_missing"),
        (
            json!({"verification_id": 7, "user_id": "u"}),
            400,
            "verification_id_value_invalid",
        ),
        (
            json!({"verification_id": "x"}),
            400,
            "user_reference_id_missing",
        ),
        (
            json!({"verification_id": "x", "user_id": "nobody"}),
            404,
            "user_id_not_found",
        ),
        (
            json!({"verification_id": "x", "user_reference_id": 99999}),
            404,
            "user_reference_id_not_found",
        ),
        (
            json!({"verification_id": "x", "user_reference_id": "1x"}),
            400,
            "user_reference_id_value_invalid",
        ),
        (
            json!({"verification_id": "x", "user_id": "u", "notification_types": ["fax"]}),
            400,
            "notification_types_value_invalid",
        ),
        (
            json!({"verification_id": "x", "user_id": "u", "notification_types": "sms"}),
            400,
            "notification_types_value_invalid",
        ),
        (
            json!({"verification_id": "x", "user_id": "u", "security_questions": [{"order": 1}]}),
            400,
            "security_questions_value_invalid",
        ),
        (
            json!({"verification_id": "x", "user_id": "u", "aadhaar_details": {"name": "A"}}),
            400,
            "aadhaar_details_value_invalid",
        ),
        (
            json!({"verification_id": "x", "user_id": "u", "user_template": "bad template"}),
            400,
            "user_template_value_invalid",
        ),
    ];
    for (body, status, code) in cases {
        app.call(Method::POST, "/vkyc", Some(body.clone()))
            .await
            .assert_code(status, code);
    }
    app.call(Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn another_merchants_request_looks_exactly_like_an_unknown_one() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let mine = app.create_vkyc("shared_name", "u").await;
    let (id, secret) = app.other_merchant().await;
    let reference = mine["reference_id"].as_i64().unwrap();
    let theirs = app
        .call_as(
            &id,
            &secret,
            Method::GET,
            &format!("/vkyc?reference_id={reference}"),
            None,
        )
        .await;
    let unknown = app
        .call_as(
            &id,
            &secret,
            Method::GET,
            "/vkyc?reference_id=7777777",
            None,
        )
        .await;
    assert_eq!(
        (theirs.status, &theirs.body),
        (unknown.status, &unknown.body)
    );
    let theirs = app
        .call_as(
            &id,
            &secret,
            Method::GET,
            "/vkyc?verification_id=shared_name",
            None,
        )
        .await;
    theirs.assert_error(
        404,
        "validation_error",
        "verification_id_not_found",
        "verification_id does not exist.",
    );
    // Their history and sandbox calls cannot see it either.
    app.call_as(
        &id,
        &secret,
        Method::GET,
        "/vkyc/history?verification_id=shared_name",
        None,
    )
    .await
    .assert_code(404, "verification_id_not_found");
    app.call_as(
        &id,
        &secret,
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "shared_name", "sub_status": "USER_QUEUED"})),
    )
    .await
    .assert_code(404, "verification_id_not_found");
    assert_eq!(
        app.status("shared_name").await["sub_status"],
        "LINK_GENERATED"
    );
}

#[tokio::test]
async fn an_access_token_is_bound_to_the_request_and_its_user() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let request = app.create_vkyc("v", "u").await;
    let body = |kind: &str, value: &str| {
        json!({"app_id": app.client_id, "product": "VKYC",
               "metadata": {"vkyc_request_id": request["reference_id"].to_string()},
               "authenticated_user": {"identifier_type": kind, "identifier_value": value}})
    };
    let token = app
        .call(
            Method::POST,
            "/oauth/token",
            Some(body("phone", "9876543210")),
        )
        .await
        .ok();
    assert_eq!(token["access_token"].as_str().unwrap().len(), 64);
    assert!(
        token["expiry"].as_str().unwrap().ends_with("+05:30"),
        "{token}"
    );
    app.call(
        Method::POST,
        "/oauth/token",
        Some(body("phone", "9123456789")),
    )
    .await
    .assert_code(400, "authenticated_user_value_invalid");
    app.call(Method::POST, "/oauth/token", Some(body("user_id", "u")))
        .await
        .ok();
    let mut wrong_product = body("phone", "9876543210");
    wrong_product["product"] = json!("PAN");
    app.call(Method::POST, "/oauth/token", Some(wrong_product))
        .await
        .assert_code(400, "product_value_invalid");
    let mut unknown = body("phone", "9876543210");
    unknown["metadata"]["vkyc_request_id"] = json!("123456789");
    app.call(Method::POST, "/oauth/token", Some(unknown))
        .await
        .assert_code(404, "vkyc_request_id_not_found");
}

#[tokio::test]
async fn concurrent_creates_each_get_their_own_answer_and_all_are_stored() {
    let app = spawn_app().await;
    app.create_user("u").await;
    // 60 creates at once, each verification_id sent twice: one 200 and one 409 each.
    let calls = (0..60).map(|i| {
        let app = &app;
        async move {
            let reply = app
                .call(
                    Method::POST,
                    "/vkyc",
                    Some(json!({"verification_id": format!("c{}", i % 30), "user_id": "u"})),
                )
                .await;
            (i % 30, reply.status.as_u16(), reply.body)
        }
    });
    let replies = futures::future::join_all(calls).await;
    for id in 0..30 {
        let mut statuses: Vec<u16> = replies.iter().filter(|r| r.0 == id).map(|r| r.1).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 409], "c{id}");
        let created = replies.iter().find(|r| r.0 == id && r.1 == 200).unwrap();
        let stored = app.status(&format!("c{id}")).await;
        assert_eq!(stored["reference_id"], created.2["reference_id"]);
        let history = app
            .call(
                Method::GET,
                &format!("/vkyc/history?verification_id=c{id}"),
                None,
            )
            .await
            .ok();
        assert_eq!(history["history"].as_array().unwrap().len(), 1);
    }
}

/// On SQLite a request read once is kept and given again until anything is committed. A
/// change made by another connection (an operator's SQL, another process) must show at
/// once, by either key.
#[tokio::test]
async fn a_change_committed_by_another_connection_shows_in_the_next_read() {
    let app = spawn_app().await;
    app.create_user("keep_user").await;
    let created = app.create_vkyc("keep_1", "keep_user").await;
    let by_ref = format!("/vkyc?reference_id={}", created["reference_id"]);
    for _ in 0..3 {
        assert_eq!(app.status("keep_1").await["agent_remarks"], Value::Null);
        assert_eq!(
            app.call(Method::GET, &by_ref, None).await.ok()["agent_remarks"],
            Value::Null
        );
    }
    let pool = app.pool().await;
    for n in 0..20 {
        sqlx::query("UPDATE requests SET agent_remarks = $1 WHERE verification_id = $2")
            .bind(format!("changed outside {n}"))
            .bind("keep_1")
            .execute(&pool)
            .await
            .unwrap();
        let want = json!(format!("changed outside {n}"));
        assert_eq!(app.status("keep_1").await["agent_remarks"], want);
        assert_eq!(
            app.call(Method::GET, &by_ref, None).await.ok()["agent_remarks"],
            want
        );
    }
}

/// Readers racing a writer never see a value older than the last commit that finished
/// before their read began.
#[tokio::test]
async fn reads_racing_commits_never_go_back_in_time() {
    let app = std::sync::Arc::new(spawn_app().await);
    app.create_user("race_user").await;
    app.create_vkyc("race_1", "race_user").await;
    let pool = app.pool().await;
    let committed = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = vec![];
    for _ in 0..4 {
        let (app, committed, stop) = (app.clone(), committed.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let floor = committed.load(std::sync::atomic::Ordering::SeqCst);
                let seen = app.status("race_1").await["agent_remarks"]
                    .as_str()
                    .map_or(-1, |s| s.parse::<i64>().unwrap());
                assert!(seen >= floor, "read {seen} after {floor} was committed");
                reads += 1;
            }
            reads
        }));
    }
    for n in 0..300i64 {
        sqlx::query("UPDATE requests SET agent_remarks = $1 WHERE verification_id = $2")
            .bind(n.to_string())
            .bind("race_1")
            .execute(&pool)
            .await
            .unwrap();
        committed.store(n, std::sync::atomic::Ordering::SeqCst);
        if n % 3 == 0 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 0);
    assert_eq!(app.status("race_1").await["agent_remarks"], "299");
}

/// Many reads at once (on PostgreSQL they share statements): each caller gets the request
/// it named, by either key, and only its own merchant's; a name the merchant does not
/// have is a 404 even when another merchant's request of that name is read beside it.
#[tokio::test]
async fn reads_at_once_each_get_their_own_merchants_request() {
    let app = spawn_app().await;
    let (other_id, other_secret) = app.other_merchant().await;
    app.create_user("u").await;
    app.call_as(
        &other_id,
        &other_secret,
        Method::POST,
        "/user",
        Some(json!({"user_id": "u", "phone": "9876543210", "name": "Ravi Iyer"})),
    )
    .await
    .ok();
    // The same names at both merchants, plus names only the first has.
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for i in 0..24 {
        mine.push(app.create_vkyc(&format!("n{i}"), "u").await);
        if i % 2 == 0 {
            let body = json!({"verification_id": format!("n{i}"), "user_id": "u"});
            let created = app
                .call_as(&other_id, &other_secret, Method::POST, "/vkyc", Some(body))
                .await
                .ok();
            theirs.push((i, created));
        }
    }
    let asks = (0..240).map(|k| {
        let (app, mine, theirs) = (&app, &mine, &theirs);
        let (other_id, other_secret) = (&other_id, &other_secret);
        async move {
            let i = k % 24;
            let as_other = k % 3 == 0;
            let by_ref = k % 2 == 0;
            let path = if by_ref {
                let source = if as_other && i % 2 == 0 {
                    &theirs[i / 2].1
                } else {
                    &mine[i]
                };
                format!("/vkyc?reference_id={}", source["reference_id"])
            } else {
                format!("/vkyc?verification_id=n{i}")
            };
            let reply = if as_other {
                app.call_as(other_id, other_secret, Method::GET, &path, None)
                    .await
            } else {
                app.call(Method::GET, &path, None).await
            };
            (i, as_other, reply)
        }
    });
    for (i, as_other, reply) in futures::future::join_all(asks).await {
        let want = match (as_other, i % 2 == 0) {
            (false, _) => Some(&mine[i]),
            (true, true) => Some(&theirs[i / 2].1),
            (true, false) => None,
        };
        match want {
            Some(want) => {
                let got = reply.ok();
                assert_eq!(got["verification_id"], format!("n{i}"));
                assert_eq!(got["reference_id"], want["reference_id"], "n{i}");
                assert_eq!(got["vkyc_link"], want["vkyc_link"], "n{i}");
            }
            None => assert_eq!(reply.status, 404, "n{i} read by the other merchant"),
        }
    }
}

/// On PostgreSQL the server's connections can be ended under it (a failover, an operator's
/// `pg_terminate_backend`): the next read still answers, on a new connection.
#[tokio::test]
async fn a_read_after_the_database_ended_the_servers_connections_still_answers() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return;
    }
    app.create_user("u").await;
    let created = app.create_vkyc("survivor", "u").await;
    assert_eq!(
        app.status("survivor").await["reference_id"],
        created["reference_id"]
    );
    let pool = app.pool().await;
    let ended = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "the server had connections to end");
    assert_eq!(
        app.status("survivor").await["reference_id"],
        created["reference_id"]
    );
    let by_ref = format!("/vkyc?reference_id={}", created["reference_id"]);
    assert_eq!(
        app.call(Method::GET, &by_ref, None).await.ok()["verification_id"],
        "survivor"
    );
}
