//! The evidence steps that move no status: the mobile OTP and the personal-details form.
//! Their outcomes are evidence, like consent: kept with the request, closed into the
//! journey's steps (inside the audit chain), shown to the agent and the auditor.

use super::{describe, expect_step, open, Opened, Step};
use crate::domain::otp;
use crate::domain::templates::DetailError;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::notify::{Channel, Kind, Lang, Params};
use crate::state::AppState;
use crate::store::OtpCount;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn waiting(until: i64) -> Error {
    let seconds = ((until - crate::clock::now_ms()) / 1000).max(1) as u64;
    Error::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorType::RateLimitError,
        "otp_attempts_exhausted",
        format!(
            "too many codes were asked for or tried: you can ask for a new code at {}.",
            crate::domain::slots::format_ist(until)
        ),
    )
    .with_retry_after(seconds)
}

/// The channel the code goes by: WhatsApp when the merchant asked for WhatsApp and not
/// SMS, else SMS; on a live server, whichever of the two it can send.
fn channel_for(state: &AppState, notification_types: Option<&str>) -> Option<Channel> {
    let asked: Vec<String> = notification_types
        .and_then(|n| serde_json::from_str(n).ok())
        .unwrap_or_default();
    let preferred = if asked.iter().any(|c| c == "whatsapp") && !asked.iter().any(|c| c == "sms") {
        [Channel::Whatsapp, Channel::Sms]
    } else {
        [Channel::Sms, Channel::Whatsapp]
    };
    if state.config.environment == crate::config::Environment::Sandbox {
        return Some(preferred[0]);
    }
    let notifier = state.journey.notifier.as_ref()?;
    preferred.into_iter().find(|c| notifier.supports(*c))
}

async fn answer(state: &AppState, key: &str, extra: Value) -> Result<Json<Value>> {
    let opened = open(state, key).await?;
    let mut body = json!({ "state": describe(state, &opened).await? });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    Ok(Json(body))
}

/// `POST /v/<key>/api/otp`: sends a new code to the customer's phone. The send is
/// counted before the code goes out; a sandbox records the message with the code
/// `123456` instead of sending it.
pub async fn send_otp(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::MobileOtp])?;
    let request = &opened.request;
    let sandbox = state.config.environment == crate::config::Environment::Sandbox;
    let channel = channel_for(&state, request.notification_types.as_deref()).ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::InternalError,
            "otp_channel_unavailable",
            "this server cannot send text messages now; please contact the bank.",
        )
    })?;
    let code = if sandbox {
        otp::SANDBOX_CODE.to_string()
    } else {
        otp::generate()
    };
    let hashed = otp::hash(&state.key.derive("mobile-otp"), request.id, &code);
    let now = crate::clock::now_ms();
    match state
        .store
        .count_otp_send(request.id, &hashed, channel.as_str(), now)
        .await?
    {
        OtpCount::Counted(_) => {}
        OtpCount::Waiting(until) => return Err(waiting(until)),
        OtpCount::TooSoon(at) => {
            let seconds = ((at - now) / 1000).max(1) as u64;
            return Err(Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::RateLimitError,
                "otp_resend_too_soon",
                format!("a new code can be sent in {seconds} seconds."),
            )
            .with_retry_after(seconds));
        }
        OtpCount::NotSent => {
            return Err(Error::internal(anyhow::anyhow!(
                "an OTP send was counted as no send"
            )))
        }
    }
    let user = state
        .store
        .user_by_ref(request.merchant_id, request.user_ref)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("request {} has no user", request.id)))?;
    let merchant = crate::operations::templates::display_name_under(
        &state.store,
        request,
        &opened.user_template,
    )
    .await?;
    let lang = Lang::parse(opened.user_template.first_language()).unwrap_or_default();
    let params = Params {
        name: user.name.clone().unwrap_or_default(),
        merchant,
        code: code.clone(),
        ..Params::default()
    };
    let message = crate::notify::render(channel, Kind::Otp, lang, &user.phone, &params);
    let (sent, error) = if sandbox {
        ("recorded", None)
    } else {
        let notifier = state
            .journey
            .notifier
            .as_ref()
            .expect("channel_for found one");
        match notifier.send(&message).await {
            Ok(()) => ("sent", None),
            // A provider's reply may echo the message: the code is kept out of the log
            // and the record.
            Err(err) => ("failed", Some(err.to_string().replace(&code, "••••••"))),
        }
    };
    // The code is kept only as its hash: a live server's record of the message masks it
    // (a sandbox's code is public, and its record is how a tester reads it).
    let body = if sandbox {
        message.body.clone()
    } else {
        message.body.replace(&code, "••••••")
    };
    state
        .store
        .record_notification(
            request.id,
            channel.as_str(),
            "otp",
            sent,
            &message.to,
            &body,
            error.as_deref(),
        )
        .await?;
    if let Some(error) = error {
        tracing::warn!(request = request.id, channel = channel.as_str(), %error, "the OTP was not sent");
        return Err(Error::new(
            StatusCode::BAD_GATEWAY,
            ErrorType::InternalError,
            "otp_not_sent",
            "the code could not be sent; please ask for a new one in a minute.",
        ));
    }
    answer(
        &state,
        &key,
        json!({ "sent": true, "channel": channel.as_str() }),
    )
    .await
}

