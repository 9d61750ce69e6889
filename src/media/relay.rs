//! The relay: a handle over one or more shards. Each shard is a tokio task that owns
//! a UDP socket, a TCP port for ICE-TCP, and the str0m `Rtc` of every call given to
//! it (see `shard.rs`); a call lives on one shard, chosen from its id, so its two
//! sides meet there and nothing on the media path takes a lock. One shard per core
//! lets a process relay on every core.
//!
//! str0m is sans-IO: we feed it datagrams (from UDP, or framed on TCP) and time,
//! and poll it for datagrams to send, timeouts and events. The public `Relay`
//! handle talks to the shards over channels. Incoming datagrams are matched to
//! their `Rtc` with `Rtc::accepts` (ICE ufrag for STUN, then the remote address),
//! with a source-address cache so the common case is one hash lookup.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;
use str0m::change::SdpOffer;
use str0m::net::TcpType;
use str0m::{Candidate, Rtc};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::call::Ctx;
use super::quality::CallQuality;
use super::shard::Shard;
use super::{MediaConfig, MediaEvent, Recording, RelayStats, Side};

/// A side that sends nothing (not even STUN consent checks, which browsers
/// send every few seconds) for this long is gone.
pub(super) const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A side that joined but never completed ICE+DTLS is dropped after this.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Keyframe requests towards one sender are spaced at least this far apart.
pub(super) const PLI_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    shards: Vec<ShardHandle>,
    events: broadcast::Sender<MediaEvent>,
    stats: Arc<Counters>,
}

/// How the handle reaches one shard.
struct ShardHandle {
    cmd: mpsc::UnboundedSender<Cmd>,
    local_addr: SocketAddr,
    candidate_addr: SocketAddr,
    /// The passive ICE-TCP candidate, when TCP is on.
    tcp_addr: Option<SocketAddr>,
    gauges: Arc<Gauges>,
}

/// A shard's calls and peers now.
#[derive(Default)]
pub(super) struct Gauges {
    pub(super) calls: AtomicU64,
    pub(super) peers: AtomicU64,
}

pub(super) struct Counters {
    pub(super) packets_in: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) packets_out: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) frames_forwarded: AtomicU64,
    pub(super) bytes_forwarded: AtomicU64,
    pub(super) frames_recorded: AtomicU64,
    /// Each side's packet loss towards the relay, as str0m reports it about once a
    /// second per media line (a fraction, 0 to 1). A report, not a packet: no lock on
    /// the packet path.
    pub(super) loss: Histogram,
}

/// Loss fractions the histogram tells apart: 5 % is where a picture breaks up.
const LOSS_BUCKETS: [f64; 7] = [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            packets_in: AtomicU64::default(),
            bytes_in: AtomicU64::default(),
            packets_out: AtomicU64::default(),
            bytes_out: AtomicU64::default(),
            frames_forwarded: AtomicU64::default(),
            bytes_forwarded: AtomicU64::default(),
            frames_recorded: AtomicU64::default(),
            loss: Histogram::new(LOSS_BUCKETS),
        }
    }
}

pub(super) enum Cmd {
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

impl Relay {
    /// Binds each shard's ports and starts its task: `config.shards` of them (at
    /// least one); shard `i` listens on the configured ports plus `i` (or on free
    /// ports when the configured port is 0).
    pub async fn start(config: MediaConfig) -> anyhow::Result<Relay> {
        crate::files::private_dir(&config.recordings_dir)
            .with_context(|| format!("creating {}", config.recordings_dir.display()))?;
        let (events, _) = broadcast::channel(1024);
        let stats = Arc::new(Counters::default());
        let mut shards = vec![];
        for i in 0..config.shards.max(1) {
            let (handle, shard, cmd_rx, tcp_rx) =
                Self::bind_shard(&config, i, &events, &stats).await?;
            tokio::spawn(shard.run(cmd_rx, tcp_rx));
            shards.push(handle);
        }
        Ok(Relay {
            shared: Arc::new(Shared {
                shards,
                events,
                stats,
            }),
        })
    }

    async fn bind_shard(
        config: &MediaConfig,
        i: usize,
        events: &broadcast::Sender<MediaEvent>,
        stats: &Arc<Counters>,
    ) -> anyhow::Result<(
        ShardHandle,
        Shard,
        mpsc::UnboundedReceiver<Cmd>,
        mpsc::Receiver<super::tcp::TcpIn>,
    )> {
        let nth = |mut addr: SocketAddr| -> anyhow::Result<SocketAddr> {
            if addr.port() != 0 {
                let port = addr.port() as usize + i;
                anyhow::ensure!(port <= u16::MAX as usize, "no port {port} for shard {i}");
                addr.set_port(port as u16);
            }
            Ok(addr)
        };
        let udp_bind = nth(config.udp_bind)?;
        let socket = UdpSocket::bind(udp_bind)
            .await
            .with_context(|| format!("binding media UDP {udp_bind}"))?;
        socket_buffers(&socket);
        let local_addr = socket.local_addr()?;
        let candidate_addr = SocketAddr::new(config.advertised_ip, local_addr.port());
        // Fail now, not at the first join, if the address can't be a candidate.
        Candidate::host(candidate_addr, "udp").map_err(|e| anyhow!("advertised_ip: {e}"))?;
        let (tcp_in, tcp_rx) = mpsc::channel(super::tcp::QUEUE);
        let tcp_addr = match config.tcp_bind {
            Some(bind) => {
                let bind = nth(bind)?;
                let listener = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding media TCP {bind}"))?;
                let port = listener.local_addr()?.port();
                tokio::spawn(super::tcp::listen(listener, tcp_in));
                Some(SocketAddr::new(config.advertised_ip, port))
            }
            None => None,
        };
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let gauges = Arc::new(Gauges::default());
        let shard = Shard {
            io: Ctx {
                socket,
                tcp: HashMap::new(),
                events: events.clone(),
                stats: stats.clone(),
                grace: config.drop_grace,
            },
            candidate_addr,
            tcp_addr,
            config: config.clone(),
            gauges: gauges.clone(),
            calls: HashMap::new(),
            ended: HashMap::new(),
            ended_order: Default::default(),
            by_source: HashMap::new(),
            next_wake: Instant::now(),
            next_prune: Instant::now(),
        };
        let handle = ShardHandle {
            cmd,
            local_addr,
            candidate_addr,
            tcp_addr,
            gauges,
        };
        Ok((handle, shard, cmd_rx, tcp_rx))
    }

