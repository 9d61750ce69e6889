//! The admin console's question banks, the desk's working hours and holidays, and the
//! legal holds on cases.

use super::admin::{flag, path_id, required, strings, Admin};
use crate::error::{Error, Result};
use crate::http::input::{JsonBody, Query};
use crate::operations::questions::{self, Question, DEPLOYMENT};
use crate::operations::{calendar, cases, merchants};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/questions",
            get(deployment_bank).post(save_deployment_bank),
        )
        .route(
            "/admin/merchants/{id}/questions",
            get(merchant_bank).post(save_merchant_bank),
        )
        .route("/admin/hours", get(hours).post(set_hours))
        .route("/admin/holidays", post(add_holidays))
        .route("/admin/holidays/remove", post(remove_holiday))
        .route("/admin/cases/{id}/hold", post(hold_case))
        .route("/admin/cases/{id}/release", post(release_case))
}

// ---- legal holds ----

async fn held_case(state: &AppState, id: &str) -> Result<crate::store::Request> {
    let id = path_id(id, "case_not_found")?;
    state
        .store
        .request_by_id(id)
        .await?
        .ok_or_else(|| crate::operations::missing("case_not_found", "no such case"))
}

/// `{"reason": "..."}`: places a legal hold on the case.
async fn hold_case(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let request = held_case(&state, &id).await?;
    cases::hold(
        &state.store,
        &admin.actor,
        &request,
        required(&body, "reason")?,
    )
    .await?;
    Ok(Json(
        json!({ "reference_id": request.id, "legal_hold": true }),
    ))
}

/// `{"reason": "..."}`: releases the case's legal hold.
async fn release_case(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let request = held_case(&state, &id).await?;
    cases::release(
        &state.store,
        &admin.actor,
        &request,
        required(&body, "reason")?,
    )
    .await?;
    Ok(Json(
        json!({ "reference_id": request.id, "legal_hold": false }),
    ))
}

// ---- question banks ----

/// `?version=N` reads a saved version as it was; without it, the bank in use.
async fn bank(state: &AppState, merchant_id: i64, query: &Query) -> Result<Json<Value>> {
    let bank = match query.get("version") {
        None => questions::current(&state.store, &state.config, merchant_id).await?,
        Some(v) => {
            let version =
                crate::domain::validate::parse_id(v).ok_or_else(|| Error::invalid("version"))?;
            questions::version(&state.store, merchant_id, version)
                .await?
                .ok_or_else(|| Error::not_found("version"))?
        }
    };
    let merchant = (merchant_id != DEPLOYMENT).then_some(merchant_id);
    Ok(Json(json!({
        "merchant_id": merchant,
        "version": bank.version,
        "questions": bank.questions,
        "random_count": bank.random_count,
        "created_at": bank.created_at,
    })))
}

async fn deployment_bank(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<Value>> {
    bank(&state, DEPLOYMENT, &query).await
}

async fn merchant_bank(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    query: Query,
) -> Result<Json<Value>> {
    let merchant = merchants::find_id(&state.store, path_id(&id, "merchant_not_found")?).await?;
    bank(&state, merchant.id, &query).await
}

/// `{base_version, questions: [{en, hi, mandatory}], random_count}`.
async fn save(
    state: &AppState,
    admin: &Admin,
    merchant_id: i64,
    body: &JsonBody,
) -> Result<Json<Value>> {
    let base = match body.get("base_version") {
        None => return Err(Error::missing("base_version")),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid("base_version"))?,
    };
    let given = body
        .get("questions")
        .ok_or_else(|| Error::missing("questions"))?;
    let list: Vec<Question> = match given {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let obj = item
                    .as_object()
                    .ok_or_else(|| Error::invalid("questions"))?;
                let text = |key: &str| match obj.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(Error::invalid("questions")),
                };
                Ok(Question {
                    en: text("en")?.unwrap_or_default(),
                    hi: text("hi")?,
                    mandatory: match obj.get("mandatory") {
                        None | Some(Value::Null) => false,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => return Err(Error::invalid("questions")),
                    },
                })
            })
            .collect::<Result<_>>()?,
        _ => return Err(Error::invalid("questions")),
    };
    let random_count = match body.get("random_count") {
        None => 0,
        Some(v) => v.as_i64().ok_or_else(|| Error::invalid("random_count"))?,
    };
    let version = questions::save(
        &state.store,
        &admin.actor,
        merchant_id,
        base,
        list,
        random_count,
    )
    .await?;
    Ok(Json(json!({ "version": version })))
}

async fn save_deployment_bank(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    save(&state, &admin, DEPLOYMENT, &body).await
}

async fn save_merchant_bank(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let merchant = merchants::find_id(&state.store, path_id(&id, "merchant_not_found")?).await?;
    save(&state, &admin, merchant.id, &body).await
}

// ---- hours and holidays ----

async fn hours(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>> {
    let view = calendar::view(&state.store, &state.config).await?;
    Ok(Json(json!(view)))
}

/// `{working_days: ["mon", ..], working_hours: "HH:MM-HH:MM"}`, or `{default: true}` to
/// return to the configuration's.
async fn set_hours(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    let days = strings(&body, "working_days")?;
    let given = if flag(&body, "default")? {
        None
    } else {
        Some((days.as_slice(), required(&body, "working_hours")?))
    };
    calendar::set_hours(&state.store, &state.config, &admin.actor, given).await?;
    let view = calendar::view(&state.store, &state.config).await?;
    Ok(Json(json!(view)))
}

/// `{dates: ["2026-12-25", ..]}` or `{file: "<the text of a file of dates>"}`.
async fn add_holidays(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    let mut days = Vec::new();
    for text in strings(&body, "dates")? {
        days.push(calendar::parse_date(&text).ok_or_else(|| Error::invalid("dates"))?);
    }
    if let Some(file) = body.str("file")? {
        days.extend(calendar::parse_file(file)?);
    }
    let added = calendar::add_holidays(&state.store, &admin.actor, &days).await?;
    let view = calendar::view(&state.store, &state.config).await?;
    Ok(Json(json!({ "added": added, "holidays": view.holidays })))
}

/// `{date}`.
async fn remove_holiday(
    State(state): State<AppState>,
    admin: Admin,
    body: JsonBody,
) -> Result<Json<Value>> {
    let day =
        calendar::parse_date(required(&body, "date")?).ok_or_else(|| Error::invalid("date"))?;
    calendar::remove_holiday(&state.store, &admin.actor, day).await?;
    let view = calendar::view(&state.store, &state.config).await?;
    Ok(Json(json!({ "holidays": view.holidays })))
}
