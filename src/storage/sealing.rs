//! Recordings sealed at rest (`[media] encrypt_recordings = true`).
//!
//! Each recording gets a key of its own ([`FileKey`]); the call row keeps that key
//! sealed under the master key, so the file alone, or the file and a copy of the
//! database without the master key, reveals nothing. A purge forgets the key, so a copy
//! of the file left in a backup or a bucket's old version stays unreadable.
//!
//! The file is cut into chunks of 64 KiB, each sealed on its own with
//! XChaCha20-Poly1305, so that a player's range request opens only the chunks it
//! covers. Layout:
//!
//! ```text
//! header (32 bytes): "VKYCSEAL" | version 1 | 3 zero bytes | chunk size (u32, BE)
//!                    | nonce prefix (16 random bytes)
//! chunks:            ciphertext of chunk i (chunk size bytes, the last one 0..=chunk size)
//!                    followed by its 16-byte tag
//! ```
//!
//! Chunk i's nonce is the prefix followed by i (u64, BE); its associated data is the
//! header and one byte saying whether it is the last chunk. So a chunk cannot be moved,
//! a file cannot be cut short at a chunk's end, and the header cannot be changed, without
//! the opening failing. There is always at least one chunk (an empty file has one empty
//! chunk).

use anyhow::Context;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

const MAGIC: &[u8; 8] = b"VKYCSEAL";
const VERSION: u8 = 1;
pub const HEADER_LEN: u64 = 32;
/// Plain bytes per chunk in the files this server writes.
pub const CHUNK: u32 = 64 * 1024;
const TAG: u64 = 16;

/// One recording's key.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey([u8; 32]);

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

