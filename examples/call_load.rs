//! A synthetic load for the media relay: N concurrent 1:1 calls, no browser. Used by
//! `bench/calls-load` against a running `examples/relay_harness.rs`.
//!
//!   cargo run --release --example call_load -- --base http://127.0.0.1:PORT \
//!       --calls 50 --video media.ivf --audio media.ogg
//!
//! Each call is two str0m peers (customer and agent), each a full (non-lite) `Rtc` with its
//! own UDP socket (on 127.0.0.1 unless `--bind`) and one host candidate, offering one
//! sendrecv Opus m-line and one sendrecv VP8 m-line to `POST /join/{call}/{side}` (after
//! `POST /open/{call}` with metadata, as the server opens a call). Once connected, each peer
//! sends a real pre-encoded stream at its real pace, looped: the VP8 frames of an IVF file
//! and the Opus packets of an Ogg file (made once with ffmpeg by the bench script).
//!
//! Forwarding latency is measured without touching the payload (anything embedded in it
//! would corrupt decoding and the recording): the relay forwards frame payloads unchanged,
//! so each frame a side sends is remembered as (hash of the payload, when it was written)
//! and matched, in order, against what the other side receives.
//!
//! Options: `--base URL` (the harness), `--calls N` (default 10), `--video FILE.ivf`,
//! `--audio FILE.ogg`, `--threads N` (shards, one thread each, default 2), `--warmup S`
//! (default 5), `--window S` (default 20), `--grace S` (default 2), `--prefix ID`
//! (call ids are ID-0, ID-1, ...; default `load`), `--connect-concurrency N` (calls being
//! set up at once, default 8), `--bind IP` (the peers' address, default 127.0.0.1; another
//! machine's client needs its own address here and the harness's ADVERTISED_IP).
//!
//! It prints, one a line on standard output: `CONNECTED {json}` once every peer connected
//! (or 30 s passed), `WINDOW_START` and `WINDOW_END` around the measurement window (the
//! bench script samples the relay's CPU at those moments), then, after the grace period
//! in which frames sent during the window can still arrive, it ends every call (the relay
//! finalises each recording) and prints `RESULT {json}`.
//!
//! Only frames sent during the window are counted: each is either received by the other
//! side (its latency recorded; `late` if a frame sent after it arrived first) or lost (not
//! arrived within 3 s, or by the end of the grace period). A received frame whose payload
//! matches nothing sent is counted as `unmatched` (the relay would have changed it).

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

// ---- the media: parsed once, shared by every peer ----

/// One encoded frame: a VP8 frame or an Opus packet.
struct Frame {
    data: Arc<[u8]>,
    /// Of the payload, computed once here so that sending costs no hashing.
    hash: u64,
    /// Media time from the start of the file, in the track's clock (90 kHz / 48 kHz).
    ts: u64,
    keyframe: bool,
}

struct Track {
    frames: Vec<Frame>,
    /// RTP clock: 90 kHz for video, 48 kHz for audio.
    freq: Frequency,
    /// Length of one pass of the file, in clock ticks: the loop adds this per pass.
    period: u64,
}

