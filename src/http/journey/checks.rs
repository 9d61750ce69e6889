//! The pre-call checks: consent, Aadhaar, IP, location and devices. Each handler opens
//! the request, refuses a step called out of turn, decides, and stores the outcome as a
//! status move together with the step's evidence.

use super::{apply, describe, expect_step, open, Client, Opened, Step};
use crate::checks::aadhaar::{self, AadhaarError};
use crate::checks::ipcheck::IpVerdict;
use crate::domain::status::Event;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{Changes, MoveError, Request, SideWrite};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The answer to a step: what it produced and where the journey now stands.
async fn outcome(state: &AppState, key: &str, reason: Option<&str>) -> Result<Json<Value>> {
    let opened = open(state, key).await?;
    let sub_status = opened.request.sub_status.as_str();
    Ok(Json(json!({
        "outcome": sub_status,
        "reason": reason,
        "state": describe(state, &opened).await?,
    })))
}

/// One step's move: the events, the step's evidence, and the step's row closed with them.
pub(super) async fn finish(
    state: &AppState,
    opened: &Opened,
    step: Step,
    event: Event,
    evidence: Value,
    mut sides: Vec<SideWrite>,
) -> Result<Request> {
    let to = crate::domain::status::next(opened.request.sub_status, event)
        .map_err(|e| Error::from(MoveError::from(e)))?;
    sides.insert(
        0,
        SideWrite::CloseStep {
            step: step.as_str(),
            outcome: to.as_str(),
            evidence: evidence.clone(),
        },
    );
    apply(
        state,
        opened,
        &[event],
        json!({ "step": step.as_str(), "evidence": evidence }),
        &Changes::default(),
        sides,
    )
    .await
}

// ---- consent ----

/// The consent text shown in `lang` under a user template (its own text for the
/// language, else vkyc's), and its SHA-256 (hex); None for a language it does not offer.
pub fn consent_text(
    template: &crate::domain::templates::UserTemplate,
    lang: &str,
) -> Option<(String, String)> {
    if !template.languages.iter().any(|l| l == lang) {
        return None;
    }
    let text = match template.consent_text.get(lang) {
        Some(own) => own.trim().to_string(),
        None => super::pages::string(lang, "consent_text")?,
    };
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    Some((text, digest))
}

/// `POST /v/<key>/api/consent` `{lang, agree: true, text_sha256}`: stores the consent,
/// unalterably, with the exact text shown, the time, the address and the browser.
pub async fn consent(
    State(state): State<AppState>,
    Path(key): Path<String>,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Consent])?;
    let lang = body
        .str("lang")?
        .unwrap_or(opened.user_template.first_language());
    let (text, digest) =
        consent_text(&opened.user_template, lang).ok_or_else(|| Error::invalid("lang"))?;
    if body.get("agree") != Some(&Value::Bool(true)) {
        return Err(Error::validation(
            "agree_value_invalid",
            "consent needs an explicit agreement (agree: true).",
        ));
    }
    // The page sends the digest of the text it showed: a consent is only stored for the
    // text this server holds for that language.
    if body.str("text_sha256")? != Some(digest.as_str()) {
        return Err(Error::validation(
            "text_sha256_value_invalid",
            "the consent text shown is not the current consent text; reload the page.",
        ));
    }
    state
        .store
        .insert_consent(
            opened.request.id,
            lang,
            &text,
            &digest,
            &client.ip.to_string(),
            &client.user_agent,
        )
        .await?;
    outcome(&state, &key, None).await
}

// ---- Aadhaar ----

