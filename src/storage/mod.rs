//! Where finished call recordings are kept: the local recordings directory (the default),
//! or an S3-compatible bucket (`[media] recordings_store = "s3://bucket/prefix"`).
//!
//! The relay always records to a local file. When the call ends, [`keep`] uploads the
//! WebM and its sidecar JSON to `<prefix>/<call id>.webm` and `.json` and answers the
//! `s3://bucket/prefix/<call id>.webm` the call row then stores; the local files are
//! removed by [`remove_local`] only once the upload succeeded and the row says so. A
//! failed upload keeps the local file, whose path the row stores, and is logged.
//!
//! Playback reads byte ranges of the object ([`S3Store::head`], [`S3Store::read`]).
//!
//! With `[media] encrypt_recordings = true` the finished WebM and sidecar are first
//! sealed ([`sealing`]) into `<call id>.sealed.webm` and `.sealed.json`, and those are
//! what is kept and uploaded; the clear files are removed once the call row names the
//! sealed one. Everything that reads a kept recording goes through [`reading`].

pub mod reading;
pub mod sealing;

pub use reading::{Opened, Place, StoredRecording};
pub use sealing::FileKey;

use crate::config::MediaSettings;
use crate::media::Recording;
use anyhow::{anyhow, Context};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::AsyncReadExt;

/// Files up to this size go up in one PUT; larger ones as a multipart upload in parts
/// of this size (S3 wants parts of at least 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once for one multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Where the relay writes recordings: `[media] recordings_dir`, or
/// `<data_dir>/recordings`.
pub fn recordings_dir(config: &crate::config::Config) -> std::path::PathBuf {
    match config.media.recordings_dir.as_str() {
        "" => config.data_dir.join("recordings"),
        dir => dir.into(),
    }
}

/// Where recordings are kept, as `[media]` says.
#[derive(Clone, Debug)]
pub enum RecordingStore {
    /// In `recordings_dir`, where the relay wrote them.
    Local,
    S3(Arc<S3Store>),
}

/// An S3-compatible bucket and the prefix recordings go under.
#[derive(Debug)]
pub struct S3Store {
    store: AmazonS3,
    bucket: String,
    /// Without leading or trailing slashes; may be empty.
    prefix: String,
}

impl RecordingStore {
    /// Builds the store `[media]` describes (no network is touched).
    pub fn from_settings(media: &MediaSettings) -> anyhow::Result<RecordingStore> {
        if media.recordings_store.is_empty() {
            return Ok(RecordingStore::Local);
        }
        let (bucket, prefix) = media.recordings_location()?;
        // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT...;
        // what the configuration gives wins.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_region(&media.recordings_s3_region);
        // `recordings_location` has checked the endpoint (an http or https URL) and that
        // the access key and the secret key come together.
        let endpoint = media.recordings_s3_endpoint.trim_end_matches('/');
        if !endpoint.is_empty() {
            // A plain-http endpoint is allowed because the operator configured one.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // MinIO, moto and most S3-compatible servers address buckets by path.
                .with_virtual_hosted_style_request(false);
        }
        if !media.recordings_s3_access_key.is_empty() {
            builder = builder
                .with_access_key_id(&media.recordings_s3_access_key)
                .with_secret_access_key(&media.recordings_s3_secret_key);
        }
        let store = builder.build().context("configuring the S3 client")?;
        Ok(RecordingStore::S3(Arc::new(S3Store {
            store,
            bucket,
            prefix,
        })))
    }

    /// The store for these settings, built once per distinct `[media]` (the HTTP client
    /// inside is shared by every upload and playback).
    pub fn cached(media: &MediaSettings) -> anyhow::Result<RecordingStore> {
        if media.recordings_store.is_empty() {
            return Ok(RecordingStore::Local);
        }
        static STORES: OnceLock<Mutex<HashMap<String, RecordingStore>>> = OnceLock::new();
        let key = serde_json::to_string(media).expect("settings serialize");
        let mut stores = STORES
            .get_or_init(Default::default)
            .lock()
            .expect("not poisoned");
        if let Some(store) = stores.get(&key) {
            return Ok(store.clone());
        }
        let store = RecordingStore::from_settings(media)?;
        stores.insert(key, store.clone());
        Ok(store)
    }
}

