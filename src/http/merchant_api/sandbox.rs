//! `POST /sandbox/vkyc/advance` (test credentials only): walks a request along legal
//! moves to a sub-status.

use super::requests::find_request;
use super::Merchant;
use crate::domain::status::{self, Actor, Event, SubStatus};
use crate::domain::views::VkycStatus;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{Changes, MerchantEnv};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub(super) fn sandbox_changes(event: Event, now: i64) -> Changes {
    let remarks = |who: &str| {
        Some(format!(
            "Sandbox: {who} decision set through the advance API"
        ))
    };
    match event {
        Event::AgentApproved | Event::AgentRejected | Event::AgentUnableToValidate => Changes {
            agent_remarks: remarks("agent"),
            ..Changes::default()
        },
        Event::AuditorApproved | Event::AuditorRejected => Changes {
            auditor_remarks: remarks("auditor"),
            ..Changes::default()
        },
        Event::MeetingScheduled => Changes {
            meeting_schedule: Some(Some(now + 3_600_000)),
            ..Changes::default()
        },
        Event::MeetingCancelled => Changes {
            meeting_schedule: Some(None),
            ..Changes::default()
        },
        _ => Changes::default(),
    }
}

/// Walks a test request along legal moves to the asked sub-status, so an integrator can
/// exercise every branch of its own code. One history row per step.
pub(super) async fn sandbox_advance(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<VkycStatus>> {
    if caller.env != MerchantEnv::Test {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            ErrorType::AuthenticationError,
            "test_credentials_required",
            "the sandbox API accepts test credentials only.",
        ));
    }
    let target_text = body
        .str("sub_status")?
        .ok_or_else(|| Error::missing("sub_status"))?;
    let target = SubStatus::parse(target_text).ok_or_else(|| Error::invalid("sub_status"))?;
    // reference_id may come as a number or a string; find_request judges its text, so the
    // answer is the same as GET /vkyc's.
    let reference = body.get("reference_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let request = find_request(
        &state,
        &caller,
        body.str("verification_id")?,
        reference.as_deref(),
    )
    .await?;
    let path = status::path(request.sub_status, target).ok_or_else(|| {
        Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            "sub_status_unreachable",
            format!("{target} cannot be reached from {}.", request.sub_status),
        )
    })?;
    let now = crate::clock::now_ms();
    let mut changes = Changes::default();
    for event in &path {
        let step = sandbox_changes(*event, now);
        changes.agent_remarks = step.agent_remarks.or(changes.agent_remarks);
        changes.auditor_remarks = step.auditor_remarks.or(changes.auditor_remarks);
        changes.meeting_schedule = step.meeting_schedule.or(changes.meeting_schedule);
    }
    let details = json!({ "via": "sandbox_advance" });
    let moved = state
        .store
        .apply(&request, &path, Actor::Merchant, Some(&details), &changes)
        .await
        .map_err(Error::from)?;
    Ok(Json(VkycStatus::of(
        &moved,
        &state.base_url,
        Some(&state.signer),
    )))
}
