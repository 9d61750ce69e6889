//! The merchant API under `/verification`: users, Video KYC requests, their status and
//! history, access tokens for the embeddable journey, and the sandbox's advance call.
//! Field names, status codes and error strings follow the hosted API.

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use rand::RngCore;

mod deliveries;
mod requests;
mod retention;
mod sandbox;
mod tokens;
mod users;

use deliveries::{get_delivery, list_deliveries, resend_delivery};
use requests::{create_vkyc, get_vkyc, vkyc_history, vkyc_journey, vkyc_notifications};
use sandbox::sandbox_advance;
use tokens::create_token;
use users::{create_user, get_user, update_user};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user", post(create_user).get(get_user).patch(update_user))
        .route("/vkyc", post(create_vkyc).get(get_vkyc))
        .route("/vkyc/history", get(vkyc_history))
        .route("/vkyc/notifications", get(vkyc_notifications))
        .route("/vkyc/journey", get(vkyc_journey))
        .route("/vkyc/relationship-end", post(retention::relationship_end))
        .route("/oauth/token", post(create_token))
        .route("/sandbox/vkyc/advance", post(sandbox_advance))
        .route("/webhooks/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}", get(get_delivery))
        .route("/webhooks/deliveries/{id}/resend", post(resend_delivery))
        .route("/openapi.json", get(openapi))
}

/// The authenticated merchant of a call; extracting it checks the headers.
pub struct Merchant(pub Caller);

impl FromRequestParts<AppState> for Merchant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Merchant> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let caller = state.auth.authenticate(&parts.headers, peer).await?;
        // Counted only once the caller is known: a stranger cannot spend a merchant's quota.
        let limit = caller
            .rate_limit_per_minute
            .unwrap_or(state.config.default_rate_limit_per_minute);
        state
            .limiter
            .check(caller.merchant_id, limit, crate::clock::now_ms())
            .await?;
        tracing::Span::current().record("merchant", caller.merchant_id);
        Ok(Merchant(caller))
    }
}

pub const OPENAPI: &str = include_str!("../../../openapi/merchant-api.json");

async fn openapi() -> axum::response::Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

use axum::response::IntoResponse;

/// India Standard Time, the zone of the token `expiry` in the hosted API.
fn iso_ist(ms: i64) -> String {
    let ist = chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("a valid offset");
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&ist)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