/// Ends an Aadhaar step left open longer than its session allows, as
/// AADHAAR_VERIFICATION_EXPIRED. Returns the moved request if it did.
pub async fn expire_aadhaar_session(state: &AppState, opened: &Opened) -> Result<Option<Request>> {
    if opened.step != Step::Aadhaar {
        return Ok(None);
    }
    // The session starts when the step becomes current, whatever the page calls: the
    // open Aadhaar attempt's start, else the end of the step before it (consent, or the
    // last failed upload), else the request's creation.
    let steps = state.store.steps(opened.request.id).await?;
    let started = steps
        .iter()
        .rev()
        .find(|s| s.step == "aadhaar" && s.ended_at.is_none())
        .map(|s| s.started_at)
        .or_else(|| steps.iter().filter_map(|s| s.ended_at).max())
        .unwrap_or(opened.request.created_at);
    let session_ms = state.config.journey.aadhaar_session_minutes as i64 * 60_000;
    if crate::clock::now_ms() - started <= session_ms {
        return Ok(None);
    }
    let evidence = json!({ "reason": "session_expired", "opened_at": crate::domain::views::iso_millis(started) });
    finish(
        state,
        opened,
        Step::Aadhaar,
        Event::AadhaarSessionExpired,
        evidence,
        vec![],
    )
    .await
    .map(Some)
}

/// `POST /v/<key>/api/aadhaar`: the offline e-KYC ZIP as the body, its share code in the
/// `x-share-code` header.
pub async fn aadhaar(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>> {
    // The link and the step are checked before a byte of the file is read: a made-up
    // link costs the caller a header's worth of memory, not a file's.
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Aadhaar])?;
    if expire_aadhaar_session(&state, &opened).await?.is_some() {
        return outcome(&state, &key, Some("session_expired")).await;
    }
    let limit = state.config.journey.aadhaar_max_upload_bytes;
    let too_large = || {
        Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::ValidationError,
            "file_too_large",
            "the Aadhaar file is larger than this server accepts.",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let share_code = headers
        .get("x-share-code")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if share_code.is_empty() {
        return Err(Error::missing("share_code"));
    }
    if share_code.len() > 16 {
        return Err(Error::invalid("share_code"));
    }
    let last_try = attempt(&state, &opened, Step::Aadhaar).await?;
    let body =
        match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
            Err(_) => {
                return Err(Error::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorType::ValidationError,
                    "request_timeout",
                    "the file was not received in time.",
                ))
            }
        };
    if body.is_empty() {
        return Err(Error::missing("file"));
    }
    let file_sha256 = hex::encode(Sha256::digest(&body));
    let certificate = match &state.journey.uidai {
        Ok(certificate) => certificate,
        Err(reason) => {
            let evidence = json!({ "reason": "uidai_certificate_unavailable", "detail": reason,
                                   "file_sha256": file_sha256 });
            finish(
                &state,
                &opened,
                Step::Aadhaar,
                Event::CheckTechnicalFailure,
                evidence,
                vec![],
            )
            .await?;
            return outcome(&state, &key, Some("uidai_certificate_unavailable")).await;
        }
    };
    let limits = aadhaar::Limits {
        max_zip_bytes: state.config.journey.aadhaar_max_upload_bytes,
        ..aadhaar::Limits::default()
    };
    // Unzipping and checking an RSA signature is CPU work: keep it off the I/O threads.
    let verified = {
        let certificate = std::sync::Arc::clone(certificate);
        let share_code = share_code.to_string();
        tokio::task::spawn_blocking(move || {
            aadhaar::verify_offline_ekyc(
                &body,
                &share_code,
                &certificate,
                chrono::Utc::now(),
                &limits,
            )
        })
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("Aadhaar check failed: {e}")))?
    };
    match verified {
        Ok(kyc) => {
            // Tie the file to this customer: the mobile it was made for, and the name. A
            // mismatch does not fail the step (numbers change, names are spelt
            // differently); the agent and the auditor see it and judge.
            let user = state
                .store
                .user_by_ref(opened.request.merchant_id, opened.request.user_ref)
                .await?;
            let mobile = match &user {
                Some(u) => aadhaar::mobile_match(&kyc, &u.phone, share_code),
                None => aadhaar::Match::NotAvailable,
            };
            let name = aadhaar::name_match(&kyc, user.as_ref().and_then(|u| u.name.as_deref()));
            let evidence = json!({
                "file_sha256": file_sha256,
                "reference_id": kyc.reference_id,
                "aadhaar_last4": kyc.aadhaar_last4,
                "generated_at": kyc.generated_at.to_rfc3339(),
                "signature": "valid",
                "mobile": mobile,
                "name": name,
            });
            aadhaar_verified(&state, &opened, "offline_ekyc", &kyc, evidence).await?;
            outcome(&state, &key, None).await
        }
        Err(err) => {
            // The attempt that uses up the step's tries ends it for the window.
            let reason = if last_try {
                "too_many_attempts"
            } else {
                failure_reason(&err)
            };
            let evidence = json!({ "file_sha256": file_sha256, "reason": reason,
                                   "failure": failure_reason(&err), "detail": err.to_string() });
            finish(
                &state,
                &opened,
                Step::Aadhaar,
                Event::AadhaarFailed,
                evidence,
                vec![],
            )
            .await?;
            outcome(&state, &key, Some(reason)).await
        }
    }
}

