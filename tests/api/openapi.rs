//! The OpenAPI document of the merchant API (`openapi/merchant-api.json`), checked against
//! the seed it must copy and against the real server it describes.
//!
//! - the server serves the file byte for byte, and it is pretty-printed OpenAPI 3.0.3;
//! - `GET /vkyc` and every component it references are exactly the seed's (the fixture
//!   `tests/fixtures/get-vkyc.openapi.yaml`, converted from YAML);
//! - every documented operation is routed, an unknown URL is `route_not_found`;
//! - every error example is reproduced over HTTP, status and body (and the documented
//!   response headers), except the few listed in [`NOT_REPRODUCIBLE`] with the reason;
//!   second factors and rate limits on servers of their own;
//! - every 200 example has the keys of a real answer, and real answers conform to the
//!   documented schemas (types, nullability, enums, formats, no undocumented property);
//! - the request body schemas and the parameters say what the validation does: required
//!   fields, types, maximum lengths, patterns and enums.

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vkyc::config::{Config, Environment};
use vkyc::store::MerchantEnv;

const DOCUMENT: &str = include_str!("../../openapi/merchant-api.json");
const FIXTURE: &str = include_str!("../fixtures/get-vkyc.openapi.yaml");
const API_VERSION: &str = "2024-12-01";

/// Error examples whose trigger is not reproducible over HTTP against a plain server, with
/// the reason. Every other error example of the document must be reproduced.
const NOT_REPRODUCIBLE: &[(&str, &str)] = &[
    ("Internal Server Error", "needs a failing database"),
    ("Request changed", "needs two moves racing on one request"),
];

/// Where the seed's schema contradicts its own examples and the server follows the
/// examples: (schema pointer, keyword, the value the server's answers conform to). A test
/// checks that the seed really says otherwise, and that its `Success` example agrees with
/// the server.
const SEED_DEVIATIONS: &[(&str, &str, &str)] = &[
    // `type: string`, but the Success example (11174) and the property's own example
    // (123456) are integers, like `reference_id`.
    (
        "/components/schemas/GetVKYCLinkResponseSchema/properties/user_reference_id",
        "type",
        "integer",
    ),
    // `format: date`, but both examples are date-times ('2025-08-03T00:00:00.000Z').
    (
        "/components/schemas/GetVKYCLinkResponseSchema/properties/link_expiry",
        "format",
        "date-time",
    ),
];

/// The field that errors about a path parameter name: (parameter, field).
const PATH_PARAMETER_FIELDS: &[(&str, &str)] = &[("id", "delivery_id")];

const PHONE: &str = "9876543210";
const FIX_USER: &str = "fixture_user";
const FIX_VKYC: &str = "fixture_vkyc";
const FIX_EXPIRED: &str = "fixture_expired";
const UNKNOWN_ID: i64 = 999_999_999;

// ---------------------------------------------------------------- the server

struct Server {
    base: String,
    client_id: String,
    secret: String,
    merchant_id: i64,
    store: vkyc::store::Store,
    key: vkyc::secrets::MasterKey,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(environment: Environment) -> Server {
    start_with(environment, |_| {}).await
}

/// Starts the real server, its configuration changed by `adjust`. A sandbox gets its
/// bootstrap test merchant; a production deployment has none, so a live merchant is
/// created for it.
async fn start_with(environment: Environment, adjust: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        environment,
        body_timeout_seconds: 2,
        default_rate_limit_per_minute: 0,
        ..Default::default()
    };
    // Servers run side by side: each media relay takes a free UDP port.
    config.media.udp_bind = "127.0.0.1:0".into();
    adjust(&mut config);
    let app = vkyc::http::app::Application::build(config).await.unwrap();
    let base = app.base_url().to_string();
    let (client_id, secret) = match app.bootstrap.as_ref() {
        Some(boot) => (boot.client_id.clone(), boot.secret.clone()),
        None => {
            let credential = vkyc::auth::NewCredential::generate(MerchantEnv::Live);
            app.store()
                .create_merchant(
                    "live merchant",
                    MerchantEnv::Live,
                    &credential.client_id,
                    &credential.digest(),
                    &credential.sealed(app.master_key()),
                )
                .await
                .unwrap();
            (credential.client_id.clone(), credential.secret.clone())
        }
    };
    let store = app.store().clone();
    let key = app.master_key().clone();
    let merchant_id = store
        .merchant_by_client_id(&client_id)
        .await
        .unwrap()
        .expect("the merchant of the credentials")
        .id;
    tokio::spawn(app.run());
    Server {
        base,
        client_id,
        secret,
        merchant_id,
        store,
        key,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Which server of the [`Fixture`] a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Sandbox,
    Production,
    /// A merchant whose IP allow-list admits no caller of the tests.
    IpAllowList,
    /// A merchant that must sign its calls (`x-cf-signature`).
    Signed,
    /// A merchant allowed [`RATE_LIMIT`] calls a minute.
    RateLimited,
}

/// The rate limit of [`Target::RateLimited`]: the default of a deployment, which the
/// document's example names.
const RATE_LIMIT: u32 = 100;

/// One HTTP call to a documented path (relative to `/verification`).
#[derive(Clone, Debug)]
struct Call {
    method: Method,
    path: String,
    query: String,
    body: Option<Vec<u8>>,
    remove: Vec<&'static str>,
    set: Vec<(&'static str, HeaderValue)>,
    target: Target,
    slow_body: bool,
    /// Sent twice; the second answer counts.
    replay: bool,
}

impl Call {
    fn new(method: Method, path: &str) -> Call {
        Call {
            method,
            path: path.to_string(),
            query: String::new(),
            body: None,
            remove: Vec::new(),
            set: Vec::new(),
            target: Target::Sandbox,
            slow_body: false,
            replay: false,
        }
    }
    fn query(mut self, query: &str) -> Call {
        self.query = query.to_string();
        self
    }
    fn json(mut self, body: Value) -> Call {
        self.body = Some(serde_json::to_vec(&body).unwrap());
        self
    }
    fn raw(mut self, body: &[u8]) -> Call {
        self.body = Some(body.to_vec());
        self
    }
    fn without(mut self, header: &'static str) -> Call {
        self.remove.push(header);
        self
    }
    fn header(mut self, header: &'static str, value: HeaderValue) -> Call {
        self.set.push((header, value));
        self
    }
    fn on(mut self, target: Target) -> Call {
        self.target = target;
        self
    }
    fn on_production(self) -> Call {
        self.on(Target::Production)
    }
    fn slow_body(mut self) -> Call {
        self.slow_body = true;
        self
    }
    fn replayed(mut self) -> Call {
        self.replay = true;
        self
    }
}

/// The path of an operation with its path parameter filled in.
fn concrete_path(path: &str, id: &str) -> String {
    path.replace("{id}", id)
}

/// An answer: status, headers, and the JSON body (or the text, as a JSON string).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// The status and the JSON body (or the text, as a JSON string) of an answer.
async fn send(server: &Server, call: &Call) -> (u16, Value) {
    let answer = send_full(server, call).await;
    (answer.status, answer.body)
}

async fn send_full(server: &Server, call: &Call) -> Answer {
    if call.slow_body {
        let (status, body) = send_slowly(server, call).await;
        return Answer {
            status,
            headers: Default::default(),
            body,
        };
    }
    let mut url = format!("{}/verification{}", server.base, call.path);
    if !call.query.is_empty() {
        url = format!("{url}?{}", call.query);
    }
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-client-id", server.client_id.parse().unwrap());
    headers.insert("x-client-secret", server.secret.parse().unwrap());
    headers.insert("x-api-version", HeaderValue::from_static(API_VERSION));
    for name in &call.remove {
        headers.remove(*name);
    }
    for (name, value) in &call.set {
        headers.insert(*name, value.clone());
    }
    let mut request = server
        .http
        .request(call.method.clone(), &url)
        .headers(headers);
    if let Some(body) = &call.body {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends the headers and the start of a body that never completes, over a raw socket.
async fn send_slowly(server: &Server, call: &Call) -> (u16, Value) {
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "{} /verification{} HTTP/1.1\r\nhost: {addr}\r\nx-client-id: {}\r\n\
         x-client-secret: {}\r\nx-api-version: {API_VERSION}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"na",
        call.method, call.path, server.client_id, server.secret
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| buf.len() >= end + 4 + n) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer to a stalled body");
    let end = find(&buf, b"\r\n\r\n").expect("a complete answer head");
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_slice(&buf[end + 4..]).unwrap_or(Value::Null);
    (status, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn api(server: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut call = Call::new(method, path).query(query);
    if let Some(body) = body {
        call = call.json(body);
    }
    send(server, &call).await
}

/// A call that must succeed; returns its body.
async fn ok(server: &Server, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = api(server, method.clone(), path, body).await;
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

// ---------------------------------------------------------------- the document

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi/merchant-api.json is JSON")
}

fn seed() -> Value {
    serde_yaml::from_str(FIXTURE).expect("the fixture is YAML")
}

/// Follows `$ref`s to the object they name.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(target) = value.get("$ref").and_then(Value::as_str) {
        let pointer = target.strip_prefix('#').expect("a local $ref");
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("unresolved $ref {target}"));
    }
    value
}

/// The JSON pointer a value's `$ref` names, or `at` when it is not a reference.
fn target(value: &Value, at: String) -> String {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => r.trim_start_matches('#').to_string(),
        None => at,
    }
}

struct Operation {
    method: Method,
    path: String,
    id: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                id: op["operationId"].as_str().unwrap().to_string(),
                op: op.clone(),
            });
        }
    }
    out
}

