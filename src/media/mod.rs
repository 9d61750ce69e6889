//! Media relay and call recorder.
//!
//! Each browser (customer, agent) holds one WebRTC connection to this server.
//! [`Relay`] terminates both with str0m (ICE-lite, DTLS-SRTP; one UDP port and one
//! TCP port, for networks without UDP, per relay shard), forwards each side's audio
//! and video to the other side, and records the call into `<recordings_dir>/<call_id>.webm` from the frames it
//! receives, with a sidecar `<call_id>.json`.

mod call;
mod quality;
mod recorder;
mod relay;
mod shard;
pub mod sides;
mod tcp;
pub mod turn;
pub mod webm;
pub mod webm_read;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub use quality::{CallQuality, LinkQuality, QualitySummary, SideQuality};
pub use relay::Relay;

#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// One UDP port for all calls, e.g. `0.0.0.0:3478` (or `127.0.0.1:0` in tests).
    pub udp_bind: SocketAddr,
    /// The address put in our ICE candidate (what browsers send to).
    pub advertised_ip: IpAddr,
    /// The ICE-TCP port (RFC 4571) for browsers that can't use UDP; None: UDP only.
    pub tcp_bind: Option<SocketAddr>,
    pub recordings_dir: PathBuf,
    /// A side whose media is lost may come back (an ICE restart, the network
    /// returning) within this long, in the same call and recording.
    pub drop_grace: std::time::Duration,
    /// Relay tasks, each on its own ports (`udp_bind`'s port + i, and the same on
    /// TCP); a call lives on one. 1 keeps a single port.
    pub shards: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Side {
    Customer,
    Agent,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Customer => Side::Agent,
            Side::Agent => Side::Customer,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Customer => "customer",
            Side::Agent => "agent",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub enum MediaEvent {
    /// ICE and DTLS are up for this side, or its lost media came back.
    Connected { call_id: String, side: Side },
    /// Media lost (ICE disconnected, no packets for ~5 s), DTLS closed, or the call
    /// ended. A lost side may still come back with `Connected` within the grace.
    Disconnected { call_id: String, side: Side },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Recording {
    /// `<recordings_dir>/<call_id>.webm`
    pub path: PathBuf,
    /// `<recordings_dir>/<call_id>.json`
    pub sidecar: PathBuf,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub bytes: u64,
    /// Both sides' connection quality over the call.
    pub quality: CallQuality,
}

/// Counters for benchmarks. Packets and bytes are UDP datagrams on the
/// relay's socket; frames are whole audio/video frames (str0m depacketises).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RelayStats {
    /// Relay tasks (one per core by default).
    pub shards: u64,
    pub calls: u64,
    pub peers: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub frames_forwarded: u64,
    pub bytes_forwarded: u64,
    pub frames_recorded: u64,
}
