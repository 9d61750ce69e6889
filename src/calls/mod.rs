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
