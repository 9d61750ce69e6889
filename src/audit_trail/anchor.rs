//! The daily anchor: the heads of the chains that moved since the last anchor, digested
//! together with that anchor's digest and signed with the deployment's anchor key (an
//! Ed25519 key sealed under the master key, a sibling of the case export key). The
//! anchor goes to the log and, with `[audit] anchor_dir`, is appended to
//! `<anchor_dir>/anchors.jsonl`; kept where the server cannot rewrite it, it shows any
//! later rewrite of a chain, even one that recomputed every hash.

use crate::case_export::signing::ExportSigner;
use crate::store::{AnchorRow, Store};
use base64::Engine;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An anchor a day.
pub const ANCHOR_EVERY_MS: i64 = 24 * 3600 * 1000;

/// The file in `anchor_dir` that anchors are appended to.
pub fn anchor_file(dir: &Path) -> PathBuf {
    dir.join("anchors.jsonl")
}

/// Takes an anchor now. `None` when another process took the same anchor at once.
pub async fn anchor_now(
    store: &Store,
    signer: &ExportSigner,
    anchor_dir: Option<&Path>,
    now: i64,
) -> anyhow::Result<Option<AnchorRow>> {
    let sign =
        |message: &[u8]| base64::engine::general_purpose::STANDARD.encode(signer.sign(message));
    let Some(anchor) = store.write_anchor(now, &signer.public_pem(), &sign).await? else {
        return Ok(None);
    };
    // No personal data in an anchor: digests, counts and a public key.
    tracing::info!(
        anchor = anchor.id,
        at = anchor.at,
        chains = anchor.chains,
        prev_digest = %anchor.prev_digest,
        digest = %anchor.digest,
        signature = %anchor.signature,
        "audit trail anchored"
    );
    if let Some(dir) = anchor_dir {
        append(dir, &anchor).map_err(|e| {
            anyhow::anyhow!(
                "anchor {} is in the database and the log, but appending it to {} failed: {e}",
                anchor.id,
                anchor_file(dir).display()
            )
        })?;
    }
    Ok(Some(anchor))
}

/// The worker's single step: takes an anchor when the last one is a day old (or there is
/// none). Returns the anchor taken, if any.
pub async fn anchor_if_due(
    store: &Store,
    signer: &ExportSigner,
    anchor_dir: Option<&Path>,
    now: i64,
) -> anyhow::Result<Option<AnchorRow>> {
    if let Some(last) = store.last_anchor().await? {
        if now - last.at < ANCHOR_EVERY_MS {
            return Ok(None);
        }
    }
    anchor_now(store, signer, anchor_dir, now).await
}

/// Appends one JSON line and waits until it is on disk. Only ever appends: the file can
/// live on storage that refuses anything else.
fn append(dir: &Path, anchor: &AnchorRow) -> std::io::Result<()> {
    if !dir.exists() {
        crate::files::private_dir(dir)?;
    }
    let mut file = crate::files::private_options()
        .append(true)
        .create(true)
        .open(anchor_file(dir))?;
    let mut line = serde_json::to_string(anchor).map_err(std::io::Error::other)?;
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()
}
