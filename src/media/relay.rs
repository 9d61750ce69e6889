//! The relay: one tokio task owns the UDP socket and every str0m `Rtc`.
//!
//! str0m is sans-IO: we feed it datagrams and time, and poll it for datagrams
//! to send, timeouts and events. Keeping every `Rtc` in one task means no
//! locks on the media path; the public `Relay` handle talks to the task over
//! a channel. Incoming datagrams are matched to their `Rtc` with
//! `Rtc::accepts` (ICE ufrag for STUN, then the remote address), with a
//! source-address cache so the common case is one hash lookup.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::recorder::{CallRecorder, Incoming, Kind};
use super::{MediaConfig, MediaEvent, Recording, RelayStats, Side};

/// A side that sends nothing (not even STUN consent checks, which browsers
/// send every few seconds) for this long is gone.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A side that joined but never completed ICE+DTLS is dropped after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ended calls are remembered for idempotent `end_call`.
const ENDED_KEPT: usize = 10_000;
/// Keyframe requests towards one sender are spaced at least this far apart.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    cmd: mpsc::UnboundedSender<Cmd>,
    events: broadcast::Sender<MediaEvent>,
    local_addr: SocketAddr,
    candidate_addr: SocketAddr,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    peers: AtomicU64,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    frames_forwarded: AtomicU64,
    bytes_forwarded: AtomicU64,
    frames_recorded: AtomicU64,
}

enum Cmd {
    Open {
        call_id: String,
        metadata: Value,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    Join {
        call_id: String,
        side: Side,
        rtc: Box<Rtc>,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    End {
        call_id: String,
        reply: oneshot::Sender<anyhow::Result<Option<Recording>>>,
    },
}

impl Relay {
    pub async fn start(config: MediaConfig) -> anyhow::Result<Relay> {
        let socket = UdpSocket::bind(config.udp_bind)
            .await
            .with_context(|| format!("binding media UDP {}", config.udp_bind))?;
        let local_addr = socket.local_addr()?;
        let candidate_addr = SocketAddr::new(config.advertised_ip, local_addr.port());
        // Fail now, not at the first join, if the address can't be a candidate.
        Candidate::host(candidate_addr, "udp").map_err(|e| anyhow!("advertised_ip: {e}"))?;
        std::fs::create_dir_all(&config.recordings_dir)
            .with_context(|| format!("creating {}", config.recordings_dir.display()))?;
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            cmd,
            events,
            local_addr,
            candidate_addr,
            stats: Counters::default(),
        });
        let event_loop = Loop {
            socket,
            config,
            shared: Arc::downgrade(&shared),
            events: shared.events.clone(),
            calls: HashMap::new(),
            ended: HashMap::new(),
            ended_order: Default::default(),
            by_source: HashMap::new(),
            next_wake: Instant::now(),
        };
        tokio::spawn(event_loop.run(cmd_rx));
        Ok(Relay { shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Starts a call's recording, with metadata stamped into the WebM (title,
    /// DateUTC, tags CALL_ID / DATE_RECORDED / LOCATION / VKYC_METADATA) and
    /// the sidecar JSON. The customer's position is read from
    /// `metadata.customer_gps` as `{lat, lon}` (or `{latitude, longitude}`).
    /// Opening a call that is already open does nothing.
    pub async fn open_call(&self, call_id: &str, metadata: Value) -> anyhow::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Open {
            call_id: call_id.to_string(),
            metadata,
            reply,
        })?;
        rx.await?
    }

    /// A browser's SDP offer for `side` of `call_id` -> our SDP answer
    /// (ICE-lite, one host candidate advertised_ip:port, DTLS-SRTP, Opus and
    /// VP8 only). Joining again for the same side replaces the old
    /// connection (a reload); a call that was ended cannot be joined.
    pub async fn join(&self, call_id: &str, side: Side, offer_sdp: &str) -> anyhow::Result<String> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| anyhow!("bad SDP offer: {e}"))?;
        // Built here rather than in the loop: certificate and SDP work stay
        // off the media task.
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            // Only what the recording can hold: VP8 video, Opus audio.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        let candidate =
            Candidate::host(self.shared.candidate_addr, "udp").map_err(|e| anyhow!("{e}"))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| anyhow!("offer not accepted: {e}"))?;
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Join {
            call_id: call_id.to_string(),
            side,
            rtc: Box::new(rtc),
            reply,
        })?;
        rx.await??;
        Ok(answer.to_sdp_string())
    }

    pub fn events(&self) -> broadcast::Receiver<MediaEvent> {
        self.shared.events.subscribe()
    }

    /// Ends the call: closes both connections, finalises the WebM (cues,
    /// duration) and writes the sidecar. Idempotent: ending again returns
    /// the same recording; an unknown call gives `None`.
    pub async fn end_call(&self, call_id: &str) -> anyhow::Result<Option<Recording>> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::End {
            call_id: call_id.to_string(),
            reply,
        })?;
        rx.await?
    }

    pub fn stats(&self) -> RelayStats {
        let s = &self.shared.stats;
        RelayStats {
            calls: s.calls.load(Relaxed),
            peers: s.peers.load(Relaxed),
            packets_in: s.packets_in.load(Relaxed),
            bytes_in: s.bytes_in.load(Relaxed),
            packets_out: s.packets_out.load(Relaxed),
            bytes_out: s.bytes_out.load(Relaxed),
            frames_forwarded: s.frames_forwarded.load(Relaxed),
            bytes_forwarded: s.bytes_forwarded.load(Relaxed),
            frames_recorded: s.frames_recorded.load(Relaxed),
        }
    }

    fn send(&self, cmd: Cmd) -> anyhow::Result<()> {
        self.shared
            .cmd
            .send(cmd)
            .map_err(|_| anyhow!("media relay has stopped"))
    }
}

