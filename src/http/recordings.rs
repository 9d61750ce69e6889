//! Call recordings as merchants and auditors reach them: `recording_link` is a signed
//! URL that expires, and playback serves the file with HTTP range requests.
//!
//! The request row stores `call:<id>`; the link is signed each time it is shown (in
//! `GET /vkyc` and in webhook events), so a link that leaked stops working on its own.

use crate::clock::now_ms;
use crate::error::{Error, ErrorType, Result};
use crate::state::AppState;
use crate::storage::StoredRecording;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
pub struct LinkQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

fn refused() -> Error {
    Error::new(
        StatusCode::FORBIDDEN,
        ErrorType::AuthenticationError,
        "recording_link_invalid",
        "this recording link is not valid or has expired.",
    )
}

/// `GET /recordings/<call id>.webm?expires=..&sig=..`: the recording, with range support.
pub async fn serve_link(
    State(state): State<AppState>,
    Path(file): Path<String>,
    query: std::result::Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<Response> {
    let Ok(Query(query)) = query else {
        return Err(refused());
    };
    let call_id = file
        .strip_suffix(".webm")
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or_else(refused)?;
    let (Some(expires), Some(sig)) = (query.expires, query.sig) else {
        return Err(refused());
    };
    if !state.signer.verify(call_id, expires, &sig, now_ms()) {
        return Err(refused());
    }
    let call = state.store.call(call_id).await?.ok_or_else(refused)?;
    let recording = state.store.stored_recording(&call)?.ok_or_else(refused)?;
    serve(&state, &recording, request).await
}

/// Serves a kept recording to `request` (GET or HEAD, with one byte range): a clear
/// local file as a file, anything else through [`crate::storage::reading`].
pub(crate) async fn serve(
    state: &AppState,
    recording: &StoredRecording,
    request: Request,
) -> Result<Response> {
    if recording.key.is_none() && !recording.location.starts_with("s3://") {
        let served = tower_http::services::ServeFile::new_with_mime(
            &recording.location,
            &"video/webm".parse().expect("a valid mime type"),
        )
        .oneshot(request)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("serving a recording: {e}")))?;
        return Ok(served.into_response());
    }
    let head = request.method() == axum::http::Method::HEAD;
    let range = request
        .headers()
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    drop(request);
    serve_ranges(state, recording, head, range.as_deref()).await
}

fn not_found() -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        ErrorType::ValidationError,
        "recording_not_found",
        "the recording is not in the recording store.",
    )
}

/// What a `Range` header asks of an object of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// No range (or one this server ignores, such as several ranges): the whole object.
    Whole,
    /// `start..end` (end exclusive), within the object.
    Part(u64, u64),
    /// A range the object cannot satisfy: 416.
    Unsatisfiable,
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range (RFC 9110 §14.1.2). A header
/// that does not parse, or asks for several ranges, is ignored, as the RFC allows.
fn wanted(header: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if len == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(len.saturating_sub(n), len),
        },
        (start, end) => {
            let Some(start) = number(start) else {
                return Wanted::Whole;
            };
            let end = match end {
                "" => None,
                end => match number(end) {
                    Some(end) if end >= start => Some(end),
                    _ => return Wanted::Whole,
                },
            };
            if start >= len {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(start, end.map_or(len, |e| (e + 1).min(len)))
            }
        }
    }
}

/// Playback through [`crate::storage::reading`]: HEAD and GET, with one byte range.
async fn serve_ranges(
    state: &AppState,
    recording: &StoredRecording,
    head: bool,
    range: Option<&str>,
) -> Result<Response> {
    use axum::http::header;
    let opened = recording
        .open(&state.config.media)
        .await
        .map_err(Error::internal)?
        .ok_or_else(not_found)?;
    let len = opened.len;
    let (status, start, end) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        Wanted::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [
                    (header::CONTENT_RANGE, format!("bytes */{len}")),
                    (header::ACCEPT_RANGES, "bytes".to_string()),
                ],
            )
                .into_response())
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "video/webm")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, end - start);
    if let Some(modified) = opened.modified {
        response = response.header(
            header::LAST_MODIFIED,
            modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        );
    }
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    let body = if head || start == end {
        axum::body::Body::empty()
    } else {
        let stream = opened.stream(start..end).await.map_err(Error::internal)?;
        let call = recording.location.clone();
        axum::body::Body::from_stream(stream.inspect(move |piece| {
            if let Err(e) = piece {
                // A sealed chunk that does not open: the player sees the body cut short.
                tracing::error!(recording = %call, error = %e, "reading a recording failed");
            }
        }))
    };
    response
        .body(body)
        .map_err(|e| Error::internal(anyhow::anyhow!("building a recording response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        use Wanted::*;
        let w = |h: &str| wanted(Some(h), 4000);
        assert_eq!(wanted(None, 4000), Whole);
        assert_eq!(w("bytes=100-199"), Part(100, 200));
        assert_eq!(w("bytes=100-"), Part(100, 4000));
        assert_eq!(w("bytes=3990-9999"), Part(3990, 4000));
        assert_eq!(w("bytes=-500"), Part(3500, 4000));
        assert_eq!(w("bytes=-9999"), Part(0, 4000));
        assert_eq!(w("bytes=4000-"), Unsatisfiable);
        assert_eq!(w("bytes=4000-4001"), Unsatisfiable);
        assert_eq!(w("bytes=-0"), Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-5"), 0), Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(w(ignored), Whole, "{ignored}");
        }
    }
}
