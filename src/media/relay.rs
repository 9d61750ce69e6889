//! The relay: one tokio task owns the UDP socket, the ICE-TCP connections and
//! every str0m `Rtc`.
//!
//! str0m is sans-IO: we feed it datagrams (from UDP, or framed on TCP) and time,
//! and poll it for datagrams to send, timeouts and events. Keeping every `Rtc` in one task means no
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
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Input, Output, Rtc};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::call::{call_deadline, drive, emit, reap, send, Call, Ctx, Peer, Rebase};
use super::quality::{CallQuality, Meter, SideQuality};
use super::recorder::CallRecorder;
use super::tcp::{TcpConn, TcpIn};
use super::{MediaConfig, MediaEvent, Recording, RelayStats, Side};

/// A side that sends nothing (not even STUN consent checks, which browsers
/// send every few seconds) for this long is gone.
pub(super) const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A side that joined but never completed ICE+DTLS is dropped after this.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ended calls are remembered for idempotent `end_call`.
const ENDED_KEPT: usize = 10_000;
/// Keyframe requests towards one sender are spaced at least this far apart.
pub(super) const PLI_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    cmd: mpsc::UnboundedSender<Cmd>,
    events: broadcast::Sender<MediaEvent>,
    local_addr: SocketAddr,
    candidate_addr: SocketAddr,
    /// The passive ICE-TCP candidate, when TCP is on.
    tcp_addr: Option<SocketAddr>,
    stats: Counters,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) calls: AtomicU64,
    pub(super) peers: AtomicU64,
    pub(super) packets_in: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) packets_out: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) frames_forwarded: AtomicU64,
    pub(super) bytes_forwarded: AtomicU64,
    pub(super) frames_recorded: AtomicU64,
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
        offer: Box<SdpOffer>,
        fingerprint: String,
        /// Used unless the offer renegotiates the side's live connection.
        fresh: Box<Rtc>,
        reply: oneshot::Sender<anyhow::Result<String>>,
    },
    End {
        call_id: String,
        reply: oneshot::Sender<anyhow::Result<Option<Recording>>>,
    },
    Quality {
        call_id: String,
        reply: oneshot::Sender<Option<CallQuality>>,
    },
}

/// How long a TCP connection may stay unclaimed by a call side.
const TCP_UNCLAIMED: Duration = Duration::from_secs(10);

impl Relay {
    pub async fn start(config: MediaConfig) -> anyhow::Result<Relay> {
        let socket = UdpSocket::bind(config.udp_bind)
            .await
            .with_context(|| format!("binding media UDP {}", config.udp_bind))?;
        let local_addr = socket.local_addr()?;
        let candidate_addr = SocketAddr::new(config.advertised_ip, local_addr.port());
        // Fail now, not at the first join, if the address can't be a candidate.
        Candidate::host(candidate_addr, "udp").map_err(|e| anyhow!("advertised_ip: {e}"))?;
        let (tcp_in, tcp_rx) = mpsc::channel(super::tcp::QUEUE);
        let tcp_addr = match config.tcp_bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding media TCP {bind}"))?;
                let port = listener.local_addr()?.port();
                tokio::spawn(super::tcp::listen(listener, tcp_in));
                Some(SocketAddr::new(config.advertised_ip, port))
            }
            None => None,
        };
        crate::files::private_dir(&config.recordings_dir)
            .with_context(|| format!("creating {}", config.recordings_dir.display()))?;
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            cmd,
            events,
            local_addr,
            candidate_addr,
            tcp_addr,
            stats: Counters::default(),
        });
        let event_loop = Loop {
            socket,
            tcp: HashMap::new(),
            config,
            shared: Arc::downgrade(&shared),
            events: shared.events.clone(),
            calls: HashMap::new(),
            ended: HashMap::new(),
            ended_order: Default::default(),
            by_source: HashMap::new(),
            next_wake: Instant::now(),
        };
        tokio::spawn(event_loop.run(cmd_rx, tcp_rx));
        Ok(Relay { shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The ICE-TCP candidate's address, when TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_addr
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
    /// (ICE-lite; a UDP host candidate advertised_ip:port and, when TCP is on, a
    /// passive TCP one of lower priority; DTLS-SRTP, Opus and VP8 only).
    ///
    /// An offer from the page already connected on that side (same DTLS
    /// fingerprint) renegotiates its connection: an ICE restart after a network
    /// change keeps the connection, its DTLS session and the recording going. An
    /// offer from a new page (a reload) replaces the old connection. A call that
    /// was ended cannot be joined.
    pub async fn join(&self, call_id: &str, side: Side, offer_sdp: &str) -> anyhow::Result<String> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| anyhow!("bad SDP offer: {e}"))?;
        let fingerprint = offer_sdp
            .lines()
            .find(|l| l.starts_with("a=fingerprint:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        // Built here rather than in the loop: certificate work stays off the media task.
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            // Only what the recording can hold: VP8 video, Opus audio.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Once a second: the quality the agent sees and the call keeps.
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(Instant::now());
        let candidate =
            Candidate::host(self.shared.candidate_addr, "udp").map_err(|e| anyhow!("{e}"))?;
        rtc.add_local_candidate(candidate);
        if let Some(addr) = self.shared.tcp_addr {
            let tcp = Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            rtc.add_local_candidate(tcp);
        }
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Join {
            call_id: call_id.to_string(),
            side,
            offer: Box::new(offer),
            fingerprint,
            fresh: Box::new(rtc),
            reply,
        })?;
        rx.await?
    }

    /// Both sides' connection quality now and summed up so far; None for a call
    /// that is not open.
    pub async fn quality(&self, call_id: &str) -> anyhow::Result<Option<CallQuality>> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Quality {
            call_id: call_id.to_string(),
            reply,
        })?;
        Ok(rx.await?)
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