struct Peer {
    rtc: Rtc,
    connected: bool,
    joined: Instant,
    last_rx: Instant,
    /// When str0m next wants `Input::Timeout`.
    deadline: Instant,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    last_pli: Option<Instant>,
    /// RTP time continuity of what we send to this side, per kind.
    rebase: [Rebase; 2],
}

/// Keeps the RTP time we send on one m-line continuous when the sender
/// behind it reconnects (a reload brings a new random RTP time base, and a
/// jump on an existing stream stalls the receiving browser's jitter buffer).
#[derive(Default, Clone, Copy)]
struct Rebase {
    /// (first incoming time of this sender connection, outgoing time it maps to)
    anchor: Option<(u64, u64)>,
    /// Last outgoing time and when it was sent.
    last: Option<(u64, Instant)>,
}

impl Rebase {
    /// The sender reconnected: the next frame starts a new anchor.
    fn reset(&mut self) {
        self.anchor = None;
    }

    fn map(&mut self, t: u64, rate: u64, now: Instant) -> u64 {
        let (t0, out0) = *self.anchor.get_or_insert_with(|| {
            let out0 = match self.last {
                // Continue from where the old connection stopped, plus the
                // wall time in between.
                Some((out, at)) => {
                    out + (now.saturating_duration_since(at).as_micros() as u64 * rate / 1_000_000)
                        .max(1)
                }
                None => t,
            };
            (t, out0)
        });
        let out = (out0 as i128 + t as i128 - t0 as i128).max(0) as u64;
        self.last = Some((out, now));
        out
    }
}

impl Peer {
    fn mid(&self, kind: Kind) -> Option<Mid> {
        match kind {
            Kind::Audio => self.audio_mid,
            Kind::Video => self.video_mid,
        }
    }

    fn kind_of(&self, mid: Mid) -> Option<Kind> {
        if Some(mid) == self.audio_mid {
            Some(Kind::Audio)
        } else if Some(mid) == self.video_mid {
            Some(Kind::Video)
        } else {
            None
        }
    }

