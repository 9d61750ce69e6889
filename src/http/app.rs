//! Builds the server: state, routes, middleware, background workers, and a graceful stop.
//! Tests start the real application on port 0 through [`Application::build`].

use crate::auth::{AuthSettings, Authenticator, NewCredential};
use crate::config::{Config, Environment};
use crate::error::{Error, ErrorType};
use crate::http::origin::{origin_of, same_origin};
use crate::http::{desk, journey, merchant_api};
use crate::secrets::MasterKey;
use crate::state::{AppState, Shared};
use crate::store::{MerchantEnv, Store};
use crate::workers;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

/// The whole HTTP surface, as a pure function of the state.
pub fn router(state: AppState) -> Router {
    // Worked out once: an unreadable base URL gives none, and every call naming one is refused.
    let own: std::sync::Arc<str> = origin_of(&state.base_url).unwrap_or_default().into();
    let request_id = HeaderName::from_static("x-request-id");
    let max_body = state.config.max_body_bytes;
    let body_timeout = Duration::from_secs(state.config.body_timeout_seconds);
    let routes = Router::new()
        .nest("/verification", merchant_api::router())
        .nest(
            "/desk",
            desk::router().layer(from_fn_with_state(own.clone(), same_origin)),
        )
        .route("/desk/", get(desk::to_desk))
        .merge(journey::router().layer(from_fn_with_state(own.clone(), same_origin)))
        .route(
            "/recordings/{file}",
            get(crate::http::recordings::serve_link),
        )
        .merge(crate::http::internal::router(state.clone()))
        .route("/", get(home))
        .route("/healthz", get(live))
        .route("/readyz", get(ready));
    // Counted only where metrics are served: otherwise the request path pays nothing.
    let metrics = (!state.config.metrics_listen.trim().is_empty()).then(|| state.metrics.clone());
    // After the 405 fallback is set, so that a wrong method keeps its route's label.
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = match &metrics {
        Some(_) => routes.route_layer(axum::middleware::from_fn(crate::http::metrics::mark_route)),
        None => routes,
    };
    let app = routes
        .with_state(state)
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %loggable_path(req.uri().path()),
                    request_id = %id, merchant = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId));
    match metrics {
        Some(metrics) => app.layer(from_fn_with_state(metrics, crate::http::metrics::count)),
        None => app,
    }
}

/// A path as logs may carry it: a segment that is a link or access token (32 or more hex
/// digits) becomes `~` and a tag of 8 hex digits of its SHA-256, enough to tell one
/// customer's calls from another's in the logs and useless to open the link.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    let secret = |s: &str| s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !path.split('/').any(secret) {
        return std::borrow::Cow::Borrowed(path);
    }
    let parts: Vec<String> = path
        .split('/')
        .map(|s| {
            if secret(s) {
                use sha2::Digest;
                format!("~{}", &hex::encode(sha2::Sha256::digest(s.as_bytes()))[..8])
            } else {
                s.to_string()
            }
        })
        .collect();
    std::borrow::Cow::Owned(parts.join("/"))
}

/// A request id for each call that came without one: a random (version 4) UUID drawn
/// from the thread's generator. tower-http's own `MakeRequestUuid` asks the kernel for
/// every id, a system call on every request.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut text);
        axum::http::HeaderValue::from_str(text)
            .ok()
            .map(RequestId::new)
    }
}

/// Runs each request on its own task, so that a client that goes away does not cancel
/// its handler half-way through a database transaction (sqlx can then hand back a
/// connection still inside `BEGIN`). What a handler started, it finishes.
async fn run_to_completion(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    // The merchant API's reads open no transaction (a rate-limit count is one statement),
    // so they may stop anywhere: spare them the extra task. Other GETs may write (the
    // journey's state, for one), so they run to completion like every other call.
    if req.method() == axum::http::Method::GET && req.uri().path().starts_with("/verification/") {
        return next.run(req).await;
    }
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(err) => {
            Error::internal(anyhow::anyhow!("a request handler failed: {err}")).into_response()
        }
    }
}

