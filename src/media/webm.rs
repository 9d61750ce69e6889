//! A small WebM (Matroska subset) writer, written for the call recorder.
//!
//! Why not libwebm (the `webm` crate): its bindings expose no Title, DateUTC or
//! Tags, and a KYC recording must carry its start time and the customer's GPS
//! position inside the file. WebM is simple enough to write directly.
//!
//! Crash safety: the Segment is written with an "unknown" size and every
//! Cluster is written whole, with its real size, in one `write_all`. A file cut
//! off at any moment therefore ends on a cluster boundary and still decodes.
//! [`WebmWriter::finalize`] only adds what needs the whole call: Duration,
//! Cues (the seek index), the SeekHead and the Segment's real size.

use std::io::{self, Seek, SeekFrom, Write};

// Element IDs (Matroska spec); the marker bits are part of the value.
const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const VOID: u32 = 0xEC;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TITLE: u32 = 0x7BA9;
const DATE_UTC: u32 = 0x4461;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const NAME: u32 = 0x536E;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const TAGS: u32 = 0x1254_C367;
const TAG: u32 = 0x7373;
const TARGETS: u32 = 0x63C0;
const TARGET_TYPE_VALUE: u32 = 0x68CA;
const SIMPLE_TAG: u32 = 0x67C8;
const TAG_NAME: u32 = 0x45A3;
const TAG_STRING: u32 = 0x4487;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_TRACK: u32 = 0xF7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// EBML "unknown size" in 8 bytes: lets the Segment grow while recording.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
/// Space kept right after the Segment header for the SeekHead written at the end.
const SEEK_HEAD_RESERVE: usize = 128;
/// Seconds between the Unix epoch and Matroska's epoch (2001-01-01T00:00:00Z).
const MATROSKA_EPOCH_UNIX_S: i64 = 978_307_200;
/// Clusters are closed after this much media (ms) so a crash loses at most this.
const CLUSTER_MAX_MS: u64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
}

#[derive(Clone, Debug)]
pub struct TrackSpec {
    /// 1-based track number, as used in blocks.
    pub number: u64,
    pub name: String,
    pub codec: Codec,
}

#[derive(Clone, Debug, Default)]
pub struct SegmentMeta {
    pub title: String,
    /// Start of the recording, Unix milliseconds; written as DateUTC.
    pub date_utc_ms: i64,
    /// Segment-level tags (name, value), visible as format tags in ffprobe.
    pub tags: Vec<(String, String)>,
}

/// Writes a WebM file frame by frame. Timestamps are milliseconds, and must
/// not decrease (the caller's interleave buffer guarantees that).
pub struct WebmWriter<W: Write + Seek> {
    out: W,
    /// File offset of the first byte inside the Segment; positions in the
    /// SeekHead and Cues are relative to it.
    segment_data: u64,
    segment_size_at: u64,
    duration_at: u64,
    info_at: u64,
    tracks_at: u64,
    tags_at: u64,
    /// Where each video track's 2-byte PixelWidth/PixelHeight values sit, so
    /// the real size can be filled in once the first keyframe tells it.
    pixel_size_at: Vec<(u64, u64, u64)>,
    cluster: Vec<u8>,
    cluster_ts: Option<u64>,
    /// Video track whose keyframes get seek points (the customer camera).
    cue_track: Option<u64>,
    cues: Vec<(u64, u64)>,
    pending_cue: Option<u64>,
    last_ts: u64,
    /// Each track's last time: within a track times must strictly increase (players
    /// reject two frames of one stream at the same time), across tracks never go back.
    track_last: Vec<(u64, u64)>,
    written: u64,
}