    /// Asks this peer's browser for a video keyframe (throttled).
    fn request_keyframe(&mut self, now: Instant) {
        if !self.connected || self.last_pli.is_some_and(|t| now - t < PLI_INTERVAL) {
            return;
        }
        let Some(mid) = self.video_mid else { return };
        if let Some(mut w) = self.rtc.writer(mid) {
            if w.request_keyframe(None, KeyframeRequestKind::Pli).is_ok() {
                self.last_pli = Some(now);
            }
        }
    }
}

struct Call {
    id: String,
    recorder: CallRecorder,
    peers: [Option<Peer>; 2],
}

struct Loop {
    socket: UdpSocket,
    config: MediaConfig,
    /// Weak so that dropping every `Relay` handle stops the task.
    shared: std::sync::Weak<Shared>,
    events: broadcast::Sender<MediaEvent>,
    calls: HashMap<String, Call>,
    /// Recently ended calls: refuse joins, and make `end_call` idempotent.
    /// Bounded; older ended calls are still protected because their WebM
    /// exists and is never overwritten.
    ended: HashMap<String, Option<Recording>>,
    ended_order: std::collections::VecDeque<String>,
    /// Remote address -> (call, side), the fast path of demultiplexing.
    by_source: HashMap<SocketAddr, (String, Side)>,
    /// Earliest peer deadline (or periodic check) the loop must wake for.
    next_wake: Instant,
}

/// What the loop's helpers need besides the call they work on.
struct Ctx<'a> {
    socket: &'a UdpSocket,
    events: &'a broadcast::Sender<MediaEvent>,
    stats: &'a Counters,
}