/// `POST /v/<key>/api/otp/verify` `{code}`: the try is counted before the code is
/// compared; the fifth wrong one makes the step wait.
pub async fn verify_otp(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::MobileOtp])?;
    let code = body.str("code")?.ok_or_else(|| Error::missing("code"))?;
    if !otp::well_formed(code) {
        return Err(Error::validation(
            "code_value_invalid",
            "the code is the 6 digits sent to your phone.",
        ));
    }
    let request = &opened.request;
    let now = crate::clock::now_ms();
    let row = match state.store.count_otp_try(request.id, now).await? {
        OtpCount::Counted(row) => row,
        OtpCount::Waiting(until) => return Err(waiting(until)),
        OtpCount::NotSent | OtpCount::TooSoon(_) => {
            return Err(Error::new(
                StatusCode::CONFLICT,
                ErrorType::ValidationError,
                "otp_not_sent",
                "no code was sent yet: ask for one first.",
            ))
        }
    };
    let key_bytes = state.key.derive("mobile-otp");
    let right = otp::matches(&key_bytes, request.id, code, &row.code_hash);
    if right && now < row.expires_at {
        let evidence = json!({
            "channel": row.channel, "sends": row.sends, "tries": row.tries,
            "verified_at": crate::domain::views::iso_millis(now),
        });
        state.store.otp_verified(request.id, &evidence).await?;
        return answer(&state, &key, json!({ "verified": true })).await;
    }
    if right {
        return Err(Error::validation(
            "otp_expired",
            "this code has expired: ask for a new one.",
        ));
    }
    if row.tries >= otp::MAX_TRIES {
        let until = now + otp::WAIT_MS;
        state.store.otp_wait(request.id, until).await?;
        return Err(waiting(until));
    }
    Err(Error::validation(
        "otp_value_invalid",
        format!(
            "the code is not right: {} {} left.",
            row.tries_left(),
            if row.tries_left() == 1 {
                "try"
            } else {
                "tries"
            }
        ),
    ))
}

/// `POST /v/<key>/api/details` `{details: {field: value, ...}}`: the personal-details
/// form, checked against the request's user template, kept sealed as evidence.
pub async fn details(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let opened: Opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::PersonalDetails])?;
    let given = match body.get("details") {
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Error::invalid("details")),
        None => return Err(Error::missing("details")),
    };
    let read = opened
        .user_template
        .read_details(given)
        .map_err(|e| match e {
            DetailError::Missing(field) => Error::missing(&field),
            DetailError::Invalid(field) => Error::invalid(&field),
            DetailError::Unknown(field) => Error::validation(
                "details_value_invalid",
                format!("{field} is not a field of this form."),
            ),
        })?;
    let text = serde_json::to_string(&read).expect("a map of strings serializes");
    let evidence = json!({
        "fields": read.keys().collect::<Vec<_>>(),
        "details_sha256": hex::encode(Sha256::digest(text.as_bytes())),
    });
    let stored = state
        .store
        .insert_personal_details(opened.request.id, &text, &evidence)
        .await?;
    if !stored {
        return Err(Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            "journey_step_invalid",
            "the personal details were given already.",
        ));
    }
    answer(&state, &key, json!({})).await
}