impl FileKey {
    pub fn generate() -> FileKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        FileKey(key)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<FileKey> {
        Some(FileKey(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// A sealed file's header.
#[derive(Clone, Debug)]
pub struct Header {
    raw: [u8; HEADER_LEN as usize],
}

impl Header {
    fn new(chunk: u32) -> Header {
        let mut raw = [0u8; HEADER_LEN as usize];
        raw[..8].copy_from_slice(MAGIC);
        raw[8] = VERSION;
        raw[12..16].copy_from_slice(&chunk.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut raw[16..]);
        Header { raw }
    }

    pub fn parse(bytes: &[u8]) -> anyhow::Result<Header> {
        let raw: [u8; HEADER_LEN as usize] = bytes
            .get(..HEADER_LEN as usize)
            .and_then(|b| b.try_into().ok())
            .context("a sealed recording is shorter than its header")?;
        anyhow::ensure!(
            &raw[..8] == MAGIC && raw[8] == VERSION,
            "not a sealed recording (or one of an unknown version)"
        );
        let header = Header { raw };
        let chunk = header.chunk();
        anyhow::ensure!(
            (1024..=16 * 1024 * 1024).contains(&chunk),
            "a sealed recording names a chunk size of {chunk} bytes"
        );
        Ok(header)
    }

    fn chunk(&self) -> u64 {
        u32::from_be_bytes(self.raw[12..16].try_into().expect("4 bytes")) as u64
    }

    fn nonce(&self, index: u64) -> XNonce {
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(&self.raw[16..]);
        nonce[16..].copy_from_slice(&index.to_be_bytes());
        nonce.into()
    }

    fn aad(&self, last: bool) -> [u8; HEADER_LEN as usize + 1] {
        let mut aad = [0u8; HEADER_LEN as usize + 1];
        aad[..HEADER_LEN as usize].copy_from_slice(&self.raw);
        aad[HEADER_LEN as usize] = last as u8;
        aad
    }

    /// The chunks of a sealed file of `sealed_len` bytes, and its plain length.
    fn layout(&self, sealed_len: u64) -> anyhow::Result<(u64, u64)> {
        let body = sealed_len.saturating_sub(HEADER_LEN);
        let whole = self.chunk() + TAG;
        let chunks = body.div_ceil(whole);
        let last = body - chunks.saturating_sub(1) * whole;
        anyhow::ensure!(
            chunks >= 1 && last >= TAG && (chunks == 1 || last > TAG),
            "a sealed recording of {sealed_len} bytes is cut short"
        );
        Ok((chunks, body - chunks * TAG))
    }

    /// The plain length of a sealed file of `sealed_len` bytes.
    pub fn plain_len(&self, sealed_len: u64) -> anyhow::Result<u64> {
        Ok(self.layout(sealed_len)?.1)
    }
}

/// Seals `from` into a new private file `to` (written beside it, synced, then renamed);
/// answers the sealed file's size. Reads and writes one chunk at a time.
pub fn seal_file(key: &FileKey, from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut input =
        std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let partial = to.with_extension("part");
    let out = crate::files::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(out);
    let header = Header::new(CHUNK);
    let cipher = key.cipher();
    out.write_all(&header.raw)?;
    let mut written = HEADER_LEN;
    let mut chunk = vec![0u8; CHUNK as usize];
    let mut next = vec![0u8; CHUNK as usize];
    let mut filled = read_full(&mut input, &mut chunk)?;
    let mut index = 0u64;
    loop {
        // Read ahead one chunk: the last one is sealed as the last.
        let ahead = if filled == chunk.len() {
            read_full(&mut input, &mut next)?
        } else {
            0
        };
        let last = ahead == 0;
        let sealed = cipher
            .encrypt(
                &header.nonce(index),
                Payload {
                    msg: &chunk[..filled],
                    aad: &header.aad(last),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a chunk failed"))?;
        out.write_all(&sealed)?;
        written += sealed.len() as u64;
        if last {
            break;
        }
        std::mem::swap(&mut chunk, &mut next);
        filled = ahead;
        index += 1;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))?;
    Ok(written)
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Opens the chunks of a sealed file that cover a plain range, fed the sealed bytes of
/// [`Opener::sealed_range`] in order, in pieces of any size.
pub struct Opener {
    cipher: XChaCha20Poly1305,
    header: Header,
    chunks: u64,
    index: u64,
    buffer: Vec<u8>,
    /// Plain bytes still to drop at the front of the next opened chunk.
    skip: u64,
    /// Plain bytes still to answer.
    remaining: u64,
    sealed: Range<u64>,
}

impl Opener {
    /// For the plain bytes `plain` (within the plain length) of a sealed file of
    /// `sealed_len` bytes with this header.
    pub fn new(
        key: &FileKey,
        header: Header,
        sealed_len: u64,
        plain: Range<u64>,
    ) -> anyhow::Result<Opener> {
        let (chunks, plain_len) = header.layout(sealed_len)?;
        anyhow::ensure!(
            plain.start <= plain.end && plain.end <= plain_len,
            "bytes {plain:?} are outside a recording of {plain_len}"
        );
        let size = header.chunk();
        let first = (plain.start / size).min(chunks - 1);
        let last = if plain.is_empty() {
            first
        } else {
            (plain.end - 1) / size
        };
        let whole = size + TAG;
        let sealed = HEADER_LEN + first * whole..(HEADER_LEN + (last + 1) * whole).min(sealed_len);
        Ok(Opener {
            cipher: key.cipher(),
            skip: plain.start - first * size,
            remaining: plain.end - plain.start,
            header,
            chunks,
            index: first,
            buffer: Vec::with_capacity(whole as usize),
            sealed,
        })
    }

    /// The sealed bytes to feed.
    pub fn sealed_range(&self) -> Range<u64> {
        self.sealed.clone()
    }

    /// Takes the next sealed bytes; answers the plain bytes they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        let whole = (self.header.chunk() + TAG) as usize;
        let mut plain = Vec::new();
        while !bytes.is_empty() {
            let take = (whole - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == whole {
                self.open_chunk(&mut plain)?;
            }
        }
        Ok(plain)
    }

    /// After the last sealed byte: the plain bytes of a last, shorter chunk; an error if
    /// the sealed bytes stopped short.
    pub fn finish(mut self) -> anyhow::Result<Vec<u8>> {
        let mut plain = Vec::new();
        if !self.buffer.is_empty() {
            self.open_chunk(&mut plain)?;
        }
        anyhow::ensure!(self.remaining == 0, "a sealed recording ended early");
        Ok(plain)
    }

    fn open_chunk(&mut self, plain: &mut Vec<u8>) -> anyhow::Result<()> {
        let last = self.index + 1 == self.chunks;
        let opened = self
            .cipher
            .decrypt(
                &self.header.nonce(self.index),
                Payload {
                    msg: &self.buffer,
                    aad: &self.header.aad(last),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "chunk {} of a sealed recording does not open (altered, or another key)",
                    self.index
                )
            })?;
        self.buffer.clear();
        self.index += 1;
        let from = (self.skip as usize).min(opened.len());
        self.skip -= from as u64;
        let upto = (from as u64 + self.remaining).min(opened.len() as u64) as usize;
        plain.extend_from_slice(&opened[from..upto]);
        self.remaining -= (upto - from) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(plain: &[u8]) -> (FileKey, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a.webm"), dir.path().join("a.sealed.webm"));
        std::fs::write(&from, plain).unwrap();
        let key = FileKey::generate();
        let len = seal_file(&key, &from, &to).unwrap();
        let bytes = std::fs::read(&to).unwrap();
        assert_eq!(len, bytes.len() as u64);
        (key, bytes)
    }

    /// Opens `range` feeding the sealed bytes `piece` at a time.
    fn open(
        key: &FileKey,
        file: &[u8],
        range: Range<u64>,
        piece: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let header = Header::parse(file)?;
        let mut opener = Opener::new(key, header, file.len() as u64, range)?;
        let r = opener.sealed_range();
        let mut plain = Vec::new();
        for part in file[r.start as usize..r.end as usize].chunks(piece) {
            plain.extend(opener.push(part)?);
        }
        plain.extend(opener.finish()?);
        Ok(plain)
    }

    #[test]
    fn every_range_of_every_size_opens_to_the_plain_bytes() {
        let c = CHUNK as usize;
        for size in [0, 1, 100, c - 1, c, c + 1, 2 * c, 3 * c + 5] {
            let plain: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let (key, file) = sealed(&plain);
            let header = Header::parse(&file).unwrap();
            assert_eq!(header.plain_len(file.len() as u64).unwrap(), size as u64);
            assert!(
                size < 64 || !file.windows(64).any(|w| w == &plain[..64]),
                "nothing in clear"
            );
            let n = size as u64;
            let mut ranges = vec![0..n, 0..n.min(1), n / 2..n, n.saturating_sub(3)..n];
            if size > c + 10 {
                ranges.extend([c as u64 - 5..c as u64 + 5, c as u64..c as u64 + 1, 7..n - 7]);
            }
            for range in ranges {
                for piece in [1, 1000, 1 << 20] {
                    let got = open(&key, &file, range.clone(), piece).unwrap();
                    assert_eq!(
                        got,
                        plain[range.start as usize..range.end as usize],
                        "{size}: {range:?} by {piece}"
                    );
                }
            }
            assert!(open(&key, &file, 0..n + 1, 100).is_err(), "beyond the end");
        }
    }

    #[test]
    fn an_altered_moved_or_shortened_file_does_not_open() {
        let c = CHUNK as usize;
        let plain: Vec<u8> = (0..3 * c + 10).map(|i| i as u8).collect();
        let (key, file) = sealed(&plain);
        let all = 0..plain.len() as u64;
        // One flipped bit, in a chunk or in the header.
        for at in [HEADER_LEN as usize + 5, c + 100, file.len() - 1, 20] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert!(open(&key, &bad, all.clone(), 4096).is_err(), "{at}");
        }
        // Cut at a chunk's end: the new last chunk was not sealed as the last.
        let whole = c + TAG as usize;
        let cut = &file[..HEADER_LEN as usize + 2 * whole];
        let n = Header::parse(cut)
            .unwrap()
            .plain_len(cut.len() as u64)
            .unwrap();
        assert!(open(&key, cut, 0..n, 4096).is_err());
        // Two chunks swapped.
        let mut swapped = file.clone();
        let (a, b) = (HEADER_LEN as usize, HEADER_LEN as usize + whole);
        let first = file[a..a + whole].to_vec();
        swapped.copy_within(b..b + whole, a);
        swapped[b..b + whole].copy_from_slice(&first);
        assert!(open(&key, &swapped, all.clone(), 4096).is_err());
        // Another key.
        assert!(open(&FileKey::generate(), &file, all.clone(), 4096).is_err());
        // Not a sealed file at all, or one cut inside its header or its tag.
        assert!(Header::parse(&plain).is_err());
        assert!(Header::parse(&file[..20]).is_err());
        assert!(Header::parse(&file)
            .unwrap()
            .plain_len(HEADER_LEN + 10)
            .is_err());
        // And the file itself still opens.
        assert_eq!(open(&key, &file, all, 4096).unwrap(), plain);
    }
}
