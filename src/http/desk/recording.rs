//! Each side of a call recording as a WebM of its own, for auditors and admins:
//! `GET /desk/api/calls/{id}/recording/{customer|agent}.webm`, with range requests.
//!
//! A browser plays only a file's first video track, so the agent's camera in a
//! recording is never seen there. The side files ([`crate::media::sides`]) are made on
//! the first request and kept under `<recordings_dir>/sides/` (0700, files 0600): a
//! recording never changes once its call has ended, and a copy reads all of it, so it
//! is done once. At most two copies are made at a time, each reading and writing
//! through small buffers (one cluster of media in memory), so a burst of requests for
//! long recordings bounds memory and CPU.

use super::StaffSession;
use crate::error::{Error, ErrorType, Result};
use crate::media::Side;
use crate::state::AppState;
use crate::storage::{RecordingStore, S3Store};
use crate::store::Role;
use anyhow::Context;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter};
use std::path::{Path as FsPath, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Side copies being made at once (each keeps one core busy while it runs).
static MAKING: Semaphore = Semaphore::const_new(2);
/// Bytes of the recording read for its start time (the header is about 2 KB).
const HEADER_BYTES: u64 = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/calls/{id}/recording/{file}", get(side_file))
}

/// The case view's links to a call's two side files.
pub fn side_links(call_id: i64) -> Value {
    let link = |side: &str| format!("/desk/api/calls/{call_id}/recording/{side}.webm");
    json!({ "customer": link("customer"), "agent": link("agent") })
}

fn not_found(code: &'static str, message: &'static str) -> Error {
    Error::new(
        StatusCode::NOT_FOUND,
        ErrorType::ValidationError,
        code,
        message,
    )
}

fn no_recording() -> Error {
    not_found("recording_not_found", "this call has no recording.")
}

async fn side_file(
    State(state): State<AppState>,
    session: StaffSession,
    Path((id, file)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    session.require(&[Role::Auditor, Role::Admin])?;
    let side = match file.as_str() {
        "customer.webm" => Side::Customer,
        "agent.webm" => Side::Agent,
        _ => {
            return Err(not_found(
                "recording_side_not_found",
                "a recording has two sides: customer.webm and agent.webm.",
            ))
        }
    };
    let call_id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(crate::calls::not_found)?;
    let call = state
        .store
        .call(call_id)
        .await?
        .ok_or_else(crate::calls::not_found)?;
    let source = call.recording_path.ok_or_else(no_recording)?;
    let path = side_copy(&state, call_id, &source, side).await?;
    let served = tower_http::services::ServeFile::new_with_mime(
        path,
        &"video/webm".parse().expect("a valid mime type"),
    )
    .oneshot(request)
    .await
    .map_err(|e| Error::internal(anyhow::anyhow!("serving a recording side: {e}")))?;
    Ok(served.into_response())
}

/// A recording as the call row names it: a local file, or an object in the bucket.
enum Source {
    Local(PathBuf),
    Object(std::sync::Arc<S3Store>, object_store::path::Path),
}

impl Source {
    fn of(state: &AppState, stored: &str) -> Result<Source> {
        if !stored.starts_with("s3://") {
            return Ok(Source::Local(PathBuf::from(stored)));
        }
        let store = match RecordingStore::cached(&state.config.media).map_err(Error::internal)? {
            RecordingStore::S3(store) => store,
            RecordingStore::Local => {
                return Err(Error::internal(anyhow::anyhow!(
                    "call recording {stored} is in a bucket, but no recordings_store is configured"
                )))
            }
        };
        let key = store.key_of(stored).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "call recording {stored} is outside the configured bucket"
            ))
        })?;
        Ok(Source::Object(store, key))
    }

    /// The recording's size; Ok(None) when it is gone.
    async fn len(&self) -> anyhow::Result<Option<u64>> {
        match self {
            Source::Local(path) => match tokio::fs::metadata(path).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => {
                    Err(anyhow::Error::from(e).context(format!("reading {}", path.display())))
                }
            },
            Source::Object(store, key) => Ok(store.head(key).await?.map(|m| m.size)),
        }
    }
}

