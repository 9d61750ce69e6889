//! One call inside the relay: its two peers, and what the loop does for it on each
//! turn (drive each side's WebRTC state, forward media to the other side with
//! continuous RTP times, record what arrives, and notice a side gone silent).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Transmit};
use str0m::{Event, IceConnectionState, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

use super::quality::Meter;
use super::recorder::{CallRecorder, Incoming, Kind};
use super::relay::{Counters, CONNECT_TIMEOUT, PLI_INTERVAL, SILENCE_TIMEOUT};
use super::{MediaEvent, Side};

pub(super) struct Peer {
    pub(super) rtc: Rtc,
    pub(super) connected: bool,
    pub(super) joined: Instant,
    pub(super) last_rx: Instant,
    /// When str0m next wants `Input::Timeout`.
    pub(super) deadline: Instant,
    pub(super) audio_mid: Option<Mid>,
    pub(super) video_mid: Option<Mid>,
    pub(super) last_pli: Option<Instant>,
    /// RTP time continuity of what we send to this side, per kind.
    pub(super) rebase: [Rebase; 2],
    /// The browser's DTLS fingerprint line: a later offer with the same one comes
    /// from the same page (an ICE restart), not from a reload.
    pub(super) fingerprint: String,
    /// Since when this side's media has been lost (ICE down or silence); it may come
    /// back within the grace period, in the same call and recording.
    pub(super) lost_since: Option<Instant>,
    /// ICE reports a working path.
    pub(super) ice_ok: bool,
    pub(super) meter: Meter,
}

/// Keeps the RTP time we send on one m-line continuous when the sender
/// behind it reconnects (a reload brings a new random RTP time base, and a
/// jump on an existing stream stalls the receiving browser's jitter buffer).
#[derive(Default, Clone, Copy)]
pub(super) struct Rebase {
    /// (first incoming time of this sender connection, outgoing time it maps to)
    pub(super) anchor: Option<(u64, u64)>,
    /// Last outgoing time and when it was sent.
    pub(super) last: Option<(u64, Instant)>,
}

impl Rebase {
    /// The sender reconnected: the next frame starts a new anchor.
    pub(super) fn reset(&mut self) {
        self.anchor = None;
    }

    pub(super) fn map(&mut self, t: u64, rate: u64, now: Instant) -> u64 {
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
    pub(super) fn mid(&self, kind: Kind) -> Option<Mid> {
        match kind {
            Kind::Audio => self.audio_mid,
            Kind::Video => self.video_mid,
        }
    }

    pub(super) fn kind_of(&self, mid: Mid) -> Option<Kind> {
        if Some(mid) == self.audio_mid {
            Some(Kind::Audio)
        } else if Some(mid) == self.video_mid {
            Some(Kind::Video)
        } else {
            None
        }
    }

    /// Asks this peer's browser for a video keyframe (throttled).
    pub(super) fn request_keyframe(&mut self, now: Instant) {
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

pub(super) struct Call {
    pub(super) id: String,
    pub(super) recorder: CallRecorder,
    pub(super) peers: [Option<Peer>; 2],
    /// The quality meter of a side that left, kept for the call's summary and
    /// carried on if the side joins again.
    pub(super) left: [Option<Meter>; 2],
}

/// What the loop's helpers need besides the call they work on.
pub(super) struct Ctx {
    pub(super) socket: UdpSocket,
    /// Open ICE-TCP connections by the browser's address.
    pub(super) tcp: HashMap<SocketAddr, super::tcp::TcpConn>,
    pub(super) events: broadcast::Sender<MediaEvent>,
    pub(super) stats: std::sync::Arc<Counters>,
    /// How long a lost side may take to come back before it has dropped off.
    pub(super) grace: Duration,
}

pub(super) fn call_deadline(call: &Call) -> Instant {
    call.peers
        .iter()
        .flatten()
        .map(|p| p.deadline)
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
}

pub(super) fn send(ctx: &Ctx, t: &Transmit) {
    let data: &[u8] = &t.contents;
    // If the socket buffer (or a TCP connection's queue) is full the packet is lost,
    // as on the wire; retransmission and keyframe requests repair it.
    let sent = match t.proto {
        Protocol::Udp => ctx.socket.try_send_to(data, t.destination).is_ok(),
        Protocol::Tcp if super::tcp::frame_len_ok(data.len()) => ctx
            .tcp
            .get(&t.destination)
            .is_some_and(|conn| conn.tx.try_send(data.to_vec()).is_ok()),
        _ => false,
    };
    if sent {
        ctx.stats.packets_out.fetch_add(1, Relaxed);
        ctx.stats.bytes_out.fetch_add(data.len() as u64, Relaxed);
    }
}

pub(super) fn emit(ctx: &Ctx, ev: MediaEvent) {
    tracing::info!(?ev, "media event");
    let _ = ctx.events.send(ev);
}

/// Polls both sides until neither has anything more to do. Media from one
/// side is written into the other side's `Rtc`, which then needs polling.
pub(super) fn drive(ctx: &Ctx, call: &mut Call, now: Instant) {
    for _ in 0..4 {
        let a = drive_side(ctx, call, Side::Customer, now);
        let b = drive_side(ctx, call, Side::Agent, now);
        if !a && !b {
            break;
        }
    }
}

/// Returns true if something was handed to the other side.
pub(super) fn drive_side(ctx: &Ctx, call: &mut Call, side: Side, now: Instant) -> bool {
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
            Output::Transmit(t) => send(ctx, &t),
            Output::Event(ev) => match ev {
                Event::Connected => {
                    me.connected = true;
                    me.ice_ok = true;
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
                // A path lost is not yet a drop: the browser restarts ICE, or the
                // network comes back, within the grace period (see `reap`).
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    me.ice_ok = false;
                    mark_lost(ctx, &call.id, side, me, now);
                }
                Event::IceConnectionStateChange(
                    IceConnectionState::Connected | IceConnectionState::Completed,
                ) => {
                    me.ice_ok = true;
                    if recover(ctx, &call.id, side, me, now) {
                        if let Some(o) = other.as_mut() {
                            o.request_keyframe(now);
                            touched = true;
                        }
                    }
                }
                Event::Closed => me.rtc.disconnect(),
                Event::PeerStats(s) => {
                    if let Some(rtt) = s.rtt {
                        me.meter.on_rtt(rtt);
                    }
                    if let Some(pair) = &s.selected_candidate_pair {
                        me.meter.on_transport(pair.protocol == Protocol::Tcp);
                    }
                }
                Event::MediaIngressStats(s) => {
                    if let Some(loss) = s.loss {
                        ctx.stats.loss.observe(loss.clamp(0.0, 1.0) as f64);
                        if Some(s.mid) == me.video_mid {
                            me.meter.on_loss(loss);
                        }
                    }
                }
                Event::MediaEgressStats(s) => {
                    if let Some(rtt) = s.rtt {
                        me.meter.on_rtt(rtt);
                    }
                }
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
                    me.meter.on_media(kind == Kind::Video, d.data.len(), now);
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

pub(super) fn record(ctx: &Ctx, rec: &mut CallRecorder, side: Side, kind: Kind, d: &MediaData) {
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
pub(super) fn forward(ctx: &Ctx, to: &mut Peer, kind: Kind, d: &MediaData) -> bool {
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

/// A side's media is lost: told once, so the call's status can wait out the grace.
fn mark_lost(ctx: &Ctx, call_id: &str, side: Side, p: &mut Peer, now: Instant) {
    if p.connected && p.lost_since.is_none() {
        p.lost_since = Some(now);
        tracing::info!(
            call_id,
            ?side,
            "media lost; waiting for the side to come back"
        );
        emit(
            ctx,
            MediaEvent::Disconnected {
                call_id: call_id.to_string(),
                side,
            },
        );
    }
}

/// A lost side is back (ICE works and packets arrive again). True if it was lost.
fn recover(ctx: &Ctx, call_id: &str, side: Side, p: &mut Peer, now: Instant) -> bool {
    let Some(since) = p.lost_since else {
        return false;
    };
    if !p.ice_ok || now.saturating_duration_since(p.last_rx) > Duration::from_secs(1) {
        return false;
    }
    p.lost_since = None;
    p.meter.on_reconnected();
    tracing::info!(
        call_id,
        ?side,
        after_ms = (now - since).as_millis() as u64,
        "media back"
    );
    emit(
        ctx,
        MediaEvent::Connected {
            call_id: call_id.to_string(),
            side,
        },
    );
    // The picture broke while it was away: start it again at once.
    p.request_keyframe(now);
    true
}

/// Watches each side: silence marks it lost, media again brings it back, and a side
/// lost for longer than the grace period (or closed, or never connected) is dropped,
/// with the recording flushed so everything received from it is on disk.
pub(super) fn reap(ctx: &Ctx, call: &mut Call, now: Instant) {
    for side in [Side::Customer, Side::Agent] {
        let slot = &mut call.peers[side.index()];
        let Some(p) = slot.as_mut() else { continue };
        if p.connected && now - p.last_rx > SILENCE_TIMEOUT {
            mark_lost(ctx, &call.id, side, p, now);
        } else if recover(ctx, &call.id, side, p, now) {
            if let Some(o) = call.peers[side.other().index()].as_mut() {
                o.request_keyframe(now);
            }
        }
        let Some(p) = call.peers[side.index()].as_ref() else {
            continue;
        };
        let gone = !p.rtc.is_alive()
            || p.lost_since.is_some_and(|t| now - t > ctx.grace)
            || (!p.connected && now - p.joined > CONNECT_TIMEOUT);
        if !gone {
            continue;
        }
        let p = call.peers[side.index()].take().expect("checked");
        call.recorder.flush();
        call.left[side.index()] = Some(p.meter);
        if p.connected && p.lost_since.is_none() {
            emit(
                ctx,
                MediaEvent::Disconnected {
                    call_id: call.id.clone(),
                    side,
                },
            );
        } else if !p.connected {
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