impl S3Store {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of a call's file: `<prefix>/<call id>.<ext>`.
    pub fn key(&self, call_id: i64, ext: &str) -> ObjectPath {
        let name = format!("{call_id}.{ext}");
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// `s3://bucket/<key>`, what a call row stores.
    pub fn url(&self, key: &ObjectPath) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The key of a stored `s3://` URL, when it is in this store's bucket.
    pub fn key_of(&self, url: &str) -> Option<ObjectPath> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (bucket == self.bucket)
            .then(|| ObjectPath::parse(key).ok())
            .flatten()
    }

    /// Deletes an object; one that is not there counts as deleted.
    pub async fn delete(&self, key: &ObjectPath) -> anyhow::Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err).with_context(|| format!("deleting s3://{}/{key}", self.bucket)),
        }
    }

    /// Uploads a local file to `key`: one PUT when small, else a multipart upload read
    /// from disk part by part. Answers the bytes uploaded.
    pub async fn upload_file(
        &self,
        file: &Path,
        key: &ObjectPath,
        content_type: &'static str,
    ) -> anyhow::Result<u64> {
        let mut f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await?.len();
        let attributes = Attributes::from_iter([(Attribute::ContentType, content_type)]);
        if len <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            f.read_to_end(&mut bytes).await?;
            let sent = bytes.len() as u64;
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.store
                .put_opts(key, PutPayload::from(bytes), opts)
                .await
                .with_context(|| format!("uploading {}", self.url(key)))?;
            return Ok(sent);
        }
        let upload = self
            .store
            .put_multipart_opts(
                key,
                PutMultipartOptions {
                    attributes,
                    ..PutMultipartOptions::default()
                },
            )
            .await
            .with_context(|| format!("starting the upload of {}", self.url(key)))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut sent = 0u64;
        let result: anyhow::Result<()> = async {
            loop {
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(&buf[..n]);
                sent += n as u64;
            }
        }
        .await;
        match result {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .with_context(|| format!("uploading {}", self.url(key)))?;
                Ok(sent)
            }
            Err(err) => {
                let _ = writer.abort().await;
                Err(err.context(format!("uploading {}", self.url(key))))
            }
        }
    }

    /// The object's size and dates; `Ok(None)` when there is no such object.
    pub async fn head(&self, key: &ObjectPath) -> anyhow::Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(anyhow!(err).context(format!("reading {}", self.url(key)))),
        }
    }

    /// A byte range of the object, as a stream.
    pub async fn read(&self, key: &ObjectPath, range: Range<u64>) -> anyhow::Result<GetResult> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        self.store
            .get_opts(key, opts)
            .await
            .with_context(|| format!("reading {}", self.url(key)))
    }

    /// The whole object (for tests and small files).
    pub async fn read_all(&self, key: &ObjectPath) -> anyhow::Result<Vec<u8>> {
        Ok(self.store.get(key).await?.bytes().await?.to_vec())
    }

    /// A [`GetResult`]'s bytes as a stream.
    pub fn stream(result: GetResult) -> reading::Chunks {
        result
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed()
    }
}

/// A finished recording as kept: what the call row stores, and the files on this
/// machine that may go once the row says so.
#[derive(Debug)]
pub struct Kept {
    pub location: String,
    /// The recording's key, when it was sealed.
    pub key: Option<FileKey>,
    pub leftovers: Vec<std::path::PathBuf>,
}

