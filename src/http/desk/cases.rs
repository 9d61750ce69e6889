//! Case search and the case file for admins and auditors, under `/desk/api/cases`:
//! search by ids, customer, status, agent and date, a page at a time; the case file; its
//! stills; and its export as one signed ZIP. Opening and exporting a case are written to
//! the staff audit (who looked at whose personal data).

use super::case_file::{self, Purpose};
use super::{audit, ClientAddr, StaffSession};
use crate::case_export::{self, signing::ExportSigner, Entry, Source};
use crate::domain::status::{Status, SubStatus};
use crate::error::{Error, Result};
use crate::http::input::Query;
use crate::state::AppState;
use crate::store::{CaseFilter, Cursor, Request, Role};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases", get(search))
        .route("/cases/signing-key.pem", get(signing_key))
        .route("/cases/{id}", get(case))
        .route("/cases/{id}/export", get(export))
        .route("/cases/{id}/captures/{capture}", get(capture))
}

const ROLES: &[Role] = &[Role::Admin, Role::Auditor];
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
const KEYS: &[&str] = &[
    "verification_id",
    "reference_id",
    "user_id",
    "phone",
    "name",
    "status",
    "sub_status",
    "agent",
    "from",
    "to",
    "limit",
    "cursor",
];

/// India Standard Time, in which a bare date of the search is read.
fn ist() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("a valid offset")
}

/// A date (`2026-12-01`, the whole IST day) or an instant (RFC 3339): the first and the
/// last millisecond it covers.
fn read_time(field: &str, text: &str) -> Result<(i64, i64)> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = date
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(ist()).single())
            .ok_or_else(|| Error::invalid(field))?
            .timestamp_millis();
        return Ok((start, start + 86_400_000 - 1));
    }
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| Error::invalid(field))?
        .timestamp_millis();
    Ok((at, at))
}

/// `<created_at>.<id>`, as `next_cursor` gives it.
fn read_cursor(text: &str) -> Option<Cursor> {
    let (at, id) = text.split_once('.')?;
    let at = at.parse::<i64>().ok().filter(|v| *v >= 0)?;
    Some((at, crate::domain::validate::parse_id(id)?))
}

/// The search the query string describes. Empty fields count as absent (a form sends
/// every field). Unknown keys and malformed values are refused, naming the field.
async fn read_filter(
    state: &AppState,
    query: &Query,
) -> Result<(CaseFilter, Option<Cursor>, i64, Vec<&'static str>)> {
    for key in query.0.keys() {
        if !KEYS.contains(&key.as_str()) {
            let plain = key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            return Err(if plain {
                Error::validation(
                    format!("{key}_unknown"),
                    format!("{key} is not a search field."),
                )
            } else {
                Error::validation("request_query_invalid", "the query string is invalid.")
            });
        }
    }
    let get = |key: &str| query.get(key).map(str::trim).filter(|v| !v.is_empty());
    let text = |key: &str, max: usize| -> Result<Option<String>> {
        match get(key) {
            Some(v) if v.chars().count() > max => Err(Error::invalid(key)),
            other => Ok(other.map(str::to_string)),
        }
    };
    let mut used = Vec::new();
    let mut filter = CaseFilter {
        verification_id: text("verification_id", 200)?,
        user_id: text("user_id", 200)?,
        name: text("name", 200)?,
        ..CaseFilter::default()
    };
    if let Some(v) = get("reference_id") {
        filter.reference_id = Some(
            crate::domain::validate::parse_id(v).ok_or_else(|| Error::invalid("reference_id"))?,
        );
    }
    if let Some(v) = get("phone") {
        let compact: String = v.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        filter.phone = Some(crate::domain::validate::phone(&compact)?);
    }
    if let Some(v) = get("status") {
        filter.status = Some(
            Status::parse(v)
                .ok_or_else(|| Error::invalid("status"))?
                .as_str(),
        );
    }
    if let Some(v) = get("sub_status") {
        filter.sub_status = Some(
            SubStatus::parse(v)
                .ok_or_else(|| Error::invalid("sub_status"))?
                .as_str(),
        );
    }
    if let Some(v) = get("agent") {
        let staff = state.store.staff_by_username(v).await?.ok_or_else(|| {
            Error::validation("agent_not_found", "no staff member has this username.")
        })?;
        filter.agent_id = Some(staff.id);
    }
    if let Some(v) = get("from") {
        filter.from = Some(read_time("from", v)?.0);
    }
    if let Some(v) = get("to") {
        filter.until = Some(read_time("to", v)?.1 + 1);
    }
    if let (Some(from), Some(until)) = (filter.from, filter.until) {
        if from >= until {
            return Err(Error::validation(
                "date_range_invalid",
                "from must be before to.",
            ));
        }
    }
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Error::invalid("limit"))?,
    };
    let cursor = match get("cursor") {
        None => None,
        Some(v) => Some(read_cursor(v).ok_or_else(|| Error::invalid("cursor"))?),
    };
    for key in KEYS {
        if !matches!(*key, "limit" | "cursor") && get(key).is_some() {
            used.push(*key);
        }
    }
    Ok((filter, cursor, limit, used))
}

