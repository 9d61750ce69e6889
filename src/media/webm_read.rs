//! Reads back the WebM files [`super::webm::WebmWriter`] writes (and other plain WebM
//! files of the same shape): the header elements, then the blocks one cluster at a time,
//! so a recording of tens of MB is never held in memory whole.
//!
//! A file cut off (a crash during the call) ends where it was cut: everything in the
//! clusters that are complete is read, [`WebmReader::truncated`] says a partial element
//! was dropped. Anything malformed is an error, never a panic, and every element is
//! bounded before it is read into memory.

use std::io::{self, Read};

use anyhow::{bail, Context};

// Element IDs (Matroska spec), as in the writer.
const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const TITLE: u32 = 0x7BA9;
const DATE_UTC: u32 = 0x4461;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const NAME: u32 = 0x536E;
const CODEC_ID: u32 = 0x86;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const TAGS: u32 = 0x1254_C367;
const TAG: u32 = 0x7373;
const SIMPLE_TAG: u32 = 0x67C8;
const TAG_NAME: u32 = 0x45A3;
const TAG_STRING: u32 = 0x4487;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const REFERENCE_BLOCK: u32 = 0xFB;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// Largest header element (EBML header, Info, Tracks, Tags) read into memory.
const MAX_HEADER_ELEMENT: u64 = 4 << 20;
/// Largest Cluster read into memory (the writer closes one each second of media).
const MAX_CLUSTER: u64 = 64 << 20;
/// Largest Cues element (one point per keyframe cluster: tens of bytes each).
const MAX_CUES: u64 = 16 << 20;
/// Tracks and tags kept at most (a recording has four tracks and a handful of tags).
const MAX_ENTRIES: usize = 1024;
/// Seconds between the Unix epoch and Matroska's epoch (2001-01-01T00:00:00Z).
const MATROSKA_EPOCH_UNIX_MS: i64 = 978_307_200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrackInfo {
    pub number: u64,
    pub name: String,
    pub kind: TrackKind,
    pub codec_id: String,
    /// Video frame size, when the track says.
    pub size: Option<(u16, u16)>,
}

/// What comes before the first cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub doc_type: String,
    pub title: String,
    /// DateUTC as Unix milliseconds: the instant of media time 0.
    pub date_utc_ms: Option<i64>,
    /// Info's Duration in ms (0 in a file never finalised).
    pub duration_ms: f64,
    /// Nanoseconds per timestamp unit.
    pub timestamp_scale: u64,
    pub tracks: Vec<TrackInfo>,
    /// Segment-level tags (name, value).
    pub tags: Vec<(String, String)>,
}

impl Header {
    pub fn track(&self, number: u64) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.number == number)
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub track: u64,
    /// Media time in milliseconds (cluster timestamp + the block's offset).
    pub ts_ms: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// A sequential reader: [`WebmReader::open`] reads the header, then
/// [`WebmReader::next_block`] gives the frames in file order.
pub struct WebmReader<R: Read> {
    input: R,
    pos: u64,
    /// End of the Segment's data (None: unknown size, it runs to the end of the file).
    segment_end: Option<u64>,
    header: Header,
    /// The first cluster's size, consumed while looking for the end of the header.
    first_cluster: Option<u64>,
    blocks: std::collections::VecDeque<Block>,
    /// Cue points seen: (time in ms, cluster position in the Segment).
    cues: Vec<(u64, u64)>,
    truncated: bool,
    done: bool,
}

/// A read that hit the end of the input.
struct Eof;

