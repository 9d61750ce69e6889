//! The queue's two loops: the board (reads the queue every `queue_interval_ms` and
//! publishes it to the sockets) and the sweep (missed slots, walk-ins with no agent,
//! slot reminders), each with a single step that tests call directly.

use crate::clock::now_ms;
use crate::domain::queue::QueueSnapshot;
use crate::domain::status::{Actor, Event};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{Changes, MoveError, SideWrite};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Reads the queue and what the wait depends on.
pub async fn read_snapshot(state: &AppState, now: i64) -> Result<QueueSnapshot> {
    let waiting = state.store.queue_waiting().await?;
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    let agents_online = agents_on_duty_in(state, &desk, now).await?;
    let mut calls = state.store.recent_call_seconds(50).await?;
    let call_seconds = if calls.is_empty() {
        state.config.journey.default_call_seconds
    } else {
        calls.sort_unstable();
        calls[calls.len() / 2].max(1) as u64
    };
    Ok(QueueSnapshot {
        positions: waiting
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i + 1))
            .collect(),
        waiting: waiting.len(),
        agents_online,
        call_seconds,
        open: desk.is_open(now),
    })
}

/// How often the board is read (and a socket whose customer it lacks looks again).
pub fn board_interval(state: &AppState) -> Duration {
    Duration::from_millis(state.config.journey.queue_interval_ms.max(50))
}

/// Reads the queue every `queue_interval_ms` and publishes it, until shut down.
pub async fn run_board(state: AppState, shutdown: CancellationToken) {
    let interval = board_interval(&state);
    loop {
        match read_snapshot(&state, now_ms()).await {
            Ok(snapshot) => state.journey.board.publish(snapshot),
            Err(err) => tracing::warn!(error = %err, "reading the queue failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub missed: usize,
    pub no_agent: usize,
    pub reminders: usize,
}

/// One pass of the queue's worker: booked slots nobody came to become
/// USER_MISSED_MEETING; walk-ins waiting while no agent is online (or the desk has
/// closed) get NO_AGENT_FOUND and the offer of a slot; due reminders are queued.
pub async fn sweep(state: &AppState, now: i64) -> Result<Sweep> {
    let j = &state.config.journey;
    let mut done = Sweep::default();
    let grace = j.slot_grace_minutes as i64 * 60_000;
    for request_id in state.store.missed_bookings(now - grace, 500).await? {
        let Some(request) = state.store.request_by_id(request_id).await? else {
            continue;
        };
        let moved = state
            .store
            .apply_journey(
                &request,
                &[Event::MeetingMissed],
                Actor::System,
                Some(&json!({ "reason": "the customer did not come within the grace period" })),
                &Changes::default(),
                &[SideWrite::EndBooking { state: "missed" }],
            )
            .await;
        match moved {
            Ok(_) => done.missed += 1,
            // Moved meanwhile (the customer arrived, cancelled, or the link expired):
            // the booking is not missed, or no longer matters.
            Err(MoveError::Illegal(_)) => {
                state.store.end_booking(request.id, "missed").await?;
            }
            Err(MoveError::Lost) => {}
            Err(err) => return Err(Error::from(err)),
        }
    }
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    let nobody = agents_on_duty_in(state, &desk, now).await? == 0;
    if nobody || !desk.is_open(now) {
        let patience = stale.max(1000);
        for request_id in state.store.queue_waiting().await? {
            let Some(request) = state.store.request_by_id(request_id).await? else {
                continue;
            };
            // Customers who came for a booked slot keep their place: their agent is due.
            if request.sub_status != crate::domain::status::SubStatus::UserQueued {
                continue;
            }
            let since = state
                .store
                .steps(request.id)
                .await?
                .iter()
                .rev()
                .find(|s| s.step == "waiting")
                .and_then(|s| s.ended_at)
                .unwrap_or(0);
            if now - since < patience {
                continue;
            }
            let moved = state
                .store
                .apply_journey(
                    &request,
                    &[Event::NoAgentAvailable],
                    Actor::System,
                    Some(&json!({ "reason": if nobody { "no agent online" } else { "outside working hours" } })),
                    &Changes::default(),
                    &[SideWrite::LeaveQueue],
                )
                .await;
            if moved.is_ok() {
                done.no_agent += 1;
            }
        }
    }
    let lead = j.slot_reminder_minutes as i64 * 60_000;
    done.reminders = state.store.queue_reminders(now, now + lead).await?;
    Ok(done)
}

/// Online agents who work now (the desk is open and so are their own hours).
pub async fn agents_on_duty(state: &AppState, now: i64) -> Result<i64> {
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    agents_on_duty_in(state, &desk, now).await
}

/// [`agents_on_duty`] with the desk's hours already read.
pub async fn agents_on_duty_in(
    state: &AppState,
    desk: &crate::domain::slots::Hours,
    now: i64,
) -> Result<i64> {
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let online = state.store.online_agents_with_hours(now, stale).await?;
    Ok(online
        .iter()
        .filter(|(_, hours)| crate::domain::slots::on_duty(desk, hours.as_deref(), now))
        .count() as i64)
}

/// Runs the queue's sweep ([`sweep`]) every few seconds.
pub async fn run_sweep(state: AppState, shutdown: CancellationToken) {
    super::repeat(Duration::from_secs(2), shutdown, || async {
        match sweep(&state, now_ms()).await {
            Ok(done) if done == Default::default() => {}
            Ok(done) => tracing::info!(?done, "queue sweep"),
            Err(err) => tracing::warn!(error = %err, "queue sweep failed; retrying"),
        }
    })
    .await
}