/// The Aadhaar step's success, whichever way the Aadhaar came (`source`): the move, its
/// evidence, and the details and photo kept sealed.
pub(super) async fn aadhaar_verified(
    state: &AppState,
    opened: &Opened,
    source: &'static str,
    kyc: &aadhaar::OfflineKyc,
    evidence: Value,
) -> Result<Request> {
    let details = serde_json::to_value(kyc).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
    let photo = (!kyc.photo_jpeg.is_empty()).then(|| kyc.photo_jpeg.clone());
    finish(
        state,
        opened,
        Step::Aadhaar,
        Event::AadhaarVerified,
        evidence,
        vec![SideWrite::Aadhaar {
            source,
            details: details.to_string(),
            photo,
        }],
    )
    .await
}

fn failure_reason(err: &AadhaarError) -> &'static str {
    err.code()
}

/// Counts an attempt at `step` before its check runs. Over `[journey] step_attempts` in
/// the window, 429 `too_many_attempts` with `Retry-After`; otherwise whether this is the
/// last attempt the window allows.
pub(super) async fn attempt(state: &AppState, opened: &Opened, step: Step) -> Result<bool> {
    let j = &state.config.journey;
    let now = crate::clock::now_ms();
    let window = j.step_attempt_window_minutes as i64 * 60_000;
    let max = i64::from(j.step_attempts);
    match state
        .store
        .claim_step_attempt(opened.request.id, step.as_str(), now, now - window, max)
        .await?
    {
        Ok(n) => Ok(n >= max),
        Err(oldest) => {
            let wait = ((oldest + window - now).max(1000) + 999) / 1000;
            Err(Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::RateLimitError,
                "too_many_attempts",
                "this step has been tried too many times; please wait before trying again.",
            )
            .with_retry_after(wait as u64))
        }
    }
}

// ---- IP ----

/// `POST /v/<key>/api/ip`: checks the address the customer connects from.
pub async fn ip(
    State(state): State<AppState>,
    Path(key): Path<String>,
    client: Client,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Ip])?;
    attempt(&state, &opened, Step::Ip).await?;
    let sandbox = state.config.environment == crate::config::Environment::Sandbox;
    let verdict = if !state.journey.ip.is_configured() && sandbox {
        // A sandbox without a database counts every address as Indian, and says so in
        // the evidence; a production deployment without one cannot decide.
        IpVerdict::Allowed {
            country: "IN".into(),
        }
    } else {
        state.journey.ip.check(client.ip)
    };
    let mut evidence = json!({ "ip": client.ip.to_string(), "verdict": verdict });
    if !state.journey.ip.is_configured() && sandbox {
        evidence["sandbox"] = json!("no IP database is configured: every address counts as Indian");
    }
    let (event, reason) = match &verdict {
        IpVerdict::Allowed { .. } => (Event::IpVerified, None),
        IpVerdict::OutsideIndia { .. } => (Event::IpOutsideIndia, Some("ip_outside_india")),
        IpVerdict::Proxy { .. } => (Event::ProxyDetected, Some("proxy_detected")),
        IpVerdict::Unavailable { .. } => (
            Event::CheckTechnicalFailure,
            Some("ip_database_unavailable"),
        ),
    };
    let mut sides = vec![];
    // Aadhaar details the merchant sent are kept beside proved ones, for the agent.
    if matches!(verdict, IpVerdict::Allowed { .. }) {
        if let Some(details) = state.store.merchant_aadhaar_details(&opened.request)? {
            if state.store.aadhaar_kyc(opened.request.id).await?.is_none() {
                sides.push(SideWrite::Aadhaar {
                    source: "merchant",
                    details: aadhaar::redact_aadhaar_numbers(&details),
                    photo: None,
                });
            }
        }
    }
    finish(&state, &opened, Step::Ip, event, evidence, sides).await?;
    outcome(&state, &key, reason).await
}