/// FNV-style hash over 8-byte words: fast enough to run on every received frame, and
/// distinct frames of these files never collide in practice.
fn hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(0x100_0000_01b3);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// IVF: a 32-byte file header ("DKIF", header size, fourcc, size, time base), then per
/// frame a 12-byte header (payload size, 64-bit pts in the time base) and the payload.
fn read_ivf(path: &str) -> anyhow::Result<Track> {
    let b = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    ensure!(
        b.len() >= 32 && &b[0..4] == b"DKIF",
        "{path}: not an IVF file"
    );
    ensure!(&b[8..12] == b"VP80", "{path}: not VP8");
    let header = u16le(&b, 6) as usize;
    // Time base: pts * scale / rate seconds.
    let (rate, scale) = (u32le(&b, 16) as u64, u32le(&b, 20) as u64);
    ensure!(rate > 0 && scale > 0, "{path}: bad time base");
    let mut frames = Vec::new();
    let mut pos = header;
    while pos + 12 <= b.len() {
        let size = u32le(&b, pos) as usize;
        let pts = u64::from_le_bytes(b[pos + 4..pos + 12].try_into().expect("8 bytes"));
        let data = b
            .get(pos + 12..pos + 12 + size)
            .context("truncated IVF frame")?;
        frames.push(Frame {
            hash: hash(data),
            ts: pts * 90_000 * scale / rate,
            // VP8 frame tag: bit 0 of the first byte is 0 on a keyframe.
            keyframe: data.first().is_some_and(|t| t & 1 == 0),
            data: data.into(),
        });
        pos += 12 + size;
    }
    ensure!(frames.len() > 1, "{path}: no frames");
    let first = frames[0].ts;
    frames.iter_mut().for_each(|f| f.ts -= first);
    let step = frames[frames.len() - 1].ts / (frames.len() as u64 - 1);
    let period = frames[frames.len() - 1].ts + step.max(1);
    ensure!(frames[0].keyframe, "{path}: does not start with a keyframe");
    Ok(Track {
        frames,
        freq: Frequency::NINETY_KHZ,
        period,
    })
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 section 3.1).
fn opus_samples(p: &[u8]) -> u64 {
    let Some(&toc) = p.first() else { return 0 };
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][(config & 3) as usize],
        12..=15 => [480, 960][(config & 1) as usize],
        _ => [120, 240, 480, 960][(config & 3) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => p.get(1).map_or(0, |c| (c & 0x3f) as u64),
    };
    per_frame * frames
}