/// The side's copy of the recording, made now if it is not yet.
async fn side_copy(state: &AppState, call_id: i64, stored: &str, side: Side) -> Result<PathBuf> {
    let source = Source::of(state, stored)?;
    let len = source
        .len()
        .await
        .map_err(Error::internal)?
        .ok_or_else(no_recording)?;
    // The name carries a digest of where the recording is and its size: a recording
    // moved (uploaded) or replaced never serves an older copy.
    let digest = Sha256::digest(format!("{stored}\n{len}"));
    let dir = crate::storage::recordings_dir(&state.config).join("sides");
    let name = format!(
        "{call_id}-{}-{}.webm",
        side.name(),
        &hex::encode(digest)[..16]
    );
    let path = dir.join(&name);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(path);
    }
    let permit = MAKING
        .acquire()
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("side copies: {e}")))?;
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(path); // made by the request that held the permit before us
    }
    crate::files::private_dir(&dir)
        .map_err(|e| Error::internal(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let unique = super::random_hex(8);
    let partial = dir.join(format!(".{name}.{unique}.part"));
    let download = dir.join(format!(".{call_id}.{unique}.download"));
    // A task of its own: a player that hangs up (they often do, to ask for a range)
    // neither leaves a half download behind nor frees the permit while the copy runs.
    let target = path.clone();
    let made = tokio::spawn(async move {
        let made = make(&source, &download, &partial, &target, side).await;
        for leftover in [&partial, &download] {
            let _ = tokio::fs::remove_file(leftover).await;
        }
        drop(permit);
        made
    })
    .await
    .map_err(|e| Error::internal(anyhow::anyhow!("making a recording side: {e}")))?;
    let copy = made.map_err(|e| {
        Error::internal(e.context(format!("making the {} side of call {call_id}", side.name())))
    })?;
    tracing::info!(
        call_id,
        side = side.name(),
        video_frames = copy.video_frames,
        audio_frames = copy.audio_frames,
        truncated = copy.truncated,
        "recording side made"
    );
    if copy.video_frames == 0 {
        return Err(not_found(
            "recording_side_empty",
            "this side's camera sent no video in this call.",
        ));
    }
    Ok(path)
}

/// Copies the side into `partial`, then renames it to `path`; a recording in the
/// bucket is first streamed to `download`.
async fn make(
    source: &Source,
    download: &FsPath,
    partial: &FsPath,
    path: &FsPath,
    side: Side,
) -> anyhow::Result<crate::media::sides::SideCopy> {
    let input = match source {
        Source::Local(file) => file.clone(),
        Source::Object(store, key) => {
            let len = store
                .head(key)
                .await?
                .context("the recording is gone")?
                .size;
            let mut out = tokio::fs::File::from_std(
                crate::files::private_options()
                    .write(true)
                    .create_new(true)
                    .open(download)?,
            );
            let mut chunks = store.read(key, 0..len).await?.into_stream();
            while let Some(chunk) = chunks.next().await {
                out.write_all(&chunk?).await?;
            }
            out.flush().await?;
            download.to_path_buf()
        }
    };
    let (partial, path) = (partial.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let reader = BufReader::new(
            std::fs::File::open(&input).with_context(|| format!("opening {}", input.display()))?,
        );
        let out = crate::files::private_options()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        let (out, copy) = crate::media::sides::copy_side(reader, BufWriter::new(out), side)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        // A side without a picture is not kept: there is nothing to watch.
        if copy.video_frames > 0 {
            std::fs::rename(&partial, &path)?;
        }
        Ok(copy)
    })
    .await?
}

/// The instant of media time 0 in the recording (its DateUTC; Unix ms): both side
/// files keep the recording's timestamps, so a player's `currentTime` t shows the
/// moment `started + t`. None (and logged) when the recording cannot be read.
pub async fn recording_start(state: &AppState, stored: &str) -> Option<i64> {
    let head = async {
        let bytes = match Source::of(state, stored).map_err(|e| anyhow::anyhow!("{e}"))? {
            Source::Local(path) => {
                use tokio::io::AsyncReadExt;
                let mut buf = Vec::new();
                tokio::fs::File::open(&path)
                    .await?
                    .take(HEADER_BYTES)
                    .read_to_end(&mut buf)
                    .await?;
                buf
            }
            Source::Object(store, key) => {
                let len = store
                    .head(&key)
                    .await?
                    .context("the recording is gone")?
                    .size;
                store
                    .read(&key, 0..len.min(HEADER_BYTES))
                    .await?
                    .bytes()
                    .await?
                    .to_vec()
            }
        };
        let reader = crate::media::webm_read::WebmReader::open(std::io::Cursor::new(bytes))?;
        reader
            .header()
            .date_utc_ms
            .context("the recording has no DateUTC")
    };
    match head.await {
        Ok(ms) => Some(ms),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "reading a recording's start time");
            None
        }
    }
}