impl<W: Write + Seek> WebmWriter<W> {
    pub fn new(mut out: W, meta: &SegmentMeta, tracks: &[TrackSpec]) -> io::Result<Self> {
        let mut b = Ebml::default();
        let m = b.open(EBML);
        b.uint(EBML_VERSION, 1);
        b.uint(EBML_READ_VERSION, 1);
        b.uint(EBML_MAX_ID_LENGTH, 4);
        b.uint(EBML_MAX_SIZE_LENGTH, 8);
        b.string(DOC_TYPE, "webm");
        b.uint(DOC_TYPE_VERSION, 4);
        b.uint(DOC_TYPE_READ_VERSION, 2);
        b.close(m);

        b.id(SEGMENT);
        let segment_size_at = b.pos();
        b.raw(&UNKNOWN_SIZE);
        let segment_data = b.pos();
        b.void(SEEK_HEAD_RESERVE);

        let info_at = b.pos();
        let m = b.open(INFO);
        b.uint(TIMESTAMP_SCALE, 1_000_000); // block timestamps in ms
        b.string(MUXING_APP, "vkyc");
        b.string(
            WRITING_APP,
            concat!("vkyc media relay ", env!("CARGO_PKG_VERSION")),
        );
        if !meta.title.is_empty() {
            b.string(TITLE, &meta.title);
        }
        let ns = (meta.date_utc_ms - MATROSKA_EPOCH_UNIX_S * 1000).saturating_mul(1_000_000);
        b.bytes(DATE_UTC, &ns.to_be_bytes());
        b.id(DURATION);
        b.raw(&[0x88]); // size 8
        let duration_at = b.pos();
        b.raw(&0f64.to_be_bytes());
        b.close(m);

        let tracks_at = b.pos();
        let mut pixel_size_at = Vec::new();
        let m = b.open(TRACKS);
        for t in tracks {
            let e = b.open(TRACK_ENTRY);
            b.uint(TRACK_NUMBER, t.number);
            b.uint(TRACK_UID, t.number);
            b.uint(FLAG_LACING, 0);
            b.string(NAME, &t.name);
            match t.codec {
                Codec::Vp8 => {
                    b.uint(TRACK_TYPE, 1);
                    b.string(CODEC_ID, "V_VP8");
                    let v = b.open(VIDEO);
                    // Placeholder 640x480 in fixed 2-byte fields, patched later.
                    b.id(PIXEL_WIDTH);
                    b.raw(&[0x82]);
                    let w_at = b.pos();
                    b.raw(&640u16.to_be_bytes());
                    b.id(PIXEL_HEIGHT);
                    b.raw(&[0x82]);
                    let h_at = b.pos();
                    b.raw(&480u16.to_be_bytes());
                    b.close(v);
                    pixel_size_at.push((t.number, w_at, h_at));
                }
                Codec::Opus => {
                    b.uint(TRACK_TYPE, 2);
                    b.string(CODEC_ID, "A_OPUS");
                    b.bytes(CODEC_PRIVATE, &opus_head(2, 48_000));
                    b.uint(CODEC_DELAY, 0);
                    b.uint(SEEK_PRE_ROLL, 80_000_000); // 80 ms, as WebM asks for Opus
                    let a = b.open(AUDIO);
                    b.float(SAMPLING_FREQUENCY, 48_000.0);
                    b.uint(CHANNELS, 2);
                    b.close(a);
                }
            }
            b.close(e);
        }
        b.close(m);

        // Tags go before the first cluster so that a reader which never gets
        // to the end (or a file never finalised) still sees them.
        let tags_at = b.pos();
        let m = b.open(TAGS);
        let t = b.open(TAG);
        let tg = b.open(TARGETS);
        b.uint(TARGET_TYPE_VALUE, 50); // 50 = the whole recording
        b.close(tg);
        for (name, value) in &meta.tags {
            let s = b.open(SIMPLE_TAG);
            b.string(TAG_NAME, name);
            b.string(TAG_STRING, value);
            b.close(s);
        }
        b.close(t);
        b.close(m);

        out.write_all(&b.buf)?;
        out.flush()?;
        let cue_track = tracks
            .iter()
            .find(|t| t.codec == Codec::Vp8)
            .map(|t| t.number);
        Ok(WebmWriter {
            out,
            segment_data,
            segment_size_at,
            duration_at,
            info_at,
            tracks_at,
            tags_at,
            pixel_size_at,
            cluster: Vec::new(),
            cluster_ts: None,
            cue_track,
            cues: Vec::new(),
            pending_cue: None,
            last_ts: 0,
            track_last: Vec::new(),
            written: b.buf.len() as u64,
        })
    }

