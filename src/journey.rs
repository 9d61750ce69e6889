//! The customer's side of a `vkyc_link`: `/v/<token>`. For now it tells the customer
//! where their request stands; the guided journey (consent, checks, queue) builds on it.

use crate::app::AppState;
use crate::status::Status;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/v/{token}", get(landing))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
    );
    (status, Html(html)).into_response()
}

async fn landing(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let unknown = || {
        page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "This Video KYC link is not valid. Please use the link you received, or ask for a new one.",
        )
    };
    if token.len() != 40 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return unknown();
    }
    let request = match state.store.request_by_token(&token).await {
        Ok(Some(request)) => request,
        Ok(None) => return unknown(),
        Err(err) => return err.into_response(),
    };
    if request.sub_status.status() == Status::Expired
        || request.link_expires_at <= crate::store::now_ms()
    {
        return page(
            StatusCode::GONE,
            "Link expired",
            "This Video KYC link has expired. Please ask for a new one.",
        );
    }
    page(
        StatusCode::OK,
        "Video KYC",
        &format!(
            "Your Video KYC request is at step: {}.",
            request.sub_status.description()
        ),
    )
}
