//! The journey's pages and files: plain HTML, CSS and JavaScript modules compiled into
//! the binary (no front-end build step). The texts of each language live in one JSON
//! file, which the page shows and the server reads too (the consent text is hashed from
//! the same file, so what was stored is what was shown).

use super::{open, KeyError};
use crate::error::Error;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use std::sync::OnceLock;

const INDEX: &str = include_str!("../../../assets/journey/index.html");
const FILES: &[(&str, &str, &str)] = &[
    (
        "journey.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/journey/journey.js"),
    ),
    (
        "evidence.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/journey/evidence.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/journey/call.js"),
    ),
    (
        // The call's connection, shared with the agent's console.
        "rtc.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/call/rtc.js"),
    ),
    (
        "journey.css",
        "text/css; charset=utf-8",
        include_str!("../../../assets/journey/journey.css"),
    ),
    (
        "i18n/en.json",
        "application/json",
        include_str!("../../../assets/journey/i18n/en.json"),
    ),
    (
        "i18n/hi.json",
        "application/json",
        include_str!("../../../assets/journey/i18n/hi.json"),
    ),
];
const EMBED: &str = include_str!("../../../assets/journey/embed.js");

/// The languages the journey speaks.
pub const LANGUAGES: &[&str] = &["en", "hi"];

fn strings(lang: &str) -> Option<&'static serde_json::Map<String, Value>> {
    static PARSED: OnceLock<Vec<(&'static str, serde_json::Map<String, Value>)>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        LANGUAGES
            .iter()
            .map(|lang| {
                let file = FILES
                    .iter()
                    .find(|(name, _, _)| *name == format!("i18n/{lang}.json"))
                    .expect("every language has a strings file");
                let map = serde_json::from_str(file.2).expect("the strings files are JSON objects");
                (*lang, map)
            })
            .collect()
    });
    parsed.iter().find(|(l, _)| *l == lang).map(|(_, m)| m)
}

/// One text in `lang`; lists of paragraphs are joined by blank lines.
pub fn string(lang: &str, key: &str) -> Option<String> {
    match strings(lang)?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}

fn with_headers(status: StatusCode, body: String, embedded: bool) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    // The journey embedded through an access token may sit in the merchant's page; the
    // link itself may not be framed by anyone.
    let frames = if embedded { "*" } else { "'none'" };
    let csp = format!(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
         connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; \
         frame-ancestors {frames}"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page that only explains (unknown or expired link), in the language asked for
/// (`?lang=hi`, else English) with a link to the other, and with the bank's name when
/// the link is known: who to ask for a new one.
fn notice(status: StatusCode, key: &str, bank: Option<&str>, lang: &str) -> Response {
    let fill = |name: &str| {
        let text = string(lang, name).unwrap_or_default();
        let bank = bank
            .map(str::to_string)
            .or_else(|| string(lang, "bank_fallback"))
            .unwrap_or_default();
        escape(&text.replace("{bank}", &bank))
    };
    let header = match bank {
        Some(bank) => escape(
            &string(lang, "brand_title")
                .unwrap_or_default()
                .replace("{name}", bank),
        ),
        None => escape(&string(lang, "title").unwrap_or_default()),
    };
    // The switch names the other language in that language.
    let (other, other_name) = if lang == "hi" {
        ("en", "English")
    } else {
        ("hi", "हिन्दी")
    };
    let body = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/assets/journey/journey.css\">\
         </head><body><header class=\"bar\"><span class=\"brand\" id=\"brand\">{header}</span>\
         <a class=\"lang-link\" id=\"lang\" href=\"?lang={other}\" lang=\"{other}\" \
         hreflang=\"{other}\">{other_name}</a></header>\
         <main class=\"card\" id=\"notice\"><h1>{title}</h1><p>{text}</p><p>{who}</p>\
         </main></body></html>",
        title = fill(&format!("{key}_title")),
        text = fill(&format!("{key}_text")),
        who = fill("link_who_to_ask"),
    );
    with_headers(status, body, false)
}

/// `GET /v/<key>`: the journey page, or a clear page for an unknown or expired link.
pub async fn journey_page(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = match query.as_deref() {
        Some("lang=hi") => "hi",
        _ => "en",
    };
    match open(&state, &key).await {
        Ok(opened) => with_headers(StatusCode::OK, INDEX.to_string(), opened.embedded),
        Err(KeyError::Unknown) => notice(StatusCode::NOT_FOUND, "not_found", None, lang),
        Err(KeyError::Expired) => {
            // The link is known: name the bank that sent it, so the customer knows whom
            // to ask for a new one.
            let bank = match state.store.request_by_token(&key).await {
                Ok(Some(request)) => {
                    crate::operations::templates::display_name(&state.store, &request)
                        .await
                        .ok()
                }
                _ => None,
            };
            notice(StatusCode::GONE, "expired", bank.as_deref(), lang)
        }
        Err(KeyError::Failed(err)) => err.into_response(),
    }
}

/// `GET /assets/journey/<file>`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => Error::new(
            StatusCode::NOT_FOUND,
            crate::error::ErrorType::ValidationError,
            "route_not_found",
            "the requested URL does not exist.",
        )
        .into_response(),
    }
}

/// `GET /embed.js`: the small script a merchant's page includes to show the journey.
pub async fn embed_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        EMBED,
    )
        .into_response()
}

/// `GET /brand/<id>.png`: an uploaded logo, by the SHA-256 of its PNG. A name is its
/// content, so it is cached for good.
pub async fn brand_logo(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> crate::error::Result<axum::response::Response> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let id = file.strip_suffix(".png").unwrap_or("");
    let not_found = || crate::error::Error::not_found("logo");
    if !super::is_hex(id, 64) {
        return Err(not_found());
    }
    let png = state.store.logo_png(id).await?.ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        png,
    )
        .into_response())
}
