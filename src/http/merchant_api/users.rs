//! The merchant's users: `POST`, `GET` and `PATCH /user`.

use super::{random_token, Merchant};
use crate::auth::Caller;
use crate::domain::validate;
use crate::domain::validate::parse_id;
use crate::error::{Error, Result};
use crate::http::input::{JsonBody, Query};
use crate::state::AppState;
use crate::store::{NewUser, User};
use axum::extract::State;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct UserBody {
    user_id: String,
    user_reference_id: i64,
    phone: String,
    email: Option<String>,
    name: Option<String>,
    address: Option<String>,
}

impl From<User> for UserBody {
    fn from(u: User) -> UserBody {
        UserBody {
            user_id: u.user_id,
            user_reference_id: u.id,
            phone: u.phone,
            email: u.email,
            name: u.name,
            address: u.address,
        }
    }
}

pub(super) fn optional_text(body: &JsonBody, field: &str, max: usize) -> Result<Option<String>> {
    body.str(field)?
        .map(|v| validate::text(field, v, max))
        .transpose()
}

pub(super) fn optional_email(body: &JsonBody) -> Result<Option<String>> {
    body.str("email")?.map(validate::email).transpose()
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<UserBody>> {
    let user_id = match body.str("user_id")? {
        Some(id) => validate::merchant_id_field("user_id", id)?,
        None => format!("user_{}", random_token(8)),
    };
    let phone = validate::phone(body.str("phone")?.ok_or_else(|| Error::missing("phone"))?)?;
    let new = NewUser {
        user_id,
        phone,
        email: optional_email(&body)?,
        name: optional_text(&body, "name", 100)?,
        address: optional_text(&body, "address", 500)?,
    };
    let user = state
        .store
        .insert_user(caller.merchant_id, &new)
        .await?
        .ok_or_else(|| Error::conflict("user_id"))?;
    Ok(Json(user.into()))
}

/// The caller's user named by `user_reference_id` or `user_id` (the first wins when
/// both are given, and the second must then name the same user).
pub(super) async fn find_user(
    state: &AppState,
    caller: &Caller,
    reference: Option<&str>,
    user_id: Option<&str>,
) -> Result<User> {
    let by_ref = match reference {
        Some(text) => {
            let id = parse_id(text).ok_or_else(|| Error::invalid("user_reference_id"))?;
            let user = state
                .store
                .user_by_ref(caller.merchant_id, id)
                .await?
                .ok_or_else(|| Error::not_found("user_reference_id"))?;
            Some(user)
        }
        None => None,
    };
    match (by_ref, user_id) {
        (Some(user), Some(uid)) if user.user_id != uid => Err(Error::validation(
            "user_id_value_invalid",
            "user_id does not match user_reference_id.",
        )),
        (Some(user), _) => Ok(user),
        (None, Some(uid)) => {
            let uid = validate::merchant_id_field("user_id", uid)?;
            state
                .store
                .user_by_user_id(caller.merchant_id, &uid)
                .await?
                .ok_or_else(|| Error::not_found("user_id"))
        }
        (None, None) => Err(Error::missing("user_reference_id")),
    }
}

pub(super) async fn get_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    query: Query,
) -> Result<Json<UserBody>> {
    let user = find_user(
        &state,
        &caller,
        query.get("user_reference_id"),
        query.get("user_id"),
    )
    .await?;
    Ok(Json(user.into()))
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    Merchant(caller): Merchant,
    body: JsonBody,
) -> Result<Json<UserBody>> {
    if body.get("phone").is_some() {
        return Err(Error::validation(
            "phone_value_invalid",
            "phone cannot be updated.",
        ));
    }
    let reference = match body.get("user_reference_id") {
        Some(_) => Some(
            body.id("user_reference_id")?
                .unwrap_or_default()
                .to_string(),
        ),
        None => None,
    };
    let email = optional_email(&body)?;
    let name = optional_text(&body, "name", 100)?;
    let address = optional_text(&body, "address", 500)?;
    let mut user = find_user(&state, &caller, reference.as_deref(), body.str("user_id")?).await?;
    if email.is_none() && name.is_none() && address.is_none() {
        return Err(Error::validation(
            "request_body_invalid",
            "nothing to update: give email, name or address.",
        ));
    }
    user.email = email.or(user.email);
    user.name = name.or(user.name);
    user.address = address.or(user.address);
    state.store.update_user(&user).await?;
    Ok(Json(user.into()))
}
