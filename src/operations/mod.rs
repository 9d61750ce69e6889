//! What an administrator does, in one place for both ways of doing it: the `vkyc` command
//! line and the desk's admin console call these same functions, so the checks, the
//! changes and the staff audit rows are the same whichever was used.
//!
//! Each operation checks its input first and changes nothing on a refusal; refusals are
//! [`Error`]s with a clear message (the console answers them as they are, the command
//! line prints the message).

pub mod calendar;
pub mod cases;
pub mod master_key;
pub mod merchants;
pub mod questions;
pub mod staff;
pub mod templates;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::Store;
use axum::http::StatusCode;
use std::borrow::Cow;

/// Who acts: the operator's command line (no staff id, no address) or a signed-in admin.
#[derive(Debug, Clone)]
pub enum Actor {
    Cli,
    Admin { staff_id: i64, ip: String },
}

impl Actor {
    /// Appends the action's staff audit row. The command line's rows say so in their
    /// details, as they always have.
    pub async fn audit(
        &self,
        store: &Store,
        action: &str,
        target: &str,
        details: Option<&str>,
    ) -> Result<()> {
        let (staff_id, ip, details) = match self {
            Actor::Cli => (
                None,
                None,
                Some(match details {
                    Some(d) => format!("vkyc cli: {d}"),
                    None => "vkyc cli".to_string(),
                }),
            ),
            Actor::Admin { staff_id, ip } => (
                Some(*staff_id),
                Some(ip.as_str()),
                details.map(String::from),
            ),
        };
        store
            .insert_staff_audit(
                staff_id,
                now_ms(),
                action,
                Some(target),
                ip,
                details.as_deref(),
            )
            .await
    }

    pub fn staff_id(&self) -> Option<i64> {
        match self {
            Actor::Cli => None,
            Actor::Admin { staff_id, .. } => Some(*staff_id),
        }
    }
}

/// 400: the input is wrong.
pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Error {
    Error::validation(code, message)
}

/// 409: the input is fine but the thing is not in a state that allows it.
pub fn refused(code: &'static str, message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(
        StatusCode::CONFLICT,
        crate::error::ErrorType::ValidationError,
        code,
        message,
    )
}

/// 404: no such staff member, merchant or client id.
pub fn missing(code: &'static str, message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        crate::error::ErrorType::ValidationError,
        code,
        message,
    )
}

/// What the command line prints for an error: the message alone.
pub fn for_cli(err: Error) -> anyhow::Error {
    match err {
        Error::Api { message, .. } => anyhow::anyhow!("{message}"),
        Error::Internal(err) => err,
    }
}