// ---- location ----

/// `POST /v/<key>/api/location` `{permission: "granted"|"denied"|"unavailable",
/// latitude, longitude, accuracy}`: the browser's live position.
pub async fn location(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Location])?;
    attempt(&state, &opened, Step::Location).await?;
    let permission = body
        .str("permission")?
        .ok_or_else(|| Error::missing("permission"))?;
    let number = |field: &str| -> Result<Option<f64>> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| Error::invalid(field)),
        }
    };
    let (event, evidence, reason) = match permission {
        "denied" => (
            Event::LocationPermissionDenied,
            json!({ "permission": "denied" }),
            Some("permission_denied"),
        ),
        "unavailable" => (
            Event::CheckTechnicalFailure,
            json!({ "permission": "granted", "position": "unavailable" }),
            Some("position_unavailable"),
        ),
        "granted" => {
            let lat = number("latitude")?.ok_or_else(|| Error::missing("latitude"))?;
            let lon = number("longitude")?.ok_or_else(|| Error::missing("longitude"))?;
            let accuracy = number("accuracy")?;
            if !crate::domain::geo::valid_position(lat, lon) {
                return Err(Error::invalid("latitude"));
            }
            let inside = crate::domain::geo::inside_india(lat, lon);
            let evidence = json!({ "permission": "granted", "latitude": lat, "longitude": lon,
                                   "accuracy_m": accuracy, "inside_india": inside,
                                   "boundary": "India (Natural Earth, India's point of view)" });
            if inside {
                (Event::LocationVerified, evidence, None)
            } else {
                (Event::LocationOutsideIndia, evidence, Some("outside_india"))
            }
        }
        _ => return Err(Error::invalid("permission")),
    };
    finish(&state, &opened, Step::Location, event, evidence, vec![]).await?;
    outcome(&state, &key, reason).await
}

// ---- devices ----

/// `GET /v/<key>/api/bandwidth`: 256 KiB the page downloads and times.
pub async fn bandwidth(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<impl IntoResponse> {
    open(&state, &key).await?;
    let mut bytes = vec![0u8; 256 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    ))
}

/// `POST /v/<key>/api/devices` `{camera, microphone: "ok"|"denied"|"missing"|"error",
/// video_width, video_height, audio_peak, bandwidth_kbps}`.
pub async fn devices(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Devices])?;
    attempt(&state, &opened, Step::Devices).await?;
    const DEVICE: &[&str] = &["ok", "denied", "missing", "error"];
    let camera = body.one_of("camera", DEVICE)?;
    let microphone = body.one_of("microphone", DEVICE)?;
    let mut evidence = json!({ "camera": camera, "microphone": microphone });
    for field in [
        "video_width",
        "video_height",
        "audio_peak",
        "bandwidth_kbps",
    ] {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_f64().is_some_and(|n| n.is_finite() && n >= 0.0) => {
                evidence[field] = v.clone();
            }
            Some(_) => return Err(Error::invalid(field)),
        }
    }
    let (event, reason) = if camera != "ok" {
        (Event::VideoCheckFailed, Some("camera"))
    } else if microphone != "ok" {
        (Event::AudioCheckFailed, Some("microphone"))
    } else {
        (Event::DeviceCheckPassed, None)
    };
    finish(&state, &opened, Step::Devices, event, evidence, vec![]).await?;
    outcome(&state, &key, reason).await
}
