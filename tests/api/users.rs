use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_merchant_creates_reads_and_updates_a_user() {
    let app = spawn_app().await;
    let created = app
        .call(
            Method::POST,
            "/user",
            Some(
                json!({"user_id": "user_1", "phone": "+919876543210", "email": "asha@example.in",
                        "name": "Asha Rao", "address": "12 MG Road, Bengaluru"}),
            ),
        )
        .await
        .ok();
    let reference = created["user_reference_id"]
        .as_i64()
        .expect("an int64 reference");
    assert!(reference > 0);
    assert_eq!(
        created,
        json!({"user_id": "user_1", "user_reference_id": reference, "phone": "9876543210",
               "email": "asha@example.in", "name": "Asha Rao", "address": "12 MG Road, Bengaluru"})
    );

    let by_id = app
        .call(Method::GET, "/user?user_id=user_1", None)
        .await
        .ok();
    let by_ref = app
        .call(
            Method::GET,
            &format!("/user?user_reference_id={reference}"),
            None,
        )
        .await
        .ok();
    assert_eq!(by_id, created);
    assert_eq!(by_ref, created);

    let updated = app
        .call(
            Method::PATCH,
            "/user",
            Some(json!({"user_reference_id": reference, "name": "Asha R"})),
        )
        .await
        .ok();
    assert_eq!(updated["name"], "Asha R");
    assert_eq!(updated["email"], "asha@example.in");
    let read = app
        .call(Method::GET, "/user?user_id=user_1", None)
        .await
        .ok();
    assert_eq!(read, updated);
}

#[tokio::test]
async fn a_user_id_is_generated_when_absent_and_unique_per_merchant() {
    let app = spawn_app().await;
    let a = app
        .call(Method::POST, "/user", Some(json!({"phone": "9876543210"})))
        .await
        .ok();
    assert!(a["user_id"].as_str().unwrap().starts_with("user_"));
    app.create_user("dup").await;
    app.call(
        Method::POST,
        "/user",
        Some(json!({"user_id": "dup", "phone": "9876543210"})),
    )
    .await
    .assert_error(
        409,
        "validation_error",
        "user_id_already_exists",
        "user id already exists",
    );
    // Another merchant may use the same user_id.
    let (id, secret) = app.other_merchant().await;
    let other = app
        .call_as(
            &id,
            &secret,
            Method::POST,
            "/user",
            Some(json!({"user_id": "dup", "phone": "9876543210"})),
        )
        .await
        .ok();
    assert_eq!(other["user_id"], "dup");
}

#[tokio::test]
async fn the_phone_number_cannot_be_changed_and_bad_fields_are_refused() {
    let app = spawn_app().await;
    app.create_user("u").await;
    app.call(
        Method::PATCH,
        "/user",
        Some(json!({"user_id": "u", "phone": "9123456789"})),
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "phone_value_invalid",
        "phone cannot be updated.",
    );
    app.call(Method::POST, "/user", Some(json!({"user_id": "v"})))
        .await
        .assert_error(
            400,
            "validation_error",
            "phone_missing",
            "phone is missing in the request.",
        );
    app.call(Method::POST, "/user", Some(json!({"phone": "12345"})))
        .await
        .assert_error(
            400,
            "validation_error",
            "phone_value_invalid",
            "phone value is invalid.",
        );
    app.call(
        Method::POST,
        "/user",
        Some(json!({"phone": "9876543210", "email": "not-an-email"})),
    )
    .await
    .assert_error(
        400,
        "validation_error",
        "email_value_invalid",
        "email value is invalid.",
    );
    app.call(Method::POST, "/user", Some(json!({"phone": 9876543210u64})))
        .await
        .assert_error(
            400,
            "validation_error",
            "phone_value_invalid",
            "phone value is invalid.",
        );
    app.call(Method::GET, "/user?user_id=nobody", None)
        .await
        .assert_error(
            404,
            "validation_error",
            "user_id_not_found",
            "user_id does not exist.",
        );
    app.call(Method::GET, "/user?user_reference_id=999999", None)
        .await
        .assert_error(
            404,
            "validation_error",
            "user_reference_id_not_found",
            "user_reference_id does not exist.",
        );
    app.call(Method::GET, "/user?user_reference_id=abc", None)
        .await
        .assert_error(
            400,
            "validation_error",
            "user_reference_id_value_invalid",
            "user_reference_id value is invalid.",
        );
    // Nothing above changed the user.
    let user = app.call(Method::GET, "/user?user_id=u", None).await.ok();
    assert_eq!(user["phone"], "9876543210");
}

#[tokio::test]
async fn another_merchants_user_looks_exactly_like_an_unknown_one() {
    let app = spawn_app().await;
    let user = app.create_user("mine").await;
    let (id, secret) = app.other_merchant().await;
    let reference = user["user_reference_id"].as_i64().unwrap();
    let theirs = app
        .call_as(
            &id,
            &secret,
            Method::GET,
            &format!("/user?user_reference_id={reference}"),
            None,
        )
        .await;
    let unknown = app
        .call_as(
            &id,
            &secret,
            Method::GET,
            "/user?user_reference_id=987654321",
            None,
        )
        .await;
    assert_eq!(theirs.status, unknown.status);
    assert_eq!(theirs.body, unknown.body);
    let theirs = app
        .call_as(&id, &secret, Method::GET, "/user?user_id=mine", None)
        .await;
    theirs.assert_error(
        404,
        "validation_error",
        "user_id_not_found",
        "user_id does not exist.",
    );
}