fn operation<'a>(ops: &'a [Operation], id: &str) -> &'a Operation {
    ops.iter().find(|o| o.id == id).unwrap()
}

/// The examples of one response of an operation, `$ref`s resolved, in document order.
fn response_examples(doc: &Value, op: &Value, status: &str) -> Vec<(String, Value)> {
    let Some(response) = op["responses"].get(status) else {
        return Vec::new();
    };
    let response = resolve(doc, response);
    let Some(examples) = response["content"]["application/json"]["examples"].as_object() else {
        return Vec::new();
    };
    examples
        .iter()
        .map(|(name, e)| (name.clone(), resolve(doc, e)["value"].clone()))
        .collect()
}

/// The pointer of the JSON schema of one response of an operation.
fn response_schema(doc: &Value, op: &Value, status: &str) -> String {
    let response = resolve(doc, &op["responses"][status]);
    target(
        &response["content"]["application/json"]["schema"],
        String::new(),
    )
}

fn request_examples(doc: &Value, op: &Value) -> Vec<(String, Value)> {
    let content = &resolve(doc, &op["requestBody"])["content"]["application/json"];
    content["examples"]
        .as_object()
        .map(|examples| {
            examples
                .iter()
                .map(|(name, e)| (name.clone(), resolve(doc, e)["value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn request_schema(doc: &Value, op: &Value) -> String {
    target(
        &resolve(doc, &op["requestBody"])["content"]["application/json"]["schema"],
        String::new(),
    )
}

/// Every `$ref` under `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------- schema conformance

fn deviation(pointer: &str) -> Option<(&'static str, &'static str)> {
    SEED_DEVIATIONS
        .iter()
        .find(|(p, _, _)| *p == pointer)
        .map(|(_, key, value)| (*key, *value))
}

/// Checks `value` against the schema at `pointer`: types, nullability, enums, lengths,
/// formats, required and undocumented properties. Problems go to `errors`.
fn conform(doc: &Value, pointer: &str, value: &Value, at: &str, errors: &mut Vec<String>) {
    let raw = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema at {pointer}"));
    if let Some(r) = raw.get("$ref").and_then(Value::as_str) {
        return conform(doc, r.trim_start_matches('#'), value, at, errors);
    }
    let mut schema = raw.clone();
    if let Some((key, actual)) = deviation(pointer) {
        schema[key] = json!(actual);
    }
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{at}: null, but {pointer} is not nullable"));
        }
        return;
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = (0..branches.len())
            .filter(|i| {
                let mut e = Vec::new();
                conform(doc, &format!("{pointer}/oneOf/{i}"), value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!(
                "{at}: {value} matches {matching} branches of {pointer}/oneOf"
            ));
        }
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let fits = match ty {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            other => panic!("unknown type {other} at {pointer}"),
        };
        if !fits {
            errors.push(format!("{at}: {value} is not of type {ty} ({pointer})"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not in the enum of {pointer}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                errors.push(format!("{at}: longer than {max} ({pointer})"));
            }
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                errors.push(format!("{at}: shorter than {min} ({pointer})"));
            }
        }
        let format_ok = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            Some("date") => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
            Some("uri") => text.starts_with("http://") || text.starts_with("https://"),
            Some("email") => text.contains('@'),
            _ => true,
        };
        if !format_ok {
            errors.push(format!(
                "{at}: {text:?} does not have the format of {pointer}"
            ));
        }
    }
    if let Some(object) = value.as_object() {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (key, v) in object {
                if properties.contains_key(key) {
                    let inner = format!("{pointer}/properties/{key}");
                    conform(doc, &inner, v, &format!("{at}.{key}"), errors);
                } else if schema.get("additionalProperties").is_none() {
                    errors.push(format!("{at}: undocumented property {key} ({pointer})"));
                }
            }
        }
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                errors.push(format!(
                    "{at}: required property {key} is missing ({pointer})"
                ));
            }
        }
    }
    if let (Some(items), Some(_)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conform(
                doc,
                &format!("{pointer}/items"),
                item,
                &format!("{at}[{i}]"),
                errors,
            );
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An example and a real answer have the same keys at every level, and the same JSON
/// types wherever neither is null.
fn same_shape(example: &Value, real: &Value, at: &str, errors: &mut Vec<String>) {
    match (example, real) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(e), Value::Object(r)) => {
            let ek: BTreeSet<&String> = e.keys().collect();
            let rk: BTreeSet<&String> = r.keys().collect();
            if ek != rk {
                errors.push(format!(
                    "{at}: example keys {ek:?} differ from the real keys {rk:?}"
                ));
            }
            for key in ek.intersection(&rk) {
                same_shape(&e[*key], &r[*key], &format!("{at}.{key}"), errors);
            }
        }
        (Value::Array(e), Value::Array(r)) => {
            for (i, (e, r)) in e.iter().zip(r).enumerate() {
                same_shape(e, r, &format!("{at}[{i}]"), errors);
            }
        }
        (e, r) if json_type(e) != json_type(r) => errors.push(format!(
            "{at}: example {e} is a {}, the real value {r} a {}",
            json_type(e),
            json_type(r)
        )),
        _ => {}
    }
}

// ---------------------------------------------------------------- fixtures

/// A sandbox with a user, a live request and an expired one; a production deployment
/// with a live merchant; and one server each for a merchant with an IP allow-list, one
/// that signs its calls, and one with a rate limit.
struct Fixture {
    sandbox: Server,
    production: Server,
    ip_allow_list: Server,
    signed: Server,
    /// The public key of the `signed` merchant, to make its `x-cf-signature`s with.
    public_key: rsa::RsaPublicKey,
    rate_limited: Server,
    user_ref: i64,
    expired_ref: i64,
}

impl Fixture {
    fn server(&self, target: Target) -> &Server {
        match target {
            Target::Sandbox => &self.sandbox,
            Target::Production => &self.production,
            Target::IpAllowList => &self.ip_allow_list,
            Target::Signed => &self.signed,
            Target::RateLimited => &self.rate_limited,
        }
    }

    /// An `x-cf-signature` of the signed merchant for a time `offset` seconds from now.
    fn signature(&self, offset: i64) -> HeaderValue {
        let seconds = chrono::Utc::now().timestamp() + offset;
        let message = format!("{}.{seconds}", self.signed.client_id);
        sign(&self.public_key, &message).parse().unwrap()
    }
}

