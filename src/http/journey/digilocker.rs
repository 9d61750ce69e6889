//! The Aadhaar step by a DigiLocker-style provider (`aadhaar_methods` has `digilocker`):
//! the page asks for the provider's address, the customer allows sharing there, and the
//! provider sends them back here with a code that becomes the step's outcome.
//!
//! Only the sandbox provider exists (checks::digilocker), so the method is offered on a
//! sandbox server only; a live server's journey shows the offline e-KYC upload alone.

use super::checks::{aadhaar_verified, attempt, expire_aadhaar_session, finish};
use super::pages::escape;
use super::{expect_step, is_hex, open, Opened, Step};
use crate::checks::digilocker::{AadhaarProvider, ProviderError, Sandbox};
use crate::domain::status::Event;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::Query;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The provider this server uses, if any.
pub fn provider(state: &AppState) -> Option<Box<dyn AadhaarProvider>> {
    (state.config.environment == crate::config::Environment::Sandbox).then(|| {
        Box::new(Sandbox::new(state.key.derive("digilocker-sandbox"))) as Box<dyn AadhaarProvider>
    })
}

/// The round trip's `state`: bound to the request, so a code fetched for one customer
/// cannot be brought back to another's link.
fn round_trip_state(state: &AppState, request_id: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.key.derive("digilocker-state"))
        .expect("any key length");
    mac.update(&request_id.to_be_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn not_offered() -> Error {
    Error::new(
        StatusCode::CONFLICT,
        ErrorType::ValidationError,
        "aadhaar_method_invalid",
        "DigiLocker is not offered for this request.",
    )
}

fn provider_for(state: &AppState, opened: &Opened) -> Result<Box<dyn AadhaarProvider>> {
    if !opened.user_template.offers("digilocker") {
        return Err(not_offered());
    }
    provider(state).ok_or_else(not_offered)
}

/// `POST /v/<key>/api/digilocker`: where to send the customer.
pub async fn start(State(state): State<AppState>, Path(key): Path<String>) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Aadhaar])?;
    let provider = provider_for(&state, &opened)?;
    let return_to = format!("{}/v/{key}/digilocker", state.base_url);
    let url = provider.authorize_url(
        &state.base_url,
        &return_to,
        &round_trip_state(&state, opened.request.id),
    );
    Ok(Json(json!({ "url": url })))
}

/// `GET /v/<key>/digilocker?state&code|error`: the provider's answer becomes the Aadhaar
/// step's outcome, and the customer goes back to the journey.
pub async fn back(
    State(state): State<AppState>,
    Path(key): Path<String>,
    query: Query,
) -> Result<Response> {
    let opened = open(&state, &key).await?;
    let journey = Redirect::to(&format!("/v/{key}")).into_response();
    // A reload of this address after the step ended just returns to the journey.
    if expect_step(&opened, &[Step::Aadhaar]).is_err() {
        return Ok(journey);
    }
    let provider = provider_for(&state, &opened)?;
    let expected = round_trip_state(&state, opened.request.id);
    let given = query.get("state").unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(Error::invalid("state"));
    }
    if expire_aadhaar_session(&state, &opened).await?.is_some() {
        return Ok(journey);
    }
    attempt(&state, &opened, Step::Aadhaar).await?;
    let fetched = match (query.get("code"), query.get("error")) {
        (Some(code), None) if !code.is_empty() && code.len() <= 512 => {
            Some(provider.fetch(code).await)
        }
        _ => None,
    };
    // A failure ends the step as a failed (or, provider down, technical) attempt.
    let (event, reason, detail) = match fetched {
        Some(Ok(kyc)) => {
            let evidence = json!({
                "method": "digilocker", "provider": provider.name(),
                "reference_id": kyc.reference_id, "aadhaar_last4": kyc.aadhaar_last4,
            });
            aadhaar_verified(&state, &opened, "digilocker", &kyc, evidence).await?;
            return Ok(journey);
        }
        None => (Event::AadhaarFailed, "digilocker_not_allowed", None),
        Some(Err(ProviderError::BadCode)) => {
            (Event::AadhaarFailed, "digilocker_code_invalid", None)
        }
        Some(Err(err @ ProviderError::Unavailable(_))) => (
            Event::CheckTechnicalFailure,
            "digilocker_unavailable",
            Some(err.to_string()),
        ),
    };
    let mut evidence =
        json!({ "method": "digilocker", "provider": provider.name(), "reason": reason });
    if let Some(detail) = detail {
        evidence["detail"] = detail.into();
    }
    finish(&state, &opened, Step::Aadhaar, event, evidence, vec![]).await?;
    Ok(journey)
}

/// `GET /sandbox/digilocker?state&return_to`: the sandbox provider's consent page (a
/// sandbox server only). It sends the customer back only to a journey of this server.
pub async fn sandbox_page(State(state): State<AppState>, query: Query) -> Result<Response> {
    if provider(&state).is_none() {
        return Err(Error::not_found("page"));
    }
    let round_trip = query.get("state").unwrap_or("");
    let return_to = query.get("return_to").unwrap_or("");
    let ours = return_to
        .strip_prefix(&format!("{}/v/", state.base_url))
        .and_then(|rest| rest.strip_suffix("/digilocker"))
        .is_some_and(|key| key.len() <= 64 && is_hex(key, key.len()));
    let well_formed = is_hex(round_trip, 64);
    if !ours || !well_formed {
        return Err(Error::validation(
            "return_to_value_invalid",
            "this page only sends a customer back to a Video KYC journey of this server.",
        ));
    }
    let code = Sandbox::new(state.key.derive("digilocker-sandbox")).issue_code();
    let back = |pairs: &[(&str, &str)]| {
        let query = pairs
            .iter()
            .fold(
                url::form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(k, v);
                    s
                },
            )
            .finish();
        escape(&format!("{return_to}?{query}"))
    };
    let allow = back(&[("state", round_trip), ("code", &code)]);
    let deny = back(&[("state", round_trip), ("error", "access_denied")]);
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DigiLocker (sandbox)</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
a.button{{display:inline-block;padding:.7rem 1.2rem;margin:.3rem .5rem .3rem 0;border-radius:.4rem;border:1px solid #1f3c88;text-decoration:none}}
a#allow{{background:#1f3c88;color:#fff}} a#deny{{color:#1f3c88}}</style></head>
<body><main><h1>DigiLocker (sandbox)</h1>
<p>This is the sandbox's stand-in for DigiLocker. A live deployment offers DigiLocker
only once a provider with a DigiLocker partner agreement is set up.</p>
<p>The Video KYC service asks to see your <strong>Aadhaar</strong>. Allowing shares the
sandbox's test identity: <em>Sandbox DigiLocker Customer</em>, born 01-01-1990.</p>
<p><a class="button" id="allow" href="{allow}">Allow</a>
<a class="button" id="deny" href="{deny}">Deny</a></p></main></body></html>"#
    );
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}
