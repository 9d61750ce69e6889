//! Calls that change something on the desk or in the journey come from this server's own
//! pages. A browser names the page's site in `Origin`; a call that names another site (a
//! page elsewhere posting a login form, say) is refused before anything is read.

use crate::error::{Error, ErrorType};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `scheme://host[:port]` of a base URL, lower-cased, as browsers write `Origin`.
pub fn origin_of(base_url: &str) -> Option<String> {
    let url = url::Url::parse(base_url).ok()?;
    Some(url.origin().ascii_serialization().to_ascii_lowercase())
}

/// Refuses a call other than GET/HEAD whose `Origin` is present and is not `own` (this
/// server's origin, worked out once when the router is built).
pub async fn same_origin(State(own): State<Arc<str>>, req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let given = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if given != *own {
                return Error::new(
                    StatusCode::FORBIDDEN,
                    ErrorType::ValidationError,
                    "origin_not_allowed",
                    "calls from another site are not accepted.",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://KYC.example.in/").as_deref(),
            Some("https://kyc.example.in")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://kyc.example.in:443").as_deref(),
            Some("https://kyc.example.in")
        );
    }
}
