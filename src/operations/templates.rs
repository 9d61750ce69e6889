//! Templates as the API, the desk and the command line use them: a name resolved to its
//! newest version when a request is made, the version a request was made under read back
//! later, imports that add versions.
//!
//! A built-in template is kept as version 1 of its name the first time it is needed
//! (resolved, shown or imported over), so its text in this binary and the version a
//! request recorded can never drift apart: a later binary with a changed built-in adds
//! no version on its own; importing the changed text does.

use crate::domain::templates::{self, AgentTemplate, Kind, UserTemplate};
use crate::error::{Error, Result};
use crate::store::{Request, Store, TemplateRow};

/// Stores the built-in of this name as version 1, when it is one and none is stored.
async fn ensure_built_in(store: &Store, kind: Kind, name: &str) -> Result<()> {
    if let Some((name, body)) = templates::built_in(kind, name) {
        if store.template_latest(kind.as_str(), &name).await?.is_none() {
            store
                .add_template_version(kind.as_str(), &name, &body, "vkyc (built in)")
                .await?;
        }
    }
    Ok(())
}

/// The newest version of the template `name` (or the kind's default when None), as a
/// request records it; `<field>_value_invalid` when there is no such template.
pub async fn resolve(store: &Store, kind: Kind, name: Option<&str>) -> Result<(String, i64)> {
    let name = name.unwrap_or(kind.default_name());
    if let Some(version) = store.template_newest_version(kind.as_str(), name).await? {
        return Ok((name.to_string(), version));
    }
    ensure_built_in(store, kind, name).await?;
    match store.template_latest(kind.as_str(), name).await? {
        Some(row) => Ok((row.name, row.version)),
        None => Err(Error::invalid(kind.field())),
    }
}

/// The version of a template a request was made under. A request from before templates
/// (no version recorded) ran under the built-in default's first version.
pub async fn of_request(store: &Store, kind: Kind, request: &Request) -> Result<TemplateRow> {
    let (name, version) = match kind {
        Kind::User => (&request.user_template, request.user_template_version),
        Kind::Agent => (&request.agent_template, request.agent_template_version),
    };
    let (name, version) = match (name, version) {
        (Some(name), Some(version)) => (name.clone(), version),
        _ => (kind.default_name().to_string(), 1),
    };
    if let Some(row) = store
        .template_version(kind.as_str(), &name, version)
        .await?
    {
        return Ok(row);
    }
    ensure_built_in(store, kind, &name).await?;
    store
        .template_version(kind.as_str(), &name, version)
        .await?
        .ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "request {} names {} template {name} version {version}, which is not stored",
                request.id,
                kind.as_str()
            ))
        })
}

/// A stored version's body as the template it describes.
fn body_of<T: serde::de::DeserializeOwned>(row: TemplateRow) -> Result<(TemplateRow, T)> {
    let template = serde_json::from_str(&row.body).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "{} template {} version {} does not read: {e}",
            row.kind,
            row.name,
            row.version
        ))
    })?;
    Ok((row, template))
}

/// The agent's checklist for a request.
pub async fn agent_template(
    store: &Store,
    request: &Request,
) -> Result<(TemplateRow, AgentTemplate)> {
    body_of(of_request(store, Kind::Agent, request).await?)
}

/// The customer's journey for a request.
pub async fn user_template(
    store: &Store,
    request: &Request,
) -> Result<(TemplateRow, UserTemplate)> {
    body_of(of_request(store, Kind::User, request).await?)
}

/// The name the customer sees for a request: its user template's `display_name`, else
/// the merchant's name.
pub async fn display_name(store: &Store, request: &Request) -> Result<String> {
    let (_, template) = user_template(store, request).await?;
    display_name_under(store, request, &template).await
}

/// [`display_name`] with the request's user template already read.
pub async fn display_name_under(
    store: &Store,
    request: &Request,
    template: &UserTemplate,
) -> Result<String> {
    if !template.display_name.is_empty() {
        return Ok(template.display_name.clone());
    }
    store.merchant_name(request.merchant_id).await
}

