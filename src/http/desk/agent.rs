//! The agent's console during and after a call, under `/desk/api`: the case beside the
//! video, questions, liveness, captures, PAN, end and decision.

use super::{audit, ClientAddr, StaffSession};
use crate::calls::{conflict, end_call, not_found};
use crate::domain::approval::{approval_blockers, read_questions, valid_pan, CallRecord};
use crate::domain::status::{Actor, Event};
use crate::error::{Error, Result};
use crate::http::input::JsonBody;
use crate::media::Side;
use crate::state::AppState;
use crate::store::{Call, CallUpdate, Changes, Request, Role, SideWrite};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agent/call", get(agent_call))
        .route("/calls/{id}/offer", post(agent_offer))
        .route("/calls/{id}/answers", post(agent_answer))
        .route("/calls/{id}/liveness", post(agent_liveness))
        .route("/calls/{id}/events", post(agent_event))
        .route(
            "/calls/{id}/captures",
            post(agent_capture).layer(DefaultBodyLimit::max(2 * 1024 * 1024)),
        )
        .route("/calls/{id}/pan", post(agent_pan))
        .route("/calls/{id}/end", post(agent_end))
        .route("/calls/{id}/decision", post(agent_decision))
        .route("/captures/{id}", get(capture_image))
}

/// The agent's own call `id` (live or waiting for a decision), or 404.
async fn own_call(state: &AppState, session: &StaffSession, id: i64) -> Result<Call> {
    session.require(&[Role::Agent])?;
    let call = state.store.call(id).await?.ok_or_else(not_found)?;
    if call.agent_id != session.staff_id {
        return Err(not_found());
    }
    Ok(call)
}

pub(super) fn path_id(id: &str) -> Result<i64> {
    crate::domain::validate::parse_id(id).ok_or_else(not_found)
}

/// Everything the agent sees beside the video: the customer's details and checks.
pub(super) async fn case_view(
    state: &AppState,
    request: &Request,
    call: Option<&Call>,
) -> Result<Value> {
    let steps = state.store.steps(request.id).await?;
    let evidence_of = |step: &str, outcome: &str| {
        steps
            .iter()
            .rev()
            .filter(|s| s.step == step && s.outcome.as_deref() == Some(outcome))
            .find_map(|s| s.evidence.as_deref())
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .unwrap_or(Value::Null)
    };
    let aadhaar = state
        .store
        .aadhaar_kyc(request.id)
        .await?
        .map(|(source, details)| {
            json!({ "source": source,
                    "details": serde_json::from_str::<Value>(&details).unwrap_or(Value::Null) })
        });
    // A URL, not the image: the photo may come from the merchant's link, fetched by the
    // server only when the page asks for it.
    let photo = crate::calls::photo::photo_source(state, request)
        .await?
        .map(
            |source| json!({ "url": format!("/desk/api/photos/{}", request.id), "source": source }),
        );
    let consent = state.store.consent(request.id).await?.map(|c| {
        json!({ "time": crate::domain::views::iso_millis(c.at), "ip": c.ip, "user_agent": c.user_agent,
                "lang": c.lang, "text_sha256": c.text_sha256 })
    });
    let user = state
        .store
        .user_by_ref(request.merchant_id, request.user_ref)
        .await?;
    // The e-KYC file against the user: mobile and name (match, mismatch, not_available).
    let ekyc = evidence_of("aadhaar", "AADHAAR_VERIFICATION_SUCCESS");
    let checked = |key: &str| ekyc.get(key).cloned().unwrap_or(json!("not_available"));
    let aadhaar_checks = json!({ "mobile": checked("mobile"), "name": checked("name") });
    let mut view = json!({
        "reference_id": request.id,
        "verification_id": request.verification_id,
        "status": request.sub_status.status().as_str(),
        "sub_status": request.sub_status.as_str(),
        "user": user.map(|u| json!({ "name": u.name, "phone": u.phone, "email": u.email })),
        "aadhaar": aadhaar,
        "aadhaar_photo": photo,
        "aadhaar_checks": aadhaar_checks,
        "location": evidence_of("location", "USER_LOCATION_VERIFICATION_SUCCESS"),
        "ip": evidence_of("ip", "USER_IP_VERIFICATION_SUCCESSFUL"),
        "consent": consent,
        "server_time": crate::domain::views::iso_millis(crate::clock::now_ms()),
    });
    let (row, template) =
        crate::operations::templates::agent_template(&state.store, request).await?;
    let (user_template, journey) =
        crate::operations::templates::user_template(&state.store, request).await?;
    view["display_name"] = json!(
        crate::operations::templates::display_name_under(&state.store, request, &journey).await?
    );
    // The bank's logo as the customer saw it, so the agent says the same name.
    view["brand_logo"] = json!(journey.logo_url());
    view["personal_details"] =
        crate::operations::templates::personal_details_view(&state.store, request).await?;
    view["templates"] = json!({
        "user": { "name": user_template.name, "version": user_template.version },
        "agent": { "name": row.name, "version": row.version },
    });
    view["checklist"] = json!({
        "captures": template.captures,
        "liveness_required": template.liveness_required,
        "pan_required": template.pan_required,
        "merchant_questions_required": template.merchant_questions_required,
        "rejection_reasons": template.rejection_reasons,
    });
    if let Some(call) = call {
        let captures: Vec<Value> = state
            .store
            .captures(call.id)
            .await?
            .into_iter()
            .map(|c| {
                json!({ "id": c.id, "kind": c.kind, "at": crate::domain::views::iso_millis(c.at),
                             "url": format!("/desk/api/captures/{}", c.id) })
            })
            .collect();
        view["call"] = json!({
            "id": call.id,
            "state": call.state,
            "invited_at": crate::domain::views::iso_millis(call.invited_at),
            "accepted_at": call.accepted_at.map(crate::domain::views::iso_millis),
            "ended_at": call.ended_at.map(crate::domain::views::iso_millis),
            "ended_by": call.ended_by,
            "liveness_code": call.liveness_code,
            "liveness_result": call.liveness_result,
            "questions": serde_json::from_str::<Value>(&call.questions).unwrap_or(Value::Null),
            "pan": call.pan,
            "captures": captures,
            "duration_ms": call.duration_ms,
            "decision": call.decision,
            "remarks": call.remarks,
            "ice_servers": crate::calls::ice_servers(state, call, crate::media::Side::Agent),
            "quality": crate::calls::quality(state, call).await,
            "events": events(state, call.id).await?,
        });
    }
    Ok(view)
}