impl<R: Read> WebmReader<R> {
    /// Reads the EBML header and the Segment up to its first Cluster.
    pub fn open(input: R) -> anyhow::Result<WebmReader<R>> {
        let mut r = WebmReader {
            input,
            pos: 0,
            segment_end: None,
            header: Header::default(),
            first_cluster: None,
            blocks: Default::default(),
            cues: Vec::new(),
            truncated: false,
            done: false,
        };
        let (id, size) = r.element_head()?.context("empty file")?;
        if id != EBML {
            bail!("not a WebM file (no EBML header)");
        }
        let size = size.context("EBML header of unknown size")?;
        let body = r
            .body(size, MAX_HEADER_ELEMENT)?
            .context("cut-off EBML header")?;
        for (id, value) in children(&body)? {
            if id == DOC_TYPE {
                r.header.doc_type = text(value);
            }
        }
        if r.header.doc_type != "webm" && r.header.doc_type != "matroska" {
            bail!("not a WebM file (doc type {:?})", r.header.doc_type);
        }
        let (id, size) = r.element_head()?.context("no Segment")?;
        if id != SEGMENT {
            bail!("not a WebM file (no Segment after the header)");
        }
        r.segment_end = size.map(|s| r.pos.saturating_add(s));
        r.header.timestamp_scale = 1_000_000;
        loop {
            let Some((id, size)) = r.segment_child()? else {
                break;
            };
            match id {
                CLUSTER => {
                    r.first_cluster = Some(size);
                    break;
                }
                INFO | TRACKS | TAGS => {
                    let Some(body) = r.body(size, MAX_HEADER_ELEMENT)? else {
                        break;
                    };
                    r.header_element(id, &body)?;
                }
                CUES => r.read_cues(size)?,
                _ => r.skip(size)?,
            }
        }
        if r.header.tracks.is_empty() {
            bail!("the file has no tracks");
        }
        Ok(r)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// True when the input ended inside an element (what was complete was read).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Cue points read so far (the writer puts them after the last cluster).
    pub fn cues(&self) -> &[(u64, u64)] {
        &self.cues
    }

    /// The next frame in file order; None at the end of the file.
    pub fn next_block(&mut self) -> anyhow::Result<Option<Block>> {
        loop {
            if let Some(b) = self.blocks.pop_front() {
                return Ok(Some(b));
            }
            if self.done {
                return Ok(None);
            }
            let size = match self.first_cluster.take() {
                Some(size) => Some(size),
                None => self.next_cluster()?,
            };
            match size {
                Some(size) => {
                    let at = self.pos;
                    match self.body(size, MAX_CLUSTER)? {
                        Some(body) => self
                            .read_cluster(&body)
                            .with_context(|| format!("in the cluster at byte {at}"))?,
                        None => self.done = true,
                    }
                }
                None => self.done = true,
            }
        }
    }

    /// Skips to the next Cluster, reading Cues on the way; None at the end.
    fn next_cluster(&mut self) -> anyhow::Result<Option<u64>> {
        while let Some((id, size)) = self.segment_child()? {
            match id {
                CLUSTER => return Ok(Some(size)),
                CUES => self.read_cues(size)?,
                _ => self.skip(size)?,
            }
        }
        Ok(None)
    }

    /// The next element inside the Segment, with a known size; None at its end.
    fn segment_child(&mut self) -> anyhow::Result<Option<(u32, u64)>> {
        if self.done || self.segment_end.is_some_and(|end| self.pos >= end) {
            return Ok(None);
        }
        let Some((id, size)) = self.element_head()? else {
            return Ok(None);
        };
        let Some(size) = size else {
            bail!("element {id:#x} of unknown size inside the Segment is not supported");
        };
        if let Some(end) = self.segment_end {
            if self.pos.saturating_add(size) > end {
                bail!("element {id:#x} runs past the end of the Segment");
            }
        }
        Ok(Some((id, size)))
    }

    fn header_element(&mut self, id: u32, body: &[u8]) -> anyhow::Result<()> {
        match id {
            INFO => {
                for (id, v) in children(body)? {
                    match id {
                        TIMESTAMP_SCALE => {
                            let scale = uint(v)?;
                            if scale == 0 {
                                bail!("TimestampScale 0");
                            }
                            self.header.timestamp_scale = scale;
                        }
                        TITLE => self.header.title = text(v),
                        DATE_UTC => {
                            let ns =
                                i64::from_be_bytes(v.try_into().context("DateUTC is not 8 bytes")?);
                            self.header.date_utc_ms =
                                Some(MATROSKA_EPOCH_UNIX_MS.saturating_add(ns / 1_000_000));
                        }
                        DURATION => self.header.duration_ms = float(v)?,
                        _ => {}
                    }
                }
                let scale_ms = self.header.timestamp_scale as f64 / 1e6;
                self.header.duration_ms *= scale_ms;
            }
            TRACKS => {
                for (id, entry) in children(body)? {
                    if id != TRACK_ENTRY {
                        continue;
                    }
                    if self.header.tracks.len() >= MAX_ENTRIES {
                        bail!("too many tracks");
                    }
                    self.header.tracks.push(track_entry(entry)?);
                }
            }
            TAGS => {
                for (id, tag) in children(body)? {
                    if id != TAG {
                        continue;
                    }
                    for (id, simple) in children(tag)? {
                        if id != SIMPLE_TAG {
                            continue;
                        }
                        let (mut name, mut value) = (String::new(), String::new());
                        for (id, v) in children(simple)? {
                            match id {
                                TAG_NAME => name = text(v),
                                TAG_STRING => value = text(v),
                                _ => {}
                            }
                        }
                        if self.header.tags.len() >= MAX_ENTRIES {
                            bail!("too many tags");
                        }
                        self.header.tags.push((name, value));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn read_cues(&mut self, size: u64) -> anyhow::Result<()> {
        let Some(body) = self.body(size, MAX_CUES)? else {
            return Ok(());
        };
        for (id, point) in children(&body)? {
            if id != CUE_POINT {
                continue;
            }
            let (mut time, mut position) = (None, None);
            for (id, v) in children(point)? {
                match id {
                    CUE_TIME => time = Some(uint(v)?),
                    CUE_TRACK_POSITIONS => {
                        for (id, v) in children(v)? {
                            if id == CUE_CLUSTER_POSITION {
                                position = Some(uint(v)?);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let (Some(t), Some(p)) = (time, position) {
                self.cues.push((self.to_ms(t), p));
            }
        }
        Ok(())
    }

    fn read_cluster(&mut self, body: &[u8]) -> anyhow::Result<()> {
        let mut cluster_ts: Option<u64> = None;
        for (id, v) in children(body)? {
            let (block, keyframe) = match id {
                CLUSTER_TIMESTAMP => {
                    cluster_ts = Some(uint(v)?);
                    continue;
                }
                SIMPLE_BLOCK => (v, None),
                BLOCK_GROUP => {
                    let mut block = None;
                    let mut referenced = false;
                    for (id, v) in children(v)? {
                        match id {
                            BLOCK => block = Some(v),
                            REFERENCE_BLOCK => referenced = true,
                            _ => {}
                        }
                    }
                    (
                        block.context("BlockGroup without a Block")?,
                        Some(!referenced),
                    )
                }
                _ => continue,
            };
            let base = cluster_ts.context("block before the cluster's Timestamp")?;
            let (track, n) = vint(block).context("bad block track number")?;
            let rest = &block[n..];
            if rest.len() < 3 {
                bail!("block too short");
            }
            let rel = i16::from_be_bytes([rest[0], rest[1]]) as i64;
            let flags = rest[2];
            if flags & 0x06 != 0 {
                bail!("laced blocks are not supported");
            }
            let units = base as i64 + rel;
            if units < 0 {
                bail!("block time before 0");
            }
            self.blocks.push_back(Block {
                track,
                ts_ms: self.to_ms(units as u64),
                keyframe: keyframe.unwrap_or(flags & 0x80 != 0),
                data: rest[3..].to_vec(),
            });
        }
        Ok(())
    }

    fn to_ms(&self, units: u64) -> u64 {
        (units as u128 * self.header.timestamp_scale as u128 / 1_000_000).min(u64::MAX as u128)
            as u64
    }

    /// An element's ID and size (None: unknown); Ok(None) at the end of the input or
    /// where it was cut inside the element's head.
    fn element_head(&mut self) -> anyhow::Result<Option<(u32, Option<u64>)>> {
        let first = match self.byte() {
            Ok(b) => b,
            Err(Eof) => return Ok(None),
        };
        let len = first.leading_zeros() as usize + 1;
        if len > 4 {
            bail!("bad element ID at byte {}", self.pos - 1);
        }
        let mut id = first as u32;
        for _ in 1..len {
            match self.byte() {
                Ok(b) => id = id << 8 | b as u32,
                Err(Eof) => return Ok(self.cut()),
            }
        }
        let first = match self.byte() {
            Ok(b) => b,
            Err(Eof) => return Ok(self.cut()),
        };
        if first == 0 {
            bail!("bad element size at byte {}", self.pos - 1);
        }
        let len = first.leading_zeros() as usize + 1;
        let mut size = first as u64 & (0xFF >> len);
        let mut all_ones = size == 0xFF >> len;
        for _ in 1..len {
            match self.byte() {
                Ok(b) => {
                    all_ones &= b == 0xFF;
                    size = size << 8 | b as u64;
                }
                Err(Eof) => return Ok(self.cut()),
            }
        }
        Ok(Some((id, (!all_ones).then_some(size))))
    }

    /// An element's body, at most `max` bytes; Ok(None) where the input was cut.
    fn body(&mut self, size: u64, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
        if size > max {
            bail!("element of {size} bytes at byte {} is too large", self.pos);
        }
        let mut buf = Vec::new();
        (&mut self.input)
            .take(size)
            .read_to_end(&mut buf)
            .context("reading the file")?;
        self.pos += buf.len() as u64;
        if (buf.len() as u64) < size {
            return Ok(self.cut());
        }
        Ok(Some(buf))
    }

    fn skip(&mut self, size: u64) -> anyhow::Result<()> {
        let n = io::copy(&mut (&mut self.input).take(size), &mut io::sink())
            .context("reading the file")?;
        self.pos += n;
        if n < size {
            self.cut::<()>();
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, Eof> {
        let mut b = [0u8; 1];
        loop {
            match self.input.read(&mut b) {
                Ok(0) => return Err(Eof),
                Ok(_) => {
                    self.pos += 1;
                    return Ok(b[0]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // An I/O error ends the file as a cut would (what was read stands).
                Err(_) => return Err(Eof),
            }
        }
    }

    /// The input ended inside an element: stop there.
    fn cut<T>(&mut self) -> Option<T> {
        self.truncated = true;
        self.done = true;
        None
    }
}

/// The (ID, body) children of a master element held in memory.
fn children(mut data: &[u8]) -> anyhow::Result<Vec<(u32, &[u8])>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (id, n) = element_id(data)?;
        data = &data[n..];
        let (size, n) = vint(data).context("bad element size")?;
        data = &data[n..];
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= data.len())
            .with_context(|| format!("element {id:#x} runs past its parent"))?;
        out.push((id, &data[..size]));
        data = &data[size..];
    }
    Ok(out)
}

fn element_id(data: &[u8]) -> anyhow::Result<(u32, usize)> {
    let first = *data.first().context("missing element ID")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || data.len() < len {
        bail!("bad element ID");
    }
    Ok((
        data[..len].iter().fold(0u32, |id, &b| id << 8 | b as u32),
        len,
    ))
}

/// A variable-length integer with its marker bit removed, and its length.
fn vint(data: &[u8]) -> Option<(u64, usize)> {
    let first = *data.first()?;
    if first == 0 {
        return None;
    }
    let len = first.leading_zeros() as usize + 1;
    if data.len() < len {
        return None;
    }
    let mut v = first as u64 & (0xFF >> len);
    for &b in &data[1..len] {
        v = v << 8 | b as u64;
    }
    Some((v, len))
}

fn uint(v: &[u8]) -> anyhow::Result<u64> {
    if v.len() > 8 {
        bail!("unsigned integer of {} bytes", v.len());
    }
    Ok(v.iter().fold(0u64, |n, &b| n << 8 | b as u64))
}

fn float(v: &[u8]) -> anyhow::Result<f64> {
    let f = match v.len() {
        0 => 0.0,
        4 => f32::from_be_bytes(v.try_into().expect("4 bytes")) as f64,
        8 => f64::from_be_bytes(v.try_into().expect("8 bytes")),
        n => bail!("float of {n} bytes"),
    };
    if !f.is_finite() {
        bail!("float not finite");
    }
    Ok(f)
}

fn text(v: &[u8]) -> String {
    // Strings may be padded with zero bytes.
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

fn track_entry(entry: &[u8]) -> anyhow::Result<TrackInfo> {
    let mut t = TrackInfo {
        number: 0,
        name: String::new(),
        kind: TrackKind::Other,
        codec_id: String::new(),
        size: None,
    };
    for (id, v) in children(entry)? {
        match id {
            TRACK_NUMBER => t.number = uint(v)?,
            NAME => t.name = text(v),
            CODEC_ID => t.codec_id = text(v),
            TRACK_TYPE => {
                t.kind = match uint(v)? {
                    1 => TrackKind::Video,
                    2 => TrackKind::Audio,
                    _ => TrackKind::Other,
                }
            }
            VIDEO => {
                let (mut w, mut h) = (None, None);
                for (id, v) in children(v)? {
                    match id {
                        PIXEL_WIDTH => w = u16::try_from(uint(v)?).ok(),
                        PIXEL_HEIGHT => h = u16::try_from(uint(v)?).ok(),
                        _ => {}
                    }
                }
                t.size = w.zip(h);
            }
            _ => {}
        }
    }
    if t.number == 0 {
        bail!("a track without a number");
    }
    Ok(t)
}

#[cfg(test)]
#[path = "webm_read_tests.rs"]
mod tests;
