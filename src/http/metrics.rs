//! `GET /metrics` for Prometheus, on a listener of its own (`metrics_listen`, off by
//! default) so that it is never on the public port, and the middleware that counts the
//! public port's requests by route template and status.

use crate::clock::now_ms;
use crate::metrics::{Metrics, UNMATCHED};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// Inside routing, where the matched route is known: hands its template out with the
/// response, for [`count`] to find.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(matched) = matched {
        res.extensions_mut().insert(matched);
    }
    res
}

/// Outside routing, so that it also sees requests no route matched (counted under one
/// fixed label): counts each request and how long its answer took to start.
pub async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    metrics.observe_request(&method, route, res.status().as_u16(), started.elapsed());
    res
}

/// The metrics listener's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// Reads the database's gauges, then encodes everything. If the database does not
/// answer, the rest is still served, with `vkyc_database_up` 0 (the database's gauges
/// then keep their last values).
async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let now = now_ms();
    let stale_ms = state.config.agent_stale_seconds as i64 * 1000;
    let invite_ms = state.config.calls.invite_seconds as i64 * 1000;
    match state.store.backlog(now, stale_ms, invite_ms).await {
        Ok(backlog) => {
            state.metrics.set_backlog(&backlog, now);
            state.metrics.set_database_up(true);
        }
        Err(err) => {
            tracing::warn!(error = %err, "reading the metrics' database gauges failed");
            state.metrics.set_database_up(false);
        }
    }
    state.metrics.set_pools(&state.store.pool_use());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
