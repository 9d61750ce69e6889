//! `POST /verification/vkyc/relationship-end`: the merchant says when its business
//! relationship with an approved customer ended, which starts the years the V-CIP record
//! is then kept for (`[retention] approved_years`). An extension of the hosted API.

use super::requests::find_request;
use super::Merchant;
use crate::clock::now_ms;
use crate::domain::retention::{due_at, ist_date, parse_relationship_end};
use crate::domain::status::SubStatus;
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{By, CaseChange};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn relationship_end(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<Value>> {
    let reference = body.id("reference_id")?.map(|id| id.to_string());
    let request = find_request(
        &state,
        &caller,
        body.str("verification_id")?,
        reference.as_deref(),
    )
    .await?;
    let now = now_ms();
    let date = body
        .str("relationship_end")?
        .ok_or_else(|| Error::missing("relationship_end"))?;
    parse_relationship_end(date, now)
        .map_err(|why| Error::validation("relationship_end_value_invalid", why))?;
    if request.sub_status != SubStatus::AuditorApproved {
        return Err(Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            "relationship_end_not_applicable",
            format!(
                "only an approved request (AUDITOR_APPROVED) starts a relationship; this one is {}",
                request.sub_status
            ),
        ));
    }
    let by = By {
        staff_id: None,
        ip: None,
        name: "merchant",
    };
    match state
        .store
        .set_relationship_end(request.id, date, &by, now)
        .await?
    {
        CaseChange::Purged => Err(Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            "vkyc_personal_data_purged",
            "this request's personal data has been removed already",
        )),
        CaseChange::Unchanged => Err(Error::not_found("verification_id")),
        CaseChange::Done => {
            let settings = &state.config.retention;
            let kept_until = due_at(
                settings,
                false,
                request.sub_status,
                request.created_at,
                now,
                Some(date),
            )
            .map(|(_, due)| ist_date(due - 1).to_string());
            Ok(Json(json!({
                "verification_id": request.verification_id,
                "reference_id": request.id,
                "relationship_end": date,
                "retained_until": kept_until,
            })))
        }
    }
}