impl Loop {
    async fn run(mut self, mut cmd_rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let wake = tokio::time::Instant::from_std(self.next_wake);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => self.on_datagram(&shared, source, &buf[..n]),
                    // ICMP port unreachable from a closed browser shows up as
                    // an error on some platforms; it's not fatal.
                    Err(e) => tracing::debug!("media socket recv: {e}"),
                },
                cmd = cmd_rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(&shared, cmd),
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {},
            }
            drop(shared);
            if Instant::now() >= self.next_wake {
                if let Some(shared) = self.shared.upgrade() {
                    self.on_timers(&shared);
                }
            }
        }
    }

    fn on_datagram(&mut self, shared: &Shared, source: SocketAddr, data: &[u8]) {
        let stats = &shared.stats;
        stats.packets_in.fetch_add(1, Relaxed);
        stats.bytes_in.fetch_add(data.len() as u64, Relaxed);
        let now = Instant::now();
        let Ok(recv) = Receive::new(Protocol::Udp, source, shared.candidate_addr, data) else {
            return;
        };
        let input = Input::Receive(now, recv);
        let cached = self.by_source.get(&source).and_then(|(id, side)| {
            let p = self.calls.get(id)?.peers[side.index()].as_ref()?;
            p.rtc.accepts(&input).then(|| (id.clone(), *side))
        });
        let found = cached.or_else(|| {
            self.calls.iter().find_map(|(id, c)| {
                [Side::Customer, Side::Agent]
                    .into_iter()
                    .find(|s| {
                        c.peers[s.index()]
                            .as_ref()
                            .is_some_and(|p| p.rtc.accepts(&input))
                    })
                    .map(|s| (id.clone(), s))
            })
        });
        let Some((call_id, side)) = found else {
            tracing::trace!(%source, "datagram for no connection");
            return;
        };
        self.by_source.insert(source, (call_id.clone(), side));
        let ctx = Ctx {
            socket: &self.socket,
            events: &self.events,
            stats,
        };
        let call = self.calls.get_mut(&call_id).expect("found above");
        let peer = call.peers[side.index()].as_mut().expect("found above");
        peer.last_rx = now;
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(call_id, ?side, "rtc input: {e}");
            peer.rtc.disconnect();
        }
        drive(&ctx, call, now);
        self.next_wake = self.next_wake.min(call_deadline(call));
        reap(&ctx, call, now);
    }

    fn on_timers(&mut self, shared: &Shared) {
        let now = Instant::now();
        let ctx = Ctx {
            socket: &self.socket,
            events: &self.events,
            stats: &shared.stats,
        };
        // Check at least twice a second so silent sides are noticed.
        let mut next = now + Duration::from_millis(500);
        for call in self.calls.values_mut() {
            let mut due = false;
            for p in call.peers.iter_mut().flatten() {
                if p.deadline <= now {
                    due = true;
                    if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                        tracing::debug!(call_id = call.id, "rtc timeout: {e}");
                        p.rtc.disconnect();
                    }
                }
            }
            if due {
                drive(&ctx, call, now);
            }
            reap(&ctx, call, now);
            next = next.min(call_deadline(call));
        }
        self.update_gauges(shared);
        let live: std::collections::HashSet<(&String, Side)> = self
            .calls
            .iter()
            .flat_map(|(id, c)| {
                [Side::Customer, Side::Agent]
                    .into_iter()
                    .filter(|s| c.peers[s.index()].is_some())
                    .map(move |s| (id, s))
            })
            .collect();
        self.by_source
            .retain(|_, (id, s)| live.contains(&(&*id, *s)));
        self.next_wake = next.max(now + Duration::from_millis(1));
    }

    /// Each command updates the gauges before replying, so a caller reading
    /// `stats()` after the reply sees the change.
    fn on_cmd(&mut self, shared: &Shared, cmd: Cmd) {
        match cmd {
            Cmd::Open {
                call_id,
                metadata,
                reply,
            } => {
                let r = if self.ended.contains_key(&call_id) {
                    Err(anyhow!("call {call_id} has ended"))
                } else if self.calls.contains_key(&call_id) {
                    Ok(())
                } else {
                    CallRecorder::create(&self.config.recordings_dir, &call_id, metadata).map(
                        |recorder| {
                            let call = Call {
                                id: call_id.clone(),
                                recorder,
                                peers: [None, None],
                            };
                            self.calls.insert(call_id, call);
                        },
                    )
                };
                self.update_gauges(shared);
                let _ = reply.send(r);
            }
            Cmd::Join {
                call_id,
                side,
                rtc,
                reply,
            } => {
                let r = self.join(shared, &call_id, side, *rtc);
                self.update_gauges(shared);
                let _ = reply.send(r);
            }
            Cmd::End { call_id, reply } => {
                let r = self.end(shared, &call_id);
                self.update_gauges(shared);
                let _ = reply.send(r);
            }
        }
    }

    fn update_gauges(&self, shared: &Shared) {
        let peers = self
            .calls
            .values()
            .map(|c| c.peers.iter().flatten().count() as u64)
            .sum();
        shared.stats.peers.store(peers, Relaxed);
        shared.stats.calls.store(self.calls.len() as u64, Relaxed);
    }

    fn join(&mut self, shared: &Shared, call_id: &str, side: Side, rtc: Rtc) -> anyhow::Result<()> {
        if self.ended.contains_key(call_id) {
            bail!("call {call_id} has ended");
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            bail!("call {call_id} is not open");
        };
        let now = Instant::now();
        if let Some(mut old) = call.peers[side.index()].take() {
            // A reload: the old page is gone; its replacement will report
            // Connected, so no Disconnected in between.
            let _ = old.rtc.close();
            call.recorder.flush();
            tracing::info!(call_id, ?side, "connection replaced");
        }
        call.recorder.reset_side(side);
        call.peers[side.index()] = Some(Peer {
            rtc,
            connected: false,
            joined: now,
            last_rx: now,
            deadline: now,
            audio_mid: None,
            video_mid: None,
            last_pli: None,
            rebase: Default::default(),
        });
        // What the other side receives from us now comes from a new connection.
        if let Some(o) = call.peers[side.other().index()].as_mut() {
            o.rebase.iter_mut().for_each(Rebase::reset);
        }
        let ctx = Ctx {
            socket: &self.socket,
            events: &self.events,
            stats: &shared.stats,
        };
        drive(&ctx, call, now);
        self.next_wake = self.next_wake.min(call_deadline(call));
        Ok(())
    }

    fn end(&mut self, shared: &Shared, call_id: &str) -> anyhow::Result<Option<Recording>> {
        if let Some(r) = self.ended.get(call_id) {
            return Ok(r.clone());
        }
        let Some(mut call) = self.calls.remove(call_id) else {
            return Ok(None);
        };
        let ctx = Ctx {
            socket: &self.socket,
            events: &self.events,
            stats: &shared.stats,
        };
        for side in [Side::Customer, Side::Agent] {
            if let Some(mut p) = call.peers[side.index()].take() {
                // Graceful close: RTCP BYE and DTLS close_notify tell the
                // browser at once instead of after its ICE timeout.
                let _ = p.rtc.close();
                while let Ok(Output::Transmit(t)) = p.rtc.poll_output() {
                    send(&ctx, &t.contents, t.destination);
                }
                if p.connected {
                    emit(
                        &ctx,
                        MediaEvent::Disconnected {
                            call_id: call_id.to_string(),
                            side,
                        },
                    );
                }
            }
        }
        let rec = call.recorder.finish()?;
        tracing::info!(
            call_id,
            bytes = rec.bytes,
            duration_ms = rec.duration_ms,
            "recording finished"
        );
        self.ended.insert(call_id.to_string(), Some(rec.clone()));
        self.ended_order.push_back(call_id.to_string());
        if self.ended_order.len() > ENDED_KEPT {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
        Ok(Some(rec))
    }
}