/// `x-cf-signature`: Base64 of RSA-OAEP (SHA-1) encryption of `message` under `key`.
fn sign(key: &rsa::RsaPublicKey, message: &str) -> String {
    use base64::Engine;
    let sealed = key
        .encrypt(
            &mut rand::thread_rng(),
            rsa::Oaep::new::<sha1::Sha1>(),
            message.as_bytes(),
        )
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

/// A key pair for the merchant of `server`, which must then sign its calls; returns the
/// public key.
async fn require_signatures(server: &Server) -> rsa::RsaPublicKey {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public = private.to_public_key();
    let public_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let sealed = server.key.seal(private.to_pkcs8_der().unwrap().as_bytes());
    server
        .store
        .set_second_factor(
            server.merchant_id,
            "signature",
            None,
            Some((&public_pem, &sealed)),
        )
        .await
        .unwrap();
    public
}

async fn fixture() -> Fixture {
    let sandbox = start(Environment::Sandbox).await;
    let production = start(Environment::Production).await;
    // The caller's address comes from X-Forwarded-For (sent by a "proxy" on 127.0.0.1),
    // so that the example's address can be reproduced.
    let ip_allow_list = start_with(Environment::Sandbox, |c| {
        c.credential_cache_seconds = 0;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    ip_allow_list
        .store
        .set_second_factor(
            ip_allow_list.merchant_id,
            "ip",
            Some("[\"10.9.9.9/32\"]"),
            None,
        )
        .await
        .unwrap();
    let signed = start_with(Environment::Sandbox, |c| c.credential_cache_seconds = 0).await;
    let public_key = require_signatures(&signed).await;
    let rate_limited = start_with(Environment::Sandbox, |c| {
        c.default_rate_limit_per_minute = RATE_LIMIT
    })
    .await;

    let user = ok(
        &sandbox,
        Method::POST,
        "/user",
        Some(json!({"user_id": FIX_USER, "phone": PHONE, "email": "fixture@example.com"})),
    )
    .await;
    for verification_id in [FIX_VKYC, FIX_EXPIRED] {
        ok(
            &sandbox,
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": verification_id, "user_id": FIX_USER})),
        )
        .await;
    }
    let expired = ok(
        &sandbox,
        Method::POST,
        "/sandbox/vkyc/advance",
        Some(json!({"verification_id": FIX_EXPIRED, "sub_status": "VKYC_EXPIRED"})),
    )
    .await;
    assert_eq!(expired["status"], "EXPIRED");
    Fixture {
        user_ref: user["user_reference_id"].as_i64().unwrap(),
        expired_ref: expired["reference_id"].as_i64().unwrap(),
        sandbox,
        production,
        ip_allow_list,
        signed,
        public_key,
        rate_limited,
    }
}

/// Sends a trigger to its server. A replayed call is sent twice and the second answer
/// counts. A call of the rate-limited merchant is sent until it is refused: the limit is
/// per clock minute, so a window may turn over between two calls; twice the limit and
/// more calls reach a refusal whatever the clock does.
async fn reproduce(f: &Fixture, call: &Call) -> Answer {
    let server = f.server(call.target);
    if call.replay {
        send_full(server, call).await;
    }
    let mut answer = send_full(server, call).await;
    if call.target == Target::RateLimited {
        for _ in 0..2 * RATE_LIMIT + 2 {
            if answer.status == 429 {
                break;
            }
            answer = send_full(server, call).await;
        }
    }
    answer
}

fn aadhaar() -> Value {
    json!({
        "last_verified_at": "2024-11-20T10:00:00Z",
        "care_of": "S/O Ram Doe",
        "dob": "1990-01-15",
        "gender": "M",
        "name": "John Doe",
        "photo_link": "https://example.com/photo.jpg",
        "split_address": {
            "country": "India", "dist": "Bengaluru Urban", "house": "12",
            "state": "Karnataka", "street": "MG Road", "pincode": 560001
        }
    })
}

/// The call that makes the server answer the error example `name` of operation `op`, or
/// `None` when the test knows none.
fn trigger(f: &Fixture, op: &Operation, name: &str) -> Option<Call> {
    let call = Call::new(
        op.method.clone(),
        &concrete_path(&op.path, &UNKNOWN_ID.to_string()),
    );
    let bad = |bytes: &'static [u8]| HeaderValue::from_bytes(bytes).unwrap();
    // Header and body errors, second factors and the rate limit, the same for every
    // operation.
    match name {
        "IP not whitelisted" => {
            return Some(
                call.on(Target::IpAllowList)
                    .header("x-forwarded-for", HeaderValue::from_static("106.51.91.104")),
            )
        }
        "x-cf-signature header missing" => return Some(call.on(Target::Signed)),
        "x-cf-signature invalid" => {
            return Some(
                call.on(Target::Signed)
                    .header("x-cf-signature", HeaderValue::from_static("AAAA")),
            )
        }
        "x-cf-signature expired" => {
            return Some(
                call.on(Target::Signed)
                    .header("x-cf-signature", f.signature(-3600)),
            )
        }
        "x-cf-signature already used" => {
            return Some(
                call.on(Target::Signed)
                    .header("x-cf-signature", f.signature(0))
                    .replayed(),
            )
        }
        "Rate limit exceeded" => return Some(call.on(Target::RateLimited)),
        "x-client-id missing" | "Client ID/Client Secret in Missing" => {
            return Some(call.without("x-client-id"))
        }
        "x-client-id not ASCII" => return Some(call.header("x-client-id", bad(b"CF\xff"))),
        "x-client-secret missing" => return Some(call.without("x-client-secret")),
        "x-client-secret not ASCII" => {
            return Some(call.header("x-client-secret", bad(b"cfsk_ma_test_\xff")))
        }
        "x-api-version missing" => return Some(call.without("x-api-version")),
        "x-api-version not a date" => {
            return Some(call.header("x-api-version", HeaderValue::from_static("2024-13-01")))
        }
        "Using-Test-Credentials-in-Prod" => {
            return Some(call.on_production().header(
                "x-client-secret",
                HeaderValue::from_static("cfsk_ma_test_00"),
            ))
        }
        "Using-Live-Credentials-in-Sandbox" => {
            return Some(call.header(
                "x-client-secret",
                HeaderValue::from_static("cfsk_ma_prod_00"),
            ))
        }
        "Invalid client ID and client secret combination" => {
            return Some(call.header(
                "x-client-secret",
                HeaderValue::from_static("cfsk_ma_test_00"),
            ))
        }
        "Request body missing" => return Some(call.raw(b"")),
        "Request body not JSON" => return Some(call.raw(b"{\"phone\": ")),
        "Request body not an object" => return Some(call.raw(b"[]")),
        "Request too large" => {
            // One byte over the limit, so that the server reads all of it (a body left
            // unread in the socket can turn the answer into a connection reset).
            let size = Config::default().max_body_bytes + 1;
            let body = format!("{{\"name\":\"{}\"}}", "a".repeat(size - 11));
            assert_eq!(body.len(), size);
            return Some(call.raw(body.as_bytes()));
        }
        "Request timeout" => return Some(call.slow_body()),
        _ => {}
    }
    let long = "a".repeat(51);
    let body = |v: Value| Some(call.clone().json(v));
    let query = |q: &str| Some(call.clone().query(q));
    let token = |changes: Value| {
        let mut b = json!({
            "app_id": f.sandbox.client_id,
            "product": "VKYC",
            "metadata": {"vkyc_request_id": FIX_VKYC},
            "authenticated_user": {"identifier_type": "phone", "identifier_value": PHONE},
        });
        for (key, value) in changes.as_object().unwrap() {
            match value {
                Value::Null => b.as_object_mut().unwrap().remove(key),
                v => b.as_object_mut().unwrap().insert(key.clone(), v.clone()),
            };
        }
        body(b)
    };
    let new_vkyc = |extra: Value| {
        let mut b = json!({"verification_id": "new_vkyc", "user_id": FIX_USER});
        for (key, value) in extra.as_object().unwrap() {
            b[key] = value.clone();
        }
        body(b)
    };
    let mut bad_gender = aadhaar();
    bad_gender["gender"] = json!("X");
    let mut bad_pincode = aadhaar();
    bad_pincode["split_address"]["pincode"] = json!(12);
    match (op.id.as_str(), name) {
        ("vkyc-create-user", "Phone missing") => body(json!({"user_id": "new_user"})),
        ("vkyc-create-user", "Invalid phone") => body(json!({"phone": "12345"})),
        ("vkyc-create-user", "User ID empty") => body(json!({"user_id": "", "phone": PHONE})),
        ("vkyc-create-user", "User ID with special characters") => {
            body(json!({"user_id": "a b", "phone": PHONE}))
        }
        ("vkyc-create-user", "User ID too long") => body(json!({"user_id": long, "phone": PHONE})),
        ("vkyc-create-user", "Invalid email") => {
            body(json!({"phone": PHONE, "email": "not-an-email"}))
        }
        ("vkyc-create-user", "Invalid name") => body(json!({"phone": PHONE, "name": "   "})),
        ("vkyc-create-user", "Invalid address") => {
            body(json!({"phone": PHONE, "address": "a\u{1}b"}))
        }
        ("vkyc-create-user", "User ID already exists") => {
            body(json!({"user_id": FIX_USER, "phone": PHONE}))
        }

        ("vkyc-get-user", "User reference ID missing") => query(""),
        ("vkyc-get-user", "Invalid user reference ID") => query("user_reference_id=abc"),
        ("vkyc-get-user", "User ID empty") => query("user_id="),
        ("vkyc-get-user", "User ID with special characters") => query("user_id=a%20b"),
        ("vkyc-get-user", "User ID too long") => query(&format!("user_id={long}")),
        ("vkyc-get-user", "User ID does not match user reference ID") => query(&format!(
            "user_reference_id={}&user_id=someone_else",
            f.user_ref
        )),
        ("vkyc-get-user", "Repeated query parameter") => query("user_id=a&user_id=b"),
        ("vkyc-get-user", "User reference ID not found") => {
            query(&format!("user_reference_id={UNKNOWN_ID}"))
        }
        ("vkyc-get-user", "User ID not found") => query("user_id=nobody"),

        ("vkyc-update-user", "Phone cannot be updated") => {
            body(json!({"user_id": FIX_USER, "phone": PHONE}))
        }
        ("vkyc-update-user", "Nothing to update") => body(json!({"user_id": FIX_USER})),
        ("vkyc-update-user", "User reference ID missing") => {
            body(json!({"email": "new@example.com"}))
        }
        ("vkyc-update-user", "Invalid user reference ID") => {
            body(json!({"user_reference_id": "abc", "email": "new@example.com"}))
        }
        ("vkyc-update-user", "User ID with special characters") => {
            body(json!({"user_id": "a b", "email": "new@example.com"}))
        }
        ("vkyc-update-user", "User ID does not match user reference ID") => body(json!({
            "user_reference_id": f.user_ref, "user_id": "someone_else", "email": "new@example.com"
        })),
        ("vkyc-update-user", "Invalid email") => body(json!({"user_id": FIX_USER, "email": "x"})),
        ("vkyc-update-user", "Invalid name") => body(json!({"user_id": FIX_USER, "name": ""})),
        ("vkyc-update-user", "Invalid address") => {
            body(json!({"user_id": FIX_USER, "address": "a\u{0}b"}))
        }
        ("vkyc-update-user", "User reference ID not found") => {
            body(json!({"user_reference_id": UNKNOWN_ID, "email": "new@example.com"}))
        }
        ("vkyc-update-user", "User ID not found") => {
            body(json!({"user_id": "nobody", "email": "new@example.com"}))
        }

        ("vkyc-create-request", "Verification ID Missing") => body(json!({"user_id": FIX_USER})),
        ("vkyc-create-request", "Verification ID empty") => {
            new_vkyc(json!({"verification_id": ""}))
        }
        ("vkyc-create-request", "Verification ID With Special Chars") => {
            new_vkyc(json!({"verification_id": "a b"}))
        }
        ("vkyc-create-request", "Verification ID too long") => {
            new_vkyc(json!({"verification_id": long}))
        }
        ("vkyc-create-request", "User reference ID missing") => {
            body(json!({"verification_id": "new_vkyc"}))
        }
        ("vkyc-create-request", "Invalid user reference ID") => {
            body(json!({"verification_id": "new_vkyc", "user_reference_id": "abc"}))
        }
        ("vkyc-create-request", "User ID with special characters") => {
            new_vkyc(json!({"user_id": "a b"}))
        }
        ("vkyc-create-request", "User ID does not match user reference ID") => {
            new_vkyc(json!({"user_reference_id": f.user_ref, "user_id": "someone_else"}))
        }
        ("vkyc-create-request", "Invalid notification types") => {
            new_vkyc(json!({"notification_types": ["fax"]}))
        }
        ("vkyc-create-request", "Invalid user template") => {
            new_vkyc(json!({"user_template": "a b"}))
        }
        ("vkyc-create-request", "Invalid agent template") => {
            new_vkyc(json!({"agent_template": ""}))
        }
        ("vkyc-create-request", "Aadhaar details not an object") => {
            new_vkyc(json!({"aadhaar_details": "x"}))
        }
        ("vkyc-create-request", "Invalid Aadhaar gender") => {
            new_vkyc(json!({"aadhaar_details": bad_gender}))
        }
        ("vkyc-create-request", "Invalid Aadhaar pincode") => {
            new_vkyc(json!({"aadhaar_details": bad_pincode}))
        }
        ("vkyc-create-request", "Invalid security questions") => {
            new_vkyc(json!({"security_questions": [{"order": "first"}]}))
        }
        ("vkyc-create-request", "Invalid link expiry") => {
            new_vkyc(json!({"link_expiry": "tomorrow"}))
        }
        ("vkyc-create-request", "Link expiry out of range") => {
            new_vkyc(json!({"link_expiry": "2000-01-01"}))
        }
        ("vkyc-create-request", "Webhook URL not a string") => {
            new_vkyc(json!({"webhook_url": 12345}))
        }
        ("vkyc-create-request", "Invalid webhook URL") => {
            new_vkyc(json!({"webhook_url": "merchant.example.in/hooks"}))
        }
        ("vkyc-create-request", "Webhook URL not http or https") => {
            new_vkyc(json!({"webhook_url": "ftp://merchant.example.in/hooks"}))
        }
        ("vkyc-create-request", "Webhook URL too long") => new_vkyc(json!({
            "webhook_url": format!("https://merchant.example.in/{}", "a".repeat(2000))
        })),
        ("vkyc-create-request", "Webhook URL at an internal address") => {
            new_vkyc(json!({"webhook_url": "http://10.0.0.5/hooks"}))
        }
        ("vkyc-create-request", "User reference ID not found") => {
            body(json!({"verification_id": "new_vkyc", "user_reference_id": UNKNOWN_ID}))
        }
        ("vkyc-create-request", "User ID not found") => new_vkyc(json!({"user_id": "nobody"})),
        ("vkyc-create-request", "Verification ID already exists") => {
            new_vkyc(json!({"verification_id": FIX_VKYC}))
        }

        // GET /vkyc (the seed's names), GET /vkyc/history and GET /webhooks/deliveries
        // name a request alike.
        ("vkyc-get-status" | "vkyc-get-history" | "vkyc-list-webhook-deliveries", name) => {
            match name {
                "Verification ID Missing" => query(""),
                "Verification ID With Special Chars" => query("verification_id=a%20b"),
                "Invalid Verification Id" | "Verification ID too long" => {
                    query(&format!("verification_id={long}"))
                }
                "Verification Id Missing" | "Verification ID empty" => query("verification_id="),
                "Invalid VKYC Request Id" | "Invalid reference ID" => query("reference_id=abc"),
                "VKYC Request Id Missing" | "Reference ID empty" => query("reference_id="),
                "VKYC Reference Id not found" => query(&format!("reference_id={UNKNOWN_ID}")),
                "VKYC Verification Id not found" => query("verification_id=nobody"),
                "Repeated query parameter" => query("verification_id=a&verification_id=b"),
                _ => None,
            }
        }

        ("vkyc-create-access-token", name) => match name {
            "App ID missing" => token(json!({"app_id": null})),
            "App ID of another client" => token(json!({"app_id": "CF0000"})),
            "Product missing" => token(json!({"product": null})),
            "Invalid product" => token(json!({"product": "KYC"})),
            "Metadata missing" => token(json!({"metadata": null})),
            "Metadata not an object" => token(json!({"metadata": "x"})),
            "VKYC request ID missing" => token(json!({"metadata": {}})),
            "Invalid VKYC request ID" => token(json!({"metadata": {"vkyc_request_id": "a b"}})),
            "Authenticated user missing" => token(json!({"authenticated_user": null})),
            "Authenticated user not an object" => token(json!({"authenticated_user": "x"})),
            "Invalid identifier type" => token(json!({
                "authenticated_user": {"identifier_type": "aadhaar", "identifier_value": "x"}
            })),
            "Invalid identifier value" => {
                token(json!({"authenticated_user": {"identifier_type": "phone"}}))
            }
            "Authenticated user does not match" => token(json!({
                "authenticated_user": {"identifier_type": "phone", "identifier_value": "9000000000"}
            })),
            "Link expired" => token(json!({"metadata": {"vkyc_request_id": f.expired_ref}})),
            "VKYC request ID not found" => {
                token(json!({"metadata": {"vkyc_request_id": UNKNOWN_ID}}))
            }
            _ => None,
        },

        ("vkyc-get-webhook-delivery" | "vkyc-resend-webhook-delivery", name) => {
            let at = |id: &str| {
                let mut call = call.clone();
                call.path = concrete_path(&op.path, id);
                Some(call)
            };
            match name {
                "Invalid delivery ID" => at("abc"),
                "Delivery ID not found" => at(&UNKNOWN_ID.to_string()),
                _ => None,
            }
        }

        ("vkyc-sandbox-advance", name) => match name {
            "Sub status missing" => body(json!({"verification_id": FIX_VKYC})),
            "Invalid sub status" => {
                body(json!({"verification_id": FIX_VKYC, "sub_status": "DONE"}))
            }
            "Invalid reference ID" => {
                body(json!({"reference_id": "abc", "sub_status": "LINK_GENERATED"}))
            }
            "Verification ID Missing" => body(json!({"sub_status": "LINK_GENERATED"})),
            "Verification ID empty" => {
                body(json!({"verification_id": "", "sub_status": "LINK_GENERATED"}))
            }
            "Verification ID With Special Chars" => {
                body(json!({"verification_id": "a b", "sub_status": "LINK_GENERATED"}))
            }
            "Live credentials" => Some(
                call.clone()
                    .on_production()
                    .json(json!({"verification_id": FIX_VKYC, "sub_status": "LINK_GENERATED"})),
            ),
            "VKYC Reference Id not found" => {
                body(json!({"reference_id": UNKNOWN_ID, "sub_status": "LINK_GENERATED"}))
            }
            "VKYC Verification Id not found" => {
                body(json!({"verification_id": "nobody", "sub_status": "LINK_GENERATED"}))
            }
            "Sub status unreachable" => {
                body(json!({"verification_id": FIX_EXPIRED, "sub_status": "LINK_GENERATED"}))
            }
            _ => None,
        },
        _ => None,
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn the_served_document_is_the_file() {
    let server = start(Environment::Sandbox).await;
    let response = reqwest::get(format!("{}/verification/openapi.json", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = response.text().await.unwrap();
    assert!(
        served == DOCUMENT,
        "the served document differs from the file"
    );
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/merchant-api.json"
    ))
    .unwrap();
    assert!(served == on_disk, "the binary embeds a stale document");

    let doc = document();
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["info"]["title"], "vkyc merchant API");
    assert_eq!(doc["info"]["version"], "2024-12-01");
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("Cashfree's Secure ID Video KYC API"));
    assert_eq!(doc["servers"], json!([{"url": "/verification"}]));
    // Valid JSON with 2-space indentation: exactly what a pretty printer writes.
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    assert!(
        pretty == DOCUMENT,
        "the file is not 2-space pretty-printed JSON"
    );
}

#[test]
fn get_vkyc_and_its_components_are_the_seeds() {
    let doc = document();
    // The seed with its two self-contradictions resolved as the server answers.
    let mut seed = seed();
    for (pointer, key, actual) in SEED_DEVIATIONS {
        seed.pointer_mut(pointer).unwrap()[*key] = json!(actual);
    }
    assert_eq!(doc["paths"]["/vkyc"]["get"], seed["paths"]["/vkyc"]["get"]);
    assert_eq!(
        doc["paths"]["/vkyc"]["get"]["operationId"],
        "vkyc-get-status"
    );

    // Every component the operation references, directly or through other components.
    let mut pending = Vec::new();
    refs(&seed["paths"]["/vkyc"]["get"], &mut pending);
    let mut seen = BTreeSet::new();
    while let Some(r) = pending.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        let pointer = r.trim_start_matches('#');
        let theirs = seed
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{r} not in the seed"));
        let ours = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{r} not in the document"));
        assert_eq!(ours, theirs, "{r} differs from the seed");
        refs(theirs, &mut pending);
    }
    for requirement in seed["paths"]["/vkyc"]["get"]["security"]
        .as_array()
        .unwrap()
    {
        for scheme in requirement.as_object().unwrap().keys() {
            let pointer = format!("/components/securitySchemes/{scheme}");
            assert_eq!(doc.pointer(&pointer), seed.pointer(&pointer), "{pointer}");
            seen.insert(format!("#{pointer}"));
        }
    }
    let expected: BTreeSet<String> = [
        "parameters/x_cf_signature",
        "parameters/global_x_api_version",
        "parameters/vkyc_verification_id",
        "parameters/vkyc_request_id",
        "responses/GetVKYCLinkResponse",
        "responses/Response400GetStatusVkycLink",
        "responses/Response401",
        "responses/Response403",
        "responses/ResponseVKYCRequest404",
        "responses/Response500V2",
        "schemas/GetVKYCLinkResponseSchema",
        "schemas/ErrorResponseSchema",
        "examples/VerificationIdMissing",
        "examples/VerificationIdWithSpecialCharacter",
        "examples/XClientIdMissing",
        "examples/UsingTestCredentialsInProd",
        "securitySchemes/XClientID",
        "securitySchemes/XClientSecret",
    ]
    .iter()
    .map(|c| format!("#/components/{c}"))
    .collect();
    assert_eq!(seen, expected);
}

#[test]
fn seed_deviations_are_real_and_the_server_follows_the_seed_example() {
    let doc = document();
    let example = &response_examples(&doc, &doc["paths"]["/vkyc"]["get"], "200")[0].1;
    let seed = seed();
    for (pointer, key, actual) in SEED_DEVIATIONS {
        assert_ne!(
            seed.pointer(pointer).unwrap()[*key],
            json!(actual),
            "{pointer}: not a deviation any more"
        );
        assert_eq!(
            doc.pointer(pointer).unwrap()[*key],
            json!(actual),
            "{pointer}"
        );
        let property = pointer.rsplit('/').next().unwrap();
        let value = &example[property];
        match *key {
            "type" => assert_eq!(json_type(value), *actual, "{pointer}"),
            "format" => assert!(
                chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).is_ok(),
                "{pointer}"
            ),
            _ => unreachable!(),
        }
    }
}

#[test]
fn the_document_is_consistent() {
    let doc = document();
    // Every $ref resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        assert!(
            doc.pointer(r.trim_start_matches('#')).is_some(),
            "unresolved {r}"
        );
    }
    let ops = operations(&doc);
    let ids: Vec<&str> = ops.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "vkyc-create-user",
            "vkyc-get-user",
            "vkyc-update-user",
            "vkyc-create-request",
            "vkyc-get-status",
            "vkyc-get-history",
            "vkyc-create-access-token",
            "vkyc-sandbox-advance",
            "vkyc-list-webhook-deliveries",
            "vkyc-get-webhook-delivery",
            "vkyc-resend-webhook-delivery",
        ]
    );
    let mut errors = Vec::new();
    for op in &ops {
        let o = &op.op;
        assert_eq!(
            o["security"],
            json!([{"XClientID": [], "XClientSecret": []}]),
            "{}",
            op.id
        );
        assert!(
            o["parameters"]
                .as_array()
                .unwrap()
                .contains(&json!({"$ref": "#/components/parameters/global_x_api_version"})),
            "{} does not take x-api-version",
            op.id
        );
        let extension = matches!(op.path.as_str(), "/vkyc/history" | "/sandbox/vkyc/advance")
            || op.path.starts_with("/webhooks/");
        assert_eq!(
            o.get("x-vkyc-extension") == Some(&json!(true)),
            extension,
            "{}: x-vkyc-extension",
            op.id
        );
        let mut statuses = vec!["200", "400", "401", "500"];
        if o.get("requestBody").is_some() {
            statuses.extend(["408", "413"]);
        }
        // GET /vkyc is the seed's, which lists neither; the server answers both there too.
        if op.id != "vkyc-get-status" {
            statuses.extend(["403", "429"]);
            assert!(
                o["parameters"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"$ref": "#/components/parameters/x_cf_signature"})),
                "{} does not take x-cf-signature",
                op.id
            );
            let retry_after = &resolve(&doc, &o["responses"]["429"])["headers"]["Retry-After"];
            assert_eq!(retry_after["required"], true, "{}: Retry-After", op.id);
            assert_eq!(
                retry_after["schema"]["type"], "integer",
                "{}: Retry-After",
                op.id
            );
        }
        // Every path parameter is declared, and required.
        for name in op.path.split('/').filter_map(|segment| {
            segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
        }) {
            let declared = o["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| resolve(&doc, p))
                .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true);
            assert!(declared, "{}: path parameter {name}", op.id);
        }
        for status in statuses {
            assert!(
                o["responses"].get(status).is_some(),
                "{} lacks {status}",
                op.id
            );
        }
        // Every example conforms to its response's schema; error bodies are exactly
        // {type, code, message}.
        for status in o["responses"].as_object().unwrap().keys() {
            let schema = response_schema(&doc, o, status);
            for (name, value) in response_examples(&doc, o, status) {
                let at = format!("{} {status} {name:?}", op.id);
                conform(&doc, &schema, &value, &at, &mut errors);
                if !status.starts_with('2') {
                    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
                    assert_eq!(keys, ["type", "code", "message"], "{at}");
                    assert!(
                        [
                            "validation_error",
                            "authentication_error",
                            "rate_limit_error",
                            "internal_error"
                        ]
                        .contains(&value["type"].as_str().unwrap()),
                        "{at}"
                    );
                }
            }
        }
        if o.get("requestBody").is_some() {
            let schema = request_schema(&doc, o);
            for (name, value) in request_examples(&doc, o) {
                conform(
                    &doc,
                    &schema,
                    &value,
                    &format!("{} request {name:?}", op.id),
                    &mut errors,
                );
            }
        }
    }
    // The serving of the document itself is not an operation of the API.
    assert!(doc["paths"].get("/openapi.json").is_none());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = start(Environment::Sandbox).await;
    let doc = document();
    let missing = resolve(
        &doc,
        &json!({"$ref": "#/components/examples/XClientIdMissing"}),
    )["value"]
        .clone();
    let http = reqwest::Client::new();
    for op in operations(&doc) {
        let path = concrete_path(&op.path, "1");
        let url = format!("{}/verification{path}", server.base);
        let response = http.request(op.method.clone(), &url).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status, &body),
            (400, &missing),
            "{} {}",
            op.method,
            op.path
        );
    }
    for path in [
        "/verification/nope",
        "/verification/vkyc/nope",
        "/verification",
    ] {
        let response = http
            .get(format!("{}{path}", server.base))
            .header("x-client-id", &server.client_id)
            .header("x-client-secret", &server.secret)
            .header("x-api-version", API_VERSION)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"type": "validation_error", "code": "route_not_found",
                   "message": "the requested URL does not exist."}),
            "{path}"
        );
    }
    // A documented path with a method it does not have.
    let paths: BTreeSet<String> = operations(&doc)
        .into_iter()
        .map(|o| concrete_path(&o.path, "1"))
        .collect();
    for path in paths {
        let response = http
            .delete(format!("{}/verification{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "DELETE {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"type": "validation_error", "code": "method_not_allowed",
                   "message": "this method is not allowed on the requested URL."}),
            "DELETE {path}"
        );
    }
}

