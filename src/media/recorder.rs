//! One call's recording: maps each side's RTP media time onto the call's
//! timeline, keeps a short interleave buffer so the file's timestamps never
//! go backwards across tracks, and writes the WebM and its sidecar JSON.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::webm::{vp8_keyframe_size, Codec, SegmentMeta, TrackSpec, WebmWriter};
use super::{Recording, Side};

/// How long frames wait for late frames of other tracks. Video frames are
/// handed over when complete (after NACK retransmissions), so they can lag
/// the audio of the same moment by a few hundred ms.
const INTERLEAVE_MS: u64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// Fixed track layout: the three required tracks, then the optional agent video.
const TRACKS: [(u64, Side, Kind); 4] = [
    (1, Side::Customer, Kind::Video),
    (2, Side::Customer, Kind::Audio),
    (3, Side::Agent, Kind::Audio),
    (4, Side::Agent, Kind::Video),
];

/// The track a side's audio or video is recorded in (0: none).
pub(super) fn track_number(side: Side, kind: Kind) -> u64 {
    TRACKS
        .iter()
        .find(|t| t.1 == side && t.2 == kind)
        .map(|t| t.0)
        .unwrap_or(0)
}

/// Orders items by timestamp (then by arrival), and releases an item only
/// once a newer one at least `window` ms later has been seen.
pub struct Interleaver<T> {
    window: u64,
    newest: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<Entry<T>>>,
}

struct Entry<T> {
    ts: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

impl<T> Interleaver<T> {
    pub fn new(window: u64) -> Self {
        Interleaver {
            window,
            newest: 0,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    pub fn push(&mut self, ts: u64, item: T) {
        self.newest = self.newest.max(ts);
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            ts,
            seq: self.seq,
            item,
        }));
    }

    /// The oldest item, if it has waited long enough.
    pub fn pop_ready(&mut self) -> Option<(u64, T)> {
        let ready = self
            .heap
            .peek()
            .is_some_and(|e| e.0.ts + self.window <= self.newest);
        if ready {
            self.pop_any()
        } else {
            None
        }
    }