/// Ogg: pages ("OggS", 27-byte header, a lacing table of segment sizes); a packet is the
/// segments up to one shorter than 255 bytes, and may continue on the next page. The first
/// two packets of an Opus stream are its headers (OpusHead, OpusTags).
fn read_ogg_opus(path: &str) -> anyhow::Result<Track> {
    let b = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut partial = Vec::new();
    let mut pos = 0;
    while pos + 27 <= b.len() {
        ensure!(
            &b[pos..pos + 4] == b"OggS",
            "{path}: lost Ogg sync at {pos}"
        );
        let segments = b[pos + 26] as usize;
        let lacing = b
            .get(pos + 27..pos + 27 + segments)
            .context("truncated Ogg page")?;
        let mut at = pos + 27 + segments;
        for &len in lacing {
            let seg = b.get(at..at + len as usize).context("truncated Ogg page")?;
            partial.extend_from_slice(seg);
            at += len as usize;
            if len < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        pos = at;
    }
    let mut frames = Vec::new();
    let mut ts = 0;
    for p in packets {
        if p.starts_with(b"OpusHead") || p.starts_with(b"OpusTags") || p.is_empty() {
            continue;
        }
        let samples = opus_samples(&p);
        frames.push(Frame {
            hash: hash(&p),
            ts,
            keyframe: true,
            data: p.into(),
        });
        ts += samples;
    }
    ensure!(!frames.is_empty(), "{path}: no Opus packets");
    Ok(Track {
        frames,
        freq: Frequency::FORTY_EIGHT_KHZ,
        period: ts,
    })
}

// ---- one call in the load client ----

const AUDIO: usize = 0;
const VIDEO: usize = 1;
const KINDS: [&str; 2] = ["audio", "video"];
const SIDES: [&str; 2] = ["customer", "agent"];

/// A frame sent and not yet seen at the other side.
struct Sent {
    hash: u64,
    at: Instant,
    /// Sent during the measurement window: only these are counted.
    counted: bool,
}

/// Where a peer is in one looped track.
struct Sender {
    /// Index of the next frame in the track.
    idx: usize,
    /// Media time of the next frame since this peer started sending, in clock ticks
    /// (keeps growing across passes, so RTP time never jumps back).
    elapsed: u64,
    /// When the first frame was sent: frame time = start + elapsed / clock rate.
    start: Instant,
    due: Instant,
}

impl Sender {
    fn new(idx: usize, start: Instant) -> Sender {
        Sender {
            idx,
            elapsed: 0,
            start,
            due: start,
        }
    }

    /// Moves to the next frame (wrapping to the start of the file) and its due time.
    fn advance(&mut self, track: &Track) {
        let cur = track.frames[self.idx].ts;
        self.idx += 1;
        let next = if self.idx == track.frames.len() {
            self.idx = 0;
            track.period
        } else {
            track.frames[self.idx].ts
        };
        self.elapsed += next - cur;
        self.due =
            self.start + Duration::from_micros(self.elapsed * 1_000_000 / track.freq.get() as u64);
    }
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mids: [Mid; 2],
    /// Negotiated payload types, known once connected.
    pts: Option<[Pt; 2]>,
    /// When str0m next wants `Input::Timeout`.
    deadline: Instant,
    joined: Instant,
    connected_after: Option<Duration>,
    dead: bool,
    /// Audio and video senders, from the first `Connected` on.
    senders: Option<[Sender; 2]>,
    /// Frames of each kind received during the window (does this peer get media at all?).
    rx_window: [u64; 2],
}

struct Call {
    peers: [Peer; 2],
    /// Per sending side and kind: frames in flight towards the other side.
    pending: [[InFlight; 2]; 2],
}

/// Frames sent one way and not yet received, in sending order.
#[derive(Default)]
struct InFlight {
    queue: VecDeque<Sent>,
    /// Frames a later frame overtook: lost, unless they still arrive (late, out of order,
    /// e.g. after a retransmission that the next frame did not need).
    overtaken: VecDeque<Sent>,
}

impl InFlight {
    /// Matches a received frame against what was sent; returns when the frame was sent,
    /// if it was counted, and whether it came out of order. None: it matches nothing.
    fn receive(&mut self, hash: u64) -> Option<(Sent, bool)> {
        if let Some(i) = self.queue.iter().position(|s| s.hash == hash) {
            // The relay forwards in order: everything sent before this frame was
            // overtaken by it.
            self.overtaken.extend(self.queue.drain(..i));
            return self.queue.pop_front().map(|s| (s, false));
        }
        let i = self.overtaken.iter().position(|s| s.hash == hash)?;
        self.overtaken.remove(i).map(|s| (s, true))
    }

    /// Gives up on frames sent before `before`; returns how many counted ones.
    fn expire(&mut self, before: Instant) -> u64 {
        let mut lost = 0;
        for q in [&mut self.queue, &mut self.overtaken] {
            while q.front().is_some_and(|s| s.at < before) {
                lost += q.pop_front().is_some_and(|s| s.counted) as u64;
            }
        }
        lost
    }
}

/// Counters of one direction and kind.
#[derive(Default)]
struct Tally {
    sent: u64,
    bytes_sent: u64,
    received: u64,
    bytes_received: u64,
    lost: u64,
    /// Received after a frame sent later (counted in `received` too).
    late: u64,
    unmatched: u64,
    latency_us: Vec<u32>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.sent += o.sent;
        self.bytes_sent += o.bytes_sent;
        self.received += o.received;
        self.bytes_received += o.bytes_received;
        self.lost += o.lost;
        self.late += o.late;
        self.unmatched += o.unmatched;
        self.latency_us.extend(o.latency_us);
    }
}

/// What one shard counted, handed back when it stops.
#[derive(Default)]
struct ShardStats {
    /// [sending side][kind]
    tally: [[Tally; 2]; 2],
    /// How late frames were written compared with their due time (window only): a
    /// client too busy to keep pace shows here.
    send_lag_us: Vec<u32>,
    send_errors: u64,
    keyframe_requests: u64,
    datagrams_in: u64,
    datagrams_out: u64,
    connect_us: Vec<u32>,
    dead_peers: u64,
    peers_without: [u64; 2],
}

const WARMUP: u8 = 0;
const WINDOW: u8 = 1;
const GRACE: u8 = 2;
const STOP: u8 = 3;

/// Shared between the main thread and the shards.
struct Control {
    phase: AtomicU8,
    connected: AtomicUsize,
    failed: AtomicUsize,
}

// ---- epoll: one thread waits on all the sockets of its shard ----