    /// Adds one frame. `ts_ms` below the previous frame's is raised to it.
    pub fn write_frame(
        &mut self,
        track: u64,
        ts_ms: u64,
        keyframe: bool,
        data: &[u8],
    ) -> io::Result<()> {
        let mut ts = ts_ms.max(self.last_ts);
        match self.track_last.iter_mut().find(|(t, _)| *t == track) {
            Some((_, last)) => {
                if ts <= *last {
                    ts = *last + 1;
                }
                *last = ts;
            }
            None => self.track_last.push((track, ts)),
        }
        self.last_ts = ts;
        let seek_point = keyframe && Some(track) == self.cue_track;
        let start_new = match self.cluster_ts {
            None => true,
            // A seek point must start its own cluster; otherwise cap length.
            Some(c) => (seek_point && ts > c) || ts - c >= CLUSTER_MAX_MS,
        };
        if start_new {
            self.flush()?;
            self.cluster_ts = Some(ts);
            let mut b = Ebml::default();
            b.uint(CLUSTER_TIMESTAMP, ts);
            self.cluster = b.buf;
        }
        if seek_point && self.pending_cue.is_none() && self.cluster_ts == Some(ts) {
            self.pending_cue = Some(ts);
        }
        let rel = (ts - self.cluster_ts.unwrap_or(ts)) as i16; // < CLUSTER_MAX_MS
        let mut body = Vec::with_capacity(data.len() + 4);
        body.push(0x80 | track as u8); // track number as a 1-byte vint (tracks < 127)
        body.extend_from_slice(&rel.to_be_bytes());
        body.push(if keyframe { 0x80 } else { 0 });
        body.extend_from_slice(data);
        let mut b = Ebml {
            buf: std::mem::take(&mut self.cluster),
        };
        b.bytes(SIMPLE_BLOCK, &body);
        self.cluster = b.buf;
        Ok(())
    }

    /// Fills in a video track's real frame size (from its first keyframe).
    pub fn set_video_size(&mut self, track: u64, width: u16, height: u16) -> io::Result<()> {
        let Some(&(_, w_at, h_at)) = self.pixel_size_at.iter().find(|p| p.0 == track) else {
            return Ok(());
        };
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(w_at))?;
        self.out.write_all(&width.to_be_bytes())?;
        self.out.seek(SeekFrom::Start(h_at))?;
        self.out.write_all(&height.to_be_bytes())?;
        self.out.seek(SeekFrom::Start(end))?;
        self.pixel_size_at.retain(|p| p.0 != track);
        Ok(())
    }

    /// Writes the open cluster to the file, so everything received so far
    /// is on disk (called on every disconnect and at the end).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.cluster.is_empty() {
            return Ok(());
        }
        let pos = self.out.stream_position()?;
        let mut b = Ebml::default();
        b.bytes(CLUSTER, &self.cluster);
        self.out.write_all(&b.buf)?;
        self.out.flush()?;
        self.written += b.buf.len() as u64;
        if let Some(t) = self.pending_cue.take() {
            self.cues.push((t, pos - self.segment_data));
        }
        self.cluster.clear();
        self.cluster_ts = None;
        Ok(())
    }

    /// Last timestamp written, ms.
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    /// Bytes written to the file so far.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.written
    }

    /// Adds Cues, Duration, the SeekHead and the Segment size. Returns the
    /// file size.
    pub fn finalize(mut self, duration_ms: u64) -> io::Result<(W, u64)> {
        self.flush()?;
        let cues_at = self.out.stream_position()?;
        let mut b = Ebml::default();
        if let (false, Some(track)) = (self.cues.is_empty(), self.cue_track) {
            let m = b.open(CUES);
            for &(time, pos) in &self.cues {
                let p = b.open(CUE_POINT);
                b.uint(CUE_TIME, time);
                let tp = b.open(CUE_TRACK_POSITIONS);
                b.uint(CUE_TRACK, track);
                b.uint(CUE_CLUSTER_POSITION, pos);
                b.close(tp);
                b.close(p);
            }
            b.close(m);
        }
        self.out.write_all(&b.buf)?;
        let end = self.out.stream_position()?;

        let mut sh = Ebml::default();
        let m = sh.open(SEEK_HEAD);
        let mut entries = vec![
            (INFO, self.info_at),
            (TRACKS, self.tracks_at),
            (TAGS, self.tags_at),
        ];
        if !b.buf.is_empty() {
            entries.push((CUES, cues_at));
        }
        for (id, at) in entries {
            let s = sh.open(SEEK);
            sh.bytes(SEEK_ID, &id_bytes(id));
            sh.uint(SEEK_POSITION, at - self.segment_data);
            sh.close(s);
        }
        sh.close(m);
        let rest = SEEK_HEAD_RESERVE - sh.buf.len();
        sh.void(rest);
        debug_assert_eq!(sh.buf.len(), SEEK_HEAD_RESERVE);

        self.out.seek(SeekFrom::Start(self.segment_data))?;
        self.out.write_all(&sh.buf)?;
        self.out.seek(SeekFrom::Start(self.duration_at))?;
        self.out.write_all(&(duration_ms as f64).to_be_bytes())?;
        self.out.seek(SeekFrom::Start(self.segment_size_at))?;
        self.out.write_all(&size_8(end - self.segment_data))?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok((self.out, end))
    }
}

