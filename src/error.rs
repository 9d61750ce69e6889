//! The one error type of the crate. Every non-2xx answer of the merchant API is
//! `{"type", "code", "message"}`; client errors carry stable codes, internal errors are
//! logged with their cause and answered with the opaque 500 of the reference.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;

/// The `type` field of an error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    ValidationError,
    AuthenticationError,
    RateLimitError,
    InternalError,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An answer the client caused and can act on.
    #[error("{status} {code}: {message}")]
    Api {
        status: StatusCode,
        kind: ErrorType,
        code: Cow<'static, str>,
        message: Cow<'static, str>,
        retry_after: Option<u64>,
    },
    /// Something went wrong on our side; the client sees only "something went wrong".
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(
        status: StatusCode,
        kind: ErrorType,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Error {
        Error::Api {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same answer with `Retry-After: seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Error {
        if let Error::Api { retry_after, .. } = &mut self {
            *retry_after = Some(seconds);
        }
        self
    }

    /// 400 `validation_error`.
    pub fn validation(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Error {
        Error::new(
            StatusCode::BAD_REQUEST,
            ErrorType::ValidationError,
            code,
            message,
        )
    }

    /// 400 `<field>_missing`, "<field> is missing in the request."
    pub fn missing(field: &str) -> Error {
        Error::validation(
            format!("{field}_missing"),
            format!("{field} is missing in the request."),
        )
    }

    /// 400 `<field>_value_invalid`, "<field> value is invalid."
    pub fn invalid(field: &str) -> Error {
        Error::validation(
            format!("{field}_value_invalid"),
            format!("{field} value is invalid."),
        )
    }

    /// 404 `<field>_not_found`, "<field> does not exist."
    pub fn not_found(field: &str) -> Error {
        Error::new(
            StatusCode::NOT_FOUND,
            ErrorType::ValidationError,
            format!("{field}_not_found"),
            format!("{field} does not exist."),
        )
    }

    /// 409 for a repeated unique id: "verification id already exists".
    pub fn conflict(field: &str) -> Error {
        Error::new(
            StatusCode::CONFLICT,
            ErrorType::ValidationError,
            format!("{field}_already_exists"),
            format!("{} already exists", field.replace('_', " ")),
        )
    }

    pub fn unauthorized() -> Error {
        Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "authentication_failed",
            "Invalid clientId and clientSecret combination",
        )
    }

    /// 401 for a desk login that failed for any reason: unknown user, wrong password or
    /// one-time code, locked or disabled account. One answer, so none can be told apart.
    pub fn login_failed() -> Error {
        Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "login_failed",
            "username, password or one-time code is incorrect.",
        )
    }

    /// 401 when the password was right and the account needs a one-time code too.
    pub fn otp_required() -> Error {
        Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "otp_required",
            "a one-time code is required.",
        )
    }

    /// 401 for a desk call without a valid desk session (merchant credentials do not count).
    pub fn desk_session_required() -> Error {
        Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "session_required",
            "sign in to the desk first.",
        )
    }

    /// 403 for a desk call whose `x-csrf-token` is missing or not the session's.
    pub fn csrf_invalid() -> Error {
        Error::new(
            StatusCode::FORBIDDEN,
            ErrorType::AuthenticationError,
            "csrf_token_invalid",
            "x-csrf-token is missing or does not match the session.",
        )
    }

    /// 403 for a desk call the staff member's role does not allow.
    pub fn role_forbidden() -> Error {
        Error::new(
            StatusCode::FORBIDDEN,
            ErrorType::AuthenticationError,
            "role_forbidden",
            "your role does not allow this action.",
        )
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Error {
        Error::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Api { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::Internal(_) => "verification_failed",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: ErrorType,
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Api {
                status,
                kind,
                code,
                message,
                retry_after,
            } => {
                let mut response = (
                    status,
                    axum::Json(Body {
                        kind,
                        code: &code,
                        message: &message,
                    }),
                )
                    .into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Error::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(Body {
                        kind: ErrorType::InternalError,
                        code: "verification_failed",
                        message: "something went wrong",
                    }),
                )
                    .into_response()
            }
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Error {
        Error::Internal(err.into())
    }
}