/// A minimal level-triggered epoll set (libc is already a dependency; tokio's would
/// need a task per socket, and one wait over a shard's sockets is what keeps the
/// client cheap).
struct Epoll(RawFd);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned by the returned value.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, fd: RawFd, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Tokens of ready sockets, waiting at most `timeout_ms`.
    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32, out: &mut Vec<u64>) {
        out.clear();
        // SAFETY: the kernel writes at most `events.len()` entries into `events`.
        let n = unsafe {
            libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, timeout_ms)
        };
        // n < 0 is EINTR: treated as a timeout.
        for ev in events.iter().take(n.max(0) as usize) {
            out.push(ev.u64);
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

// ---- a shard: one thread running many calls ----

struct Shard {
    control: Arc<Control>,
    video: Arc<Track>,
    audio: Arc<Track>,
    calls: Vec<Call>,
    stats: ShardStats,
    /// Earliest moment any peer of the shard needs attention (str0m timeout or frame due).
    next_wake: Instant,
}

impl Shard {
    fn run(mut self, incoming: mpsc::Receiver<Call>) -> ShardStats {
        let epoll = Epoll::new().expect("epoll");
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut ready = Vec::new();
        let mut buf = vec![0u8; 2048];
        let mut last_expiry = Instant::now();
        loop {
            let phase = self.control.phase.load(Relaxed);
            if phase == STOP {
                break;
            }
            while let Ok(mut call) = incoming.try_recv() {
                let idx = self.calls.len() as u64;
                let now = Instant::now();
                for (side, p) in call.peers.iter_mut().enumerate() {
                    epoll
                        .add(p.socket.as_raw_fd(), idx * 2 + side as u64)
                        .expect("epoll add");
                    // The answer was applied on the main thread: ICE starts here.
                    let _ = p.rtc.handle_input(Input::Timeout(now));
                }
                self.calls.push(call);
                let c = self.calls.len() - 1;
                for side in 0..2 {
                    self.drive(c, side, now, phase);
                }
            }
            let now = Instant::now();
            // Wake for the next deadline, and at least every 20 ms to see new calls
            // and phase changes.
            let wait = self
                .next_wake
                .saturating_duration_since(now)
                .min(Duration::from_millis(20));
            let timeout_ms = wait.as_micros().div_ceil(1000) as i32;
            epoll.wait(&mut events, timeout_ms, &mut ready);
            for &token in &ready {
                let (c, side) = ((token / 2) as usize, (token % 2) as usize);
                self.read_socket(c, side, &mut buf, phase);
            }
            let now = Instant::now();
            if now >= self.next_wake {
                self.on_timers(now, phase);
            }
            // Frames that never arrived: lost after 3 s (also bounds the queues when
            // the relay drops everything).
            if now - last_expiry > Duration::from_millis(500) {
                last_expiry = now;
                self.expire(now - Duration::from_secs(3));
            }
        }
        // Whatever counted frame is still in flight after the grace period is lost.
        self.expire(Instant::now() + Duration::from_secs(1));
        for call in &self.calls {
            for p in &call.peers {
                if p.dead || !p.rtc.is_alive() {
                    self.stats.dead_peers += 1;
                }
                for k in [AUDIO, VIDEO] {
                    if p.rx_window[k] == 0 {
                        self.stats.peers_without[k] += 1;
                    }
                }
            }
        }
        self.stats
    }

    /// Reads every datagram waiting on one peer's socket.
    fn read_socket(&mut self, c: usize, side: usize, buf: &mut [u8], phase: u8) {
        loop {
            let p = &mut self.calls[c].peers[side];
            let (n, source) = match p.socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // ICMP port unreachable after the relay went away, and the like.
                Err(_) => return,
            };
            self.stats.datagrams_in += 1;
            if p.dead {
                continue;
            }
            let now = Instant::now();
            let Ok(recv) = Receive::new(Protocol::Udp, source, p.local, &buf[..n]) else {
                continue;
            };
            if p.rtc.handle_input(Input::Receive(now, recv)).is_err() {
                p.dead = true;
                continue;
            }
            self.drive(c, side, now, phase);
        }
    }

    /// Feeds due timeouts and writes due frames, for every peer of the shard.
    fn on_timers(&mut self, now: Instant, phase: u8) {
        let mut next = now + Duration::from_millis(100);
        for c in 0..self.calls.len() {
            for side in 0..2 {
                let p = &mut self.calls[c].peers[side];
                if p.dead {
                    continue;
                }
                if p.deadline <= now {
                    if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                        p.dead = true;
                        continue;
                    }
                    self.drive(c, side, now, phase);
                }
                self.send_due(c, side, now, phase);
                let p = &self.calls[c].peers[side];
                next = next.min(p.deadline);
                if let Some(s) = &p.senders {
                    next = next.min(s[AUDIO].due).min(s[VIDEO].due);
                }
            }
        }
        self.next_wake = next;
    }

    /// Writes every frame whose time has come (several if this thread fell behind: the
    /// stream keeps its real pace on average, and the lag is recorded).
    fn send_due(&mut self, c: usize, side: usize, now: Instant, phase: u8) {
        for kind in [AUDIO, VIDEO] {
            loop {
                let track = if kind == AUDIO {
                    &self.audio
                } else {
                    &self.video
                };
                let call = &mut self.calls[c];
                let p = &mut call.peers[side];
                let (Some(senders), Some(pts)) = (p.senders.as_mut(), p.pts) else {
                    return;
                };
                let s = &mut senders[kind];
                if s.due > now || p.dead {
                    break;
                }
                let frame = &track.frames[s.idx];
                let media_time = MediaTime::new(s.elapsed, track.freq);
                let lag = now - s.due;
                s.advance(track);
                let Some(writer) = p.rtc.writer(p.mids[kind]) else {
                    break;
                };
                if writer
                    .write(pts[kind], now, media_time, frame.data.clone())
                    .is_err()
                {
                    self.stats.send_errors += 1;
                    continue;
                }
                let counted = phase == WINDOW;
                call.pending[side][kind].queue.push_back(Sent {
                    hash: frame.hash,
                    at: now,
                    counted,
                });
                if counted {
                    let t = &mut self.stats.tally[side][kind];
                    t.sent += 1;
                    t.bytes_sent += frame.data.len() as u64;
                    self.stats
                        .send_lag_us
                        .push(lag.as_micros().min(u32::MAX as u128) as u32);
                }
                self.drive(c, side, now, phase);
            }
        }
    }

    /// Drains one peer's output (the single-mutation rule of str0m: after every input or
    /// write, poll until Timeout), sending datagrams and matching received frames. A
    /// timeout that is already due is fed at once, so written frames leave now.
    fn drive(&mut self, c: usize, side: usize, now: Instant, phase: u8) {
        let other = 1 - side;
        let call = &mut self.calls[c];
        let p = &mut call.peers[side];
        for _ in 0..4 {
            loop {
                let out = match p.rtc.poll_output() {
                    Ok(o) => o,
                    Err(_) => {
                        p.dead = true;
                        return;
                    }
                };
                match out {
                    Output::Timeout(t) => {
                        p.deadline = t;
                        break;
                    }
                    Output::Transmit(t) => match p.socket.send_to(&t.contents, t.destination) {
                        Ok(_) => self.stats.datagrams_out += 1,
                        Err(_) => self.stats.send_errors += 1,
                    },
                    Output::Event(ev) => match ev {
                        Event::Connected if p.connected_after.is_none() => {
                            let after = now - p.joined;
                            p.connected_after = Some(after);
                            self.stats.connect_us.push(after.as_micros() as u32);
                            self.control.connected.fetch_add(1, Relaxed);
                            p.pts = payload_types(&mut p.rtc, p.mids);
                            // Start at a random keyframe of the video (a real sender
                            // starts with one) and a random audio packet, after a random
                            // delay of up to one keyframe interval: peers that connected
                            // together would otherwise send their keyframes in step, a
                            // burst no set of independent cameras makes.
                            let keys: Vec<usize> = (0..self.video.frames.len())
                                .filter(|&i| self.video.frames[i].keyframe)
                                .collect();
                            let v = keys[rand::random::<usize>() % keys.len()];
                            let a = rand::random::<usize>() % self.audio.frames.len();
                            let gop_us = self.video.period * 1_000_000
                                / self.video.freq.get() as u64
                                / keys.len() as u64;
                            let start =
                                now + Duration::from_micros(rand::random::<u64>() % gop_us.max(1));
                            p.senders = Some([Sender::new(a, start), Sender::new(v, start)]);
                            self.next_wake = now;
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            p.dead = true;
                        }
                        Event::KeyframeRequest(_) => self.stats.keyframe_requests += 1,
                        Event::MediaData(d) => {
                            let Some(kind) = p.mids.iter().position(|m| *m == d.mid) else {
                                continue;
                            };
                            if phase == WINDOW {
                                p.rx_window[kind] += 1;
                            }
                            let t = &mut self.stats.tally[other][kind];
                            on_received(&mut call.pending[other][kind], &d.data, now, t, phase);
                        }
                        _ => {}
                    },
                }
            }
            if p.deadline > now {
                break;
            }
            if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                p.dead = true;
                return;
            }
        }
        self.next_wake = self.next_wake.min(p.deadline);
    }

    /// Frames that have not arrived by now are lost.
    fn expire(&mut self, before: Instant) {
        for call in &mut self.calls {
            for (side, per_kind) in call.pending.iter_mut().enumerate() {
                for (kind, f) in per_kind.iter_mut().enumerate() {
                    self.stats.tally[side][kind].lost += f.expire(before);
                }
            }
        }
    }
}

