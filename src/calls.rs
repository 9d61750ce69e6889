//! The video call: an agent is assigned from the queue, the customer accepts (or not),
//! both browsers connect to our media relay, the agent runs the checks, the call ends or
//! drops, the agent decides, and an auditor reviews.
//!
//! Every status change goes through the status machine with the call row beside it in
//! one transaction. Timers (unanswered invitations, lost media) live in the database
//! and are acted on by [`sweep`], one testable step, so any process may act on them.

use crate::app::AppState;
use crate::desk::{audit, ClientAddr, StaffSession};
use crate::error::{Error, ErrorType, Result};
use crate::input::JsonBody;
use crate::journey::{self, Step};
use crate::media::{MediaEvent, Side};
use crate::status::{Actor, Event, Status};
use crate::store::{Call, CallUpdate, Changes, MoveError, Request, Role, SideWrite};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn conflict(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(
        StatusCode::CONFLICT,
        ErrorType::ValidationError,
        code,
        message.into(),
    )
}

fn not_found() -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        ErrorType::ValidationError,
        "call_not_found",
        "there is no such call for you.",
    )
}

// ---- assignment ----

/// The questions of a call: the merchant's `security_questions` and the deployment's,
/// in a random order, each to be marked by the agent.
pub fn questions(request: &Request, deployment: &[String]) -> Value {
    let mut all: Vec<Value> = Vec::new();
    let merchant: Vec<Value> = request
        .security_questions
        .as_deref()
        .and_then(|q| serde_json::from_str(q).ok())
        .unwrap_or_default();
    for q in merchant {
        let text = match &q {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("question")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => continue,
        };
        let expected = q.get("answer").cloned().unwrap_or(Value::Null);
        if !text.is_empty() {
            all.push(json!({ "question": text, "expected": expected, "source": "merchant", "answer": null }));
        }
    }
    for q in deployment {
        all.push(
            json!({ "question": q, "expected": null, "source": "deployment", "answer": null }),
        );
    }
    all.shuffle(&mut rand::thread_rng());
    Value::Array(all)
}

/// One pass of assignment: each waiting customer (booked slots first, then the oldest)
/// goes to a free agent chosen at random, until customers or free agents run out.
/// Agents never pick their customers. Returns how many calls were offered.
pub async fn assign(state: &AppState, now: i64) -> Result<usize> {
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let on_duty: Vec<i64> = state
        .store
        .online_agents_with_hours(now, stale)
        .await?
        .into_iter()
        .filter(|(_, hours)| crate::slots::on_duty(&state.journey.hours, hours.as_deref(), now))
        .map(|(id, _)| id)
        .collect();
    let mut free: Vec<i64> = state
        .store
        .free_agents(now, stale)
        .await?
        .into_iter()
        .filter(|id| on_duty.contains(id))
        .collect();
    if free.is_empty() {
        return Ok(0);
    }
    let mut offered = 0;
    for request_id in state.store.queue_waiting().await? {
        if free.is_empty() {
            break;
        }
        let Some(request) = state.store.request_by_id(request_id).await? else {
            continue;
        };
        let agent = free.swap_remove(rand::thread_rng().gen_range(0..free.len()));
        let liveness = format!("{:04}", rand::thread_rng().gen_range(1000..10000));
        let questions = questions(&request, &state.config.calls.questions).to_string();
        match state
            .store
            .assign_call(&request, agent, &liveness, &questions)
            .await
        {
            Ok(_) => offered += 1,
            // Another process took this customer or this agent first: next pass.
            Err(MoveError::Lost) | Err(MoveError::Illegal(_)) => {}
            Err(err) => return Err(crate::merchant_api::move_error(err)),
        }
    }
    Ok(offered)
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallSweep {
    pub assigned: usize,
    pub missed: usize,
    pub dropped: usize,
}

/// One pass: unanswered invitations become USER_MISSED_MEETING; a side whose media has
/// been lost longer than the grace period has dropped off (USER_DROPPED_OFF /
/// AGENT_DROPPED_OFF, the recording kept); then free agents get waiting customers.
pub async fn sweep(state: &AppState, now: i64) -> Result<CallSweep> {
    let c = &state.config.calls;
    let mut done = CallSweep::default();
    for call in state
        .store
        .unanswered_invites(now - c.invite_seconds as i64 * 1000)
        .await?
    {
        let Some(request) = state.store.request_by_id(call.request_id).await? else {
            continue;
        };
        let moved = state
            .store
            .apply_journey(
                &request,
                &[Event::MeetingMissed],
                Actor::System,
                Some(&json!({ "call_id": call.id, "reason": "the invitation was not answered" })),
                &Changes::default(),
                &[SideWrite::Call {
                    call_id: call.id,
                    update: CallUpdate::End {
                        state: "missed",
                        by: "system",
                        recording: None,
                    },
                }],
            )
            .await;
        match moved {
            Ok(_) => done.missed += 1,
            // The request moved on without the call (its link expired, say): the call
            // is over all the same, and its agent free again.
            Err(MoveError::Illegal(_)) => state.store.close_call(call.id, "missed").await?,
            Err(_) => {}
        }
    }
    for call in state
        .store
        .lost_calls(now - c.drop_grace_seconds as i64 * 1000)
        .await?
    {
        let customer_first = match (call.customer_lost_at, call.agent_lost_at) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            _ => false,
        };
        let (event, by) = if customer_first {
            (Event::UserDroppedOff, "customer")
        } else {
            (Event::AgentDroppedOff, "agent")
        };
        if end_call(state, &call, event, by, "dropped", Actor::System)
            .await
            .is_ok()
        {
            done.dropped += 1;
        }
    }
    done.assigned = assign(state, now).await?;
    Ok(done)
}

