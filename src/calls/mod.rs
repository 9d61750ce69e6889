//! The video call: an agent is assigned from the queue, the customer accepts (or not),
//! both browsers connect to our media relay, the agent runs the checks, the call ends or
//! drops, the agent decides, and an auditor reviews.
//!
//! Every status change goes through the status machine with the call row beside it in
//! one transaction. Timers (unanswered invitations, lost media) live in the database
//! and are acted on by [`sweep`], one testable step, so any process may act on them.
//!
//! This module holds what happens to a call; the routes that drive it are in
//! `http::journey::call` (the customer), `http::desk::agent` and `http::desk::auditor`,
//! and the loop that runs the sweep is `workers::calls`.

pub mod assign;
pub mod lifecycle;
pub mod nodes;
pub mod photo;

use crate::error::{Error, ErrorType};
use axum::http::StatusCode;

pub use assign::{assign, questions};
pub use lifecycle::{end_call, offer, on_media_event, sweep, CallSweep};

pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(
        StatusCode::CONFLICT,
        ErrorType::ValidationError,
        code,
        message.into(),
    )
}

pub fn not_found() -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        ErrorType::ValidationError,
        "call_not_found",
        "there is no such call for you.",
    )
}

/// The ICE servers one side's browser is given for a call: TURN with credentials minted
/// for this call and side, or none (the relay's own UDP and TCP candidates suffice).
pub fn ice_servers(
    state: &crate::state::AppState,
    call: &crate::store::Call,
    side: crate::media::Side,
) -> serde_json::Value {
    let subject = format!("vkyc-call-{}-{}", call.id, side.name());
    crate::media::turn::ice_servers(&state.config.media, &subject, crate::clock::now_ms() / 1000)
}

/// Both sides' connection quality: live from the relay while the call is on, else
/// the summary kept with the call (null when there is none).
pub async fn quality(
    state: &crate::state::AppState,
    call: &crate::store::Call,
) -> serde_json::Value {
    if call.state == "active" {
        if let Some(q) = nodes::quality(state, call).await {
            return q;
        }
    }
    call.quality
        .as_deref()
        .and_then(|q| serde_json::from_str(q).ok())
        .unwrap_or_default()
}