/// A call's events with their times, for the checklist and the player's markers.
async fn events(state: &AppState, call_id: i64) -> Result<Value> {
    let events = state.store.call_events(call_id).await?;
    Ok(events
        .into_iter()
        .map(|e| {
            json!({ "at": crate::domain::views::iso_millis(e.at), "kind": e.kind,
                    "detail": e.detail.and_then(|d| serde_json::from_str::<Value>(&d).ok()) })
        })
        .collect())
}

/// `GET /desk/api/agent/call`: the agent's live call, or the last one awaiting a
/// decision; `{"call": null}` when there is none.
async fn agent_call(State(state): State<AppState>, session: StaffSession) -> Result<Json<Value>> {
    session.require(&[Role::Agent])?;
    let call = match state.store.live_call_for_agent(session.staff_id).await? {
        Some(call) => Some(call),
        None => {
            state
                .store
                .undecided_call_for_agent(session.staff_id)
                .await?
        }
    };
    let Some(call) = call else {
        return Ok(Json(json!({ "call": null })));
    };
    let request = state
        .store
        .request_by_id(call.request_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(case_view(&state, &request, Some(&call)).await?))
}

async fn agent_offer(
    State(state): State<AppState>,
    session: StaffSession,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    Ok(Json(
        crate::calls::offer(
            &state,
            &call,
            Side::Agent,
            body.str("sdp")?.ok_or_else(|| Error::missing("sdp"))?,
        )
        .await?,
    ))
}

fn require_active(call: &Call) -> Result<()> {
    if call.state == "active" {
        Ok(())
    } else {
        Err(conflict(
            "call_not_active",
            "the call has not started or is over.",
        ))
    }
}

/// The `index` of a question (numbered from 0, as the desk lists them).
fn question_index(body: &JsonBody) -> Result<u64> {
    match body.get("index") {
        None => Err(Error::missing("index")),
        Some(v) => v.as_u64().ok_or_else(|| Error::invalid("index")),
    }
}

async fn agent_answer(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let index = question_index(&body)?;
    let answer = body.one_of("answer", &["correct", "incorrect"])?;
    let mut questions = read_questions(&call.questions).ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "the questions of call {} cannot be read",
            call.id
        ))
    })?;
    let slot = questions
        .get_mut(index as usize)
        .ok_or_else(|| Error::invalid("index"))?;
    slot["answer"] = json!(answer);
    let questions = Value::Array(questions);
    state
        .store
        .set_call_questions(call.id, &questions.to_string(), index as usize, answer)
        .await?;
    audit(
        &state,
        Some(session.staff_id),
        "question_marked",
        Some(&call.id.to_string()),
        ip,
        Some(&format!("{index}:{answer}")),
    )
    .await?;
    Ok(Json(json!({ "questions": questions })))
}

