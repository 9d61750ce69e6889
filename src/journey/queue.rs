//! Waiting for an agent: the live queue, booked slots, and the WebSocket that tells a
//! waiting customer their position and expected wait.
//!
//! The queue lives in the database (`queue_entries`), so every `vkyc` process on one
//! PostgreSQL database sees the same queue. Each process reads it once per tick into a
//! [`QueueSnapshot`] and publishes that to its own sockets: one query per process per
//! tick, however many customers wait. Agents and assignment (the consoles) take waiting
//! customers from the same rows, scheduled ones first, then the oldest.

use super::{apply, describe, expect_step, open, Opened, Step};
use crate::app::AppState;
use crate::error::{Error, ErrorType, Result};
use crate::input::JsonBody;
use crate::status::{Actor, Event};
use crate::store::{Changes, MoveError, SideWrite};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The queue as one process last read it.
#[derive(Debug, Default, PartialEq)]
pub struct QueueSnapshot {
    /// 1-based position of each waiting request.
    pub positions: HashMap<i64, usize>,
    pub waiting: usize,
    pub agents_online: i64,
    /// Median length of recent calls (or the configured default before any).
    pub call_seconds: u64,
    pub open: bool,
}

impl QueueSnapshot {
    /// Expected wait at `position`: the calls ahead shared among the agents online.
    pub fn expected_wait_seconds(&self, position: usize) -> Option<u64> {
        if self.agents_online <= 0 {
            return None;
        }
        let agents = self.agents_online as u64;
        let rounds = (position as u64).div_ceil(agents);
        Some(rounds * self.call_seconds)
    }

    fn message(&self, request_id: i64) -> Option<Value> {
        let position = *self.positions.get(&request_id)?;
        Some(json!({
            "type": "queue",
            "position": position,
            "waiting": self.waiting,
            "agents_online": self.agents_online,
            "expected_wait_seconds": self.expected_wait_seconds(position),
            "open": self.open,
        }))
    }
}

/// Where a process publishes its latest snapshot to its sockets.
#[derive(Clone)]
pub struct QueueBoard {
    sender: Arc<watch::Sender<Arc<QueueSnapshot>>>,
}

impl Default for QueueBoard {
    fn default() -> QueueBoard {
        let (sender, _) = watch::channel(Arc::new(QueueSnapshot::default()));
        QueueBoard {
            sender: Arc::new(sender),
        }
    }
}

impl QueueBoard {
    pub fn subscribe(&self) -> watch::Receiver<Arc<QueueSnapshot>> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> Arc<QueueSnapshot> {
        self.sender.borrow().clone()
    }

    /// Wakes the sockets only when something they show has changed.
    fn publish(&self, snapshot: QueueSnapshot) {
        self.sender.send_if_modified(|current| {
            if **current == snapshot {
                return false;
            }
            *current = Arc::new(snapshot);
            true
        });
    }
}

/// Reads the queue and what the wait depends on.
pub async fn read_snapshot(state: &AppState, now: i64) -> Result<QueueSnapshot> {
    let waiting = state.store.queue_waiting().await?;
    let agents_online = agents_on_duty(state, now).await?;
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
        open: state.journey.hours.is_open(now),
    })
}

/// How often the board is read (and a socket whose customer it lacks looks again).
fn board_interval(state: &AppState) -> Duration {
    Duration::from_millis(state.config.journey.queue_interval_ms.max(50))
}

