//! `POST /oauth/token`: an access token for the journey embedded in a merchant's page,
//! bound to one request and its user.

use super::{iso_ist, random_token, Merchant};
use crate::domain::status::{self};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::http::input::JsonBody;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn create_token(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<Value>> {
    let app_id = body
        .str("app_id")?
        .ok_or_else(|| Error::missing("app_id"))?;
    if app_id != caller.client_id {
        return Err(Error::validation(
            "app_id_value_invalid",
            "app_id must be the client id of the caller.",
        ));
    }
    match body.str("product")? {
        None => return Err(Error::missing("product")),
        Some("VKYC") => {}
        Some(_) => return Err(Error::invalid("product")),
    }
    let metadata = body
        .get("metadata")
        .ok_or_else(|| Error::missing("metadata"))?;
    let request_ref = metadata
        .as_object()
        .ok_or_else(|| Error::invalid("metadata"))?
        .get("vkyc_request_id")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::missing("vkyc_request_id"))?;
    // vkyc_request_id is the reference_id; a merchant's verification_id is accepted too.
    let request = match crate::domain::validate::positive_id(request_ref) {
        Some(id) => state.store.request_by_ref(caller.merchant_id, id).await?,
        None => match request_ref.as_str() {
            Some(vid) if validate::merchant_id_field("verification_id", vid).is_ok() => {
                state
                    .store
                    .request_by_verification_id(caller.merchant_id, vid)
                    .await?
            }
            _ => return Err(Error::invalid("vkyc_request_id")),
        },
    }
    .ok_or_else(|| Error::not_found("vkyc_request_id"))?;

    let user_body = body
        .get("authenticated_user")
        .ok_or_else(|| Error::missing("authenticated_user"))?
        .as_object()
        .ok_or_else(|| Error::invalid("authenticated_user"))?;
    let kind = user_body
        .get("identifier_type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("identifier_type"))?
        .to_ascii_lowercase();
    let value = user_body
        .get("identifier_value")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("identifier_value"))?;
    let user = state
        .store
        .user_by_ref(caller.merchant_id, request.user_ref)
        .await?
        .ok_or_else(|| Error::not_found("user_reference_id"))?;
    let matches = match kind.as_str() {
        "phone" | "mobile" => validate::phone(value).ok().as_deref() == Some(user.phone.as_str()),
        "email" => {
            user.email.as_deref().map(str::to_ascii_lowercase) == Some(value.to_ascii_lowercase())
        }
        "user_id" => user.user_id == value,
        _ => return Err(Error::invalid("identifier_type")),
    };
    if !matches {
        return Err(Error::validation(
            "authenticated_user_value_invalid",
            "authenticated_user does not match the user of the Video KYC request.",
        ));
    }
    let now = crate::clock::now_ms();
    if request.sub_status.status() == status::Status::Expired || request.link_expires_at <= now {
        return Err(Error::validation(
            "vkyc_request_id_value_invalid",
            "the Video KYC link has expired.",
        ));
    }
    let token = random_token(32);
    let expires_at =
        (now + state.config.token_ttl_seconds as i64 * 1000).min(request.link_expires_at);
    state
        .store
        .insert_access_token(&crate::auth::secret_digest(&token), request.id, expires_at)
        .await?;
    Ok(Json(
        json!({ "access_token": token, "expiry": iso_ist(expires_at) }),
    ))
}
