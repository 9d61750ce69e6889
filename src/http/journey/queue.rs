//! Waiting for an agent: the live queue, booked slots, and the WebSocket that tells a
//! waiting customer their position and expected wait.
//!
//! The queue lives in the database (`queue_entries`), so every `vkyc` process on one
//! PostgreSQL database sees the same queue. Each process reads it once per tick into a
//! [`QueueSnapshot`] and publishes that to its own sockets: one query per process per
//! tick, however many customers wait. Agents and assignment (the consoles) take waiting
//! customers from the same rows, scheduled ones first, then the oldest.

use super::{apply, describe, expect_step, open, Opened, Step};
use crate::domain::slots::Hours;
use crate::domain::status::{Actor, Event};
use crate::error::{Error, ErrorType, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use crate::store::{Changes, MoveError, SideWrite};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

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
    let now = crate::clock::now_ms();
    let j = &state.config.journey;
    if opened.step == Step::Scheduled {
        let slot = opened.request.meeting_schedule.unwrap_or(now);
        let opens = slot - j.slot_early_minutes as i64 * 60_000;
        if now < opens {
            return Err(conflict(
                "slot_not_open",
                format!(
                    "your slot is at {}; you can join from {}.",
                    crate::domain::slots::format_ist(slot),
                    crate::domain::slots::format_ist(opens)
                ),
            ));
        }
        let evidence = json!({ "slot": crate::domain::views::iso_seconds(slot), "arrived_at": crate::domain::views::iso_millis(now) });
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
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    let agents = crate::workers::queue::agents_on_duty_in(&state, &desk, now).await?;
    let open_now = desk.is_open(now);
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

/// Seats a slot starting at `start` offers: the agents on the roster who work then,
/// times what each can take.
fn capacity_at(state: &AppState, desk: &Hours, roster: &[Option<String>], start: i64) -> i64 {
    let working = roster
        .iter()
        .filter(|hours| crate::domain::slots::on_duty(desk, hours.as_deref(), start))
        .count() as i64;
    working * state.config.journey.slot_capacity_per_agent as i64
}

/// `GET /v/<key>/api/slots`: the free slots a customer may book.
pub async fn free_slots(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    let now = crate::clock::now_ms();
    let until = bookable_until(&state, &opened, now);
    let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
    let starts = desk.slots(now, until);
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
            let free = capacity_at(&state, &desk, &roster, start)
                - loads.get(&start).copied().unwrap_or(0);
            (free > 0).then(|| {
                json!({ "start": crate::domain::views::iso_seconds(start),
                        "label": crate::domain::slots::format_ist(start), "free": free })
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
        let now = crate::clock::now_ms();
        let desk = crate::operations::calendar::desk_hours(&state.store, &state.config).await?;
        if slot <= now || slot >= bookable_until(&state, &opened, now) || !desk.is_slot_start(slot)
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
                if opened.request.sub_status
                    == crate::domain::status::SubStatus::ScheduledUserQueued
                {
                    events.push(Event::MeetingCancelled);
                }
                sides.push(SideWrite::LeaveQueue);
            }
            _ => {}
        }
        events.push(Event::MeetingScheduled);
        sides.push(SideWrite::Book {
            slot_start: slot,
            capacity: capacity_at(
                &state,
                &desk,
                &state.store.agent_roster_hours().await?,
                slot,
            ),
        });
        sides.push(SideWrite::Notify {
            kind: "slot_booked",
        });
        let evidence = json!({ "slot": crate::domain::views::iso_seconds(slot) });
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
            Err(err) => return Err(Error::from(err)),
        }
    }
    Err(Error::from(MoveError::Lost))
}

/// `DELETE /v/<key>/api/slots`: cancels the booking (USER_MEETING_CANCELLED).
pub async fn cancel(State(state): State<AppState>, Path(key): Path<String>) -> Result<Json<Value>> {
    let opened = open(&state, &key).await?;
    expect_step(&opened, &[Step::Scheduled])?;
    let evidence =
        json!({ "slot": opened.request.meeting_schedule.map(crate::domain::views::iso_seconds) });
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
    // A page needs one socket (two for a moment on a reload): one link holds no more.
    let slot = state
        .journey
        .board
        .take_socket(request_id, SOCKETS_PER_LINK)
        .ok_or_else(|| {
            Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::RateLimitError,
                "too_many_sockets",
                "this link already has its queue open elsewhere; close it there first.",
            )
        })?;
    // A small read buffer: customers send us nothing but close frames, and tungstenite's
    // default (128 KiB) is zero-filled on the first read, so it would be resident for
    // every waiting customer (measured: 133 KiB per socket with it, see BENCHMARKS.md).
    // Longer frames still arrive, only in more reads.
    Ok(upgrade
        .max_message_size(4096)
        .read_buffer_size(4096)
        .on_upgrade(move |socket| async move {
            watch_queue(state, key, request_id, socket).await;
            drop(slot);
        }))
}

/// Queue sockets one link may hold open at once.
pub const SOCKETS_PER_LINK: usize = 3;

async fn watch_queue(state: AppState, key: String, request_id: i64, mut socket: WebSocket) {
    let mut board = state.journey.board.subscribe();
    let interval = crate::workers::queue::board_interval(&state);
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
