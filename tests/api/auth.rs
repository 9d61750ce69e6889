use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use vkyc::config::Environment;

async fn get_with(app: &TestApp, headers: &[(&str, &str)]) -> Reply {
    let mut req = app.client.get(app.url("/vkyc?verification_id=x"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req).await
}

#[tokio::test]
async fn every_header_failure_has_its_documented_answer() {
    let app = spawn_app().await;
    let (id, secret) = (app.client_id.as_str(), app.secret.as_str());
    get_with(
        &app,
        &[("x-client-secret", secret), ("x-api-version", "2024-12-01")],
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "x-client-id_missing",
        "x-client-id is missing in the request.",
    );
    get_with(
        &app,
        &[("x-client-id", id), ("x-api-version", "2024-12-01")],
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "x-client-secret_missing",
        "x-client-secret is missing in the request.",
    );
    get_with(&app, &[("x-client-id", id), ("x-client-secret", secret)])
        .await
        .assert_error(
            400,
            "validation_error",
            "x-api-version_missing",
            "x-api-version is missing in the request.",
        );
    for bad in ["2024-13-01", "yesterday", "2024-1-1", "2024-02-30"] {
        get_with(
            &app,
            &[
                ("x-client-id", id),
                ("x-client-secret", secret),
                ("x-api-version", bad),
            ],
        )
        .await
        .assert_error(
            400,
            "validation_error",
            "x-api-version_value_invalid",
            "x-api-version value is invalid.",
        );
    }
    // The SDK's default version and the documented one are both accepted.
    for version in ["2023-12-18", "2024-12-01"] {
        let reply = get_with(
            &app,
            &[
                ("x-client-id", id),
                ("x-client-secret", secret),
                ("x-api-version", version),
            ],
        )
        .await;
        assert_eq!(reply.status, 404, "{version}: {}", reply.body);
    }
    let wrong_secret = format!("{secret}x");
    for (cid, sec) in [
        (id, wrong_secret.as_str()),
        ("CFUNKNOWN", secret),
        (id, "cfsk_ma_test_00"),
    ] {
        get_with(
            &app,
            &[
                ("x-client-id", cid),
                ("x-client-secret", sec),
                ("x-api-version", "2024-12-01"),
            ],
        )
        .await
        .assert_error(
            401,
            "authentication_error",
            "authentication_failed",
            "Invalid clientId and clientSecret combination",
        );
    }
    // A header that is not text is refused, not a crash.
    let req = app
        .client
        .get(app.url("/vkyc?verification_id=x"))
        .header(
            "x-client-id",
            reqwest::header::HeaderValue::from_bytes(b"CF\xff\xfe").unwrap(),
        )
        .header("x-client-secret", secret)
        .header("x-api-version", "2024-12-01");
    send(req)
        .await
        .assert_code(400, "x-client-id_value_invalid");
}

#[tokio::test]
async fn a_test_secret_is_refused_by_a_production_deployment() {
    let app = spawn_app().await;
    let prod = spawn_app_with(|c| c.environment = Environment::Production).await;
    // A production deployment has no bootstrap merchant; any test secret gets the 400.
    prod.call_as(
        &app.client_id,
        &app.secret,
        Method::GET,
        "/vkyc?verification_id=x",
        None,
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "x-client-secret_value_invalid",
        "Client secret belongs to test environment",
    );
}

#[tokio::test]
async fn a_live_merchant_works_in_production_and_not_in_the_sandbox() {
    let prod = spawn_app_with(|c| c.environment = Environment::Production).await;
    let (id, secret) = (prod.client_id.clone(), prod.secret.clone());
    assert!(secret.starts_with("cfsk_ma_prod_"));
    prod.call(Method::POST, "/user", Some(json!({"phone": "9876543210"})))
        .await
        .ok();
    // The sandbox endpoint is for test credentials only.
    prod.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": "x", "sub_status": "USER_QUEUED"})),
    )
    .await
    .assert_error(
        403,
        "authentication_error",
        "test_credentials_required",
        "the sandbox API accepts test credentials only.",
    );
    let sandbox = spawn_app().await;
    sandbox
        .call_as(&id, &secret, Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_error(
            400,
            "validation_error",
            "x-client-secret_value_invalid",
            "Client secret belongs to production environment",
        );
}

#[tokio::test]
async fn credentials_are_checked_from_memory_after_the_first_call() {
    let app = spawn_app().await;
    app.create_user("u").await;
    // With the database gone, a known credential still authenticates (from the cache):
    // the call gets past authentication to its own validation.
    app.store.close().await;
    app.call(
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"sub_status": "NOPE"})),
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "sub_status_value_invalid",
        "sub_status value is invalid.",
    );
    // And a wrong secret for that client id is still refused.
    app.call_as(
        &app.client_id,
        "cfsk_ma_test_wrong",
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"sub_status": "NOPE"})),
    )
    .await
    .assert_error(
        401,
        "authentication_error",
        "authentication_failed",
        "Invalid clientId and clientSecret combination",
    );
    // A call that needs the database answers the opaque 500, never internals.
    app.call(Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_error(
            500,
            "internal_error",
            "verification_failed",
            "something went wrong",
        );
}