struct Loop {
    socket: UdpSocket,
    config: MediaConfig,
    /// Weak so that dropping every `Relay` handle stops the task.
    shared: std::sync::Weak<Shared>,
    events: broadcast::Sender<MediaEvent>,
    calls: HashMap<String, Call>,
    /// Open ICE-TCP connections by the browser's address.
    tcp: HashMap<SocketAddr, TcpConn>,
    /// Recently ended calls: refuse joins, and make `end_call` idempotent.
    /// Bounded; older ended calls are still protected because their WebM
    /// exists and is never overwritten.
    ended: HashMap<String, Option<Recording>>,
    ended_order: std::collections::VecDeque<String>,
    /// (TCP?, remote address) -> (call, side), the fast path of demultiplexing.
    by_source: HashMap<(bool, SocketAddr), (String, Side)>,
    /// Earliest peer deadline (or periodic check) the loop must wake for.
    next_wake: Instant,
}

impl Loop {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
        mut tcp_rx: mpsc::Receiver<TcpIn>,
    ) {
        let mut buf = vec![0u8; 2048];
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let wake = tokio::time::Instant::from_std(self.next_wake);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        let to = shared.candidate_addr;
                        self.on_packet(&shared, Protocol::Udp, source, to, &buf[..n]);
                    }
                    // ICMP port unreachable from a closed browser shows up as
                    // an error on some platforms; it's not fatal.
                    Err(e) => tracing::debug!("media socket recv: {e}"),
                },
                cmd = cmd_rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(&shared, cmd),
                    None => return,
                },
                Some(tcp) = tcp_rx.recv() => match tcp {
                    TcpIn::Opened(source, tx) => {
                        let opened = Instant::now();
                        self.tcp.insert(source, TcpConn { tx, opened });
                    }
                    TcpIn::Packet(source, data) => {
                        if let Some(to) = shared.tcp_addr {
                            if !self.on_packet(&shared, Protocol::Tcp, source, to, &data) {
                                // Not a packet of any call: whoever it is, close it.
                                self.tcp.remove(&source);
                            }
                        }
                    }
                    TcpIn::Closed(source) => {
                        self.tcp.remove(&source);
                    }
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

    /// One packet from a browser, to the `Rtc` it belongs to. False if it belongs
    /// to none.
    fn on_packet(
        &mut self,
        shared: &Shared,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let stats = &shared.stats;
        stats.packets_in.fetch_add(1, Relaxed);
        stats.bytes_in.fetch_add(data.len() as u64, Relaxed);
        let now = Instant::now();
        let Ok(recv) = Receive::new(proto, source, destination, data) else {
            return false;
        };
        let input = Input::Receive(now, recv);
        let key = (proto == Protocol::Tcp, source);
        let cached = self.by_source.get(&key).and_then(|(id, side)| {
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
            return false;
        };
        self.by_source.insert(key, (call_id.clone(), side));
        let ctx = Ctx {
            socket: &self.socket,
            tcp: &self.tcp,
            events: &self.events,
            stats,
            grace: self.config.drop_grace,
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
        true
    }

    fn on_timers(&mut self, shared: &Shared) {
        let now = Instant::now();
        let ctx = Ctx {
            socket: &self.socket,
            tcp: &self.tcp,
            events: &self.events,
            stats: &shared.stats,
            grace: self.config.drop_grace,
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
            for p in call.peers.iter_mut().flatten() {
                if p.meter.due(now) {
                    p.meter.sample(now, p.connected, p.lost_since.is_some());
                }
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
        // TCP connections no call side has claimed (or whose side is gone) close.
        let claimed: std::collections::HashSet<SocketAddr> = self
            .by_source
            .keys()
            .filter(|(tcp, _)| *tcp)
            .map(|(_, a)| *a)
            .collect();
        self.tcp
            .retain(|a, c| claimed.contains(a) || now - c.opened < TCP_UNCLAIMED);
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
                                left: [None, None],
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
                offer,
                fingerprint,
                fresh,
                reply,
            } => {
                let r = self.join(shared, &call_id, side, *offer, fingerprint, *fresh);
                self.update_gauges(shared);
                let _ = reply.send(r);
            }
            Cmd::Quality { call_id, reply } => {
                let _ = reply.send(self.calls.get(&call_id).map(quality_of));
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

    fn join(
        &mut self,
        shared: &Shared,
        call_id: &str,
        side: Side,
        offer: SdpOffer,
        fingerprint: String,
        mut rtc: Rtc,
    ) -> anyhow::Result<String> {
        if self.ended.contains_key(call_id) {
            bail!("call {call_id} has ended");
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            bail!("call {call_id} is not open");
        };
        let now = Instant::now();
        let ctx = Ctx {
            socket: &self.socket,
            tcp: &self.tcp,
            events: &self.events,
            stats: &shared.stats,
            grace: self.config.drop_grace,
        };
        // The same page again (an ICE restart after a network change): its own
        // connection answers, so DTLS, RTP and the recording simply go on.
        if let Some(p) = call.peers[side.index()].as_mut() {
            if p.rtc.is_alive() && !fingerprint.is_empty() && p.fingerprint == fingerprint {
                let answer = p
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| anyhow!("offer not accepted: {e}"))?;
                tracing::info!(call_id, ?side, "connection renegotiated (ICE restart)");
                drive(&ctx, call, now);
                self.next_wake = self.next_wake.min(call_deadline(call));
                return Ok(answer.to_sdp_string());
            }
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| anyhow!("offer not accepted: {e}"))?;
        // The side's figures go on across reloads and drops.
        let mut meter = call.left[side.index()].take();
        if let Some(mut old) = call.peers[side.index()].take() {
            // A reload: the old page is gone; its replacement will report
            // Connected, so no Disconnected in between.
            let _ = old.rtc.close();
            call.recorder.flush();
            tracing::info!(call_id, ?side, "connection replaced");
            meter = Some(old.meter);
        }
        let meter = match meter {
            Some(mut m) => {
                m.on_reconnected();
                m
            }
            None => Meter::new(now),
        };
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
            fingerprint,
            lost_since: None,
            ice_ok: false,
            meter,
        });
        // What the other side receives from us now comes from a new connection.
        if let Some(o) = call.peers[side.other().index()].as_mut() {
            o.rebase.iter_mut().for_each(Rebase::reset);
        }
        drive(&ctx, call, now);
        self.next_wake = self.next_wake.min(call_deadline(call));
        Ok(answer.to_sdp_string())
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
            tcp: &self.tcp,
            events: &self.events,
            stats: &shared.stats,
            grace: self.config.drop_grace,
        };
        // Measured before the connections close below.
        let quality = quality_of(&call);
        for side in [Side::Customer, Side::Agent] {
            if let Some(mut p) = call.peers[side.index()].take() {
                // Graceful close: RTCP BYE and DTLS close_notify tell the
                // browser at once instead of after its ICE timeout.
                let _ = p.rtc.close();
                while let Ok(Output::Transmit(t)) = p.rtc.poll_output() {
                    send(&ctx, &t);
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
        let mut rec = call.recorder.finish()?;
        rec.quality = quality;
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

/// Both sides' latest figures and summaries. A side that left keeps no figures now.
fn quality_of(call: &Call) -> CallQuality {
    let now = Instant::now();
    let side = |s: Side| {
        let p = call.peers[s as usize].as_ref();
        SideQuality {
            now: p.map(|p| p.meter.latest().clone()),
            summary: p
                .map(|p| p.meter.summary(now))
                .or_else(|| call.left[s as usize].as_ref().map(|m| m.summary(now)))
                .unwrap_or_default(),
        }
    };
    CallQuality {
        customer: side(Side::Customer),
        agent: side(Side::Agent),
    }
}
