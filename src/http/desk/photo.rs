//! `GET /desk/api/photos/<reference id>`: the Aadhaar photo of a case (see
//! `calls::photo`), for the agent of one of its calls, auditors and admins.

use super::agent::path_id;
use super::StaffSession;
use crate::calls::not_found;
use crate::error::{Error, ErrorType, Result};
use crate::state::AppState;
use crate::store::Role;
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/photos/{id}", get(photo))
}

async fn photo(
    State(state): State<AppState>,
    session: StaffSession,
    Path(id): Path<String>,
) -> Result<Response> {
    session.require(&[Role::Agent, Role::Auditor, Role::Admin])?;
    let request = state
        .store
        .request_by_id(path_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    if session.role == Role::Agent {
        let calls = state.store.calls_for_request(request.id).await?;
        if !calls.iter().any(|c| c.agent_id == session.staff_id) {
            return Err(not_found());
        }
    }
    let photo = crate::calls::photo::aadhaar_photo(&state, &request)
        .await?
        .ok_or_else(|| {
            Error::new(
                StatusCode::NOT_FOUND,
                ErrorType::ValidationError,
                "photo_not_found",
                "this case has no Aadhaar photo to show.",
            )
        })?;
    // The desk's API answers are never cached (see `no_store`); the page keeps the image
    // while it shows the same case.
    Ok(([(header::CONTENT_TYPE, photo.content_type)], photo.bytes).into_response())
}
