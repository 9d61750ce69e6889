use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use vkyc::config::{Config, Environment};
use vkyc::http::app::Application;
use vkyc::store::Store;

pub struct TestApp {
    pub base: String,
    pub client_id: String,
    pub secret: String,
    pub store: Store,
    /// The configuration the server was started with.
    pub config: Config,
    pub key: vkyc::secrets::MasterKey,
    pub database_url: String,
    pub client: reqwest::Client,
    /// `http://<address>` of the metrics listener, where `metrics_listen` is set.
    pub metrics: Option<String>,
    /// Stops the server (a clean stop: workers finish their step).
    pub shutdown: tokio_util::sync::CancellationToken,
    pub _dir: tempfile::TempDir,
}

/// A database URL for one test: a fresh PostgreSQL database when `VKYC_TEST_PG_URL` is
/// set, otherwise a SQLite file in `dir`.
pub async fn test_database(dir: &std::path::Path) -> String {
    match std::env::var("VKYC_TEST_PG_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("vkyc_test_{}", hex::encode(rand::random::<[u8; 8]>()));
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connecting to VKYC_TEST_PG_URL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("creating a test database");
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&name);
            url.to_string()
        }
        _ => format!("sqlite://{}", dir.join("vkyc.db").display()),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let database_url = test_database(dir.path()).await;
    spawn_app_in(dir, database_url, None, adjust).await
}

/// A second server on `first`'s database with its master key, as a second `vkyc`
/// process of one deployment would be; its own data directory.
pub async fn spawn_app_beside(first: &TestApp, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    first.key.write(&dir.path().join("master.key")).unwrap();
    let merchant = (first.client_id.clone(), first.secret.clone());
    spawn_app_in(dir, first.database_url.clone(), Some(merchant), adjust).await
}

async fn spawn_app_in(
    dir: tempfile::TempDir,
    database_url: String,
    merchant: Option<(String, String)>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url,
        environment: Environment::Sandbox,
        // Tests make many calls quickly; the rate-limit tests set their own limits.
        default_rate_limit_per_minute: 0,
        ..Config::default()
    };
    // Many servers run at once: each relay takes a free UDP port.
    config.media.udp_bind = "127.0.0.1:0".into();
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build(config.clone())
        .await
        .expect("the app builds");
    // A sandbox creates a test merchant on first start; a production deployment gets a
    // live merchant as an operator would make one.
    let (client_id, secret) = match (&app.bootstrap, merchant) {
        (_, Some(merchant)) => merchant,
        (Some(boot), None) => (boot.client_id.clone(), boot.secret.clone()),
        (None, None) => {
            let live = vkyc::auth::NewCredential::generate(vkyc::store::MerchantEnv::Live);
            app.store()
                .create_merchant(
                    "Live merchant",
                    vkyc::store::MerchantEnv::Live,
                    &live.client_id,
                    &live.digest(),
                    &live.sealed(app.master_key()),
                )
                .await
                .unwrap();
            (live.client_id.clone(), live.secret.clone())
        }
    };
    let base = app.base_url().to_string();
    let store = app.store().clone();
    let key = app.master_key().clone();
    let metrics = app.metrics_addr().map(|a| format!("http://{a}"));
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run());
    TestApp {
        base,
        client_id,
        secret,
        store,
        config,
        key,
        database_url,
        client: reqwest::Client::new(),
        metrics,
        shutdown,
        _dir: dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Asserts an error answer: status and the exact `{type, code, message}` body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, kind: &str, code: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.body,
            json!({"type": kind, "code": code, "message": message}),
            "status {}",
            self.status
        );
    }

    #[track_caller]
    pub fn assert_code(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert!(self.body["message"].is_string() && self.body["type"].is_string());
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        self.body
    }
}

impl TestApp {
    /// A connection pool of the test's own on the app's database, for moving time or
    /// reading what the API does not show.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/verification{path}", self.base)
    }

    /// A call with this app's test merchant credentials.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.client_id, &self.secret, method, path, body)
            .await
    }

    pub async fn call_as(
        &self,
        client_id: &str,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("x-client-id", client_id)
            .header("x-client-secret", secret)
            .header("x-api-version", "2024-12-01");
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    pub async fn create_user(&self, user_id: &str) -> Value {
        self.call(
            Method::POST,
            "/user",
            Some(json!({"user_id": user_id, "phone": "9876543210", "name": "Asha Rao"})),
        )
        .await
        .ok()
    }

    pub async fn create_vkyc(&self, verification_id: &str, user_id: &str) -> Value {
        self.call(
            Method::POST,
            "/vkyc",
            Some(json!({"verification_id": verification_id, "user_id": user_id})),
        )
        .await
        .ok()
    }

    pub async fn status(&self, verification_id: &str) -> Value {
        self.call(
            Method::GET,
            &format!("/vkyc?verification_id={verification_id}"),
            None,
        )
        .await
        .ok()
    }

    /// A second merchant with its own test credentials.
    pub async fn other_merchant(&self) -> (String, String) {
        let credential = vkyc::auth::NewCredential::generate(vkyc::store::MerchantEnv::Test);
        self.store
            .create_merchant(
                "Other",
                vkyc::store::MerchantEnv::Test,
                &credential.client_id,
                &credential.digest(),
                &credential.sealed(&self.key),
            )
            .await
            .unwrap();
        (credential.client_id.clone(), credential.secret.clone())
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("the server answers");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        body,
        headers,
    }
}

impl TestApp {
    /// Runs the `vkyc` command line on this app's data directory and database, as an
    /// operator would beside the running server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "vkyc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// [`TestApp::cli`] for a command that may fail: its whole output.
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
            .args(args)
            .env("VKYC_DATA_DIR", self._dir.path())
            .env("VKYC_DATABASE_URL", &self.database_url)
            .env_remove("VKYC_CONFIG")
            .env_remove("VKYC_MASTER_KEY")
            .output()
            .expect("vkyc runs")
    }
}