/// Imports a template from TOML or JSON: checked, then kept as its name's next version
/// (nothing is added when it equals the newest). Answers (name, version, added).
pub async fn import(
    store: &Store,
    kind: Kind,
    text: &str,
    json: bool,
    by: &str,
) -> anyhow::Result<(String, i64, bool)> {
    let (name, body) = templates::parse(kind, text, json)
        .map_err(|e| anyhow::anyhow!("the {} template is not valid: {e}", kind.as_str()))?;
    if let Some(e) = unknown_references(store, kind, &body).await? {
        anyhow::bail!("the {} template is not valid: {e}", kind.as_str());
    }
    ensure_built_in(store, kind, &name).await?;
    let (version, added) = store
        .add_template_version(kind.as_str(), &name, &body, by)
        .await?;
    Ok((name, version, added))
}

/// Every template: the stored ones' newest versions, and the built-ins not stored yet
/// (as version 1, which they become when first used).
pub async fn list(store: &Store) -> Result<Vec<TemplateRow>> {
    let mut rows = store.templates().await?;
    for (kind, text) in templates::BUILT_IN {
        let (name, body) = templates::parse(kind, text, false).expect("built-ins parse");
        if !rows
            .iter()
            .any(|r| r.kind == kind.as_str() && r.name == name)
        {
            rows.push(TemplateRow {
                kind: kind.as_str().into(),
                name,
                version: 1,
                body,
                created_at: 0,
                created_by: "vkyc (built in)".into(),
            });
        }
    }
    rows.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    Ok(rows)
}

/// One template: its newest version, or the one asked for.
pub async fn show(
    store: &Store,
    kind: Kind,
    name: &str,
    version: Option<i64>,
) -> Result<Option<TemplateRow>> {
    ensure_built_in(store, kind, name).await?;
    match version {
        Some(v) => store.template_version(kind.as_str(), name, v).await,
        None => store.template_latest(kind.as_str(), name).await,
    }
}

/// The personal-details form a customer filled, as the agent and the auditor read it:
/// each answer with its field's label, in the form's order (null when none was filled).
pub async fn personal_details_view(store: &Store, request: &Request) -> Result<serde_json::Value> {
    let Some(text) = store.personal_details(request.id).await? else {
        return Ok(serde_json::Value::Null);
    };
    let given: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text).unwrap_or_default();
    let (_, template) = user_template(store, request).await?;
    let label = |name: &str| {
        template
            .personal_details
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.label.clone())
            .unwrap_or_else(|| name.replace('_', " "))
    };
    let mut order: Vec<&String> = given.keys().collect();
    order.sort_by_key(|k| {
        template
            .personal_details
            .iter()
            .position(|f| &&f.name == k)
            .unwrap_or(usize::MAX)
    });
    Ok(serde_json::Value::Array(
        order
            .into_iter()
            .map(|k| serde_json::json!({ "name": k, "label": label(k), "value": given[k] }))
            .collect(),
    ))
}

/// What a checked template (canonical JSON) names that this server does not hold: a user
/// template's logo must have been uploaded. None when everything is there.
pub async fn unknown_references(store: &Store, kind: Kind, body: &str) -> Result<Option<String>> {
    if kind != Kind::User {
        return Ok(None);
    }
    let template: UserTemplate = serde_json::from_str(body).map_err(Error::internal)?;
    if template.logo.is_empty() || store.logo_png(&template.logo).await?.is_some() {
        return Ok(None);
    }
    Ok(Some(
        "logo: no uploaded logo has this id (upload the picture first: `vkyc template logo FILE` or the admin console)"
            .into(),
    ))
}

/// Re-encodes an uploaded picture and keeps it as a logo.
pub async fn upload_logo(
    store: &Store,
    bytes: &[u8],
    by: &str,
) -> Result<std::result::Result<crate::domain::logo::Logo, crate::domain::logo::LogoError>> {
    let bytes = bytes.to_vec();
    // Decoding is CPU work: off the I/O threads.
    let logo = tokio::task::spawn_blocking(move || crate::domain::logo::reencode(&bytes))
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("decoding the logo failed: {e}")))?;
    if let Ok(logo) = &logo {
        store.add_logo(logo, by).await?;
    }
    Ok(logo)
}
