//! The admin console's templates (docs/templates.md): the list, one version as TOML, and
//! an import that adds the name's next version.

use super::admin::{required, Admin};
use crate::domain::templates::Kind;
use crate::error::{Error, Result};
use crate::http::input::{JsonBody, Query};
use crate::operations::templates;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/templates", get(list))
        .route("/admin/templates/{kind}", post(import))
        .route("/admin/templates/{kind}/{name}", get(show))
        .route("/admin/logos", post(upload_logo))
}

fn kind(text: &str) -> Result<Kind> {
    Kind::parse(text).ok_or_else(not_found)
}

fn not_found() -> Error {
    crate::operations::missing("template_not_found", "no such template")
}

fn description(body: &str) -> Value {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b.get("description").cloned())
        .unwrap_or(Value::Null)
}

/// Every template's newest version.
async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>> {
    let rows = templates::list(&state.store).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|t| {
            json!({ "kind": t.kind, "name": t.name, "version": t.version,
                    "description": description(&t.body), "created_by": t.created_by,
                    "created_at": (t.created_at > 0).then(|| crate::domain::views::iso_millis(t.created_at)) })
        })
        .collect();
    Ok(Json(json!({ "templates": items })))
}

/// One template: its newest version, or `?version=N`; as JSON and as TOML.
async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    Path((k, name)): Path<(String, String)>,
    query: Query,
) -> Result<Json<Value>> {
    let kind = kind(&k)?;
    if !crate::domain::templates::valid_name(&name) {
        return Err(not_found());
    }
    let version = match query.get("version") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Error::invalid("version"))?,
        ),
    };
    let row = templates::show(&state.store, kind, &name, version)
        .await?
        .ok_or_else(not_found)?;
    let body: Value = serde_json::from_str(&row.body).map_err(Error::internal)?;
    let toml = toml::to_string_pretty(&body).map_err(Error::internal)?;
    Ok(Json(
        json!({ "kind": row.kind, "name": row.name, "version": row.version,
                    "body": body, "toml": toml }),
    ))
}

/// `{"text": "...", "format": "toml"|"json"}`: the template, checked, as its name's next
/// version (nothing added when it equals the newest).
async fn import(
    State(state): State<AppState>,
    admin: Admin,
    Path(k): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>> {
    let kind = kind(&k)?;
    let text = required(&body, "text")?;
    let json = match body.str("format")?.unwrap_or("toml") {
        "toml" => false,
        "json" => true,
        _ => return Err(Error::invalid("format")),
    };
    // Checked first, so that what is wrong with the text is the caller's 400.
    let invalid = |e: String| {
        Error::validation(
            "template_value_invalid",
            format!("the template is not valid: {e}."),
        )
    };
    let (_, canonical) = crate::domain::templates::parse(kind, text, json).map_err(invalid)?;
    if let Some(e) = templates::unknown_references(&state.store, kind, &canonical).await? {
        return Err(invalid(e));
    }
    let by = format!("admin {}", admin.session.username);
    let (name, version, added) = templates::import(&state.store, kind, text, json, &by)
        .await
        .map_err(Error::internal)?;
    if added {
        admin
            .actor
            .audit(
                &state.store,
                "template_imported",
                &format!("{} {name} {version}", kind.as_str()),
                None,
            )
            .await?;
    }
    Ok(Json(
        json!({ "kind": kind.as_str(), "name": name, "version": version, "added": added }),
    ))
}

/// `POST /desk/api/admin/logos`, the picture (PNG or JPEG, up to 1 MiB) as the body: kept
/// re-encoded as a PNG; answers its id, for a user template's `logo`.
async fn upload_logo(
    State(state): State<AppState>,
    admin: Admin,
    body: axum::body::Body,
) -> Result<Json<Value>> {
    use crate::domain::logo::{LogoError, MAX_UPLOAD_BYTES};
    use crate::error::ErrorType;
    use axum::http::StatusCode;
    let too_large = || {
        Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::ValidationError,
            "logo_too_large",
            LogoError::TooLarge.to_string(),
        )
    };
    let bytes =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_UPLOAD_BYTES))
            .await
            .map_err(|_| too_large())?
            .to_bytes();
    if bytes.is_empty() {
        return Err(Error::missing("logo"));
    }
    let by = format!("admin {}", admin.session.username);
    let logo = match templates::upload_logo(&state.store, &bytes, &by).await? {
        Ok(logo) => logo,
        Err(LogoError::TooLarge) => return Err(too_large()),
        Err(e) => return Err(Error::validation("logo_value_invalid", e.to_string())),
    };
    admin
        .actor
        .audit(&state.store, "logo_uploaded", &logo.id, None)
        .await?;
    Ok(Json(json!({
        "id": logo.id, "width": logo.width, "height": logo.height,
        "url": format!("/brand/{}.png", logo.id),
    })))
}