/// Reads the queue every `queue_interval_ms` and publishes it, until shut down.
pub async fn run_board(state: AppState, shutdown: CancellationToken) {
    let interval = board_interval(&state);
    loop {
        match read_snapshot(&state, crate::store::now_ms()).await {
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
            Err(err) => return Err(crate::merchant_api::move_error(err)),
        }
    }
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let nobody = agents_on_duty(state, now).await? == 0;
    if nobody || !state.journey.hours.is_open(now) {
        let patience = stale.max(1000);
        for request_id in state.store.queue_waiting().await? {
            let Some(request) = state.store.request_by_id(request_id).await? else {
                continue;
            };
            // Customers who came for a booked slot keep their place: their agent is due.
            if request.sub_status != crate::status::SubStatus::UserQueued {
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

fn conflict(code: &'static str, message: String) -> Error {
    Error::new(
        StatusCode::CONFLICT,
        ErrorType::ValidationError,
        code,
        message,
    )
}

/// `POST /v/<key>/api/queue`: joins the live queue (or, at a booked slot, the front of
/// it). With no agent online or the desk closed: NO_AGENT_FOUND, and slots are offered.
pub async fn join(State(state): State<AppState>, Path(key): Path<String>) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Waiting, Step::Scheduled])?;
    let now = crate::store::now_ms();
    let j = &state.config.journey;
    if opened.step == Step::Scheduled {
        let slot = opened.request.meeting_schedule.unwrap_or(now);
        let opens = slot - j.slot_early_minutes as i64 * 60_000;
        if now < opens {
            return Err(conflict(
                "slot_not_open",
                format!(
                    "your slot is at {}; you can join from {}.",
                    crate::slots::format_ist(slot),
                    crate::slots::format_ist(opens)
                ),
            ));
        }
        let evidence = json!({ "slot": crate::views::iso_seconds(slot), "arrived_at": crate::views::iso_millis(now) });
        apply(
            &state,
            &opened,
            &[Event::ScheduledArrived],
            evidence.clone(),
            &Changes::default(),
            vec![
                SideWrite::CloseStep {
                    step: "scheduled",
                    outcome: "SCHEDULED_USER_QUEUED",
                    evidence,
                },
                SideWrite::EndBooking { state: "arrived" },
                SideWrite::Enqueue { priority: 0 },
            ],
        )
        .await?;
        return answer(&state, &key).await;
    }
    let agents = agents_on_duty(&state, now).await?;
    let open_now = state.journey.hours.is_open(now);
    let evidence = json!({ "agents_online": agents, "working_hours": open_now });
    let (event, outcome, sides) = if agents > 0 && open_now {
        (
            Event::Queued,
            "USER_QUEUED",
            vec![SideWrite::Enqueue { priority: 1 }],
        )
    } else {
        (Event::NoAgentAvailable, "NO_AGENT_FOUND", vec![])
    };
    let mut all = vec![SideWrite::CloseStep {
        step: "waiting",
        outcome,
        evidence: evidence.clone(),
    }];
    all.extend(sides);
    apply(
        &state,
        &opened,
        &[event],
        evidence,
        &Changes::default(),
        all,
    )
    .await?;
    answer(&state, &key).await
}

async fn answer(state: &AppState, key: &str) -> Result<Json<Value>> {
    let opened = open(state, key).await?;
    Ok(Json(json!({
        "outcome": opened.request.sub_status.as_str(),
        "state": describe(state, &opened).await?,
    })))
}

/// Online agents who work now (the desk is open and so are their own hours).
pub async fn agents_on_duty(state: &AppState, now: i64) -> Result<i64> {
    let stale = state.config.agent_stale_seconds as i64 * 1000;
    let online = state.store.online_agents_with_hours(now, stale).await?;
    Ok(online
        .iter()
        .filter(|(_, hours)| crate::slots::on_duty(&state.journey.hours, hours.as_deref(), now))
        .count() as i64)
}

/// Seats a slot starting at `start` offers: the agents on the roster who work then,
/// times what each can take.
fn capacity_at(state: &AppState, roster: &[Option<String>], start: i64) -> i64 {
    let working = roster
        .iter()
        .filter(|hours| crate::slots::on_duty(&state.journey.hours, hours.as_deref(), start))
        .count() as i64;
    working * state.config.journey.slot_capacity_per_agent as i64
}

/// `GET /v/<key>/api/slots`: the free slots a customer may book.
pub async fn free_slots(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    let now = crate::store::now_ms();
    let until = bookable_until(&state, &opened, now);
    let starts = state.journey.hours.slots(now, until);
    let roster = state.store.agent_roster_hours().await?;
    let loads: HashMap<i64, i64> = state
        .store
        .slot_loads(now, until)
        .await?
        .into_iter()
        .collect();
    let slots: Vec<Value> = starts
        .iter()
        .filter_map(|&start| {
            let free =
                capacity_at(&state, &roster, start) - loads.get(&start).copied().unwrap_or(0);
            (free > 0).then(|| {
                json!({ "start": crate::views::iso_seconds(start),
                        "label": crate::slots::format_ist(start), "free": free })
            })
        })
        .collect();
    Ok(Json(json!({ "slots": slots })))
}

/// A slot must start before the link expires and within the booking horizon.
fn bookable_until(state: &AppState, opened: &Opened, now: i64) -> i64 {
    let horizon = now + state.config.journey.booking_days_ahead as i64 * 86_400_000;
    horizon.min(opened.request.link_expires_at)
}

/// `POST /v/<key>/api/slots` `{slot_start}`: books a slot (or moves the booking to
/// another slot: USER_MEETING_CANCELLED, then USER_MEETING_SCHEDULED).
pub async fn book(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let given = body
        .str("slot_start")?
        .ok_or_else(|| Error::missing("slot_start"))?;
    let slot = chrono::DateTime::parse_from_rfc3339(given)
        .map_err(|_| Error::invalid("slot_start"))?
        .timestamp_millis();
    // A seat taken by someone else at the same moment: read again and try once more.
    for attempt in 0..2 {
        let opened = open(&state, &key).await?;
        expect_step(&opened, &[Step::Waiting, Step::Queue, Step::Scheduled])?;
        let now = crate::store::now_ms();
        if slot <= now
            || slot >= bookable_until(&state, &opened, now)
            || !state.journey.hours.is_slot_start(slot)
        {
            return Err(Error::validation(
                "slot_start_value_invalid",
                "slot_start is not a free slot that can be booked.",
            ));
        }
        let mut events = vec![];
        let mut sides = vec![];
        match opened.step {
            Step::Scheduled => {
                events.push(Event::MeetingCancelled);
                sides.push(SideWrite::EndBooking { state: "cancelled" });
            }
            Step::Queue => {
                // Came for a booked slot and waiting: that meeting is given up first.
                if opened.request.sub_status == crate::status::SubStatus::ScheduledUserQueued {
                    events.push(Event::MeetingCancelled);
                }
                sides.push(SideWrite::LeaveQueue);
            }
            _ => {}
        }
        events.push(Event::MeetingScheduled);
        sides.push(SideWrite::Book {
            slot_start: slot,
            capacity: capacity_at(&state, &state.store.agent_roster_hours().await?, slot),
        });
        sides.push(SideWrite::Notify {
            kind: "slot_booked",
        });
        let evidence = json!({ "slot": crate::views::iso_seconds(slot) });
        sides.push(SideWrite::CloseStep {
            step: opened.step.as_str(),
            outcome: "USER_MEETING_SCHEDULED",
            evidence: evidence.clone(),
        });
        let changes = Changes {
            meeting_schedule: Some(Some(slot)),
            ..Changes::default()
        };
        let moved = state
            .store
            .apply_journey(
                &opened.request,
                &events,
                Actor::Customer,
                Some(&evidence),
                &changes,
                &sides,
            )
            .await;
        match moved {
            Ok(_) => return answer(&state, &key).await,
            Err(MoveError::Lost) if attempt == 0 => continue,
            Err(MoveError::Refused(code)) => {
                return Err(conflict(
                    code,
                    "that slot has just been taken; choose another.".into(),
                ))
            }
            Err(err) => return Err(crate::merchant_api::move_error(err)),
        }
    }
    Err(crate::merchant_api::move_error(MoveError::Lost))
}

/// `DELETE /v/<key>/api/slots`: cancels the booking (USER_MEETING_CANCELLED).
pub async fn cancel(State(state): State<AppState>, Path(key): Path<String>) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Scheduled])?;
    let evidence =
        json!({ "slot": opened.request.meeting_schedule.map(crate::views::iso_seconds) });
    let changes = Changes {
        meeting_schedule: Some(None),
        ..Changes::default()
    };
    apply(
        &state,
        &opened,
        &[Event::MeetingCancelled],
        evidence.clone(),
        &changes,
        vec![
            SideWrite::CloseStep {
                step: "scheduled",
                outcome: "USER_MEETING_CANCELLED",
                evidence,
            },
            SideWrite::EndBooking { state: "cancelled" },
            SideWrite::Notify {
                kind: "slot_cancelled",
            },
        ],
    )
    .await?;
    answer(&state, &key).await
}

