//! The auditor's console: cases to review (never one the auditor took as agent) and
//! the second decision.

use super::agent::{case_view, path_id, read_decision};
use super::{audit, ClientAddr, StaffSession};
use crate::calls::{conflict, not_found};
use crate::domain::status::{Actor, Event, Status};
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{Call, Changes, Request, Role, SideWrite};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit/cases", get(audit_cases))
        .route("/audit/cases/{id}", get(audit_case))
        .route("/audit/cases/{id}/decision", post(audit_decision))
}

#[derive(serde::Deserialize)]
struct QueueQuery {
    q: Option<String>,
    agent: Option<String>,
}

/// `GET /desk/api/audit/cases?q=&agent=`: the work queue, oldest first, with each case's
/// customer, agent, call length and how long it has waited; `q` searches the
/// verification id, the customer's name and the agent, `agent` keeps one agent's cases.
async fn audit_cases(
    State(state): State<AppState>,
    session: StaffSession,
    query: std::result::Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Json<Value>> {
    session.require(&[Role::Auditor])?;
    let Query(query) = query.map_err(|_| Error::invalid("query"))?;
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > 100) {
        return Err(Error::invalid("q"));
    }
    let agent = match query.agent.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(a.parse::<i64>().map_err(|_| Error::invalid("agent"))?),
    };
    let now = crate::clock::now_ms();
    let cases: Vec<Value> = state
        .store
        .review_queue(session.staff_id, search, agent, 100)
        .await?
        .iter()
        .map(|c| {
            let r = &c.request;
            json!({ "reference_id": r.id, "verification_id": r.verification_id,
                    "sub_status": r.sub_status.as_str(), "agent_remarks": r.agent_remarks,
                    "customer_name": c.customer_name, "agent": c.agent, "agent_id": c.agent_id,
                    "created_at": crate::domain::views::iso_millis(r.created_at),
                    "call_ms": c.call_ms,
                    "waiting_since": crate::domain::views::iso_millis(c.waiting_since),
                    "waiting_ms": (now - c.waiting_since).max(0) })
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
    let now = crate::clock::now_ms();
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
            json!({ "time": crate::domain::views::iso_millis(h.at), "actor": h.actor, "event": h.event,
                         "to_sub_status": h.to_sub_status })
        })
        .collect();
    view["timeline"] = json!(history);
    // Both cameras, one file each, for two players kept in step; and the instant of
    // their media time 0, to place the timeline's events on them.
    let recorded = match last {
        Some(c) => state.store.stored_recording(c)?.map(|r| (c.id, r)),
        None => None,
    };
    view["recording_sides"] = json!(recorded
        .as_ref()
        .map(|(id, _)| super::recording::side_links(*id)));
    view["recording_started_at"] = json!(match &recorded {
        Some((_, stored)) => super::recording::recording_start(&state, stored)
            .await
            .map(crate::domain::views::iso_millis),
        None => None,
    });
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
        .map_err(Error::from)?;
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