/// Ends a live call with `event`: the relay closes both sides and finishes the
/// recording, which is stored with the call and shown as `recording_link`.
async fn end_call(
    state: &AppState,
    call: &Call,
    event: Event,
    by: &'static str,
    call_state: &'static str,
    actor: Actor,
) -> Result<Request> {
    let request = state
        .store
        .request_by_id(call.request_id)
        .await?
        .ok_or_else(not_found)?;
    // Check the move first: a refused end must not stop the recording.
    crate::status::next(request.sub_status, event)
        .map_err(|e| crate::merchant_api::move_error(e.into()))?;
    let recording = match &state.media {
        Some(relay) => relay
            .end_call(&call.id.to_string())
            .await
            .map_err(Error::internal)?,
        None => None,
    };
    let changes = Changes {
        recording_link: recording
            .as_ref()
            .map(|_| crate::recordings::reference(call.id)),
        ..Changes::default()
    };
    // Kept where `[media] recordings_store` says: the local path, or the uploaded
    // object's s3:// URL (a failed upload keeps the local file and its path).
    let stored = match &recording {
        Some(r) => Some((
            crate::storage::keep(&state.config.media, call.id, r).await,
            r.bytes as i64,
            r.duration_ms,
        )),
        None => None,
    };
    let uploaded = match (&recording, &stored) {
        (Some(r), Some((path, _, _))) if path.starts_with("s3://") => Some(r.clone()),
        _ => None,
    };
    let moved = state
        .store
        .apply_journey(
            &request,
            &[event],
            actor,
            Some(&json!({ "call_id": call.id, "ended_by": by,
                          "recording_ms": recording.as_ref().map(|r| r.duration_ms) })),
            &changes,
            &[SideWrite::Call {
                call_id: call.id,
                update: CallUpdate::End {
                    state: call_state,
                    by,
                    recording: stored,
                },
            }],
        )
        .await
        .map_err(crate::merchant_api::move_error)?;
    // The row points at the uploaded copy: the local files can go.
    if let Some(recording) = uploaded {
        crate::storage::remove_local(&recording).await;
    }
    Ok(moved)
}

/// Runs [`sweep`] every second and follows the relay's connection events.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.media.as_ref().map(|m| m.events());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = async {
            match events.as_mut() {
                Some(events) => events.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                match sweep(&state, crate::store::now_ms()).await {
                    Ok(done) if done == CallSweep::default() => {}
                    Ok(done) => tracing::info!(?done, "call sweep"),
                    Err(err) => tracing::warn!(error = %err, "call sweep failed; retrying"),
                }
            }
            Some(event) = event => {
                if let Err(err) = on_media_event(&state, event).await {
                    tracing::warn!(error = %err, "recording a media event failed");
                }
            }
        }
    }
}