/// `GET /healthz`: the process is up and answering. It asks nothing of the database, so
/// an orchestrator restarts the process only when the process itself is stuck.
async fn live() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// `GET /readyz`: ready for traffic when the database answers with every migration of
/// this build applied and, where the relay is on, its sockets are bound (they are bound
/// before the server starts, so a running relay is enough). 503 with what is wrong.
async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let database = state.store.readiness().await;
    let relay = match (&state.media, state.config.media.enabled) {
        (Some(relay), _) => Ok(format!("{} shard(s) bound", relay.stats().shards)),
        (None, false) => Ok("off".to_string()),
        (None, true) => Err("not running".to_string()),
    };
    let ok = database.is_ok() && relay.is_ok();
    let said = |r: &Result<String, String>| match r {
        Ok(s) => serde_json::json!({ "ok": true, "detail": s }),
        Err(e) => serde_json::json!({ "ok": false, "detail": e }),
    };
    let body = serde_json::json!({
        "ready": ok,
        "database": said(&database.map(|()| "migrations applied".to_string())),
        "relay": said(&relay),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// `GET /`: what this server is, with links to the desk and the health checks.
async fn home() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        HOME,
    )
}

const HOME: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>vkyc</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;\
margin:3rem auto;padding:0 1rem;color:#1b1b1b}</style></head><body>\
<h1>vkyc</h1><p>A self-hosted Video KYC server (V-CIP): the merchant API under \
<code>/verification</code>, customers' journeys at the links it gives, and the staff desk.</p>\
<ul><li><a href=\"/desk\">Staff desk</a> (agents, auditors and admins)</li>\
<li><a href=\"/verification/openapi.json\">The merchant API's OpenAPI document</a></li>\
<li><a href=\"/healthz\">Liveness</a> and <a href=\"/readyz\">readiness</a></li></ul>\
</body></html>";

async fn not_found() -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        ErrorType::ValidationError,
        "route_not_found",
        "the requested URL does not exist.",
    )
}

async fn method_not_allowed() -> Error {
    Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorType::ValidationError,
        "method_not_allowed",
        "this method is not allowed on the requested URL.",
    )
}

/// Connections open at once on the metrics listener (Prometheus keeps one per server).
const METRICS_CONNECTIONS: usize = 16;

/// The bootstrap test merchant created on a sandbox's first start.
pub struct Bootstrap {
    pub client_id: String,
    pub secret: String,
}

