//! One relay task: a UDP socket, its share of ICE-TCP connections, and the str0m
//! `Rtc` of every call given to it. Nothing on the media path is shared with other
//! tasks but atomic counters, so shards scale with cores.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output, Rtc};
use tokio::sync::mpsc;

use super::call::{call_deadline, drive, emit, reap, send, Call, Ctx, Peer, Rebase};
use super::quality::{CallQuality, Meter, SideQuality};
use super::recorder::CallRecorder;
use super::relay::{Cmd, Gauges};
use super::tcp::{TcpConn, TcpIn};
use super::{MediaConfig, MediaEvent, Recording, Side};

/// How many ended calls are remembered for idempotent `end_call`.
const ENDED_KEPT: usize = 10_000;
/// How long a TCP connection may stay unclaimed by a call side.
const TCP_UNCLAIMED: Duration = Duration::from_secs(10);
const PRUNE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Shard {
    /// The sockets, connections and channels every call's work uses (the UDP
    /// socket, ICE-TCP connections, events, the counters shared by all shards).
    pub(super) io: Ctx,
    /// Our UDP and (when on) TCP candidates' addresses.
    pub(super) candidate_addr: SocketAddr,
    pub(super) tcp_addr: Option<SocketAddr>,
    pub(super) config: MediaConfig,
    /// This shard's own calls and peers now.
    pub(super) gauges: Arc<Gauges>,
    pub(super) calls: HashMap<String, Call>,
    /// Recently ended calls: refuse joins, and make `end_call` idempotent.
    /// Bounded; older ended calls are still protected because their WebM
    /// exists and is never overwritten.
    pub(super) ended: HashMap<String, Option<Recording>>,
    pub(super) ended_order: std::collections::VecDeque<String>,
    /// (TCP?, remote address) -> (call, side), the fast path of demultiplexing.
    pub(super) by_source: HashMap<(bool, SocketAddr), (String, Side)>,
    /// Earliest peer deadline (or periodic check) the loop must wake for.
    pub(super) next_wake: Instant,
    /// When [`Shard::prune`] runs next.
    pub(super) next_prune: Instant,
}

impl Shard {
    /// Runs until every `Relay` handle is gone (the command channel closes).
    pub(super) async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
        mut tcp_rx: mpsc::Receiver<TcpIn>,
    ) {
        let mut buf = vec![0u8; 2048];
        loop {
            let wake = tokio::time::Instant::from_std(self.next_wake);
            tokio::select! {
                r = self.io.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        let to = self.candidate_addr;
                        self.on_packet(Protocol::Udp, source, to, &buf[..n]);
                    }
                    // ICMP port unreachable from a closed browser shows up as
                    // an error on some platforms; it's not fatal.
                    Err(e) => tracing::debug!("media socket recv: {e}"),
                },
                cmd = cmd_rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => return,
                },
                Some(tcp) = tcp_rx.recv() => match tcp {
                    TcpIn::Opened(source, tx) => {
                        let opened = Instant::now();
                        self.io.tcp.insert(source, TcpConn { tx, opened });
                    }
                    TcpIn::Packet(source, data) => {
                        if let Some(to) = self.tcp_addr {
                            if !self.on_packet(Protocol::Tcp, source, to, &data) {
                                // Not a packet of any call: whoever it is, close it.
                                self.io.tcp.remove(&source);
                            }
                        }
                    }
                    TcpIn::Closed(source) => {
                        self.io.tcp.remove(&source);
                    }
                },
                _ = tokio::time::sleep_until(wake) => {},
            }
            if Instant::now() >= self.next_wake {
                self.on_timers();
            }
        }
    }

    /// One packet from a browser, to the `Rtc` it belongs to. False if it belongs
    /// to none.
    fn on_packet(
        &mut self,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let stats = &*self.io.stats;
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
        let ctx = &self.io;
        let call = self.calls.get_mut(&call_id).expect("found above");
        let peer = call.peers[side.index()].as_mut().expect("found above");
        peer.last_rx = now;
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(call_id, ?side, "rtc input: {e}");
            peer.rtc.disconnect();
        }
        drive(ctx, call, now);
        self.next_wake = self.next_wake.min(call_deadline(call));
        reap(ctx, call, now);
        true
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let ctx = &self.io;
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
                drive(ctx, call, now);
            }
            for p in call.peers.iter_mut().flatten() {
                if p.meter.due(now) {
                    p.meter.sample(now, p.connected, p.lost_since.is_some());
                }
            }
            reap(ctx, call, now);
            next = next.min(call_deadline(call));
        }
        self.update_gauges();
        if now >= self.next_prune {
            self.prune(now);
        }
        self.next_wake = next.max(now + Duration::from_millis(1));
    }

    /// Forgets source addresses of sides that are gone and closes the TCP connections
    /// no call side has claimed. Once a second, not at every wake: it walks every call,
    /// and a stale source entry is harmless (each use is checked with `accepts`).
    fn prune(&mut self, now: Instant) {
        self.next_prune = now + PRUNE_EVERY;
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
        let claimed: std::collections::HashSet<SocketAddr> = self
            .by_source
            .keys()
            .filter(|(tcp, _)| *tcp)
            .map(|(_, a)| *a)
            .collect();
        self.io
            .tcp
            .retain(|a, c| claimed.contains(a) || now - c.opened < TCP_UNCLAIMED);
    }

    /// Each command updates the gauges before replying, so a caller reading
    /// `stats()` after the reply sees the change.
    fn on_cmd(&mut self, cmd: Cmd) {
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
                self.update_gauges();
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
                let r = self.join(&call_id, side, *offer, fingerprint, *fresh);
                self.update_gauges();
                let _ = reply.send(r);
            }
            Cmd::Quality { call_id, reply } => {
                let _ = reply.send(self.calls.get(&call_id).map(quality_of));
            }
            Cmd::End { call_id, reply } => {
                let r = self.end(&call_id);
                self.update_gauges();
                let _ = reply.send(r);
            }
        }
    }

    fn update_gauges(&self) {
        let peers = self
            .calls
            .values()
            .map(|c| c.peers.iter().flatten().count() as u64)
            .sum();
        self.gauges.peers.store(peers, Relaxed);
        self.gauges.calls.store(self.calls.len() as u64, Relaxed);
    }

    fn join(
        &mut self,
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
        let ctx = &self.io;
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
                drive(ctx, call, now);
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
        drive(ctx, call, now);
        self.next_wake = self.next_wake.min(call_deadline(call));
        Ok(answer.to_sdp_string())
    }

    fn end(&mut self, call_id: &str) -> anyhow::Result<Option<Recording>> {
        if let Some(r) = self.ended.get(call_id) {
            return Ok(r.clone());
        }
        let Some(mut call) = self.calls.remove(call_id) else {
            return Ok(None);
        };
        let ctx = &self.io;
        // Measured before the connections close below.
        let quality = quality_of(&call);
        for side in [Side::Customer, Side::Agent] {
            if let Some(mut p) = call.peers[side.index()].take() {
                // Graceful close: RTCP BYE and DTLS close_notify tell the
                // browser at once instead of after its ICE timeout.
                let _ = p.rtc.close();
                while let Ok(Output::Transmit(t)) = p.rtc.poll_output() {
                    send(ctx, &t);
                }
                if p.connected {
                    emit(
                        ctx,
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