async fn on_media_event(state: &AppState, event: MediaEvent) -> Result<()> {
    let (call_id, side, lost) = match event {
        MediaEvent::Connected { call_id, side } => (call_id, side, None),
        MediaEvent::Disconnected { call_id, side } => (call_id, side, Some(crate::store::now_ms())),
    };
    let Ok(call_id) = call_id.parse::<i64>() else {
        return Ok(());
    };
    state
        .store
        .set_media_lost(call_id, side == Side::Customer, lost)
        .await
}

// ---- the customer's side (under /v/<key>/api/call) ----

pub fn customer_routes() -> Router<AppState> {
    Router::new()
        .route("/v/{key}/api/call", get(customer_call))
        .route("/v/{key}/api/call/accept", post(customer_accept))
        .route("/v/{key}/api/call/decline", post(customer_decline))
        .route("/v/{key}/api/call/offer", post(customer_offer))
        .route("/v/{key}/api/call/end", post(customer_end))
}

async fn customer_live_call(state: &AppState, key: &str) -> Result<(journey::Opened, Call)> {
    let opened = journey::open(state, key).await?;
    let call = state
        .store
        .calls_for_request(opened.request.id)
        .await?
        .into_iter()
        .rev()
        .find(Call::is_live)
        .ok_or_else(|| conflict("call_not_live", "there is no call for you now."))?;
    Ok((opened, call))
}

async fn customer_call(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let (opened, call) = customer_live_call(&state, &key).await?;
    let invite_ms = state.config.calls.invite_seconds as i64 * 1000;
    Ok(Json(json!({
        "call_id": call.id,
        "state": call.state,
        "sub_status": opened.request.sub_status.as_str(),
        "invite_expires_at": crate::views::iso_millis(call.invited_at + invite_ms),
    })))
}

/// The customer's answer to an open invitation: `event` with `update` on the call.
async fn answer_invitation(
    state: &AppState,
    key: &str,
    event: Event,
    update: CallUpdate,
) -> Result<(journey::Opened, Call)> {
    let (opened, call) = customer_live_call(state, key).await?;
    journey::expect_step(&opened, &[Step::Call])?;
    if call.state != "invited" {
        return Err(conflict(
            "call_not_invited",
            "the invitation is no longer open.",
        ));
    }
    state
        .store
        .apply_journey(
            &opened.request,
            &[event],
            Actor::Customer,
            Some(&json!({ "call_id": call.id })),
            &Changes::default(),
            &[SideWrite::Call {
                call_id: call.id,
                update,
            }],
        )
        .await
        .map_err(crate::merchant_api::move_error)?;
    Ok((opened, call))
}

async fn customer_accept(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let (opened, call) =
        answer_invitation(&state, &key, Event::InviteAccepted, CallUpdate::Accept).await?;
    if let Some(relay) = &state.media {
        let gps = customer_position(&state, opened.request.id).await?;
        relay
            .open_call(
                &call.id.to_string(),
                json!({ "call_id": call.id, "verification_id": opened.request.verification_id,
                        "started_at": crate::views::iso_millis(crate::store::now_ms()),
                        "customer_gps": gps }),
            )
            .await
            .map_err(Error::internal)?;
    }
    Ok(Json(json!({ "call_id": call.id, "state": "active" })))
}

async fn customer_decline(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let declined = CallUpdate::End {
        state: "declined",
        by: "customer",
        recording: None,
    };
    let (_, call) = answer_invitation(&state, &key, Event::InviteRejected, declined).await?;
    Ok(Json(json!({ "call_id": call.id, "state": "declined" })))
}

