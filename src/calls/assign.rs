//! Who takes which customer: the queue's waiting customers go to free agents on duty,
//! chosen at random, each call with its own questions.

use crate::domain::templates::AgentTemplate;
use crate::error::{Error, Result};
use crate::operations::questions::{self as banks, Bank};
use crate::state::AppState;
use crate::store::{MoveError, Request};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The questions of a call: the request's `security_questions`, what it draws from the
/// deployment's bank and from its merchant's own bank (every mandatory question and the
/// bank's number of others at random), in a random order, each to be marked by the
/// agent. Bank questions carry their Hindi text and the bank version they came from.
pub fn questions(
    request: &Request,
    deployment: &Bank,
    merchant: &Bank,
    template: &AgentTemplate,
) -> Value {
    let mut all: Vec<Value> = Vec::new();
    let given: Vec<Value> = request
        .security_questions
        .as_deref()
        .and_then(|q| serde_json::from_str(q).ok())
        .unwrap_or_default();
    for q in given {
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
    for (source, bank) in [("deployment", deployment), ("merchant_bank", merchant)] {
        for q in bank.draw(template.random_questions) {
            all.push(
                json!({ "question": q.en, "question_hi": q.hi, "expected": null,
                             "source": source, "bank_version": bank.version, "answer": null }),
            );
        }
    }
    all.shuffle(&mut rand::thread_rng());
    Value::Array(all)
}

/// One pass of assignment: each waiting customer (booked slots first, then the oldest)
/// goes to a free agent chosen at random, until customers or free agents run out.
/// Agents never pick their customers. Returns how many calls were offered.
pub async fn assign(state: &AppState, now: i64) -> Result<usize> {
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    let on_duty: Vec<i64> = state
        .store
        .online_agents_with_hours(now, stale)
        .await?
        .into_iter()
        .filter(|(_, hours)| crate::domain::slots::on_duty(&desk, hours.as_deref(), now))
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
    let deployment = banks::current(&state.store, &state.config, banks::DEPLOYMENT).await?;
    let mut merchant_banks: HashMap<i64, Bank> = HashMap::new();
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
        let merchant = match merchant_banks.get(&request.merchant_id) {
            Some(bank) => bank,
            None => {
                let bank = banks::current(&state.store, &state.config, request.merchant_id).await?;
                merchant_banks.entry(request.merchant_id).or_insert(bank)
            }
        };
        let (_, template) =
            crate::operations::templates::agent_template(&state.store, &request).await?;
        let questions = questions(&request, &deployment, merchant, &template).to_string();
        let versions = json!({ "deployment": deployment.version, "merchant": merchant.version });
        match state
            .store
            .assign_call(&request, agent, &liveness, &questions)
            .await
        {
            Ok((_, call)) => {
                offered += 1;
                // The questions themselves carry their versions; this column lets the
                // calls of one bank version be found.
                state
                    .store
                    .set_call_question_banks(call.id, &versions.to_string())
                    .await?;
            }
            // Another process took this customer or this agent first: next pass.
            Err(MoveError::Lost) | Err(MoveError::Illegal(_)) => {}
            Err(err) => return Err(Error::from(err)),
        }
    }
    Ok(offered)
}
