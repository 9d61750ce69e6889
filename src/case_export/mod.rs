//! A case exported for a regulator: one ZIP holding the case file (`case.json`), the
//! stills, the Aadhaar photo, the call recordings, `public_key.pem`, a `manifest.json`
//! listing every file with its SHA-256 and size, and `manifest.sig`, the deployment's
//! Ed25519 signature of the manifest's bytes.
//!
//! The ZIP is written to a private file and sent from there: a recording is copied into
//! it in chunks (from disk or from the bucket), never held in memory whole.

pub mod signing;

use crate::config::MediaSettings;
use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use signing::ExportSigner;
use std::io::{Read, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public_key.pem";
pub const FORMAT: &str = "vkyc-case-export/1";

/// Where a file of the export comes from.
#[derive(Debug)]
pub enum Source {
    Bytes(Vec<u8>),
    /// A kept recording (local or in the bucket, in clear or sealed): its plain WebM.
    Recording(crate::storage::StoredRecording),
}

#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub source: Source,
}

/// How to check an export, shipped inside it.
const README: &str = "\
This archive is a case exported from a vkyc deployment.

manifest.json lists every other file with its SHA-256 and size; manifest.sig is the
deployment's Ed25519 signature of manifest.json's exact bytes; public_key.pem is the
deployment's public key (compare it with the one the deployment publishes at
/desk/api/cases/signing-key.pem).

Check it with OpenSSL 3 and coreutils, in the unpacked directory:

  openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.sig
  sha256sum <file>     # and compare with manifest.json

or with `vkyc export verify <zip>`.
";

/// Copies `reader` into the open ZIP entry; answers (SHA-256 hex, bytes).
fn copy_hashing(
    reader: &mut impl Read,
    zip: &mut ZipWriter<std::fs::File>,
) -> anyhow::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        zip.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

fn options_for(name: &str) -> SimpleFileOptions {
    // Stills and recordings are compressed already: stored as they are.
    let method = if name.ends_with(".jpg") || name.ends_with(".webm") {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    };
    SimpleFileOptions::default()
        .compression_method(method)
        .unix_permissions(0o600)
        .large_file(true)
}

/// Writes the export to `out`. `head` is the manifest's description of the case (its
/// ids, when and by whom it was exported). Blocking: run it off the async threads; the
/// bucket is read through `runtime`.
pub fn write(
    out: std::fs::File,
    entries: Vec<Entry>,
    head: Value,
    signer: &ExportSigner,
    media: &MediaSettings,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let mut zip = ZipWriter::new(out);
    let mut files = Vec::new();
    let public_pem = signer.public_pem();
    let fixed = [
        Entry {
            name: "README.txt".into(),
            source: Source::Bytes(README.as_bytes().to_vec()),
        },
        Entry {
            name: PUBLIC_KEY.into(),
            source: Source::Bytes(public_pem.into_bytes()),
        },
    ];
    for entry in entries.into_iter().chain(fixed) {
        zip.start_file(&entry.name, options_for(&entry.name))?;
        let (sha256, bytes) = match entry.source {
            Source::Bytes(bytes) => copy_hashing(&mut bytes.as_slice(), &mut zip)?,
            Source::Recording(stored) => copy_recording(&stored, media, runtime, &mut zip)
                .with_context(|| format!("reading the recording of {}", entry.name))?,
        };
        files.push(json!({ "name": entry.name, "sha256": sha256, "bytes": bytes }));
    }
    let mut manifest = head;
    manifest["format"] = json!(FORMAT);
    manifest["signature"] = json!({ "algorithm": signer.algorithm(), "file": SIGNATURE,
                                    "public_key": PUBLIC_KEY });
    manifest["files"] = Value::Array(files);
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    let signature = signer.sign(&manifest);
    zip.start_file(MANIFEST, options_for(MANIFEST))?;
    zip.write_all(&manifest)?;
    zip.start_file(SIGNATURE, options_for(SIGNATURE))?;
    zip.write_all(&signature)?;
    zip.finish()?.sync_all()?;
    Ok(())
}

/// Copies a kept recording's plain bytes into the open entry, chunk by chunk.
fn copy_recording(
    stored: &crate::storage::StoredRecording,
    media: &MediaSettings,
    runtime: &tokio::runtime::Handle,
    zip: &mut ZipWriter<std::fs::File>,
) -> anyhow::Result<(String, u64)> {
    let opened = runtime
        .block_on(stored.open(media))?
        .with_context(|| format!("{} is gone", stored.location))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut stream = runtime.block_on(opened.stream(0..opened.len))?;
    while let Some(chunk) = runtime.block_on(stream.next()) {
        let chunk = chunk?;
        hasher.update(&chunk);
        zip.write_all(&chunk)?;
        total += chunk.len() as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// What a checked export holds.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Value,
    pub files: usize,
    pub public_key_pem: String,
}

/// Checks an export: the manifest's signature under the public key inside it (and, when
/// given, that this is the expected key), every listed file's SHA-256 and size, and that
/// nothing unlisted is in the archive.
pub fn verify(zip_path: &Path, expected_key_pem: Option<&str>) -> anyhow::Result<Verified> {
    let file =
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(file).context("the file is not a ZIP archive")?;
    let mut read_small = |name: &str| -> anyhow::Result<Vec<u8>> {
        let mut entry = archive
            .by_name(name)
            .with_context(|| format!("{name} is missing from the archive"))?;
        let mut out = Vec::new();
        entry
            .by_ref()
            .take(16 * 1024 * 1024)
            .read_to_end(&mut out)?;
        Ok(out)
    };
    let manifest_bytes = read_small(MANIFEST)?;
    let signature = read_small(SIGNATURE)?;
    let public_key_pem =
        String::from_utf8(read_small(PUBLIC_KEY)?).context("public_key.pem is not text")?;
    if let Some(expected) = expected_key_pem {
        if signing::raw_public_key(expected).is_none()
            || signing::raw_public_key(expected) != signing::raw_public_key(&public_key_pem)
        {
            bail!("the archive was signed with another key than the one given");
        }
    }
    if !signing::verify(&public_key_pem, &manifest_bytes, &signature) {
        bail!("the signature of manifest.json does not verify: the manifest was altered or signed by another key");
    }
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).context("manifest.json is not JSON")?;
    let listed = manifest["files"]
        .as_array()
        .context("manifest.json lists no files")?;
    let mut names = vec![MANIFEST.to_string(), SIGNATURE.to_string()];
    for item in listed {
        let name = item["name"]
            .as_str()
            .context("a manifest entry has no name")?;
        let want = item["sha256"]
            .as_str()
            .context("a manifest entry has no sha256")?;
        let mut entry = archive
            .by_name(name)
            .with_context(|| format!("{name} is listed but missing"))?;
        let mut hasher = Sha256::new();
        // A damaged entry (its ZIP checksum fails) is named, like one that was altered.
        let bytes = std::io::copy(&mut entry, &mut hasher)
            .with_context(|| format!("{name} cannot be read from the archive"))?;
        let got = hex::encode(hasher.finalize());
        if got != want || item["bytes"].as_u64() != Some(bytes) {
            bail!("{name} does not match the manifest (sha256 {got}, {bytes} bytes)");
        }
        names.push(name.to_string());
    }
    for name in archive.file_names() {
        let name = name.context("an archive entry's name is not readable")?;
        if !names.iter().any(|n| *n == name) {
            bail!("{name} is in the archive but not in the manifest");
        }
    }
    Ok(Verified {
        files: listed.len(),
        manifest,
        public_key_pem,
    })
}