/// The SDP exchange: a browser's offer in, the relay's answer out.
async fn offer_for(state: &AppState, call: &Call, side: Side, body: &JsonBody) -> Result<Value> {
    if call.state != "active" {
        return Err(conflict(
            "call_not_active",
            "the call has not started or is over.",
        ));
    }
    let sdp = body.str("sdp")?.ok_or_else(|| Error::missing("sdp"))?;
    if sdp.len() > 20_000 {
        return Err(Error::invalid("sdp"));
    }
    let relay = state.media.as_ref().ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::InternalError,
            "media_unavailable",
            "the media relay is not running.",
        )
    })?;
    let answer = relay
        .join(&call.id.to_string(), side, sdp)
        .await
        .map_err(|e| {
            Error::validation("sdp_value_invalid", format!("the offer was refused: {e}"))
        })?;
    Ok(json!({ "type": "answer", "sdp": answer }))
}

async fn customer_offer(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let (_, call) = customer_live_call(&state, &key).await?;
    Ok(Json(offer_for(&state, &call, Side::Customer, &body).await?))
}

async fn customer_end(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let (_, call) = customer_live_call(&state, &key).await?;
    if call.state != "active" {
        return Err(conflict(
            "call_not_active",
            "the call has not started or is over.",
        ));
    }
    end_call(
        &state,
        &call,
        Event::UserEndedCall,
        "customer",
        "ended",
        Actor::Customer,
    )
    .await?;
    Ok(Json(json!({ "call_id": call.id, "state": "ended" })))
}

/// The customer's last verified GPS position, as the location step stored it.
async fn customer_position(state: &AppState, request_id: i64) -> Result<Value> {
    let steps = state.store.steps(request_id).await?;
    Ok(steps
        .iter()
        .rev()
        .filter(|s| {
            s.step == "location" && s.outcome.as_deref() == Some("USER_LOCATION_VERIFICATION_SUCCESS")
        })
        .find_map(|s| s.evidence.as_deref())
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .map(|e| json!({ "latitude": e["latitude"], "longitude": e["longitude"], "accuracy_m": e["accuracy_m"] }))
        .unwrap_or(Value::Null))
}

// ---- the agent's console (under /desk/api) ----

