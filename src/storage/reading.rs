//! Reading a kept recording, wherever it is and however it is kept: a local file or an
//! object in the bucket, in clear or sealed ([`super::sealing`]). Playback, the side
//! copies, the case export and the start-time probe all read through here, so each sees
//! the plain WebM and asks only for the bytes it needs.

use super::sealing::{FileKey, Header, Opener, HEADER_LEN};
use super::{RecordingStore, S3Store};
use crate::config::MediaSettings;
use anyhow::{anyhow, Context};
use axum::body::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A recording as a call row names it: where it is, and its key when it is sealed.
#[derive(Clone, Debug)]
pub struct StoredRecording {
    pub location: String,
    pub key: Option<FileKey>,
}

/// Where the bytes are.
#[derive(Clone, Debug)]
pub enum Place {
    Local(PathBuf),
    Object(Arc<S3Store>, ObjectPath),
}

/// A recording found where its row says, ready to be read.
pub struct Opened {
    place: Place,
    sealed: Option<(FileKey, Header)>,
    /// The stored (maybe sealed) size.
    stored_len: u64,
    /// The plain WebM's size.
    pub len: u64,
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// A stream of the plain bytes asked for.
pub type Chunks = BoxStream<'static, std::io::Result<Bytes>>;

impl Place {
    /// The place `location` names: a path, or an `s3://` URL in the configured bucket.
    pub fn of(media: &MediaSettings, location: &str) -> anyhow::Result<Place> {
        if !location.starts_with("s3://") {
            return Ok(Place::Local(PathBuf::from(location)));
        }
        let RecordingStore::S3(store) = RecordingStore::cached(media)? else {
            return Err(anyhow!(
                "call recording {location} is in a bucket, but no recordings_store is configured"
            ));
        };
        let key = store.key_of(location).ok_or_else(|| {
            anyhow!(
                "call recording {location} is outside the configured bucket {}",
                store.bucket()
            )
        })?;
        Ok(Place::Object(store, key))
    }

    /// The size and last change; Ok(None) when the file or object is gone.
    async fn stat(&self) -> anyhow::Result<Option<(u64, Option<chrono::DateTime<chrono::Utc>>)>> {
        match self {
            Place::Local(path) => match tokio::fs::metadata(path).await {
                Ok(meta) => Ok(Some((
                    meta.len(),
                    meta.modified().ok().map(chrono::DateTime::from),
                ))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => {
                    Err(anyhow::Error::from(e).context(format!("reading {}", path.display())))
                }
            },
            Place::Object(store, key) => Ok(store
                .head(key)
                .await?
                .map(|m| (m.size, Some(m.last_modified)))),
        }
    }

    /// The stored bytes `range` (within the size), as a stream.
    async fn read(&self, range: Range<u64>) -> anyhow::Result<Chunks> {
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        match self {
            Place::Local(path) => {
                let mut file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?;
                file.seek(std::io::SeekFrom::Start(range.start)).await?;
                let part = file.take(range.end - range.start);
                Ok(tokio_util::io::ReaderStream::with_capacity(part, 64 * 1024).boxed())
            }
            Place::Object(store, key) => Ok(S3Store::stream(store.read(key, range).await?)),
        }
    }

    async fn read_all(&self, range: Range<u64>) -> anyhow::Result<Vec<u8>> {
        let mut stream = self.read(range).await?;
        let mut out = Vec::new();
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }
}

impl StoredRecording {
    /// Finds the recording; Ok(None) when its file or object is gone.
    pub async fn open(&self, media: &MediaSettings) -> anyhow::Result<Option<Opened>> {
        let place = Place::of(media, &self.location)?;
        let Some((stored_len, modified)) = place.stat().await? else {
            return Ok(None);
        };
        let (sealed, len) = match &self.key {
            None => (None, stored_len),
            Some(key) => {
                let header = Header::parse(&place.read_all(0..HEADER_LEN.min(stored_len)).await?)
                    .with_context(|| format!("reading {}", self.location))?;
                let len = header.plain_len(stored_len)?;
                (Some((key.clone(), header)), len)
            }
        };
        Ok(Some(Opened {
            place,
            sealed,
            stored_len,
            len,
            modified,
        }))
    }
}

impl Opened {
    pub fn place(&self) -> &Place {
        &self.place
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// The plain bytes `range` (within [`Opened::len`]) as a stream. A sealed chunk that
    /// does not open ends the stream with an error (and is logged by whoever reads it).
    pub async fn stream(&self, range: Range<u64>) -> anyhow::Result<Chunks> {
        anyhow::ensure!(
            range.start <= range.end && range.end <= self.len,
            "bytes {range:?} are outside a recording of {}",
            self.len
        );
        let Some((key, header)) = &self.sealed else {
            return self.place.read(range).await;
        };
        let opener = Opener::new(key, header.clone(), self.stored_len, range)?;
        let sealed = self.place.read(opener.sealed_range()).await?;
        let plain =
            futures::stream::unfold((sealed, Some(opener)), |(mut sealed, opener)| async move {
                let mut opener = opener?;
                let io = |e: anyhow::Error| std::io::Error::other(format!("{e:#}"));
                loop {
                    let plain = match sealed.next().await {
                        Some(Ok(bytes)) => match opener.push(&bytes) {
                            Ok(plain) => plain,
                            Err(e) => return Some((Err(io(e)), (sealed, None))),
                        },
                        Some(Err(e)) => return Some((Err(e), (sealed, None))),
                        // The last chunk is opened once the sealed bytes end.
                        None => {
                            return match opener.finish() {
                                Ok(plain) if plain.is_empty() => None,
                                Ok(plain) => Some((Ok(Bytes::from(plain)), (sealed, None))),
                                Err(e) => Some((Err(io(e)), (sealed, None))),
                            }
                        }
                    };
                    if !plain.is_empty() {
                        return Some((Ok(Bytes::from(plain)), (sealed, Some(opener))));
                    }
                }
            });
        Ok(plain.boxed())
    }

    /// The plain bytes `range`, in memory (for small reads such as the WebM header).
    pub async fn read_all(&self, range: Range<u64>) -> anyhow::Result<Vec<u8>> {
        let mut stream = self.stream(range).await?;
        let mut out = Vec::new();
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }
}