/// Keeps a finished recording where `[media]` says. Sealed first when
/// `encrypt_recordings` is on (if sealing fails, the clear file is kept, and logged: a
/// recording is evidence and is never dropped). With a bucket: uploads the WebM and the
/// sidecar and answers the object's `s3://` URL; if that fails, logs it and answers the
/// local path (the file stays). Removes nothing: see [`remove_local`].
pub async fn keep(media: &MediaSettings, call_id: i64, recording: &Recording) -> Kept {
    let mut kept = Kept {
        location: recording.path.display().to_string(),
        key: None,
        leftovers: Vec::new(),
    };
    let mut files = recording.clone();
    if media.encrypt_recordings {
        let (clear, key) = (recording.clone(), FileKey::generate());
        let sealing = tokio::task::spawn_blocking(move || seal_recording(&key, &clear));
        match sealing.await.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok((sealed, key)) => {
                kept.leftovers = vec![recording.path.clone(), recording.sidecar.clone()];
                kept.location = sealed.path.display().to_string();
                kept.key = Some(key);
                files = sealed;
            }
            Err(err) => {
                tracing::error!(call_id, error = %format!("{err:#}"),
                    "sealing the recording failed; it is kept in clear");
            }
        }
    }
    let store = match RecordingStore::cached(media) {
        Ok(RecordingStore::Local) => return kept,
        Ok(RecordingStore::S3(store)) => store,
        Err(err) => {
            tracing::error!(call_id, error = %format!("{err:#}"),
                "recording store misconfigured; the recording stays local");
            return kept;
        }
    };
    match upload(&store, call_id, &files).await {
        Ok(url) => {
            kept.location = url;
            kept.leftovers.extend([files.path, files.sidecar]);
        }
        Err(err) => {
            tracing::warn!(call_id, file = %kept.location, error = %format!("{err:#}"),
                "uploading the recording failed; it stays local");
        }
    }
    kept
}

/// Seals a recording's WebM and sidecar into `<stem>.sealed.webm` and `.sealed.json`
/// beside them (blocking).
fn seal_recording(key: &FileKey, clear: &Recording) -> anyhow::Result<(Recording, FileKey)> {
    let beside = |file: &Path, ext: &str| {
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        file.with_file_name(format!("{stem}.sealed.{ext}"))
    };
    let sealed = Recording {
        path: beside(&clear.path, "webm"),
        sidecar: beside(&clear.sidecar, "json"),
        ..clear.clone()
    };
    sealing::seal_file(key, &clear.path, &sealed.path)?;
    if clear.sidecar.exists() {
        sealing::seal_file(key, &clear.sidecar, &sealed.sidecar)?;
    }
    Ok((sealed, key.clone()))
}

/// Uploads the recording's WebM, then its sidecar (when there is one); answers the
/// WebM's `s3://` URL.
pub async fn upload(
    store: &S3Store,
    call_id: i64,
    recording: &Recording,
) -> anyhow::Result<String> {
    let sealed = recording.path.to_string_lossy().ends_with(".sealed.webm");
    let (webm, json, content_type) = match sealed {
        true => ("sealed.webm", "sealed.json", "application/octet-stream"),
        false => ("webm", "json", "video/webm"),
    };
    let key = store.key(call_id, webm);
    let started = std::time::Instant::now();
    let bytes = store
        .upload_file(&recording.path, &key, content_type)
        .await?;
    if tokio::fs::try_exists(&recording.sidecar)
        .await
        .unwrap_or(false)
    {
        store
            .upload_file(
                &recording.sidecar,
                &store.key(call_id, json),
                match sealed {
                    true => "application/octet-stream",
                    false => "application/json",
                },
            )
            .await?;
    }
    let url = store.url(&key);
    tracing::info!(call_id, %url, bytes, ms = started.elapsed().as_millis() as u64,
        "recording uploaded");
    Ok(url)
}

/// A deletion of `sides:<call id>` removes the side copies the desk made of that call's
/// recording (`<recordings_dir>/sides/<call id>-*`).
pub const SIDES: &str = "sides:";