fn call_deadline(call: &Call) -> Instant {
    call.peers
        .iter()
        .flatten()
        .map(|p| p.deadline)
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
}

fn send(ctx: &Ctx, data: &[u8], to: SocketAddr) {
    // UDP: if the socket buffer is full the packet is lost, as on the wire.
    if ctx.socket.try_send_to(data, to).is_ok() {
        ctx.stats.packets_out.fetch_add(1, Relaxed);
        ctx.stats.bytes_out.fetch_add(data.len() as u64, Relaxed);
    }
}

fn emit(ctx: &Ctx, ev: MediaEvent) {
    tracing::info!(?ev, "media event");
    let _ = ctx.events.send(ev);
}

/// Polls both sides until neither has anything more to do. Media from one
/// side is written into the other side's `Rtc`, which then needs polling.
fn drive(ctx: &Ctx, call: &mut Call, now: Instant) {
    for _ in 0..4 {
        let a = drive_side(ctx, call, Side::Customer, now);
        let b = drive_side(ctx, call, Side::Agent, now);
        if !a && !b {
            break;
        }
    }
}

/// Returns true if something was handed to the other side.
fn drive_side(ctx: &Ctx, call: &mut Call, side: Side, now: Instant) -> bool {
    let (first, second) = call.peers.split_at_mut(1);
    let (me, other) = match side {
        Side::Customer => (&mut first[0], &mut second[0]),
        Side::Agent => (&mut second[0], &mut first[0]),
    };
    let Some(me) = me.as_mut() else { return false };
    let mut touched = false;
    while me.rtc.is_alive() {
        let out = match me.rtc.poll_output() {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(call_id = call.id, ?side, "rtc poll: {e}");
                me.rtc.disconnect();
                break;
            }
        };
        match out {
            Output::Timeout(t) => {
                me.deadline = t;
                break;
            }
            Output::Transmit(t) => send(ctx, &t.contents, t.destination),
            Output::Event(ev) => match ev {
                Event::Connected => {
                    me.connected = true;
                    tracing::info!(
                        call_id = call.id,
                        ?side,
                        after_ms = (now - me.joined).as_millis() as u64,
                        "connected"
                    );
                    emit(
                        ctx,
                        MediaEvent::Connected {
                            call_id: call.id.clone(),
                            side,
                        },
                    );
                    // So this side sees the other's video at once rather
                    // than at the sender's next periodic keyframe.
                    if let Some(o) = other.as_mut() {
                        o.request_keyframe(now);
                        touched = true;
                    }
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    me.rtc.disconnect()
                }
                Event::Closed => me.rtc.disconnect(),
                Event::MediaAdded(m) => match m.kind {
                    MediaKind::Audio if me.audio_mid.is_none() => me.audio_mid = Some(m.mid),
                    MediaKind::Video if me.video_mid.is_none() => me.video_mid = Some(m.mid),
                    _ => {}
                },
                Event::MediaData(d) => {
                    let Some(kind) = me.kind_of(d.mid) else {
                        continue;
                    };
                    if kind == Kind::Video && !d.contiguous {
                        me.request_keyframe(now); // loss: recover the picture
                    }
                    record(ctx, &mut call.recorder, side, kind, &d);
                    if let Some(o) = other.as_mut() {
                        touched |= forward(ctx, o, kind, &d);
                    }
                }
                Event::KeyframeRequest(_) => {
                    // The browser here can't decode what we relay: ask the
                    // sender for a keyframe.
                    if let Some(o) = other.as_mut() {
                        o.request_keyframe(now);
                        touched = true;
                    }
                }
                _ => {}
            },
        }
    }
    touched
}