/// `POST /desk/api/calls/<id>/events` `{kind, index?}`: a step of the agent's checklist
/// that changes nothing but the call's timeline, where the auditor's player shows it:
/// `question_asked` (with the question's `index`), `liveness_asked` (the number is read
/// out now) and `location_confirmed` (the agent has looked at where the customer is).
async fn agent_event(
    State(state): State<AppState>,
    session: StaffSession,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let kind = body.one_of(
        "kind",
        &["question_asked", "liveness_asked", "location_confirmed"],
    )?;
    let detail = match kind {
        "question_asked" => {
            let index = question_index(&body)?;
            let count = read_questions(&call.questions).map_or(0, |q| q.len());
            if index as usize >= count {
                return Err(Error::invalid("index"));
            }
            json!({ "index": index })
        }
        _ => json!({}),
    };
    state.store.add_call_event(call.id, kind, &detail).await?;
    Ok(Json(json!({ "recorded": kind })))
}

async fn agent_liveness(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let result = body.one_of("result", &["passed", "failed"])?;
    state.store.set_call_liveness(call.id, result).await?;
    audit(
        &state,
        Some(session.staff_id),
        "liveness_marked",
        Some(&call.id.to_string()),
        ip,
        Some(result),
    )
    .await?;
    Ok(Json(json!({ "liveness_result": result })))
}

/// `POST /desk/api/calls/<id>/captures` `{kind, image}`: a still the agent took from the
/// customer's live video (a JPEG, Base64 or a data URL), of a kind the request's agent
/// template lists (`face`, `pan`, `signature`, ...).
async fn agent_capture(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let request = state
        .store
        .request_by_id(call.request_id)
        .await?
        .ok_or_else(not_found)?;
    let (_, template) =
        crate::operations::templates::agent_template(&state.store, &request).await?;
    let kind = body.str("kind")?.ok_or_else(|| Error::missing("kind"))?;
    if !template.captures_kind(kind) {
        return Err(Error::invalid("kind"));
    }
    let image = body.str("image")?.ok_or_else(|| Error::missing("image"))?;
    let image = image
        .strip_prefix("data:image/jpeg;base64,")
        .unwrap_or(image);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(image)
        .map_err(|_| Error::invalid("image"))?;
    // A JPEG starts with FF D8 FF: anything else is not a still from the call.
    if bytes.len() < 100 || !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(Error::invalid("image"));
    }
    let capture = state.store.insert_capture(call.id, kind, &bytes).await?;
    audit(
        &state,
        Some(session.staff_id),
        "capture_taken",
        Some(&call.id.to_string()),
        ip,
        Some(kind),
    )
    .await?;
    Ok(Json(
        json!({ "id": capture, "kind": kind, "url": format!("/desk/api/captures/{capture}") }),
    ))
}

async fn agent_pan(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let pan = body
        .str("pan")?
        .ok_or_else(|| Error::missing("pan"))?
        .trim()
        .to_ascii_uppercase();
    if !valid_pan(&pan) {
        return Err(Error::validation(
            "pan_value_invalid",
            "a PAN is five letters, four digits and a letter (e.g. ABCDE1234F).",
        ));
    }
    state.store.set_call_pan(call.id, &pan).await?;
    audit(
        &state,
        Some(session.staff_id),
        "pan_entered",
        Some(&call.id.to_string()),
        ip,
        None,
    )
    .await?;
    Ok(Json(json!({ "pan": pan })))
}

async fn agent_end(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    end_call(
        &state,
        &call,
        Event::AgentEndedCall,
        "agent",
        "ended",
        Actor::Agent,
    )
    .await?;
    audit(
        &state,
        Some(session.staff_id),
        "call_ended",
        Some(&call.id.to_string()),
        ip,
        None,
    )
    .await?;
    Ok(Json(json!({ "call_id": call.id, "state": "ended" })))
}