/// Counts a received frame against the frames in flight from the other side.
fn on_received(f: &mut InFlight, data: &[u8], now: Instant, t: &mut Tally, phase: u8) {
    match f.receive(hash(data)) {
        Some((s, late)) if s.counted => {
            t.received += 1;
            t.late += late as u64;
            t.bytes_received += data.len() as u64;
            t.latency_us
                .push((now - s.at).as_micros().min(u32::MAX as u128) as u32);
        }
        Some(_) => {}
        None if phase == WINDOW || phase == GRACE => t.unmatched += 1,
        None => {}
    }
}

/// The payload types the answer gave Opus and VP8 on our two m-lines.
fn payload_types(rtc: &mut Rtc, mids: [Mid; 2]) -> Option<[Pt; 2]> {
    let mut find = |mid: Mid, codec: Codec| {
        let w = rtc.writer(mid)?;
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt());
        pt
    };
    Some([
        find(mids[AUDIO], Codec::Opus)?,
        find(mids[VIDEO], Codec::Vp8)?,
    ])
}

// ---- setting calls up over HTTP ----

struct Offered {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mids: [Mid; 2],
    pending: SdpPendingOffer,
    offer: String,
}

/// A peer as a browser would be: one UDP socket, one host candidate, an offer with one
/// sendrecv audio (Opus) and one sendrecv video (VP8) m-line.
fn offer(bind: IpAddr) -> anyhow::Result<Offered> {
    let socket = UdpSocket::bind((bind, 0))?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().context("no offer")?;
    Ok(Offered {
        rtc,
        socket,
        local,
        mids: [audio, video],
        pending,
        offer: offer.to_sdp_string(),
    })
}

