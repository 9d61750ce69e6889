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
use crate::storage::{FileKey, Opened, Place, StoredRecording};
use crate::store::Role;
use anyhow::Context;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter};
use std::path::{Path as FsPath, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

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
    let recording = state
        .store
        .stored_recording(&call)?
        .ok_or_else(no_recording)?;
    let path = side_copy(&state, call_id, &recording, side).await?;
    // A side of a sealed recording is kept sealed under the recording's key.
    let copy = StoredRecording {
        location: path.display().to_string(),
        key: recording.key.clone(),
    };
    crate::http::recordings::serve(&state, &copy, request).await
}

/// The side's copy of the recording, made now if it is not yet.
async fn side_copy(
    state: &AppState,
    call_id: i64,
    recording: &StoredRecording,
    side: Side,
) -> Result<PathBuf> {
    let stored = recording.location.as_str();
    let source = recording
        .open(&state.config.media)
        .await
        .map_err(Error::internal)?
        .ok_or_else(no_recording)?;
    let len = source.len;
    let key = recording.key.clone();
    // The name carries a digest of where the recording is and its size: a recording
    // moved (uploaded) or replaced never serves an older copy.
    let digest = Sha256::digest(format!("{stored}\n{len}"));
    let dir = crate::storage::recordings_dir(&state.config).join("sides");
    let name = format!(
        "{call_id}-{}-{}{}.webm",
        side.name(),
        &hex::encode(digest)[..16],
        if key.is_some() { ".sealed" } else { "" }
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
        let made = make(&source, key, &download, &partial, &target, side).await;
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

/// Copies the side into `partial`, then renames it to `path` (sealing it under `key`
/// when there is one); a recording in the bucket, or sealed, is first streamed in clear
/// to `download` (private, removed by the caller).
async fn make(
    source: &Opened,
    key: Option<FileKey>,
    download: &FsPath,
    partial: &FsPath,
    path: &FsPath,
    side: Side,
) -> anyhow::Result<crate::media::sides::SideCopy> {
    let input = match source.place() {
        Place::Local(file) if !source.is_sealed() => file.clone(),
        _ => {
            let mut out = tokio::fs::File::from_std(
                crate::files::private_options()
                    .write(true)
                    .create_new(true)
                    .open(download)?,
            );
            let mut chunks = source.stream(0..source.len).await?;
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
            match &key {
                Some(key) => {
                    crate::storage::sealing::seal_file(key, &partial, &path)?;
                }
                None => std::fs::rename(&partial, &path)?,
            }
        }
        Ok(copy)
    })
    .await?
}

/// The instant of media time 0 in the recording (its DateUTC; Unix ms): both side
/// files keep the recording's timestamps, so a player's `currentTime` t shows the
/// moment `started + t`. None (and logged) when the recording cannot be read.
pub async fn recording_start(state: &AppState, recording: &StoredRecording) -> Option<i64> {
    let head = async {
        let opened = recording
            .open(&state.config.media)
            .await?
            .context("the recording is gone")?;
        let bytes = opened.read_all(0..opened.len.min(HEADER_BYTES)).await?;
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