/// `GET /v/<key>/ws`: pushes the customer's position and expected wait whenever the
/// queue changes, and the new status once they leave it.
pub async fn socket(
    State(state): State<AppState>,
    Path(key): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let opened = open(&state, &key).await?;
    let request_id = opened.request.id;
    // A small read buffer: customers send us nothing but close frames, and tungstenite's
    // default (128 KiB) is zero-filled on the first read, so it would be resident for
    // every waiting customer (measured: 133 KiB per socket with it, see BENCHMARKS.md).
    // Longer frames still arrive, only in more reads.
    Ok(upgrade
        .max_message_size(4096)
        .read_buffer_size(4096)
        .on_upgrade(move |socket| watch_queue(state, key, request_id, socket)))
}

async fn watch_queue(state: AppState, key: String, request_id: i64, mut socket: WebSocket) {
    let mut board = state.journey.board.subscribe();
    let interval = board_interval(&state);
    loop {
        let snapshot = board.borrow_and_update().clone();
        // Absent from the snapshot while still waiting, the request may leave the queue
        // (an agent assigned) before any snapshot shows it, and the board would then not
        // change: look again after a tick rather than only when the board changes.
        let listed = snapshot.message(request_id);
        let absent = listed.is_none();
        let message = match listed {
            Some(message) => message,
            None => {
                // Not in this snapshot: either just joined (the next read will show the
                // position) or no longer waiting (say where the journey is, then stop).
                let (status, waiting) = match open(&state, &key).await {
                    Ok(opened) => (
                        json!({ "type": "status", "step": opened.step.as_str(),
                                "sub_status": opened.request.sub_status.as_str() }),
                        opened.step == Step::Queue,
                    ),
                    Err(_) => (json!({ "type": "status", "step": "expired" }), false),
                };
                if !waiting {
                    let _ = socket.send(Message::Text(status.to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                status
            }
        };
        if socket
            .send(Message::Text(message.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            changed = board.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(interval), if absent => {}
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
