use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

fn raw(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("x-client-id", &app.client_id)
        .header("x-client-secret", &app.secret)
        .header("x-api-version", "2024-12-01")
}

#[tokio::test]
async fn malformed_bodies_answer_in_the_error_shape_and_change_nothing() {
    let app = spawn_app().await;
    for body in [
        "",
        "   ",
        "{",
        "[]",
        "\"text\"",
        "null",
        "{\"verification_id\": }",
        "\u{feff}{}",
    ] {
        let reply = send(
            raw(&app, Method::POST, "/vkyc")
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        assert_eq!(reply.body["type"], "validation_error");
        assert!(
            matches!(
                reply.body["code"].as_str(),
                Some("request_body_invalid" | "request_body_missing")
            ),
            "{body:?}: {}",
            reply.body
        );
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let json = |req: reqwest::RequestBuilder| req.header("content-type", "application/json");
    let reply =
        send(json(raw(&app, Method::POST, "/vkyc")).body(format!("{{\"a\":{deep}}}"))).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    let nested = format!("{{\"a\":{}{}}}", "[".repeat(500), "]".repeat(500));
    send(json(raw(&app, Method::POST, "/vkyc")).body(nested))
        .await
        .assert_code(400, "request_body_invalid");
    let history = app.store.request_by_id(1).await.unwrap();
    assert!(history.is_none(), "nothing was stored");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app().await;
    let big = json!({"verification_id": "x", "user_id": "u", "pad": "a".repeat(70_000)});
    app.call(Method::POST, "/vkyc", Some(big))
        .await
        .assert_error(
            413,
            "validation_error",
            "request_too_large",
            "request body is too large.",
        );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    send(raw(&app, Method::GET, "/nothing-here"))
        .await
        .assert_error(
            404,
            "validation_error",
            "route_not_found",
            "the requested URL does not exist.",
        );
    send(app.client.get(format!("{}/elsewhere", app.base)))
        .await
        .assert_code(404, "route_not_found");
    send(raw(&app, Method::DELETE, "/vkyc")).await.assert_error(
        405,
        "validation_error",
        "method_not_allowed",
        "this method is not allowed on the requested URL.",
    );
}

#[tokio::test]
async fn hostile_ids_are_refused_cleanly() {
    let app = spawn_app().await;
    app.create_user("u").await;
    for id in [
        "a\r\nx-injected: 1",
        "../../etc/passwd",
        "ｖｋｙｃ",
        "a\u{200b}b",
        "a'; DROP TABLE requests;--",
        "é",
        "<script>",
    ] {
        let reply = app
            .call(
                Method::POST,
                "/vkyc",
                Some(json!({"verification_id": id, "user_id": "u"})),
            )
            .await;
        reply.assert_code(400, "verification_id_value_invalid");
        assert!(reply.headers.get("x-injected").is_none());
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        app.call(
            Method::GET,
            &format!("/vkyc?verification_id={encoded}"),
            None,
        )
        .await
        .assert_code(400, "verification_id_value_invalid");
    }
    // The table survived.
    app.create_vkyc("ok", "u").await;
}

#[tokio::test]
async fn a_repeated_query_key_is_refused() {
    let app = spawn_app().await;
    app.call(
        Method::GET,
        "/vkyc?verification_id=a&verification_id=b",
        None,
    )
    .await
    .assert_code(400, "verification_id_value_invalid");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/vkyc", None).await;
    assert!(reply.headers.get("x-request-id").is_some());
}