/// Reads `{decision, remarks}`: one of `choices`, and remarks of 1 to 1,000 characters.
pub(super) fn read_decision(
    body: &JsonBody,
    choices: &[(&'static str, Event)],
) -> Result<(&'static str, Event, String)> {
    let given = body
        .str("decision")?
        .ok_or_else(|| Error::missing("decision"))?;
    let (decision, event) = choices
        .iter()
        .find(|(name, _)| *name == given)
        .copied()
        .ok_or_else(|| Error::invalid("decision"))?;
    let remarks = body
        .str("remarks")?
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::missing("remarks"))?;
    if remarks.chars().count() > 1000 {
        return Err(Error::invalid("remarks"));
    }
    Ok((decision, event, remarks.to_string()))
}

/// `POST /desk/api/calls/<id>/decision` `{decision: "approved"|"rejected"|
/// "unable_to_validate", remarks}` once the call is over.
async fn agent_decision(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    // The form names the call it was filled in for: a form left on the screen while
    // another call took its place must not land on that other case.
    let named = match body.get("call_id") {
        None => return Err(Error::missing("call_id")),
        Some(v) => {
            crate::domain::validate::positive_id(v).ok_or_else(|| Error::invalid("call_id"))?
        }
    };
    if named != call.id {
        return Err(conflict(
            "call_mismatch",
            format!(
                "this decision was made for call {named}, not for call {}.",
                call.id
            ),
        ));
    }
    // A dropped call whose customer has had another call since is not this case's
    // call any more: the decision belongs to the latest one.
    let latest = state
        .store
        .calls_for_request(call.request_id)
        .await?
        .last()
        .map(|c| c.id);
    if !matches!(call.state.as_str(), "ended" | "dropped")
        || call.decision.is_some()
        || latest != Some(call.id)
    {
        return Err(conflict(
            "call_not_decidable",
            "a decision is made once, after the call has ended.",
        ));
    }
    let (decision, event, remarks) = read_decision(
        &body,
        &[
            ("approved", Event::AgentApproved),
            ("rejected", Event::AgentRejected),
            ("unable_to_validate", Event::AgentUnableToValidate),
        ],
    )?;
    let request = state
        .store
        .request_by_id(call.request_id)
        .await?
        .ok_or_else(not_found)?;
    let (_, template) =
        crate::operations::templates::agent_template(&state.store, &request).await?;
    // A reason from the template's list, when the agent picks one (the remarks stay
    // free text).
    let reason = match body.str("reason")? {
        None => None,
        Some(r) if decision == "rejected" && template.rejection_reasons.iter().any(|t| t == r) => {
            Some(r.to_string())
        }
        Some(_) => return Err(Error::invalid("reason")),
    };
    if decision == "approved" {
        let captured: Vec<String> = state
            .store
            .captures(call.id)
            .await?
            .into_iter()
            .map(|c| c.kind)
            .collect();
        let missing = approval_blockers(
            &CallRecord {
                state: &call.state,
                questions: &call.questions,
                liveness_result: call.liveness_result.as_deref(),
                pan: call.pan.as_deref(),
                captured: &captured,
            },
            &template,
        );
        if !missing.is_empty() {
            return Err(conflict(
                "approval_incomplete",
                format!("approval needs {}.", missing.join(", ")),
            ));
        }
    }
    let moved = state
        .store
        .apply_journey(
            &request,
            &[event],
            Actor::Agent,
            Some(&json!({ "call_id": call.id, "agent": session.username, "reason": reason })),
            &Changes {
                agent_remarks: Some(remarks.clone()),
                ..Changes::default()
            },
            &[SideWrite::Call {
                call_id: call.id,
                update: CallUpdate::Decide { decision, remarks },
            }],
        )
        .await
        .map_err(Error::from)?;
    audit(
        &state,
        Some(session.staff_id),
        "agent_decision",
        Some(&request.verification_id),
        ip,
        Some(decision),
    )
    .await?;
    Ok(Json(json!({ "sub_status": moved.sub_status.as_str() })))
}

/// `GET /desk/api/captures/<id>`: a capture's JPEG, for the agent of its call and for
/// auditors.
async fn capture_image(
    State(state): State<AppState>,
    session: StaffSession,
    Path(id): Path<String>,
) -> Result<Response> {
    session.require(&[Role::Agent, Role::Auditor])?;
    let (call_id, bytes) = state
        .store
        .capture_image(path_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    // An agent sees the captures of their own calls; an auditor those of calls they did
    // not take as agent (four eyes), once the agent has decided.
    let call = state.store.call(call_id).await?.ok_or_else(not_found)?;
    let allowed = match session.role {
        Role::Agent => call.agent_id == session.staff_id,
        _ => call.agent_id != session.staff_id && call.decision.is_some(),
    };
    if !allowed {
        return Err(not_found());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}