async fn post(http: &reqwest::Client, url: String, body: String) -> anyhow::Result<String> {
    let res = http.post(&url).body(body).send().await?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("{url}: {status} {text}");
    }
    Ok(text)
}

async fn set_up(
    http: &reqwest::Client,
    base: &str,
    bind: IpAddr,
    call_id: &str,
) -> anyhow::Result<Call> {
    // Metadata as the server stamps it into a production recording.
    let meta = json!({ "source": "call_load", "customer_gps": { "lat": 19.076, "lon": 72.8777 } });
    let res = http
        .post(format!("{base}/open/{call_id}"))
        .json(&meta)
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("open {call_id}: {} {}", res.status(), res.text().await?);
    }
    let mut peers = Vec::new();
    for side in SIDES {
        let o = offer(bind)?;
        let answer = post(http, format!("{base}/join/{call_id}/{side}"), o.offer).await?;
        let answer = SdpAnswer::from_sdp_string(&answer).context("bad SDP answer")?;
        let mut rtc = o.rtc;
        rtc.sdp_api()
            .accept_answer(o.pending, answer)
            .context("answer not accepted")?;
        let now = Instant::now();
        peers.push(Peer {
            rtc,
            socket: o.socket,
            local: o.local,
            mids: o.mids,
            pts: None,
            deadline: now,
            joined: now,
            connected_after: None,
            dead: false,
            senders: None,
            rx_window: [0; 2],
        });
    }
    let agent = peers.pop().expect("two peers");
    let customer = peers.pop().expect("two peers");
    Ok(Call {
        peers: [customer, agent],
        pending: Default::default(),
    })
}