#[tokio::test]
async fn every_error_example_is_reproduced() {
    let f = fixture().await;
    let doc = document();
    let ops = operations(&doc);
    let mut failures = Vec::new();
    let mut reproduced = 0;
    for op in &ops {
        for status in op.op["responses"].as_object().unwrap().keys() {
            if status.starts_with('2') {
                continue;
            }
            for (name, expected) in response_examples(&doc, &op.op, status) {
                let Some(call) = trigger(&f, op, &name) else {
                    if !NOT_REPRODUCIBLE.iter().any(|(n, _)| *n == name) {
                        failures.push(format!("{} {status} {name:?}: no trigger", op.id));
                    }
                    continue;
                };
                let answer = reproduce(&f, &call).await;
                let (got_status, got) = (answer.status, &answer.body);
                let want_status: u16 = status.parse().unwrap();
                if (got_status, got) != (want_status, &expected) {
                    failures.push(format!(
                        "{} {status} {name:?}: got {got_status} {got}, documented {expected}",
                        op.id
                    ));
                }
                // The documented response headers: present when required, and within
                // their schema's bounds.
                let response = resolve(&doc, &op.op["responses"][status]);
                for (header, spec) in response["headers"].as_object().into_iter().flatten() {
                    let at = format!("{} {status} {name:?}: {header}", op.id);
                    let Some(value) = answer.headers.get(header.as_str()) else {
                        if spec["required"] == true {
                            failures.push(format!("{at} is missing"));
                        }
                        continue;
                    };
                    let value = value.to_str().unwrap_or_default();
                    let schema = &spec["schema"];
                    if schema["type"] == "integer" {
                        let fits = value.parse::<i64>().is_ok_and(|n| {
                            schema["minimum"].as_i64().is_none_or(|min| n >= min)
                                && schema["maximum"].as_i64().is_none_or(|max| n <= max)
                        });
                        if !fits {
                            failures.push(format!("{at}: {value:?} is not within {schema}"));
                        }
                    }
                }
                reproduced += 1;
            }
        }
    }
    eprintln!("{reproduced} error examples reproduced");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        reproduced > 150,
        "only {reproduced} examples were reproduced"
    );
    // Nothing the triggers sent changed the fixture.
    let status = ok(
        &f.sandbox,
        Method::GET,
        &format!("/vkyc?verification_id={FIX_VKYC}"),
        None,
    )
    .await;
    assert_eq!(status["sub_status"], "LINK_GENERATED");
}