/// Deletes a stored file: a local path, an `s3://` URL in the configured bucket (one
/// that is gone already counts as deleted), or a call's side copies ([`SIDES`]).
pub async fn delete(config: &crate::config::Config, location: &str) -> anyhow::Result<()> {
    let media = &config.media;
    if let Some(call_id) = location.strip_prefix(SIDES) {
        let call_id: i64 = call_id
            .parse()
            .context("a side copies deletion names no call")?;
        let dir = recordings_dir(config).join("sides");
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        let prefix = format!("{call_id}-");
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                Box::pin(delete(config, &entry.path().display().to_string())).await?;
            }
        }
        return Ok(());
    }
    if location.starts_with("s3://") {
        let RecordingStore::S3(store) = RecordingStore::cached(media)? else {
            return Err(anyhow!("{location} is in S3, but no bucket is configured"));
        };
        let key = store
            .key_of(location)
            .ok_or_else(|| anyhow!("{location} is not in the configured bucket"))?;
        return store.delete(&key).await;
    }
    match tokio::fs::remove_file(location).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("deleting {location}")),
    }
}

/// Removes a kept recording's local leftovers once the call row points at what was kept.
pub async fn remove_local(leftovers: &[std::path::PathBuf]) {
    for file in leftovers {
        match tokio::fs::remove_file(file).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(file = %file.display(), error = %err,
                    "removing a kept recording's local file failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(store: &str) -> MediaSettings {
        MediaSettings {
            recordings_store: store.into(),
            recordings_s3_endpoint: "http://127.0.0.1:9".into(),
            ..crate::config::Config::default().media
        }
    }

    #[test]
    fn store_urls_parse_into_bucket_and_prefix() {
        assert_eq!(
            crate::config::parse_store_url("s3://kyc-recs/prod/calls/").unwrap(),
            ("kyc-recs".into(), "prod/calls".into())
        );
        assert_eq!(
            crate::config::parse_store_url("s3://kyc-recs").unwrap(),
            ("kyc-recs".into(), "".into())
        );
        for bad in [
            "kyc-recs",
            "https://kyc-recs/x",
            "s3://",
            "s3:///x",
            "s3://Kyc_Recs/x",
            "s3://b/a//c",
        ] {
            assert!(crate::config::parse_store_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_urls_round_trip_within_the_bucket() {
        let RecordingStore::S3(store) =
            RecordingStore::from_settings(&media("s3://recs/in/x")).unwrap()
        else {
            panic!("an S3 store")
        };
        let key = store.key(42, "webm");
        assert_eq!(key.as_ref(), "in/x/42.webm");
        let url = store.url(&key);
        assert_eq!(url, "s3://recs/in/x/42.webm");
        assert_eq!(store.key_of(&url), Some(key));
        assert_eq!(store.key_of("s3://other/in/x/42.webm"), None);
        assert_eq!(store.key_of("/var/recs/42.webm"), None);
        let RecordingStore::S3(bare) = RecordingStore::from_settings(&media("s3://recs")).unwrap()
        else {
            panic!("an S3 store")
        };
        assert_eq!(bare.key(7, "json").as_ref(), "7.json");
    }

    #[test]
    fn settings_are_checked() {
        assert!(matches!(
            RecordingStore::from_settings(&media("")).unwrap(),
            RecordingStore::Local
        ));
        let mut half = media("s3://recs");
        half.recordings_s3_access_key = "AKIA".into();
        assert!(RecordingStore::from_settings(&half).is_err());
        let mut ftp = media("s3://recs");
        ftp.recordings_s3_endpoint = "ftp://x".into();
        assert!(RecordingStore::from_settings(&ftp).is_err());
        assert_eq!(
            crate::config::Config::default().media.recordings_s3_region,
            "ap-south-1"
        );
    }
}