/// A server ready to run: bound to its port, database migrated.
pub struct Application {
    listener: TcpListener,
    /// `/metrics`'s own listener, where `metrics_listen` asks for one.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    shutdown: CancellationToken,
    pub bootstrap: Option<Bootstrap>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // Personal data lives here: only this service's user may read it.
        crate::files::private_umask();
        crate::http::serve::return_large_allocations();
        crate::files::private_dir(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("creating data directory {}: {e}", config.data_dir.display())
        })?;
        warn_if_narrowed(&config.data_dir);
        let (key, store) = crate::operations::master_key::open(&config).await?;
        // One process owns a SQLite file: leases left by a crashed run are nobody's.
        if store.backend() == crate::store::Backend::Sqlite {
            store.release_leases().await?;
        }
        crate::audit_trail::chain_unsealed(&store).await?;
        // The audit anchor key is made (or checked) now, not at the first anchor: a key
        // that cannot be opened stops the start rather than a day's anchor.
        crate::case_export::signing::ExportSigner::load_or_create_for(
            &store,
            &key,
            crate::case_export::signing::ANCHOR_PURPOSE,
        )
        .await?;
        let bootstrap = bootstrap_merchant(&store, &config, &key).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding {}: {e}", config.listen))?;
        let metrics_listener = match config.metrics_addr()? {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding metrics_listen {addr}: {e}"))?,
            ),
            None => None,
        };
        let base_url = config.base_url(listener.local_addr()?);
        store.set_link_base(&base_url);
        let auth = Authenticator::new(
            store.clone(),
            AuthSettings {
                environment: config.environment,
                cache_ttl: Duration::from_secs(config.credential_cache_seconds),
                key: key.clone(),
                trusted_proxies: crate::config::parse_ip_list(&config.trusted_proxies)?,
                signature_window: Duration::from_secs(config.signature_window_seconds),
            },
        );
        let journey = Arc::new(crate::state::JourneyServices::new(&config)?);
        let signer = crate::domain::recording_links::RecordingSigner::new(
            &key,
            config.calls.recording_link_ttl_seconds,
        );
        store.set_recording_signer(signer.clone());
        let media = if config.media.enabled {
            let recordings_dir = crate::storage::recordings_dir(&config);
            crate::files::private_dir(&recordings_dir).map_err(|e| {
                anyhow::anyhow!(
                    "creating recordings directory {}: {e}",
                    recordings_dir.display()
                )
            })?;
            let relay = crate::media::Relay::start(crate::media::MediaConfig {
                udp_bind: config
                    .media
                    .udp_bind
                    .parse()
                    .map_err(|e| anyhow::anyhow!("media.udp_bind: {e}"))?,
                advertised_ip: config
                    .media
                    .advertised_ip
                    .parse()
                    .map_err(|e| anyhow::anyhow!("media.advertised_ip: {e}"))?,
                tcp_bind: config.media.tcp_bind()?,
                recordings_dir,
                drop_grace: std::time::Duration::from_secs(config.calls.drop_grace_seconds),
                shards: config.media.shard_count(),
            })
            .await?;
            Some(relay)
        } else {
            None
        };
        let metrics = Arc::new(crate::metrics::Metrics::new(media.as_ref()));
        let internal_url = if config.media.internal_url.is_empty() {
            // Bound to every interface: the others reach it at the relay's address.
            let mut bound = listener.local_addr()?;
            if bound.ip().is_unspecified() {
                if let Ok(ip) = config.media.advertised_ip.parse() {
                    bound.set_ip(ip);
                }
            }
            format!("http://{bound}")
        } else {
            config.media.internal_url.trim_end_matches('/').to_string()
        };
        let node = crate::state::NodeIdentity::new(&key, internal_url)?;
        let state = AppState::new(Shared {
            node,
            metrics,
            journey,
            media,
            signer,
            store: store.clone(),
            config: Arc::new(config),
            auth: Arc::new(auth),
            key,
            limiter: Arc::new(crate::ratelimit::RateLimiter::new(store.clone())),
            sign_ins: Default::default(),
            base_url: base_url.into(),
        });
        Ok(Application {
            listener,
            metrics_listener,
            state,
            shutdown: CancellationToken::new(),
            bootstrap,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Where `/metrics` is served, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener"))
    }

    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.state.key
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled: in-flight requests finish, workers
    /// stop after their current step, the database is closed.
    pub async fn run(self) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
            shutdown,
            ..
        } = self;
        let expiry = tokio::spawn(workers::expiry::run_expiry(
            state.store.clone(),
            Duration::from_millis(state.config.expiry_interval_ms),
            shutdown.clone(),
        ));
        let deliverer = crate::workers::webhooks::Deliverer::new(
            state.store.clone(),
            state.key.clone(),
            crate::workers::webhooks::DeliverySettings {
                schedule: state.config.webhook_retry_schedule_seconds.clone(),
                timeout: Duration::from_secs(state.config.webhook_timeout_seconds),
                concurrency: state.config.webhook_concurrency,
                // Claim no more than can be sent at once, so every claimed delivery is
                // under way at once and done well within its lease.
                batch: state.config.webhook_concurrency.max(1) as i64,
                // Longer than a delivery can take, so a live worker keeps its claim.
                lease: Duration::from_secs(state.config.webhook_timeout_seconds + 30),
                allow_internal: state.config.webhook_allow_private_addresses,
                proxy: Some(state.config.webhook_proxy.clone()).filter(|p| !p.is_empty()),
                metrics: state.metrics.clone(),
            },
        )?;
        let webhooks = tokio::spawn(crate::workers::webhooks::run(
            deliverer,
            Duration::from_millis(state.config.webhook_interval_ms),
            shutdown.clone(),
        ));
        let purge = tokio::spawn(workers::purge::run_purge(
            state.store.clone(),
            state.config.clone(),
            shutdown.clone(),
        ));
        let board = tokio::spawn(workers::queue::run_board(state.clone(), shutdown.clone()));
        let sweeper = tokio::spawn(workers::queue::run_sweep(state.clone(), shutdown.clone()));
        // Registered before the first request, so that a call can be placed at once.
        if let Err(err) = workers::relay_nodes::beat(&state, crate::clock::now_ms()).await {
            tracing::warn!(error = %err, "registering the relay node failed; retrying");
        }
        let heartbeat = tokio::spawn(workers::relay_nodes::run(state.clone(), shutdown.clone()));
        let calls = tokio::spawn(workers::calls::run(state.clone(), shutdown.clone()));
        let anchors = tokio::spawn(workers::anchor::run(state.clone(), shutdown.clone()));
        let notifier = tokio::spawn(workers::notify::run_notifications(
            state.clone(),
            shutdown.clone(),
        )?);
        // A private listener for a few scrapers: a small connection cap of its own.
        let scrapes = metrics_listener.map(|listener| {
            tokio::spawn(crate::http::serve::serve(
                listener,
                crate::http::metrics::router(state.clone()),
                Duration::from_secs(state.config.header_read_timeout_seconds),
                METRICS_CONNECTIONS,
                shutdown.clone(),
            ))
        });
        let store = state.store.clone();
        let config_max_connections = state.config.max_connections;
        let header_read_timeout = state.config.header_read_timeout_seconds;
        let app = router(state);
        let open_files = crate::http::serve::raise_open_files_limit();
        let cap = crate::http::serve::connection_cap(config_max_connections, open_files);
        crate::http::serve::serve(
            listener,
            app,
            Duration::from_secs(header_read_timeout),
            cap,
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        let _ = expiry.await;
        let _ = purge.await;
        let _ = webhooks.await;
        let _ = board.await;
        let _ = sweeper.await;
        let _ = notifier.await;
        let _ = calls.await;
        let _ = heartbeat.await;
        let _ = anchors.await;
        if let Some(scrapes) = scrapes {
            let _ = scrapes.await;
        }
        store.close().await;
        Ok(())
    }
}