    /// The oldest item regardless of the window (for flushing).
    pub fn pop_any(&mut self) -> Option<(u64, T)> {
        self.heap.pop().map(|Reverse(e)| (e.ts, e.item))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Maps one incoming stream's RTP clock onto the call's millisecond timeline.
/// Reset whenever that side reconnects: a new connection has a new RTP base.
#[derive(Default, Clone, Copy)]
struct TrackClock {
    /// (first RTP time, clock rate, call-relative ms of the first frame)
    base: Option<(u64, u64, i64)>,
    /// Video: frames are dropped until a keyframe (start, or after a loss).
    have_keyframe: bool,
    sized: bool,
}

struct Frame {
    track: u64,
    keyframe: bool,
    data: Arc<[u8]>,
}

pub struct CallRecorder {
    call_id: String,
    path: PathBuf,
    sidecar: PathBuf,
    started: Instant,
    started_at_ms: i64,
    metadata: Value,
    clocks: [TrackClock; 4],
    buffer: Interleaver<Frame>,
    /// None after an I/O error: the call goes on, the recording stops.
    writer: Option<WebmWriter<File>>,
    frames: u64,
}

/// A frame as received: RTP time (ticks, clock rate), arrival, payload.
pub struct Incoming<'a> {
    pub side: Side,
    pub kind: Kind,
    pub rtp_time: u64,
    pub clock_rate: u64,
    pub arrival: Instant,
    /// False when frames were lost before this one.
    pub contiguous: bool,
    pub keyframe: bool,
    pub data: &'a Arc<[u8]>,
}

impl CallRecorder {
    pub fn create(dir: &Path, call_id: &str, metadata: Value) -> anyhow::Result<CallRecorder> {
        anyhow::ensure!(
            valid_call_id(call_id),
            "call id must be 1-128 of [A-Za-z0-9_.-]"
        );
        crate::files::private_dir(dir)?;
        // Taken together: DateUTC (the wall clock) is then the instant of media time 0
        // (the monotonic clock frames are timed by), which the auditor's players rely on.
        let started_at_ms = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        let path = dir.join(format!("{call_id}.webm"));
        let sidecar = dir.join(format!("{call_id}.json"));
        let meta = segment_meta(call_id, started_at_ms, &metadata);
        let tracks: Vec<TrackSpec> = TRACKS
            .iter()
            .map(|&(number, side, kind)| TrackSpec {
                number,
                name: format!(
                    "{} {}",
                    side.name(),
                    if kind == Kind::Audio {
                        "audio"
                    } else {
                        "video"
                    }
                ),
                codec: if kind == Kind::Audio {
                    Codec::Opus
                } else {
                    Codec::Vp8
                },
            })
            .collect();
        // Never overwrite a recording: it is evidence. A call id is used once.
        let file = crate::files::private_options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!("a recording for call {call_id} already exists")
                } else {
                    e.into()
                }
            })?;
        let writer = WebmWriter::new(file, &meta, &tracks)?;
        let rec = CallRecorder {
            call_id: call_id.to_string(),
            path,
            sidecar,
            started,
            started_at_ms,
            metadata,
            clocks: Default::default(),
            buffer: Interleaver::new(INTERLEAVE_MS),
            writer: Some(writer),
            frames: 0,
        };
        // Written now as well as at the end, so a crashed server still
        // leaves the start time and GPS next to the recording.
        rec.write_sidecar(None, 0)?;
        Ok(rec)
    }

    /// A side (re)connected: its RTP clocks start over.
    pub fn reset_side(&mut self, side: Side) {
        for (i, t) in TRACKS.iter().enumerate() {
            if t.1 == side {
                self.clocks[i] = TrackClock::default();
            }
        }
    }

    /// Frames recorded so far (written or buffered).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn on_frame(&mut self, f: Incoming<'_>) {
        let track = track_number(f.side, f.kind);
        let clock = &mut self.clocks[track as usize - 1];
        if f.kind == Kind::Video {
            if !f.contiguous {
                clock.have_keyframe = false;
            }
            if !clock.have_keyframe && !f.keyframe {
                return; // undecodable without the frames we lost or never saw
            }
            if f.keyframe {
                clock.have_keyframe = true;
                if !clock.sized {
                    if let (Some((w, h)), Some(wr)) =
                        (vp8_keyframe_size(f.data), self.writer.as_mut())
                    {
                        clock.sized = true;
                        if let Err(e) = wr.set_video_size(track, w, h) {
                            tracing::warn!(call_id = %self.call_id, "recording stopped: {e}");
                            self.writer = None;
                        }
                    }
                }
            }
        }
        let clock = &mut self.clocks[track as usize - 1];
        let (first, rate, base_ms) = *clock.base.get_or_insert_with(|| {
            let ms = f
                .arrival
                .saturating_duration_since(self.started)
                .as_millis() as i64;
            (f.rtp_time, f.clock_rate.max(1), ms)
        });
        let delta_ms = (f.rtp_time as i128 - first as i128) * 1000 / rate as i128;
        let ts = (base_ms as i128 + delta_ms).max(0) as u64;
        self.frames += 1;
        self.buffer.push(
            ts,
            Frame {
                track,
                keyframe: f.keyframe || f.kind == Kind::Audio,
                data: f.data.clone(),
            },
        );
        while let Some((ts, fr)) = self.buffer.pop_ready() {
            self.write(ts, fr);
        }
    }

    fn write(&mut self, ts: u64, f: Frame) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.write_frame(f.track, ts, f.keyframe, &f.data) {
                tracing::warn!(call_id = %self.call_id, "recording stopped: {e}");
                self.writer = None;
            }
        }
    }

    /// Puts everything received so far on disk (a side left; the other may
    /// go on, but nothing already received may be lost).
    pub fn flush(&mut self) {
        while let Some((ts, f)) = self.buffer.pop_any() {
            self.write(ts, f);
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.flush() {
                tracing::warn!(call_id = %self.call_id, "recording stopped: {e}");
                self.writer = None;
            }
        }
    }

    /// Finalises the WebM (cues, duration) and writes the final sidecar.
    pub fn finish(mut self) -> anyhow::Result<Recording> {
        self.flush();
        let mut duration_ms = 0;
        if let Some(w) = self.writer.take() {
            duration_ms = w.last_ts();
            w.finalize(duration_ms)?;
        }
        let bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        self.write_sidecar(Some(duration_ms as i64), bytes)?;
        Ok(Recording {
            path: self.path.clone(),
            sidecar: self.sidecar.clone(),
            started_at_ms: self.started_at_ms,
            duration_ms: duration_ms as i64,
            bytes,
            quality: Default::default(),
        })
    }

    fn write_sidecar(&self, duration_ms: Option<i64>, bytes: u64) -> anyhow::Result<()> {
        let v = sidecar_json(
            &self.call_id,
            self.started_at_ms,
            &self.metadata,
            duration_ms,
            bytes,
        );
        // Write-then-rename: the sidecar is never seen half written.
        let tmp = self.sidecar.with_extension("json.tmp");
        crate::files::write_private(&tmp, &serde_json::to_vec_pretty(&v)?)?;
        std::fs::rename(&tmp, &self.sidecar)?;
        Ok(())
    }
}