pub fn desk_routes() -> Router<AppState> {
    Router::new()
        .route("/agent/call", get(agent_call))
        .route("/calls/{id}/offer", post(agent_offer))
        .route("/calls/{id}/answers", post(agent_answer))
        .route("/calls/{id}/liveness", post(agent_liveness))
        .route(
            "/calls/{id}/captures",
            post(agent_capture).layer(DefaultBodyLimit::max(2 * 1024 * 1024)),
        )
        .route("/calls/{id}/pan", post(agent_pan))
        .route("/calls/{id}/end", post(agent_end))
        .route("/calls/{id}/decision", post(agent_decision))
        .route("/captures/{id}", get(capture_image))
        .route("/audit/cases", get(audit_cases))
        .route("/audit/cases/{id}", get(audit_case))
        .route("/audit/cases/{id}/decision", post(audit_decision))
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

fn path_id(id: &str) -> Result<i64> {
    crate::input::parse_id(id).ok_or_else(not_found)
}

/// Everything the agent sees beside the video: the customer's details and checks.
async fn case_view(state: &AppState, request: &Request, call: Option<&Call>) -> Result<Value> {
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
    let photo = state
        .store
        .aadhaar_photo(request.id)
        .await?
        .map(|p| format!("data:image/jpeg;base64,{p}"));
    let consent = state.store.consent(request.id).await?.map(|c| {
        json!({ "time": crate::views::iso_millis(c.at), "ip": c.ip, "user_agent": c.user_agent,
                "lang": c.lang, "text_sha256": c.text_sha256 })
    });
    let user = state
        .store
        .user_by_ref(request.merchant_id, request.user_ref)
        .await?;
    let mut view = json!({
        "reference_id": request.id,
        "verification_id": request.verification_id,
        "status": request.sub_status.status().as_str(),
        "sub_status": request.sub_status.as_str(),
        "user": user.map(|u| json!({ "name": u.name, "phone": u.phone, "email": u.email })),
        "aadhaar": aadhaar,
        "aadhaar_photo": photo,
        "location": evidence_of("location", "USER_LOCATION_VERIFICATION_SUCCESS"),
        "ip": evidence_of("ip", "USER_IP_VERIFICATION_SUCCESSFUL"),
        "consent": consent,
        "server_time": crate::views::iso_millis(crate::store::now_ms()),
    });
    if let Some(call) = call {
        let captures: Vec<Value> = state
            .store
            .captures(call.id)
            .await?
            .into_iter()
            .map(|c| {
                json!({ "id": c.id, "kind": c.kind, "at": crate::views::iso_millis(c.at),
                             "url": format!("/desk/api/captures/{}", c.id) })
            })
            .collect();
        view["call"] = json!({
            "id": call.id,
            "state": call.state,
            "invited_at": crate::views::iso_millis(call.invited_at),
            "accepted_at": call.accepted_at.map(crate::views::iso_millis),
            "ended_at": call.ended_at.map(crate::views::iso_millis),
            "ended_by": call.ended_by,
            "liveness_code": call.liveness_code,
            "liveness_result": call.liveness_result,
            "questions": serde_json::from_str::<Value>(&call.questions).unwrap_or(Value::Null),
            "pan": call.pan,
            "captures": captures,
            "duration_ms": call.duration_ms,
            "decision": call.decision,
            "remarks": call.remarks,
        });
    }
    Ok(view)
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
    Ok(Json(offer_for(&state, &call, Side::Agent, &body).await?))
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

async fn agent_answer(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    // Questions are numbered from 0, as the desk lists them.
    let index = match body.get("index") {
        None => return Err(Error::missing("index")),
        Some(v) => v.as_u64().ok_or_else(|| Error::invalid("index"))?,
    };
    let answer = body.one_of("answer", &["correct", "incorrect"])?;
    let mut questions: Vec<Value> = serde_json::from_str(&call.questions).unwrap_or_default();
    let slot = questions
        .get_mut(index as usize)
        .ok_or_else(|| Error::invalid("index"))?;
    slot["answer"] = json!(answer);
    let questions = Value::Array(questions);
    state
        .store
        .set_call_questions(call.id, &questions.to_string())
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

/// `POST /desk/api/calls/<id>/captures` `{kind: "face"|"pan", image}`: a still the agent
/// took from the customer's live video (a JPEG, Base64 or a data URL).
async fn agent_capture(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let call = own_call(&state, &session, path_id(&id)?).await?;
    require_active(&call)?;
    let kind = body.one_of("kind", &["face", "pan"])?;
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
    let capture = state.store.insert_capture(call.id, kind, image).await?;
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

/// A PAN: five letters, four digits, one letter.
pub fn valid_pan(pan: &str) -> bool {
    let b = pan.as_bytes();
    b.len() == 10
        && b[..5].iter().all(u8::is_ascii_uppercase)
        && b[5..9].iter().all(u8::is_ascii_digit)
        && b[9].is_ascii_uppercase()
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
fn read_decision(
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

/// What is still missing before the agent may approve a call.
pub fn approval_blockers(call: &Call, captured: &[String]) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if call.state != "ended" {
        missing.push("a whole call (this one dropped)");
    }
    let questions: Vec<Value> = serde_json::from_str(&call.questions).unwrap_or_default();
    if questions.iter().any(|q| q["answer"] != "correct") {
        missing.push("every question answered correctly");
    }
    if call.liveness_result.as_deref() != Some("passed") {
        missing.push("the liveness check passed");
    }
    if !captured.iter().any(|k| k == "face") {
        missing.push("a capture of the face");
    }
    if !captured.iter().any(|k| k == "pan") {
        missing.push("a capture of the PAN card");
    }
    if call.pan.is_none() {
        missing.push("the PAN entered");
    }
    missing
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
    if decision == "approved" {
        let captured: Vec<String> = state
            .store
            .captures(call.id)
            .await?
            .into_iter()
            .map(|c| c.kind)
            .collect();
        let missing = approval_blockers(&call, &captured);
        if !missing.is_empty() {
            return Err(conflict(
                "approval_incomplete",
                format!("approval needs {}.", missing.join(", ")),
            ));
        }
    }
    let request = state
        .store
        .request_by_id(call.request_id)
        .await?
        .ok_or_else(not_found)?;
    let moved = state
        .store
        .apply_journey(
            &request,
            &[event],
            Actor::Agent,
            Some(&json!({ "call_id": call.id, "agent": session.username })),
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
        .map_err(crate::merchant_api::move_error)?;
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
    let (call_id, image) = state
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
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(image)
        .map_err(|e| Error::internal(anyhow::anyhow!("a stored capture is not Base64: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}

// ---- the auditor's console ----

async fn audit_cases(State(state): State<AppState>, session: StaffSession) -> Result<Json<Value>> {
    session.require(&[Role::Auditor])?;
    let cases: Vec<Value> = state
        .store
        .review_queue(session.staff_id, 100)
        .await?
        .iter()
        .map(|r| {
            json!({ "reference_id": r.id, "verification_id": r.verification_id,
                    "sub_status": r.sub_status.as_str(), "agent_remarks": r.agent_remarks })
        })
        .collect();
    Ok(Json(json!({ "cases": cases })))
}

/// A case the auditor may review: in AGENT_REVIEWED and not one of their own calls.
async fn reviewable(
    state: &AppState,
    session: &StaffSession,
    id: &str,
) -> Result<(Request, Vec<Call>)> {
    session.require(&[Role::Auditor])?;
    let request = state
        .store
        .request_by_id(path_id(id)?)
        .await?
        .ok_or_else(not_found)?;
    let calls = state.store.calls_for_request(request.id).await?;
    if calls.iter().any(|c| c.agent_id == session.staff_id) {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            ErrorType::ValidationError,
            "four_eyes",
            "you took a call of this case as its agent: another auditor must review it.",
        ));
    }
    if request.sub_status.status() != Status::AgentReviewed {
        return Err(conflict(
            "case_not_reviewable",
            "this case is not waiting for an auditor.",
        ));
    }
    Ok((request, calls))
}

async fn audit_case(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let (request, calls) = reviewable(&state, &session, &id).await?;
    let last = calls
        .iter()
        .rev()
        .find(|c| c.decision.is_some())
        .or(calls.last());
    let mut view = case_view(&state, &request, last).await?;
    let now = crate::store::now_ms();
    view["recording_url"] = json!(request.recording_link.as_deref().map(|r| state.signer.link(
        &state.base_url,
        r,
        now
    )));
    let history: Vec<Value> = state
        .store
        .history(request.id)
        .await?
        .into_iter()
        .map(|h| {
            json!({ "time": crate::views::iso_millis(h.at), "actor": h.actor, "event": h.event,
                         "to_sub_status": h.to_sub_status })
        })
        .collect();
    view["timeline"] = json!(history);
    view["agent_remarks"] = json!(request.agent_remarks);
    audit(
        &state,
        Some(session.staff_id),
        "case_opened",
        Some(&request.verification_id),
        ip,
        None,
    )
    .await?;
    Ok(Json(view))
}

async fn audit_decision(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let (request, _) = reviewable(&state, &session, &id).await?;
    let (decision, event, remarks) = read_decision(
        &body,
        &[
            ("approved", Event::AuditorApproved),
            ("rejected", Event::AuditorRejected),
        ],
    )?;
    let moved = state
        .store
        .apply_journey(
            &request,
            &[event],
            Actor::Auditor,
            Some(&json!({ "auditor": session.username })),
            &Changes {
                auditor_remarks: Some(remarks.clone()),
                ..Changes::default()
            },
            &[SideWrite::Audit {
                auditor_id: session.staff_id,
                decision,
                remarks,
            }],
        )
        .await
        .map_err(crate::merchant_api::move_error)?;
    audit(
        &state,
        Some(session.staff_id),
        "auditor_decision",
        Some(&request.verification_id),
        ip,
        Some(decision),
    )
    .await?;
    Ok(Json(json!({ "sub_status": moved.sub_status.as_str() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_format() {
        assert!(valid_pan("ABCDE1234F"));
        for bad in [
            "abcde1234f",
            "ABCD1234F",
            "ABCDE12345",
            "ABCDE1234",
            "1BCDE1234F",
            "",
        ] {
            assert!(!valid_pan(bad), "{bad}");
        }
    }
}
