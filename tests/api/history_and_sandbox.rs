use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use vkyc::domain::status::SubStatus;

#[tokio::test]
async fn the_sandbox_walks_a_request_along_legal_moves_with_one_history_row_per_step() {
    let app = spawn_app().await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    let moved = app
        .call(
            Method::POST,
            "/sandbox/vkyc/advance",
            Some(json!({"verification_id": "v", "sub_status": "USER_QUEUED"})),
        )
        .await
        .ok();
    assert_eq!(
        (moved["status"].as_str(), moved["sub_status"].as_str()),
        (Some("PRE_VIDEO_CALL"), Some("USER_QUEUED"))
    );
    assert_eq!(app.status("v").await, moved);

    let history = app
        .call(Method::GET, "/vkyc/history?verification_id=v", None)
        .await
        .ok();
    let rows = history["history"].as_array().unwrap();
    let path: Vec<&str> = rows
        .iter()
        .map(|r| r["to_sub_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "LINK_GENERATED",
            "USER_IP_VERIFICATION_SUCCESSFUL",
            "USER_LOCATION_VERIFICATION_SUCCESS",
            "USER_DEVICE_CHECK_SUCCESS",
            "USER_QUEUED"
        ]
    );
    assert_eq!(rows[0]["event"], "created");
    assert_eq!(rows[0]["from_sub_status"], serde_json::Value::Null);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1]["from_sub_status"], pair[0]["to_sub_status"],
            "a continuous timeline"
        );
        assert_eq!(pair[1]["actor"], "merchant");
    }

    // On to the end, the way an integrator exercises the happy path.
    let done = app
        .call(
            Method::POST,
            "/sandbox/vkyc/advance",
            Some(json!({"verification_id": "v", "sub_status": "AUDITOR_APPROVED"})),
        )
        .await
        .ok();
    assert_eq!(done["status"], "AUDITOR_REVIEWED");
    assert!(done["agent_remarks"].is_string() && done["auditor_remarks"].is_string());
    // A final state leads nowhere: the move is refused and nothing changes.
    let rows_before = app
        .store
        .history(done["reference_id"].as_i64().unwrap())
        .await
        .unwrap()
        .len();
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "v", "sub_status": "USER_QUEUED"})),
    )
    .await
    .assert_error(
        409,
        "validation_error",
        "sub_status_unreachable",
        "USER_QUEUED cannot be reached from AUDITOR_APPROVED.",
    );
    let rows_after = app
        .store
        .history(done["reference_id"].as_i64().unwrap())
        .await
        .unwrap()
        .len();
    assert_eq!(rows_before, rows_after);
}

#[tokio::test]
async fn every_sub_status_can_be_reached_in_the_sandbox() {
    let app = spawn_app().await;
    app.create_user("u").await;
    for (i, target) in SubStatus::ALL.iter().enumerate() {
        let vid = format!("v{i}");
        app.create_vkyc(&vid, "u").await;
        let moved = app
            .call(
                Method::POST,
                "/sandbox/vkyc/advance",
                Some(json!({"verification_id": vid, "sub_status": target.as_str()})),
            )
            .await
            .ok();
        assert_eq!(moved["sub_status"], target.as_str());
        assert_eq!(moved["status"], target.status().as_str());
        if *target == SubStatus::UserMeetingScheduled {
            assert!(moved["meeting_schedule"].as_str().unwrap().ends_with('Z'));
        }
    }
}

#[tokio::test]
async fn the_sandbox_refuses_unknown_targets_and_requests() {
    let app = spawn_app().await;
    app.create_user("u").await;
    app.create_vkyc("v", "u").await;
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "v", "sub_status": "DONE"})),
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "sub_status_value_invalid",
        "sub_status value is invalid.",
    );
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "v"})),
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "sub_status_missing",
        "sub_status is missing in the request.",
    );
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "nope", "sub_status": "USER_QUEUED"})),
    )
    .await
    .assert_code(404, "verification_id_not_found");
    assert_eq!(app.status("v").await["sub_status"], "LINK_GENERATED");
}

#[tokio::test]
async fn history_can_be_read_by_reference_id() {
    let app = spawn_app().await;
    app.create_user("u").await;
    let created = app.create_vkyc("v", "u").await;
    let history = app
        .call(
            Method::GET,
            &format!("/vkyc/history?reference_id={}", created["reference_id"]),
            None,
        )
        .await
        .ok();
    assert_eq!(history["verification_id"], "v");
    assert_eq!(history["history"].as_array().unwrap().len(), 1);
    assert_eq!(history["history"][0]["actor"], "merchant");
    assert_eq!(history["history"][0]["to_status"], "RECEIVED");
}
