//! Second factors, secret rotation and the master key, through HTTP and the command line.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// `x-cf-signature` made the way a merchant makes it, with Node's own RSA-OAEP (SHA-1)
/// rather than this server's code.
fn sign(public_pem: &str, message: &str) -> String {
    let script =
        "const c=require('crypto');process.stdout.write(c.publicEncrypt({key:process.env.PEM,\
                  padding:c.constants.RSA_PKCS1_OAEP_PADDING,oaepHash:'sha1'},\
                  Buffer.from(process.env.MSG)).toString('base64'))";
    let out = std::process::Command::new("node")
        .args(["-e", script])
        .env("PEM", public_pem)
        .env("MSG", message)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn now_seconds() -> f64 {
    vkyc::clock::now_ms() as f64 / 1000.0
}

async fn get_signed(app: &TestApp, signature: Option<&str>) -> Reply {
    let mut req = app
        .client
        .get(app.url("/vkyc?verification_id=nothing"))
        .header("x-client-id", &app.client_id)
        .header("x-client-secret", &app.secret)
        .header("x-api-version", "2024-12-01");
    if let Some(signature) = signature {
        req = req.header("x-cf-signature", signature);
    }
    send(req).await
}

#[tokio::test]
async fn a_signature_merchant_must_send_a_fresh_valid_signature_once() {
    let app = spawn_app_with(|c| c.credential_cache_seconds = 0).await;
    let printed = app.cli(&["merchant", "keygen", "--client-id", &app.client_id]);
    let pem = &printed[printed
        .find("-----BEGIN PUBLIC KEY-----")
        .expect("a PEM public key")..];

    get_signed(&app, None).await.assert_error(
        403,
        "validation_error",
        "authentication_failed",
        "x-cf-signature missing in the request header",
    );
    let good = sign(pem, &format!("{}.{}", app.client_id, now_seconds() as i64));
    // Past authentication, the call reaches its own answer (an unknown id here).
    get_signed(&app, Some(&good))
        .await
        .assert_code(404, "verification_id_not_found");
    get_signed(&app, Some(&good)).await.assert_error(
        403,
        "authentication_error",
        "x-cf-signature_value_invalid",
        "x-cf-signature has already been used.",
    );
    // One SDK sends a fractional time.
    let fractional = sign(pem, &format!("{}.{:.3}", app.client_id, now_seconds()));
    get_signed(&app, Some(&fractional))
        .await
        .assert_code(404, "verification_id_not_found");

    let old = sign(
        pem,
        &format!("{}.{}", app.client_id, now_seconds() as i64 - 301),
    );
    get_signed(&app, Some(&old)).await.assert_error(
        403,
        "authentication_error",
        "x-cf-signature_value_invalid",
        "x-cf-signature has expired.",
    );
    let other_client = sign(pem, &format!("CFSOMEONEELSE.{}", now_seconds() as i64));
    let garbage = ["", "not base64!", "AAAA", &sign(pem, "no-dot-here")];
    for bad in garbage.iter().copied().chain([other_client.as_str()]) {
        let reply = get_signed(&app, Some(bad)).await;
        assert_eq!(reply.status, 403, "{bad:?}: {}", reply.body);
        assert_eq!(
            reply.body["code"], "x-cf-signature_value_invalid",
            "{}",
            reply.body
        );
    }
    // A signature made for another key is garbage too.
    let other = spawn_app().await;
    let other_pem = other.cli(&["merchant", "keygen", "--client-id", &other.client_id]);
    let other_pem = &other_pem[other_pem.find("-----BEGIN").unwrap()..];
    let foreign = sign(
        other_pem,
        &format!("{}.{}", app.client_id, now_seconds() as i64),
    );
    get_signed(&app, Some(&foreign))
        .await
        .assert_code(403, "x-cf-signature_value_invalid");

    // Without a second factor, the header is not needed any more.
    app.cli(&[
        "merchant",
        "clear-second-factor",
        "--client-id",
        &app.client_id,
    ]);
    get_signed(&app, None)
        .await
        .assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn an_ip_allow_list_refuses_other_addresses_and_names_the_caller() {
    let app = spawn_app_with(|c| c.credential_cache_seconds = 0).await;
    app.cli(&[
        "merchant",
        "allow-ip",
        "--client-id",
        &app.client_id,
        "--ip",
        "10.9.9.9",
        "--ip",
        "2001:db8::/32",
    ]);
    app.call(Method::GET, "/vkyc?verification_id=x", None).await.assert_error(
        403,
        "authentication_error",
        "ip_validation_failed",
        "IP not whitelisted your current ip is 127.0.0.1.For IP whitelisting assistance, visit our guide at https://www.cashfree.com/docs/secure-id/get-started/integration/ip-whitelisting-verification",
    );
    // Without trusted proxies, a forged X-Forwarded-For changes nothing.
    let forged = app
        .client
        .get(app.url("/vkyc?verification_id=x"))
        .header("x-client-id", &app.client_id)
        .header("x-client-secret", &app.secret)
        .header("x-api-version", "2024-12-01")
        .header("x-forwarded-for", "10.9.9.9");
    send(forged).await.assert_code(403, "ip_validation_failed");
    app.cli(&[
        "merchant",
        "allow-ip",
        "--client-id",
        &app.client_id,
        "--ip",
        "127.0.0.0/8",
    ]);
    app.call(Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_checked() {
    let app = spawn_app_with(|c| {
        c.credential_cache_seconds = 0;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    app.cli(&[
        "merchant",
        "allow-ip",
        "--client-id",
        &app.client_id,
        "--ip",
        "106.51.91.0/24",
    ]);
    let via_proxy = |xff: &str| {
        app.client
            .get(app.url("/vkyc?verification_id=x"))
            .header("x-client-id", &app.client_id)
            .header("x-client-secret", &app.secret)
            .header("x-api-version", "2024-12-01")
            .header("x-forwarded-for", xff.to_string())
    };
    send(via_proxy("106.51.91.104"))
        .await
        .assert_code(404, "verification_id_not_found");
    // What the client wrote to the left of the proxy's own entry does not count.
    send(via_proxy("106.51.91.104, 49.36.1.2")).await.assert_error(
        403,
        "authentication_error",
        "ip_validation_failed",
        "IP not whitelisted your current ip is 49.36.1.2.For IP whitelisting assistance, visit our guide at https://www.cashfree.com/docs/secure-id/get-started/integration/ip-whitelisting-verification",
    );
    send(via_proxy("2001:db8::7"))
        .await
        .assert_code(403, "ip_validation_failed");
}

#[tokio::test]
async fn a_secret_is_rotated_without_downtime_and_the_old_one_revoked() {
    let app = spawn_app_with(|c| c.credential_cache_seconds = 0).await;
    let printed = app.cli(&["merchant", "rotate-secret", "--client-id", &app.client_id]);
    let new_secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("new client secret:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_secret, app.secret);
    for secret in [&app.secret, &new_secret] {
        app.call_as(
            &app.client_id,
            secret,
            Method::GET,
            "/vkyc?verification_id=x",
            None,
        )
        .await
        .assert_code(404, "verification_id_not_found");
    }
    app.cli(&["merchant", "revoke-secret", "--client-id", &app.client_id]);
    app.call_as(
        &app.client_id,
        &app.secret,
        Method::GET,
        "/vkyc?verification_id=x",
        None,
    )
    .await
    .assert_code(401, "authentication_failed");
    app.call_as(
        &app.client_id,
        &new_secret,
        Method::GET,
        "/vkyc?verification_id=x",
        None,
    )
    .await
    .assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn a_rotated_secret_works_at_once_even_with_a_cached_credential() {
    let app = spawn_app().await;
    app.call(Method::GET, "/vkyc?verification_id=x", None)
        .await
        .assert_code(404, "verification_id_not_found");
    let printed = app.cli(&["merchant", "rotate-secret", "--client-id", &app.client_id]);
    let new_secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("new client secret:"))
        .unwrap()
        .trim()
        .to_string();
    // The cache said no to this secret less than a second ago at most once; retry briefly.
    let mut status = 0;
    for _ in 0..30 {
        let reply = app
            .call_as(
                &app.client_id,
                &new_secret,
                Method::GET,
                "/vkyc?verification_id=x",
                None,
            )
            .await;
        status = reply.status.as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "the new secret works within about a second");
}

#[tokio::test]
async fn secrets_at_rest_open_only_with_the_master_key_which_can_be_rotated() {
    let app = spawn_app_with(|c| c.credential_cache_seconds = 0).await;
    let printed = app.cli(&["merchant", "keygen", "--client-id", &app.client_id]);
    let pem = printed[printed.find("-----BEGIN").unwrap()..].to_string();
    let sealed = app.store.sealed_values().await.unwrap();
    assert_eq!(
        sealed.len(),
        3,
        "the client secret, the private key and the audit anchor key"
    );
    for (_, _, value) in &sealed {
        assert!(value.starts_with("v1:") && !value.contains(&app.secret));
        assert!(
            vkyc::secrets::MasterKey::generate().open(value).is_err(),
            "another key opens nothing"
        );
    }
    let opened = app
        .key
        .open(&sealed.iter().find(|v| v.0 == "credentials").unwrap().2)
        .unwrap();
    assert_eq!(opened, app.secret.as_bytes());

    let out = app.cli(&["master-key", "rotate"]);
    assert!(out.contains("3 values re-sealed"), "{out}");
    let new_key =
        vkyc::secrets::MasterKey::load_or_create(&app._dir.path().join("master.key")).unwrap();
    assert_ne!(new_key.to_hex(), app.key.to_hex());
    for (_, _, value) in app.store.sealed_values().await.unwrap() {
        assert!(new_key.open(&value).is_ok());
        assert!(app.key.open(&value).is_err());
    }
    // A server started with the new key still opens the merchant's signature key.
    let restarted = spawn_app_with(|c| {
        c.credential_cache_seconds = 0;
        c.database_url = app.database_url.clone();
        c.master_key_file = app._dir.path().join("master.key").display().to_string();
    })
    .await;
    let signature = sign(&pem, &format!("{}.{}", app.client_id, now_seconds() as i64));
    let reply = send(
        restarted
            .client
            .get(restarted.url("/vkyc?verification_id=x"))
            .header("x-client-id", &app.client_id)
            .header("x-client-secret", &app.secret)
            .header("x-api-version", "2024-12-01")
            .header("x-cf-signature", signature),
    )
    .await;
    reply.assert_code(404, "verification_id_not_found");
}

#[tokio::test]
async fn operator_mistakes_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
            .args(args)
            .env("VKYC_DATA_DIR", app._dir.path())
            .env("VKYC_DATABASE_URL", &app.database_url)
            .output()
            .unwrap()
    };
    let out = run(&["merchant", "revoke-secret", "--client-id", &app.client_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only one secret"));
    let out = run(&[
        "merchant",
        "allow-ip",
        "--client-id",
        &app.client_id,
        "--ip",
        "999.1.1.1",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IP address"));
    let out = run(&["merchant", "keygen", "--client-id", "CFNOBODY"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no merchant has client id"));
    app.cli(&["merchant", "rotate-secret", "--client-id", &app.client_id]);
    let out = run(&["merchant", "rotate-secret", "--client-id", &app.client_id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has two secrets"));
    // The merchant still works with its first secret.
    app.call(Method::POST, "/user", Some(json!({"phone": "9876543210"})))
        .await
        .ok();
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The data directory holds personal data: only the service's user may read it. A
/// directory left readable by others (an older version, an operator's copy) is narrowed
/// at start, files and all.
#[tokio::test]
async fn the_data_directory_is_private_to_the_service() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = data.join("recordings");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(old.join("1.json"), b"{}").unwrap();
    std::fs::set_permissions(old.join("1.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = data.clone();
    let app = spawn_app_with(move |c| {
        c.data_dir = dir;
        if !c.database_url.starts_with("postgres") {
            c.database_url = String::new();
        }
    })
    .await;
    app.create_user("u").await;
    app.create_vkyc("private", "u").await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&old), 0o700);
    assert_eq!(mode(&old.join("1.json")), 0o600);
    let mut seen = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
        seen += 1;
    }
    assert!(
        data.join("master.key").exists() && seen >= 2,
        "the key and the recordings"
    );
    if !app.database_url.starts_with("postgres") {
        assert!(data.join("vkyc.db").exists());
        assert_eq!(mode(&data.join("vkyc.db")), 0o600);
    }
}

/// The link token opens a customer's case: it never reaches the logs, even at `debug`,
/// where every request's path is logged. A short tag stands in for it.
#[tokio::test]
async fn link_tokens_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = test_database(dir.path()).await;
    let server =
        crate::crash::start_server_with(dir.path(), &database_url, 0, &[("RUST_LOG", "debug")])
            .await;
    let api = crate::crash::Api::of(&server);
    api.ok(
        Method::POST,
        "/user",
        Some(json!({"user_id": "u", "phone": "9876543210"})),
    )
    .await;
    let created = api
        .ok(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": "logged", "user_id": "u"})),
        )
        .await;
    let client = reqwest::Client::new();
    let link = created["vkyc_link"].as_str().unwrap().to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    assert!(token.len() >= 32, "{link}");
    for path in [
        format!("/v/{token}"),
        format!("/v/{token}/api/state"),
        format!("/v/{token}/api/nothing"),
    ] {
        client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
    }
    client
        .post(format!("{}/v/{token}/api/consent", server.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.logs();
    assert!(
        logs.contains("/v/~"),
        "requests are logged, with a tag: {logs}"
    );
    assert!(!logs.contains(&token), "the token is in the logs");
}

/// A client that starts a request and never finishes its headers is cut off after
/// `header_read_timeout_seconds`, and so is a keep-alive connection left idle that long.
#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.header_read_timeout_seconds = 1).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut buf = vec![0u8; 1024];
    for socket in [&mut slow, &mut idle] {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the connection was closed within 5 s");
    }
}

/// Past `max_connections` a new connection waits until one of the open ones closes.
#[tokio::test]
async fn open_connections_are_capped() {
    let app = spawn_app_with(|c| c.max_connections = 3).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // Give the server a moment to take the three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let waited = client.get(format!("{}/healthz", app.base)).send().await;
    assert!(
        waited.is_err(),
        "a fourth connection is not served while three are open"
    );
    held.pop();
    let served = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
}