/// Narrows what others could read under `dir` and says so: files an older version or an
/// operator left readable to other users of the machine.
fn warn_if_narrowed(dir: &std::path::Path) {
    match crate::files::narrow(dir) {
        Ok(narrowed) if !narrowed.is_empty() => tracing::warn!(
            count = narrowed.len(),
            first = %narrowed[0].display(),
            "files and directories in the data directory were readable by other users; \
             they are now private to this service (0700 directories, 0600 files)"
        ),
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(error = %err, dir = %dir.display(), "checking the data directory's permissions failed")
        }
    }
}

/// On the first start of a sandbox (no merchant yet), creates a test merchant so that a
/// new user can call the API at once. Its secret is returned to be shown once.
async fn bootstrap_merchant(
    store: &Store,
    config: &Config,
    key: &MasterKey,
) -> anyhow::Result<Option<Bootstrap>> {
    if config.environment != Environment::Sandbox || store.merchant_count().await? > 0 {
        return Ok(None);
    }
    let credential = NewCredential::generate(MerchantEnv::Test);
    store
        .create_merchant(
            "Bootstrap test merchant",
            MerchantEnv::Test,
            &credential.client_id,
            &credential.digest(),
            &credential.sealed(key),
        )
        .await?;
    Ok(Some(Bootstrap {
        client_id: credential.client_id,
        secret: credential.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_become_short_tags() {
        let token = "ab".repeat(20);
        let logged = loggable_path(&format!("/v/{token}/api/state")).into_owned();
        assert!(!logged.contains(&token), "{logged}");
        assert!(
            logged.starts_with("/v/~") && logged.ends_with("/api/state"),
            "{logged}"
        );
        assert_eq!(logged.len(), "/v/~12345678/api/state".len());
        assert_eq!(
            loggable_path("/desk/api/calls/12/end"),
            "/desk/api/calls/12/end"
        );
        assert_eq!(
            loggable_path(&format!("/v/{token}")),
            loggable_path(&format!("/v/{token}"))
        );
    }
}