#[tokio::test]
async fn get_vkyc_answers_exactly_the_documented_properties() {
    let server = start(Environment::Sandbox).await;
    let doc = document();
    let schema = "/components/schemas/GetVKYCLinkResponseSchema";
    let properties: BTreeSet<String> = doc.pointer(schema).unwrap()["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    ok(
        &server,
        Method::POST,
        "/user",
        Some(json!({"user_id": "u1", "phone": PHONE})),
    )
    .await;
    // A new request, one with a meeting time, one with both remarks.
    let cases = [
        ("r_new", None),
        ("r_meeting", Some("USER_MEETING_SCHEDULED")),
        ("r_audited", Some("AUDITOR_APPROVED")),
    ];
    let mut errors = Vec::new();
    let mut non_null = BTreeSet::new();
    for (verification_id, target) in cases {
        let created = ok(
            &server,
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": verification_id, "user_id": "u1"})),
        )
        .await;
        if let Some(target) = target {
            ok(
                &server,
                Method::POST,
                "/sandbox/vkyc/advance",
                Some(json!({"verification_id": verification_id, "sub_status": target})),
            )
            .await;
        }
        let by_id = ok(
            &server,
            Method::GET,
            &format!("/vkyc?verification_id={verification_id}"),
            None,
        )
        .await;
        let by_ref = ok(
            &server,
            Method::GET,
            &format!("/vkyc?reference_id={}", created["reference_id"]),
            None,
        )
        .await;
        assert_eq!(by_id, by_ref);
        let keys: BTreeSet<String> = by_id.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys, properties,
            "the answer's properties are the documented ones"
        );
        conform(&doc, schema, &by_id, verification_id, &mut errors);
        for (key, value) in by_id.as_object().unwrap() {
            if !value.is_null() {
                non_null.insert(key.clone());
            }
        }
        assert_eq!(by_id["verification_id"], verification_id);
        assert_eq!(by_id["user_id"], "u1");
        assert!(by_id["vkyc_link"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/v/", server.base)));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Every nullable property was seen with a value too, except the recording, which no
    // API call sets yet.
    let never: Vec<&String> = properties.difference(&non_null).collect();
    assert_eq!(never, ["recording_link"]);
}

/// Substitutes the values of a request example that cannot be fixed in a document: the
/// caller's client id, a reference id, a date in the allowed window, a webhook URL that
/// reaches a receiver of the test.
fn concrete(mut example: Value, client_id: &str, reference_id: i64, webhook_url: &str) -> Value {
    if example.get("app_id").is_some() {
        example["app_id"] = json!(client_id);
        example["metadata"]["vkyc_request_id"] = json!(reference_id);
    }
    if example.get("link_expiry").is_some() {
        let date = chrono::Utc::now().date_naive() + chrono::Days::new(3);
        example["link_expiry"] = json!(date.format("%Y-%m-%d").to_string());
    }
    if example.get("webhook_url").is_some() {
        example["webhook_url"] = json!(webhook_url);
    }
    example
}

/// A webhook receiver that answers every call 200; returns its base URL.
async fn start_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A URL on a loopback port where nothing listens.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hooks/vkyc")
}

/// Compares a real 200 answer with a 200 example of the document and its schema.
struct Comparison<'a> {
    doc: &'a Value,
    ops: &'a [Operation],
    errors: Vec<String>,
    compared: BTreeSet<(String, String)>,
}