fn record(ctx: &Ctx, rec: &mut CallRecorder, side: Side, kind: Kind, d: &MediaData) {
    let before = rec.frames();
    rec.on_frame(Incoming {
        side,
        kind,
        rtp_time: d.time.numer(),
        clock_rate: d.time.denom() as u64,
        arrival: d.network_time,
        contiguous: d.contiguous,
        keyframe: d.is_keyframe(),
        data: &d.data,
    });
    ctx.stats
        .frames_recorded
        .fetch_add(rec.frames() - before, Relaxed);
}

/// Writes a frame into the other side's matching m-line, with the payload
/// type that side negotiated for the same codec.
fn forward(ctx: &Ctx, to: &mut Peer, kind: Kind, d: &MediaData) -> bool {
    if !to.connected {
        return false;
    }
    let Some(mid) = to.mid(kind) else {
        return false;
    };
    let rebase = &mut to.rebase[kind as usize]; // Audio = 0, Video = 1
    let Some(w) = to.rtc.writer(mid) else {
        return false;
    };
    let Some(pt) = w.match_params(d.params) else {
        return false;
    };
    let rate = d.time.denom() as u64;
    let t = rebase.map(d.time.numer(), rate, d.network_time);
    let time = MediaTime::new(t, d.time.frequency());
    match w.write(pt, d.network_time, time, d.data.clone()) {
        Ok(()) => {
            ctx.stats.frames_forwarded.fetch_add(1, Relaxed);
            ctx.stats
                .bytes_forwarded
                .fetch_add(d.data.len() as u64, Relaxed);
            true
        }
        Err(e) => {
            tracing::debug!("forward: {e}");
            false
        }
    }
}

/// Drops sides that are gone, reporting Disconnected and flushing the
/// recording so everything received from them is on disk.
fn reap(ctx: &Ctx, call: &mut Call, now: Instant) {
    for side in [Side::Customer, Side::Agent] {
        let slot = &mut call.peers[side.index()];
        let Some(p) = slot.as_ref() else { continue };
        let gone = !p.rtc.is_alive()
            || (p.connected && now - p.last_rx > SILENCE_TIMEOUT)
            || (!p.connected && now - p.joined > CONNECT_TIMEOUT);
        if !gone {
            continue;
        }
        let p = slot.take().expect("checked");
        call.recorder.flush();
        if p.connected {
            emit(
                ctx,
                MediaEvent::Disconnected {
                    call_id: call.id.clone(),
                    side,
                },
            );
        } else {
            tracing::info!(call_id = call.id, ?side, "never connected; dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_passes_through_then_continues_after_reconnect() {
        let t0 = Instant::now();
        let mut r = Rebase::default();
        assert_eq!(r.map(1_000, 90_000, t0), 1_000);
        assert_eq!(r.map(4_000, 90_000, t0 + Duration::from_millis(33)), 4_000);
        // The sender reloads: new random base, 2 s later.
        r.reset();
        let later = t0 + Duration::from_millis(2_033);
        assert_eq!(r.map(777_777, 90_000, later), 4_000 + 180_000);
        assert_eq!(r.map(777_777 + 3_000, 90_000, later), 187_000);
    }
}