    /// The shard a call lives on: the same for every process and every start, so
    /// the call's two sides always meet.
    fn shard(&self, call_id: &str) -> &ShardHandle {
        // FNV-1a: stable and spreads short decimal ids evenly.
        let hash = call_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        &self.shared.shards[(hash % self.shared.shards.len() as u64) as usize]
    }

    /// The first shard's UDP address (of all, with `shards = 1`).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.shards[0].local_addr
    }

    /// What browsers are told to reach: the first shard's UDP candidate and, when TCP
    /// is on, its ICE-TCP candidate (shard `i` is on these ports + `i`).
    pub fn advertised(&self) -> (SocketAddr, Option<SocketAddr>) {
        let first = &self.shared.shards[0];
        (first.candidate_addr, first.tcp_addr)
    }

    /// The ICE-TCP candidate's address of the shard `call_id` lives on, when TCP is on.
    pub fn tcp_addr(&self, call_id: &str) -> Option<SocketAddr> {
        self.shard(call_id).tcp_addr
    }

    /// The UDP address of the shard `call_id` lives on.
    pub fn udp_addr(&self, call_id: &str) -> SocketAddr {
        self.shard(call_id).local_addr
    }

    /// Starts a call's recording, with metadata stamped into the WebM (title,
    /// DateUTC, tags CALL_ID / DATE_RECORDED / LOCATION / VKYC_METADATA) and
    /// the sidecar JSON. The customer's position is read from
    /// `metadata.customer_gps` as `{lat, lon}` (or `{latitude, longitude}`).
    /// Opening a call that is already open does nothing.
    pub async fn open_call(&self, call_id: &str, metadata: Value) -> anyhow::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(
            call_id,
            Cmd::Open {
                call_id: call_id.to_string(),
                metadata,
                reply,
            },
        )?;
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
        let shard = self.shard(call_id);
        let candidate = Candidate::host(shard.candidate_addr, "udp").map_err(|e| anyhow!("{e}"))?;
        rtc.add_local_candidate(candidate);
        if let Some(addr) = shard.tcp_addr {
            let tcp = Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            rtc.add_local_candidate(tcp);
        }
        let (reply, rx) = oneshot::channel();
        self.send(
            call_id,
            Cmd::Join {
                call_id: call_id.to_string(),
                side,
                offer: Box::new(offer),
                fingerprint,
                fresh: Box::new(rtc),
                reply,
            },
        )?;
        rx.await?
    }

    /// Both sides' connection quality now and summed up so far; None for a call
    /// that is not open.
    pub async fn quality(&self, call_id: &str) -> anyhow::Result<Option<CallQuality>> {
        let (reply, rx) = oneshot::channel();
        self.send(
            call_id,
            Cmd::Quality {
                call_id: call_id.to_string(),
                reply,
            },
        )?;
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
        self.send(
            call_id,
            Cmd::End {
                call_id: call_id.to_string(),
                reply,
            },
        )?;
        rx.await?
    }

    pub fn stats(&self) -> RelayStats {
        let s = &self.shared.stats;
        let sum = |g: fn(&Gauges) -> &AtomicU64| {
            self.shared
                .shards
                .iter()
                .map(|h| g(&h.gauges).load(Relaxed))
                .sum()
        };
        RelayStats {
            shards: self.shared.shards.len() as u64,
            calls: sum(|g| &g.calls),
            peers: sum(|g| &g.peers),
            packets_in: s.packets_in.load(Relaxed),
            bytes_in: s.bytes_in.load(Relaxed),
            packets_out: s.packets_out.load(Relaxed),
            bytes_out: s.bytes_out.load(Relaxed),
            frames_forwarded: s.frames_forwarded.load(Relaxed),
            bytes_forwarded: s.bytes_forwarded.load(Relaxed),
            frames_recorded: s.frames_recorded.load(Relaxed),
        }
    }

    /// The reported-loss histogram (a handle on the relay's own), for `/metrics`.
    pub fn loss_histogram(&self) -> Histogram {
        self.shared.stats.loss.clone()
    }

    fn send(&self, call_id: &str, cmd: Cmd) -> anyhow::Result<()> {
        self.shard(call_id)
            .cmd
            .send(cmd)
            .map_err(|_| anyhow!("media relay has stopped"))
    }
}

/// Bytes of kernel buffer asked for each way on a shard's UDP socket: at about 350
/// datagrams a second per call, the default (about 208 KiB) holds only milliseconds
/// of a busy shard, and a scheduling hiccup overflows it (measured in BENCHMARKS.md).
/// The kernel caps it at `net.core.rmem_max` / `wmem_max`; raise those to get it all.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

fn socket_buffers(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        let size = SOCKET_BUFFER;
        // SAFETY: a valid open socket, and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!("media socket buffer: {}", std::io::Error::last_os_error());
        }
    }
}
