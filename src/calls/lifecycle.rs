//! A call's life after the invitation: unanswered invitations, lost media and drops
//! (one testable sweep), and the end of a call with its recording kept.

use super::{assign, conflict, not_found};
use crate::domain::status::{Actor, Event};
use crate::error::{Error, Result};
use crate::media::{MediaEvent, Side};
use crate::state::AppState;
use crate::store::{Call, CallUpdate, Changes, MoveError, Request, SideWrite};
use serde_json::{json, Value};

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CallSweep {
    pub assigned: usize,
    pub missed: usize,
    pub dropped: usize,
    /// Undecided calls whose wrap-up ran out (their agents are free again).
    pub wrap_ups_expired: usize,
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
                        quality: None,
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
    // A dead node's calls drop as soon as it is called dead (`node_timeout_seconds`,
    // within the grace period by default): their media was on it.
    for call in state
        .store
        .lost_calls(
            now - c.drop_grace_seconds as i64 * 1000,
            super::nodes::alive_since(state, now),
        )
        .await?
    {
        // Neither side lost but the call's node gone: the customer is asked to join
        // again, as after their own drop.
        let customer_first = match (call.customer_lost_at, call.agent_lost_at) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) | (None, None) => true,
            (None, Some(_)) => false,
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
    // An agent in wrap-up gets no new customer (see `assign`); past the limit the
    // agent is free again and the undecided case is left, once, in the staff audit.
    let wrap_up = c.wrap_up_seconds as i64 * 1000;
    for call in state.store.expired_wrap_ups(now - wrap_up).await? {
        let details = format!(
            "the agent (staff {}) did not decide within {} s; the case awaits a decision",
            call.agent_id, c.wrap_up_seconds
        );
        state
            .store
            .insert_staff_audit(
                None,
                now,
                "wrap_up_expired",
                Some(&call.id.to_string()),
                None,
                Some(&details),
            )
            .await?;
        done.wrap_ups_expired += 1;
    }
    done.assigned = assign(state, now).await?;
    Ok(done)
}

/// Ends a live call with `event`: the relay closes both sides and finishes the
/// recording, which is stored with the call and shown as `recording_link`.
pub async fn end_call(
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
    crate::domain::status::next(request.sub_status, event)
        .map_err(|e| Error::from(MoveError::from(e)))?;
    let finished = super::nodes::finish(state, call).await?;
    let changes = Changes {
        recording_link: finished
            .as_ref()
            .map(|_| crate::domain::recording_links::reference(call.id)),
        ..Changes::default()
    };
    if let Some(f) = &finished {
        state.metrics.recording_kept(f.upload_failed);
    }
    let stored = finished.as_ref().map(|f| f.kept(state)).transpose()?;
    let moved = state
        .store
        .apply_journey(
            &request,
            &[event],
            actor,
            Some(&json!({ "call_id": call.id, "ended_by": by,
                          "recording_ms": finished.as_ref().map(|r| r.duration_ms) })),
            &changes,
            &[SideWrite::Call {
                call_id: call.id,
                update: CallUpdate::End {
                    state: call_state,
                    by,
                    recording: stored,
                    quality: finished.as_ref().and_then(|r| r.quality.clone()),
                },
            }],
        )
        .await
        .map_err(Error::from)?;
    // The row points at the kept copy: the clear or uploaded local files can go.
    if let Some(f) = &finished {
        super::nodes::remove_leftovers(state, call, f).await;
    }
    Ok(moved)
}

pub async fn on_media_event(state: &AppState, event: MediaEvent) -> Result<()> {
    let (call_id, side, lost) = match event {
        MediaEvent::Connected { call_id, side } => (call_id, side, None),
        MediaEvent::Disconnected { call_id, side } => (call_id, side, Some(crate::clock::now_ms())),
    };
    let Ok(call_id) = call_id.parse::<i64>() else {
        return Ok(());
    };
    state
        .store
        .set_media_lost(call_id, side == Side::Customer, lost)
        .await
}

/// Hands one side's SDP offer to the relay and returns its answer.
pub async fn offer(state: &AppState, call: &Call, side: Side, sdp: &str) -> Result<Value> {
    if call.state != "active" {
        return Err(conflict(
            "call_not_active",
            "the call has not started or is over.",
        ));
    }
    if sdp.len() > 20_000 {
        return Err(Error::invalid("sdp"));
    }
    let answer = super::nodes::join(state, call, side, sdp).await?;
    Ok(json!({ "type": "answer", "sdp": answer }))
}