fn valid_call_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The customer's position from the call metadata: `customer_gps` with
/// `lat`/`lon` (or `latitude`/`longitude`).
pub fn customer_gps(metadata: &Value) -> Option<(f64, f64)> {
    let g = metadata.get("customer_gps")?;
    let lat = g.get("lat").or_else(|| g.get("latitude"))?.as_f64()?;
    let lon = g.get("lon").or_else(|| g.get("longitude"))?.as_f64()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

/// ISO 6709 point, the form Matroska's LOCATION tag (and ffprobe) use.
pub fn iso6709(lat: f64, lon: f64) -> String {
    format!("{lat:+010.6}{lon:+011.6}/")
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn segment_meta(call_id: &str, started_at_ms: i64, metadata: &Value) -> SegmentMeta {
    let mut tags = vec![
        ("CALL_ID".to_string(), call_id.to_string()),
        ("DATE_RECORDED".to_string(), rfc3339(started_at_ms)),
    ];
    if let Some((lat, lon)) = customer_gps(metadata) {
        tags.push(("LOCATION".to_string(), iso6709(lat, lon)));
    }
    tags.push(("VKYC_METADATA".to_string(), metadata.to_string()));
    SegmentMeta {
        title: format!("Video KYC call {call_id}"),
        date_utc_ms: started_at_ms,
        tags,
    }
}

/// The sidecar: everything an auditor needs without opening the WebM.
pub fn sidecar_json(
    call_id: &str,
    started_at_ms: i64,
    metadata: &Value,
    duration_ms: Option<i64>,
    bytes: u64,
) -> Value {
    let tracks: Vec<Value> = TRACKS
        .iter()
        .map(|&(n, side, kind)| {
            json!({
                "number": n,
                "side": side,
                "kind": if kind == Kind::Audio { "audio" } else { "video" },
                "codec": if kind == Kind::Audio { "opus" } else { "vp8" },
            })
        })
        .collect();
    json!({
        "call_id": call_id,
        "started_at": rfc3339(started_at_ms),
        "started_at_ms": started_at_ms,
        "customer_gps": metadata.get("customer_gps").cloned().unwrap_or(Value::Null),
        "metadata": metadata,
        "tracks": tracks,
        "duration_ms": duration_ms,
        "bytes": bytes,
        "finalized": duration_ms.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaver_orders_and_waits_for_window() {
        let mut il = Interleaver::new(100);
        il.push(50, "v50");
        il.push(20, "a20");
        il.push(40, "a40");
        assert!(
            il.pop_ready().is_none(),
            "nothing is 100 ms older than the newest yet"
        );
        il.push(145, "a145");
        assert_eq!(il.pop_ready(), Some((20, "a20")));
        assert_eq!(il.pop_ready(), Some((40, "a40")));
        assert_eq!(il.pop_ready(), None); // 50 + 100 > 145
        il.push(150, "a150");
        assert_eq!(il.pop_ready(), Some((50, "v50")));
        assert_eq!(il.len(), 2);
        assert_eq!(il.pop_any(), Some((145, "a145")));
        assert_eq!(il.pop_any(), Some((150, "a150")));
        assert!(il.is_empty());
    }

    #[test]
    fn interleaver_keeps_arrival_order_for_equal_times() {
        let mut il = Interleaver::new(0);
        il.push(10, 1);
        il.push(10, 2);
        il.push(10, 3);
        let out: Vec<_> = std::iter::from_fn(|| il.pop_any()).map(|x| x.1).collect();
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn sidecar_has_gps_start_tracks_and_duration() {
        let meta = json!({"customer_gps": {"lat": 19.076, "lon": 72.8777, "accuracy_m": 12}});
        let v = sidecar_json("c-1", 1_700_000_000_123, &meta, Some(6000), 42);
        assert_eq!(v["call_id"], "c-1");
        assert_eq!(v["started_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["customer_gps"]["lat"], 19.076);
        assert_eq!(v["duration_ms"], 6000);
        assert_eq!(v["finalized"], true);
        let tracks = v["tracks"].as_array().unwrap();
        assert_eq!(tracks.len(), 4);
        assert_eq!(
            tracks[0],
            json!({"number": 1, "side": "Customer", "kind": "video", "codec": "vp8"})
        );
        let open = sidecar_json("c-1", 0, &json!({}), None, 0);
        assert_eq!(open["customer_gps"], Value::Null);
        assert_eq!(open["finalized"], false);
    }

    #[test]
    fn gps_forms_and_iso6709() {
        assert_eq!(
            customer_gps(&json!({"customer_gps": {"latitude": -33.5, "longitude": 151.25}})),
            Some((-33.5, 151.25))
        );
        assert_eq!(
            customer_gps(&json!({"customer_gps": {"lat": 91.0, "lon": 0.0}})),
            None
        );
        assert_eq!(customer_gps(&json!({})), None);
        assert_eq!(iso6709(19.076, 72.8777), "+19.076000+072.877700/");
        assert_eq!(iso6709(-3.5, -151.25), "-03.500000-151.250000/");
    }

    #[test]
    fn call_ids_cannot_escape_the_directory() {
        assert!(valid_call_id("kyc_123-abc.1"));
        assert!(!valid_call_id("../x"));
        assert!(!valid_call_id("a/b"));
        assert!(!valid_call_id(""));
        assert!(!valid_call_id(".hidden"));
    }

    #[test]
    fn recorder_writes_file_and_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let meta = json!({"customer_gps": {"lat": 12.9, "lon": 77.6}});
        let mut rec = CallRecorder::create(dir.path(), "c1", meta).unwrap();
        let open: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("c1.json")).unwrap()).unwrap();
        assert_eq!(open["finalized"], false);
        let key: Arc<[u8]> =
            Arc::from(&[0x50u8, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00][..]);
        let delta: Arc<[u8]> = Arc::from(&[0x51u8, 0, 0][..]);
        let audio: Arc<[u8]> = Arc::from(&[0xfcu8, 1, 2][..]);
        let now = Instant::now();
        let frame = |kind, rtp_time, clock_rate, keyframe, data| Incoming {
            side: Side::Customer,
            kind,
            rtp_time,
            clock_rate,
            arrival: now,
            contiguous: true,
            keyframe,
            data,
        };
        rec.on_frame(frame(Kind::Video, 9000, 90_000, false, &delta)); // dropped: no keyframe yet
        assert_eq!(rec.frames(), 0);
        rec.on_frame(frame(Kind::Video, 9000, 90_000, true, &key));
        for i in 0..100u64 {
            rec.on_frame(frame(Kind::Audio, 960 * i, 48_000, false, &audio));
        }
        rec.on_frame(frame(Kind::Video, 9000 + 90 * 1000, 90_000, false, &delta));
        assert_eq!(rec.frames(), 102);
        let r = rec.finish().unwrap();
        assert!(r.duration_ms >= 1000, "{}", r.duration_ms);
        assert_eq!(r.bytes, std::fs::metadata(&r.path).unwrap().len());
        let side: Value = serde_json::from_slice(&std::fs::read(&r.sidecar).unwrap()).unwrap();
        assert_eq!(side["finalized"], true);
        assert_eq!(side["customer_gps"]["lon"], 77.6);
        let again = CallRecorder::create(dir.path(), "c1", json!({}));
        assert!(again.err().unwrap().to_string().contains("already exists"));
        let file = std::fs::read(&r.path).unwrap();
        let has = |s: &[u8]| file.windows(s.len()).any(|w| w == s);
        assert!(has(b"+12.900000+077.600000/"), "LOCATION tag in the WebM");
        assert!(has(b"Video KYC call c1"));
    }
}