/// The Opus identification header ("OpusHead", RFC 7845 §5.1) that WebM
/// stores as the Opus track's CodecPrivate. Pre-skip is 0: the RTP stream
/// starts mid-conversation, there are no encoder priming samples to drop.
pub fn opus_head(channels: u8, input_rate: u32) -> [u8; 19] {
    let mut h = [0u8; 19];
    h[..8].copy_from_slice(b"OpusHead");
    h[8] = 1; // version
    h[9] = channels;
    h[10..12].copy_from_slice(&0u16.to_le_bytes()); // pre-skip
    h[12..16].copy_from_slice(&input_rate.to_le_bytes());
    h[16..18].copy_from_slice(&0i16.to_le_bytes()); // output gain
    h[18] = 0; // channel mapping family 0: mono or stereo
    h
}

/// Width and height from a VP8 keyframe header (RFC 6386 §9.1), if `frame`
/// is a keyframe.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9D, 0x01, 0x2A] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF;
    Some((w, h))
}

fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b[skip..].to_vec()
}

/// Size as an 8-byte vint (used where the value is patched later).
fn size_8(n: u64) -> [u8; 8] {
    let mut b = n.to_be_bytes();
    b[0] = 0x01;
    b
}

/// Minimal-length vint for an element size.
fn size_vint(n: u64) -> Vec<u8> {
    for len in 1..=8u32 {
        // All-ones is reserved for "unknown", hence the -1.
        if n < (1u64 << (7 * len)) - 1 {
            let mut v = Vec::with_capacity(len as usize);
            for i in (0..len).rev() {
                v.push((n >> (8 * i)) as u8);
            }
            v[0] |= 0x80 >> (len - 1);
            return v;
        }
    }
    size_8(n).to_vec()
}

/// A byte buffer with EBML element helpers. Master elements opened with
/// `open` get an 8-byte size that `close` patches, so offsets never move.
#[derive(Default)]
struct Ebml {
    buf: Vec<u8>,
}

