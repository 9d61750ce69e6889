//! Who takes which customer: the queue's waiting customers go to free agents on duty,
//! chosen at random, each call with its own questions.

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{MoveError, Request};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

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
        .filter(|(_, hours)| {
            crate::domain::slots::on_duty(&state.journey.hours, hours.as_deref(), now)
        })
        .map(|(id, _)| id)
        .collect();
    let wrap_up_since = now - state.config.calls.wrap_up_seconds as i64 * 1000;
    // An agent in wrap-up takes no other customer, but their own case's customer, back
    // after a drop, returns to them: the decision still to be made is about that case.
    let wraps = state.store.wrap_ups(wrap_up_since).await?;
    let mut free: Vec<i64> = state
        .store
        .free_agents(now, stale)
        .await?
        .into_iter()
        .filter(|id| on_duty.contains(id) && !wraps.iter().any(|(agent, _)| agent == id))
        .collect();
    let mut wrapping: Vec<(i64, i64)> = wraps
        .into_iter()
        .filter(|(agent, _)| on_duty.contains(agent))
        .collect();
    if free.is_empty() && wrapping.is_empty() {
        return Ok(0);
    }
    let mut offered = 0;
    for request_id in state.store.queue_waiting().await? {
        let own = wrapping.iter().position(|(_, r)| *r == request_id);
        if own.is_none() && free.is_empty() {
            continue;
        }
        let Some(request) = state.store.request_by_id(request_id).await? else {
            continue;
        };
        let agent = match own {
            Some(at) => wrapping.swap_remove(at).0,
            None => free.swap_remove(rand::thread_rng().gen_range(0..free.len())),
        };
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
            Err(err) => return Err(Error::from(err)),
        }
    }
    Ok(offered)
}