/// `GET /desk/api/cases?…`: a page of matching cases, newest first, and the cursor of the
/// next page (`null` on the last).
async fn search(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    query: Query,
) -> Result<Json<Value>> {
    session.require(ROLES)?;
    let (filter, cursor, limit, used) = read_filter(&state, &query).await?;
    // One more than asked tells whether another page follows.
    let mut rows = state.store.search_cases(&filter, cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten();
    let cases: Vec<Value> = rows
        .iter()
        .map(|r| {
            let sub = SubStatus::parse(&r.sub_status);
            json!({ "reference_id": r.id, "verification_id": r.verification_id,
                    "user_id": r.user_id, "name": r.name, "phone": r.phone,
                    "status": sub.map(|s| s.status().as_str()), "sub_status": r.sub_status,
                    "created_at": crate::domain::views::iso_millis(r.created_at),
                    "agent": r.agent })
        })
        .collect();
    // What was searched by, not the values: the search terms are personal data.
    audit(
        &state,
        Some(session.staff_id),
        "case_search",
        None,
        ip,
        Some(&used.join(",")),
    )
    .await?;
    Ok(Json(json!({ "cases": cases, "next_cursor": next })))
}

/// A path id: anything but a positive number names nothing, as an unknown number does.
fn path_id(id: &str, what: &str) -> Result<i64> {
    crate::domain::validate::parse_id(id).ok_or_else(|| Error::not_found(what))
}

/// The case `id` names (404 `case_not_found` when none), for admins and auditors only.
async fn the_case(state: &AppState, session: &StaffSession, id: &str) -> Result<Request> {
    session.require(ROLES)?;
    state
        .store
        .request_by_id(path_id(id, "case")?)
        .await?
        .ok_or_else(|| Error::not_found("case"))
}

/// `GET /desk/api/cases/<reference id>`: the case file.
async fn case(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let request = the_case(&state, &session, &id).await?;
    let (view, _) = case_file::build(&state, &request, Purpose::Desk).await?;
    audit(
        &state,
        Some(session.staff_id),
        "case_viewed",
        Some(&request.verification_id),
        ip,
        Some(&format!("reference_id {}", request.id)),
    )
    .await?;
    Ok(Json(view))
}

/// `GET /desk/api/cases/<reference id>/captures/<capture id>`: a still of one of the
/// case's calls.
async fn capture(
    State(state): State<AppState>,
    session: StaffSession,
    Path((id, capture)): Path<(String, String)>,
) -> Result<Response> {
    let request = the_case(&state, &session, &id).await?;
    let (call_id, bytes) = state
        .store
        .capture_image(path_id(&capture, "capture")?)
        .await?
        .ok_or_else(|| Error::not_found("capture"))?;
    let call = state
        .store
        .call(call_id)
        .await?
        .ok_or_else(|| Error::not_found("capture"))?;
    if call.request_id != request.id {
        return Err(Error::not_found("capture"));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /desk/api/cases/signing-key.pem`: the public key exports are signed with, for
/// anyone to check an export against (it reveals nothing).
async fn signing_key(State(state): State<AppState>) -> Result<Response> {
    let signer = ExportSigner::load_or_create(&state.store, &state.key)
        .await
        .map_err(Error::internal)?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        signer.public_pem(),
    )
        .into_response())
}

/// `GET /desk/api/cases/<reference id>/export`: the case as one signed ZIP.
async fn export(
    State(state): State<AppState>,
    session: StaffSession,
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Response> {
    let request = the_case(&state, &session, &id).await?;
    let (mut view, media) = case_file::build(&state, &request, Purpose::Export).await?;
    let signer = ExportSigner::load_or_create(&state.store, &state.key)
        .await
        .map_err(Error::internal)?;

    let mut entries = Vec::new();
    for (capture_id, file) in &media.captures {
        if let Some((_, image)) = state.store.capture_image(*capture_id).await? {
            entries.push(Entry {
                name: file.clone(),
                source: Source::Bytes(image),
            });
        }
    }
    if let Some((photo, file)) = media.aadhaar_photo {
        entries.push(Entry {
            name: file,
            source: Source::Bytes(photo),
        });
    }
    let mut missing = Vec::new();
    for (file, stored) in &media.recordings {
        let source = if stored.location.starts_with("s3://")
            || std::path::Path::new(&stored.location).is_file()
        {
            Source::Recording(stored.clone())
        } else {
            // Said in the case file rather than failing the whole export.
            missing.push(file.clone());
            continue;
        };
        entries.push(Entry {
            name: file.clone(),
            source,
        });
    }
    view["recordings_missing"] = json!(missing);
    let case_json =
        serde_json::to_vec_pretty(&view).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
    entries.insert(
        0,
        Entry {
            name: "case.json".into(),
            source: Source::Bytes(case_json),
        },
    );
    let now = crate::clock::now_ms();
    let head = json!({
        "verification_id": request.verification_id,
        "reference_id": request.id,
        "exported_at": crate::domain::views::iso_millis(now),
        "exported_by": session.username,
    });

    // Written to a private file first (bounded memory, and a Content-Length), then sent
    // from the open file, whose name is gone from the directory once it is open.
    let dir = state.config.data_dir.join("exports");
    crate::files::private_dir(&dir).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
    let path = dir.join(format!("{}.zip", super::random_hex(16)));
    let out = crate::files::private_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::internal(anyhow::anyhow!("creating {}: {e}", path.display())))?;
    let media_settings = state.config.media.clone();
    let runtime = tokio::runtime::Handle::current();
    let written = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let result = case_export::write(out, entries, head, &signer, &media_settings, &runtime);
            if result.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            result
        })
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!(e)))?
    };
    written.map_err(Error::internal)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
    let _ = tokio::fs::remove_file(&path).await;
    let len = file
        .metadata()
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!(e)))?
        .len();

    audit(
        &state,
        Some(session.staff_id),
        "case_exported",
        Some(&request.verification_id),
        ip,
        Some(&format!("reference_id {}", request.id)),
    )
    .await?;
    let safe: String = request
        .verification_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"case-{safe}.zip\""),
            ),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        Body::from_stream(file_chunks(file)),
    )
        .into_response())
}

/// The file's bytes, 64 KiB at a time.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<axum::body::Bytes>> {
    futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