// ---- main ----

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let v = args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?;
            v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}"))
        }
        None => default.with_context(|| format!("{name} is required")),
    }
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn tally_json(t: &Tally) -> Value {
    let mut lat = t.latency_us.clone();
    lat.sort_unstable();
    json!({
        "sent": t.sent,
        "received": t.received,
        "lost": t.lost,
        "late": t.late,
        "unmatched": t.unmatched,
        "bytes_sent": t.bytes_sent,
        "bytes_received": t.bytes_received,
        "latency_p50_ms": percentile_ms(&lat, 50.0),
        "latency_p99_ms": percentile_ms(&lat, 99.0),
        "latency_max_ms": percentile_ms(&lat, 100.0),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,str0m=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let base: String = arg(&args, "--base", None)?;
    let base = base.trim_end_matches('/').to_string();
    let calls: usize = arg(&args, "--calls", Some(10))?;
    let threads: usize = arg(&args, "--threads", Some(2))?;
    let warmup: f64 = arg(&args, "--warmup", Some(5.0))?;
    let window: f64 = arg(&args, "--window", Some(20.0))?;
    let grace: f64 = arg(&args, "--grace", Some(2.0))?;
    let prefix: String = arg(&args, "--prefix", Some("load".to_string()))?;
    let concurrency: usize = arg(&args, "--connect-concurrency", Some(8))?;
    let bind: IpAddr = arg(&args, "--bind", Some(IpAddr::from([127, 0, 0, 1])))?;
    let video = Arc::new(read_ivf(&arg::<String>(&args, "--video", None)?)?);
    let audio = Arc::new(read_ogg_opus(&arg::<String>(&args, "--audio", None)?)?);
    ensure!(
        threads >= 1 && calls >= 1,
        "--threads and --calls must be at least 1"
    );

    let control = Arc::new(Control {
        phase: AtomicU8::new(WARMUP),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let mut to_shard = Vec::new();
    let mut shards = Vec::new();
    for i in 0..threads {
        let (tx, rx) = mpsc::channel();
        to_shard.push(tx);
        let shard = Shard {
            control: control.clone(),
            video: video.clone(),
            audio: audio.clone(),
            calls: Vec::new(),
            stats: ShardStats::default(),
            next_wake: Instant::now(),
        };
        shards.push(
            std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || shard.run(rx))?,
        );
    }

    // Set the calls up a few at a time; each goes to its shard as soon as it is ready.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let ids: Vec<String> = (0..calls).map(|i| format!("{prefix}-{i}")).collect();
    let mut setups = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (http, base) = (&http, &base);
            async move { (i, set_up(http, base, bind, id).await) }
        })
        .buffer_unordered(concurrency);
    while let Some((i, r)) = setups.next().await {
        match r {
            Ok(call) => to_shard[i % threads].send(call)?,
            Err(e) => {
                eprintln!("call {i}: {e:#}");
                control.failed.fetch_add(1, Relaxed);
            }
        }
    }
    drop(setups);
    let set_up_ms = started.elapsed().as_millis();
    let deadline = Instant::now() + Duration::from_secs(30);
    let peers = 2 * (calls - control.failed.load(Relaxed));
    while control.connected.load(Relaxed) < peers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "CONNECTED {}",
        json!({
            "peers": 2 * calls,
            "connected": control.connected.load(Relaxed),
            "failed_calls": control.failed.load(Relaxed),
            "set_up_ms": set_up_ms,
            "all_connected_ms": started.elapsed().as_millis(),
        })
    );

    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    control.phase.store(WINDOW, Relaxed);
    let window_start = Instant::now();
    println!("WINDOW_START");
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    control.phase.store(GRACE, Relaxed);
    let window_secs = window_start.elapsed().as_secs_f64();
    println!("WINDOW_END");
    tokio::time::sleep(Duration::from_secs_f64(grace)).await;
    control.phase.store(STOP, Relaxed);

    let mut total = ShardStats::default();
    for s in shards {
        let s = s.join().map_err(|_| anyhow::anyhow!("a shard panicked"))?;
        for (into, from) in total.tally.iter_mut().zip(s.tally) {
            for (into, from) in into.iter_mut().zip(from) {
                into.merge(from);
            }
        }
        total.send_lag_us.extend(s.send_lag_us);
        total.send_errors += s.send_errors;
        total.keyframe_requests += s.keyframe_requests;
        total.datagrams_in += s.datagrams_in;
        total.datagrams_out += s.datagrams_out;
        total.connect_us.extend(s.connect_us);
        total.dead_peers += s.dead_peers;
        total.peers_without[0] += s.peers_without[0];
        total.peers_without[1] += s.peers_without[1];
    }

    // End every call: the relay finalises each recording.
    let ended = Instant::now();
    let mut ends = futures::stream::iter(ids.iter())
        .map(|id| {
            let (http, base) = (&http, &base);
            async move {
                let r = http.post(format!("{base}/end/{id}")).send().await?;
                anyhow::Ok(r.json::<Value>().await?)
            }
        })
        .buffer_unordered(concurrency);
    let (mut recordings, mut recorded_bytes, mut end_errors) = (0u64, 0u64, 0u64);
    while let Some(r) = ends.next().await {
        match r {
            Ok(v) if v.is_object() => {
                recordings += 1;
                recorded_bytes += v["bytes"].as_u64().unwrap_or(0);
            }
            _ => end_errors += 1,
        }
    }
    let end_ms = ended.elapsed().as_millis();

    total.send_lag_us.sort_unstable();
    total.connect_us.sort_unstable();
    let mut directions = serde_json::Map::new();
    let mut both: [Tally; 2] = Default::default();
    for (side, per_kind) in total.tally.into_iter().enumerate() {
        let mut d = serde_json::Map::new();
        for (kind, t) in per_kind.into_iter().enumerate() {
            d.insert(KINDS[kind].into(), tally_json(&t));
            both[kind].merge(t);
        }
        directions.insert(
            format!("{}->{}", SIDES[side], SIDES[1 - side]),
            Value::Object(d),
        );
    }
    let [both_audio, both_video] = both;
    println!(
        "RESULT {}",
        json!({
            "calls": calls,
            "threads": threads,
            "window_s": window_secs,
            "directions": directions,
            "audio": tally_json(&both_audio),
            "video": tally_json(&both_video),
            "peers_without_audio": total.peers_without[AUDIO],
            "peers_without_video": total.peers_without[VIDEO],
            "dead_peers": total.dead_peers,
            "connect_p50_ms": percentile_ms(&total.connect_us, 50.0),
            "connect_max_ms": percentile_ms(&total.connect_us, 100.0),
            "send_lag_p50_ms": percentile_ms(&total.send_lag_us, 50.0),
            "send_lag_p99_ms": percentile_ms(&total.send_lag_us, 99.0),
            "send_lag_max_ms": percentile_ms(&total.send_lag_us, 100.0),
            "send_errors": total.send_errors,
            "keyframe_requests": total.keyframe_requests,
            "client_datagrams_in": total.datagrams_in,
            "client_datagrams_out": total.datagrams_out,
            "recordings": recordings,
            "recorded_bytes": recorded_bytes,
            "end_errors": end_errors,
            "end_all_ms": end_ms,
        })
    );
    Ok(())
}