impl Comparison<'_> {
    fn compare(&mut self, id: &str, response: &str, real: &Value) {
        let op = operation(self.ops, id);
        let (_, example) = response_examples(self.doc, &op.op, "200")
            .into_iter()
            .find(|(n, _)| n == response)
            .unwrap_or_else(|| panic!("{id} has no 200 example {response:?}"));
        same_shape(
            &example,
            real,
            &format!("{id} {response:?}"),
            &mut self.errors,
        );
        let schema = response_schema(self.doc, &op.op, "200");
        conform(
            self.doc,
            &schema,
            real,
            &format!("{id} real answer"),
            &mut self.errors,
        );
        self.compared.insert((id.to_string(), response.to_string()));
    }
}

#[tokio::test]
async fn success_examples_match_real_answers() {
    // Webhooks go to a receiver of the test; a failed attempt is retried after a second,
    // and then after five minutes.
    let server = start_with(Environment::Sandbox, |c| {
        c.webhook_allow_private_addresses = true;
        c.webhook_interval_ms = 50;
        c.webhook_retry_schedule_seconds = vec![1, 300];
    })
    .await;
    let receiver = start_receiver().await;
    let merchant_url = format!("{receiver}/hooks/merchant");
    let request_url = format!("{receiver}/hooks/request");
    server
        .store
        .set_webhook_url(server.merchant_id, Some(&merchant_url))
        .await
        .unwrap();
    let doc = document();
    let ops = operations(&doc);
    let mut check = Comparison {
        doc: &doc,
        ops: &ops,
        errors: Vec::new(),
        compared: BTreeSet::new(),
    };
    let mut reference_id = 0;

    // The request examples, sent in an order that makes each one valid, each paired with
    // the 200 example it documents.
    let plan: [(&str, Option<&str>, &str, &str); 9] = [
        ("vkyc-create-user", Some("Create user"), "", "Success"),
        ("vkyc-get-user", None, "user_id=vkyc_user_id1", "Success"),
        ("vkyc-update-user", Some("Update user"), "", "Success"),
        ("vkyc-create-request", Some("Minimal"), "", "Success"),
        (
            "vkyc-create-request",
            Some("With Aadhaar details and security questions"),
            "",
            "Success with Aadhaar details and security questions",
        ),
        (
            "vkyc-sandbox-advance",
            Some("Approve by the agent"),
            "",
            "Success",
        ),
        (
            "vkyc-get-status",
            None,
            "verification_id=vkyc_verification_id",
            "Success",
        ),
        (
            "vkyc-get-history",
            None,
            "verification_id=vkyc_verification_id",
            "Success",
        ),
        (
            "vkyc-create-access-token",
            Some("Token for a request"),
            "",
            "Success",
        ),
    ];
    for (id, request, query, response) in plan {
        let op = operation(&ops, id);
        let mut call = Call::new(op.method.clone(), &op.path).query(query);
        let mut sent = Value::Null;
        if let Some(request) = request {
            let (_, example) = request_examples(&doc, &op.op)
                .into_iter()
                .find(|(n, _)| n == request)
                .unwrap_or_else(|| panic!("{id} has no request example {request:?}"));
            sent = concrete(example, &server.client_id, reference_id, &request_url);
            call = call.json(sent.clone());
        }
        let (status, real) = send(&server, &call).await;
        assert_eq!(status, 200, "{id} {request:?}: {real}");
        check.compare(id, response, &real);

        // What was sent comes back.
        for key in [
            "user_id",
            "verification_id",
            "aadhaar_details",
            "security_questions",
        ] {
            if let (Some(s), Some(r)) = (sent.get(key), real.get(key)) {
                assert_eq!(s, r, "{id}: {key}");
            }
        }
        if let Some(date) = sent.get("link_expiry").and_then(Value::as_str) {
            assert_eq!(real["link_expiry"], format!("{date}T00:00:00.000Z"));
        }
        if id == "vkyc-create-request" && reference_id == 0 {
            reference_id = real["reference_id"].as_i64().unwrap();
        }
        if id == "vkyc-create-access-token" {
            let token = real["access_token"].as_str().unwrap();
            assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(real["expiry"].as_str().unwrap().ends_with("+05:30"));
        }
    }

    // Webhook deliveries. The request with a webhook_url has its event delivered to the
    // merchant's URL and to its own; one more request names a URL where nothing listens,
    // which fails twice and is then due again in five minutes.
    let unreachable = closed_url();
    ok(
        &server,
        Method::POST,
        "/vkyc",
        Some(json!({
            "verification_id": "vkyc_unreachable",
            "user_id": "vkyc_user_id1",
            "webhook_url": unreachable,
        })),
    )
    .await;
    let settled = |list: &Value, want: &str| {
        let all = list["deliveries"].as_array().unwrap();
        !all.is_empty() && all.iter().all(|d| d["status"] == want)
    };
    let mut list = Value::Null;
    let mut failing = Value::Null;
    for _ in 0..300 {
        list = ok(
            &server,
            Method::GET,
            "/webhooks/deliveries?verification_id=vkyc_verification_id2",
            None,
        )
        .await;
        let to_closed = ok(
            &server,
            Method::GET,
            "/webhooks/deliveries?verification_id=vkyc_unreachable",
            None,
        )
        .await;
        failing = to_closed["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["url"] == unreachable.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        if settled(&list, "delivered") && failing["attempts"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled(&list, "delivered"), "{list}");
    assert_eq!(failing["attempts"], 2, "{failing}");
    assert_eq!(failing["status"], "pending", "{failing}");
    check.compare("vkyc-list-webhook-deliveries", "Success", &list);
    let urls: BTreeSet<&str> = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        BTreeSet::from([merchant_url.as_str(), request_url.as_str()])
    );
    // Every request's deliveries are the merchant's deliveries of that request.
    let everything = ok(&server, Method::GET, "/webhooks/deliveries", None).await;
    check.compare("vkyc-list-webhook-deliveries", "Success", &everything);
    for delivery in list["deliveries"].as_array().unwrap() {
        assert!(
            everything["deliveries"]
                .as_array()
                .unwrap()
                .contains(delivery),
            "{delivery}"
        );
    }

    let delivered = &list["deliveries"][0];
    let path = |id: &Value, suffix: &str| format!("/webhooks/deliveries/{id}{suffix}");
    let one = ok(&server, Method::GET, &path(&delivered["id"], ""), None).await;
    check.compare("vkyc-get-webhook-delivery", "Delivered", &one);
    assert_eq!(one["attempt_log"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["attempt_log"][0]["status_code"], 200, "{one}");
    let mut without_log = one.clone();
    without_log.as_object_mut().unwrap().remove("attempt_log");
    assert_eq!(&without_log, delivered);

    let down = ok(&server, Method::GET, &path(&failing["id"], ""), None).await;
    check.compare("vkyc-get-webhook-delivery", "Failing", &down);
    assert_eq!(down["attempt_log"].as_array().unwrap().len(), 2, "{down}");
    assert!(down["last_error"].is_string(), "{down}");
    assert!(down["next_attempt_at"].is_string(), "{down}");

    let resent = ok(
        &server,
        Method::POST,
        &path(&delivered["id"], "/resend"),
        None,
    )
    .await;
    check.compare("vkyc-resend-webhook-delivery", "Success", &resent);
    assert_ne!(resent["id"], delivered["id"]);
    for key in [
        "event_id",
        "event_type",
        "sequence",
        "url",
        "verification_id",
    ] {
        assert_eq!(resent[key], delivered[key], "resend: {key}");
    }

    // Every 200 example of the document was compared.
    for op in &ops {
        for (name, _) in response_examples(&doc, &op.op, "200") {
            assert!(
                check.compared.contains(&(op.id.clone(), name.clone())),
                "{} 200 {name:?} was not compared with a real answer",
                op.id
            );
        }
    }
    assert!(check.errors.is_empty(), "\n{}", check.errors.join("\n"));
}

/// What the validation answers for one body: the error code, or `None` on success.
async fn code_of(server: &Server, op: &Operation, body: &Value) -> (u16, Option<String>) {
    let call = Call::new(op.method.clone(), &op.path).json(body.clone());
    let (status, answer) = send(server, &call).await;
    let code = answer["code"].as_str().map(str::to_string);
    (status, code)
}

#[tokio::test]
async fn request_schemas_say_what_the_validation_does() {
    let server = start(Environment::Sandbox).await;
    let doc = document();
    let ops = operations(&doc);
    // A user and a request for the example bodies to name.
    let user = ok(
        &server,
        Method::POST,
        "/user",
        Some(json!({"user_id": "vkyc_user_id1", "phone": "9999999999"})),
    )
    .await;
    assert_eq!(user["user_id"], "vkyc_user_id1");
    let request = ok(
        &server,
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "vkyc_verification_id", "user_id": "vkyc_user_id1"})),
    )
    .await;
    let reference_id = request["reference_id"].as_i64().unwrap();

    let mut failures = Vec::new();
    let mut checked = 0;
    for op in ops.iter().filter(|o| o.op.get("requestBody").is_some()) {
        let schema_pointer = request_schema(&doc, &op.op);
        let schema = doc.pointer(&schema_pointer).unwrap().clone();
        let (_, example) = request_examples(&doc, &op.op).remove(0);
        let base = concrete(
            example,
            &server.client_id,
            reference_id,
            "https://merchant.example.in/hooks/vkyc",
        );
        let mut expect = |what: String, got: (u16, Option<String>), want: Option<String>| {
            checked += 1;
            let fine = match &want {
                Some(code) => got == (400, Some(code.clone())),
                // Accepted by the validation: any answer but a `_value_invalid` of it.
                None => !got
                    .1
                    .as_deref()
                    .is_some_and(|c| c.ends_with("_value_invalid")),
            };
            if !fine {
                failures.push(format!("{} {what}: got {got:?}, want {want:?}", op.id));
            }
        };

        // Required properties, and "one of these" groups (named by their first member).
        let mut groups: Vec<Vec<String>> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| vec![k.as_str().unwrap().to_string()])
            .collect();
        if let Some(any) = schema["anyOf"].as_array() {
            groups.push(
                any.iter()
                    .map(|b| b["required"][0].as_str().unwrap().to_string())
                    .collect(),
            );
        }
        for group in groups {
            let mut body = base.clone();
            for key in &group {
                body.as_object_mut().unwrap().remove(key);
            }
            let got = code_of(&server, op, &body).await;
            expect(
                format!("without {group:?}"),
                got,
                Some(format!("{}_missing", group[0])),
            );
        }

        for (key, property) in schema["properties"].as_object().unwrap() {
            // A nullable reference is written `allOf: [{$ref}]` in OpenAPI 3.0.
            let property = match property.get("allOf") {
                Some(all) => resolve(&doc, &all[0]),
                None => resolve(&doc, property),
            };
            let invalid = Some(format!("{key}_value_invalid"));
            let with = |value: Value| {
                let mut body = base.clone();
                body[key] = value;
                body
            };
            if property.get("oneOf").is_some() {
                let got = code_of(&server, op, &with(json!(true))).await;
                expect(format!("{key}: true"), got, invalid.clone());
                continue;
            }
            match property["type"].as_str().unwrap() {
                "string" => {
                    let got = code_of(&server, op, &with(json!(12345))).await;
                    expect(format!("{key}: a number"), got, invalid.clone());
                    if let Some(max) = property["maxLength"].as_u64() {
                        let long = "a".repeat(max as usize + 1);
                        let got = code_of(&server, op, &with(json!(long))).await;
                        expect(
                            format!("{key}: {} characters", max + 1),
                            got,
                            invalid.clone(),
                        );
                        if property.get("format").is_none() {
                            let longest = "a".repeat(max as usize);
                            let got = code_of(&server, op, &with(json!(longest))).await;
                            expect(format!("{key}: {max} characters"), got, None);
                        }
                    }
                    if property.get("enum").is_some() {
                        let got = code_of(&server, op, &with(json!("not_a_listed_value"))).await;
                        expect(format!("{key}: not in the enum"), got, invalid.clone());
                    }
                    if property.get("pattern").is_some() {
                        let got = code_of(&server, op, &with(json!("\u{1} bad!"))).await;
                        expect(format!("{key}: against the pattern"), got, invalid.clone());
                    }
                }
                "object" => {
                    let got = code_of(&server, op, &with(json!("x"))).await;
                    expect(format!("{key}: a string"), got, invalid.clone());
                }
                "array" => {
                    let got = code_of(&server, op, &with(json!("x"))).await;
                    expect(format!("{key}: a string"), got, invalid.clone());
                    if property["items"].get("enum").is_some() {
                        let got = code_of(&server, op, &with(json!(["not_a_listed_value"]))).await;
                        expect(
                            format!("{key}: an item not in the enum"),
                            got,
                            invalid.clone(),
                        );
                    }
                }
                other => panic!("{}: no check for a {other} property", op.id),
            }
        }
    }

    // Query parameters of the GET operations, where their schemas constrain them.
    for op in ops.iter().filter(|o| o.method == Method::GET) {
        for parameter in op.op["parameters"].as_array().unwrap() {
            let parameter = resolve(&doc, parameter);
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let schema = &parameter["schema"];
            let mut values = Vec::new();
            if let Some(max) = schema["maxLength"].as_u64() {
                values.push("a".repeat(max as usize + 1));
            }
            if schema.get("pattern").is_some() {
                values.push("%01%20bad!".to_string());
            }
            for value in values {
                let call = Call::new(op.method.clone(), &op.path).query(&format!("{name}={value}"));
                let (status, answer) = send(&server, &call).await;
                checked += 1;
                if (status, answer["code"].as_str())
                    != (400, Some(&*format!("{name}_value_invalid")))
                {
                    failures.push(format!("{} ?{name}={value}: got {status} {answer}", op.id));
                }
            }
        }
    }
    // Path parameters, where their schemas constrain them. Errors name them as the
    // server does: `{id}` of a delivery is `delivery_id`.
    for op in &ops {
        for parameter in op.op["parameters"].as_array().unwrap() {
            let parameter = resolve(&doc, parameter);
            if parameter["in"] != "path" || parameter["schema"].get("pattern").is_none() {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let field = PATH_PARAMETER_FIELDS
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, f)| *f)
                .unwrap_or_else(|| panic!("{}: no field for the path parameter {name}", op.id));
            for value in ["abc", "0", "-1", "1.5", "%20"] {
                let call = Call::new(op.method.clone(), &concrete_path(&op.path, value));
                let (status, answer) = send(&server, &call).await;
                checked += 1;
                if (status, answer["code"].as_str())
                    != (400, Some(&*format!("{field}_value_invalid")))
                {
                    failures.push(format!("{} {name}={value}: got {status} {answer}", op.id));
                }
            }
            // A well-formed id passes the validation (and is not found).
            let call = Call::new(
                op.method.clone(),
                &concrete_path(&op.path, &UNKNOWN_ID.to_string()),
            );
            let (status, answer) = send(&server, &call).await;
            checked += 1;
            if (status, answer["code"].as_str()) != (404, Some(&*format!("{field}_not_found"))) {
                failures.push(format!(
                    "{} {name}={UNKNOWN_ID}: got {status} {answer}",
                    op.id
                ));
            }
        }
    }
    eprintln!("{checked} request checks ran");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(checked > 60, "only {checked} checks ran");
}