impl Ebml {
    fn pos(&self) -> u64 {
        self.buf.len() as u64
    }
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    fn id(&mut self, id: u32) {
        self.buf.extend_from_slice(&id_bytes(id));
    }
    fn bytes(&mut self, id: u32, data: &[u8]) {
        self.id(id);
        self.buf.extend_from_slice(&size_vint(data.len() as u64));
        self.buf.extend_from_slice(data);
    }
    fn string(&mut self, id: u32, s: &str) {
        self.bytes(id, s.as_bytes());
    }
    fn uint(&mut self, id: u32, v: u64) {
        let b = v.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
        self.bytes(id, &b[skip..]);
    }
    fn float(&mut self, id: u32, v: f64) {
        self.bytes(id, &v.to_be_bytes());
    }
    fn open(&mut self, id: u32) -> usize {
        self.id(id);
        let at = self.buf.len();
        self.buf.extend_from_slice(&UNKNOWN_SIZE);
        at
    }
    fn close(&mut self, at: usize) {
        let n = (self.buf.len() - at - 8) as u64;
        self.buf[at..at + 8].copy_from_slice(&size_8(n));
    }
    /// A Void element of exactly `total` bytes (at least 2).
    fn void(&mut self, total: usize) {
        self.id(VOID);
        // 1-byte id; use an 8-byte size so any total >= 9 works exactly.
        if total >= 9 {
            self.buf.extend_from_slice(&size_8((total - 9) as u64));
            self.buf.resize(self.buf.len() + total - 9, 0);
        } else {
            self.buf.push(0x80 | (total - 2) as u8);
            self.buf.resize(self.buf.len() + total - 2, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn opus_head_bytes() {
        let h = opus_head(2, 48_000);
        assert_eq!(
            h,
            [
                b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0, 0, 0x80, 0xBB, 0, 0, 0, 0,
                0
            ]
        );
    }

    #[test]
    fn vints() {
        assert_eq!(size_vint(0), vec![0x80]);
        assert_eq!(size_vint(126), vec![0xFE]);
        assert_eq!(size_vint(127), vec![0x40, 0x7F]);
        assert_eq!(size_vint(300), vec![0x41, 0x2C]);
        assert_eq!(size_8(5), [1, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(id_bytes(SEGMENT), vec![0x18, 0x53, 0x80, 0x67]);
        assert_eq!(id_bytes(VOID), vec![0xEC]);
    }

    #[test]
    fn void_has_exact_size() {
        for n in [2, 5, 9, 10, 100] {
            let mut b = Ebml::default();
            b.void(n);
            assert_eq!(b.buf.len(), n);
        }
    }

    #[test]
    fn vp8_size_from_keyframe() {
        // Frame tag (keyframe bit 0), start code, 320x240.
        let k = [0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        assert_eq!(vp8_keyframe_size(&k), Some((320, 240)));
        let mut d = k;
        d[0] |= 1; // interframe
        assert_eq!(vp8_keyframe_size(&d), None);
    }

    #[test]
    fn a_tracks_times_strictly_increase_and_no_time_goes_back() {
        let meta = SegmentMeta {
            title: "t".into(),
            date_utc_ms: 0,
            tags: vec![],
        };
        let tracks = [
            TrackSpec {
                number: 1,
                name: "v".into(),
                codec: Codec::Vp8,
            },
            TrackSpec {
                number: 2,
                name: "a".into(),
                codec: Codec::Opus,
            },
        ];
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &meta, &tracks).unwrap();
        w.write_frame(1, 10, true, &[0x50, 0, 0]).unwrap();
        w.write_frame(2, 12, true, &[1]).unwrap();
        // Late video: held at 12 (no going back), which is still after its last (10).
        w.write_frame(1, 11, false, &[0x51]).unwrap();
        assert_eq!(w.last_ts(), 12);
        // Video again at 12: the track already has 12, so 13.
        w.write_frame(1, 12, false, &[0x51]).unwrap();
        assert_eq!(w.last_ts(), 13);
        // Audio at 12 is held at 13: different track, so 13 is fine.
        w.write_frame(2, 12, true, &[1]).unwrap();
        assert_eq!(w.last_ts(), 13);
    }

    #[test]
    fn layout_and_finalize() {
        let meta = SegmentMeta {
            title: "t".into(),
            date_utc_ms: 1_700_000_000_000,
            tags: vec![("CALL_ID".into(), "c1".into())],
        };
        let tracks = [
            TrackSpec {
                number: 1,
                name: "v".into(),
                codec: Codec::Vp8,
            },
            TrackSpec {
                number: 2,
                name: "a".into(),
                codec: Codec::Opus,
            },
        ];
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &meta, &tracks).unwrap();
        let header = w.bytes();
        w.write_frame(1, 0, true, &[0x50, 0, 0]).unwrap();
        w.write_frame(2, 5, true, &[1, 2]).unwrap();
        // Raised past 5: no time goes back, and the track already has 5.
        w.write_frame(2, 3, true, &[1, 2]).unwrap();
        assert_eq!(w.last_ts(), 6);
        w.write_frame(2, 1500, true, &[3]).unwrap(); // new cluster
                                                     // Nothing past the header until a cluster is complete.
                                                     // Cluster: id 4 + size 1 + Timestamp 3 + blocks (2+4+3) + 2 * (2+4+2).
        assert_eq!(w.bytes(), header + 4 + 1 + 3 + 9 + 2 * 8);
        let (cur, size) = w.finalize(1520).unwrap();
        let file = cur.into_inner();
        assert_eq!(file.len() as u64, size);
        assert_eq!(&file[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
        // The segment size was patched from "unknown" to the real size.
        let seg = file
            .windows(4)
            .position(|w| w == [0x18, 0x53, 0x80, 0x67])
            .unwrap();
        let n =
            u64::from_be_bytes(file[seg + 4..seg + 12].try_into().unwrap()) & 0x00FF_FFFF_FFFF_FFFF;
        assert_eq!(seg as u64 + 12 + n, size);
        // SeekHead replaced the leading Void; one cue point for the keyframe.
        assert_eq!(&file[seg + 12..seg + 16], &[0x11, 0x4D, 0x9B, 0x74]);
        assert!(file.windows(4).any(|w| w == [0x1C, 0x53, 0xBB, 0x6B]));
    }
}
