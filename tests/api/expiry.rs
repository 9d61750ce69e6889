use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use vkyc::clock::now_ms;
use vkyc::domain::status::{Actor, Event};
use vkyc::store::Changes;
use vkyc::workers::expiry::expire_due;

#[tokio::test]
async fn a_step_of_the_expiry_worker_expires_only_due_links_before_the_call() {
    // The background worker is slowed down so that the test drives the single step.
    let app = spawn_app_with(|c| c.expiry_interval_ms = 3_600_000).await;
    app.create_user("u").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    for vid in ["due", "in_call"] {
        app.call(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": vid, "user_id": "u", "link_expiry": soon})),
        )
        .await
        .ok();
    }
    app.create_vkyc("later", "u").await;
    // One request reaches the call before its link runs out.
    let r = app
        .store
        .request_by_verification_id(1, "in_call")
        .await
        .unwrap()
        .unwrap();
    let path = vkyc::domain::status::path(
        r.sub_status,
        vkyc::domain::status::SubStatus::UserAcceptedMeeting,
    )
    .unwrap();
    app.store
        .apply(&r, &path, Actor::System, None, &Changes::default())
        .await
        .unwrap();

    assert_eq!(
        expire_due(&app.store, now_ms()).await.unwrap(),
        0,
        "nothing is due yet"
    );
    let later = now_ms() + 3_000;
    assert_eq!(expire_due(&app.store, later).await.unwrap(), 1);
    assert_eq!(
        expire_due(&app.store, later).await.unwrap(),
        0,
        "a second pass finds nothing"
    );

    let due = app.status("due").await;
    assert_eq!(
        (due["status"].as_str(), due["sub_status"].as_str()),
        (Some("EXPIRED"), Some("VKYC_EXPIRED"))
    );
    assert_eq!(
        app.status("in_call").await["sub_status"],
        "USER_ACCEPTED_MEETING"
    );
    assert_eq!(app.status("later").await["sub_status"], "LINK_GENERATED");
    let history = app
        .call(Method::GET, "/vkyc/history?verification_id=due", None)
        .await
        .ok();
    let last = history["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "system");
    assert_eq!(last["event"], Event::LinkExpired.as_str());
}

#[tokio::test]
async fn the_running_worker_expires_a_link_within_seconds() {
    let app = spawn_app_with(|c| c.expiry_interval_ms = 200).await;
    app.create_user("u").await;
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    app.call(
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "v", "user_id": "u", "link_expiry": soon})),
    )
    .await
    .ok();
    let mut status = String::new();
    for _ in 0..100 {
        status = app.status("v").await["sub_status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "VKYC_EXPIRED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "VKYC_EXPIRED");
    // The customer's link now says so.
    let link = app.status("v").await["vkyc_link"]
        .as_str()
        .unwrap()
        .to_string();
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn the_expiry_query_uses_its_index() {
    let app = spawn_app().await;
    let plan = app.store.explain_due_expiries().await.unwrap();
    assert!(plan.contains("requests_expiry"), "plan: {plan}");
}

#[tokio::test]
async fn many_links_due_together_all_expire_in_one_step_with_their_history() {
    let app = spawn_app_with(|c| c.expiry_interval_ms = 3_600_000).await;
    let user = app.create_user("u").await;
    let soon = now_ms() + 60_000;
    let creates = (0..1_100).map(|i| {
        let store = app.store.clone();
        let user_ref = user["user_reference_id"].as_i64().unwrap();
        async move {
            let new = vkyc::store::NewRequest {
                verification_id: format!("bulk{i}"),
                user_ref,
                user_id: "u".into(),
                link_token: format!("{:040x}", i),
                link_expires_at: soon,
                notification_types: None,
                user_template: None,
                agent_template: None,
                user_template_version: None,
                agent_template_version: None,
                aadhaar_details: None,
                security_questions: None,
                webhook_url: None,
            };
            store
                .insert_request(1, &new, Actor::Merchant)
                .await
                .unwrap()
                .unwrap()
        }
    });
    let created = futures::future::join_all(creates).await;
    assert_eq!(expire_due(&app.store, soon + 1).await.unwrap(), 1_100);
    for request in created.iter().step_by(97) {
        let now = app.store.request_by_id(request.id).await.unwrap().unwrap();
        assert_eq!(now.sub_status.as_str(), "VKYC_EXPIRED");
        let history = app.store.history(request.id).await.unwrap();
        assert_eq!(history.last().unwrap().event, "link_expired");
    }
}
