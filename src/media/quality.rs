//! Connection quality of one side, from the relay's own view of it: what arrives from
//! the browser (bitrate, video frames), the loss str0m measures on it, and the round
//! trip from RTCP. Sampled once a second; the agent's console shows the latest
//! sample, and the call keeps a summary of every sample.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Below this video bitrate (kbit/s) a face and a document can't be judged.
pub const POOR_VIDEO_KBPS: u32 = 100;
/// Above this loss (%) the picture breaks up.
pub const POOR_LOSS_PCT: f64 = 10.0;
/// No video frame for this long is a freeze.
const FREEZE: Duration = Duration::from_millis(1000);
const SAMPLE: Duration = Duration::from_secs(1);

/// One side's connection now.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LinkQuality {
    /// "connecting", "connected" or "reconnecting".
    pub state: &'static str,
    /// "udp" or "tcp": how this side reaches the relay (through TURN it is the TURN
    /// server's relayed address, seen as udp).
    pub transport: Option<&'static str>,
    pub rtt_ms: Option<u32>,
    /// Packets lost on the way from this side to the relay, in % (last report).
    pub loss_pct: Option<f64>,
    /// Media received from this side over the last second.
    pub video_kbps: u32,
    pub audio_kbps: u32,
    pub video_fps: u32,
    pub frozen: bool,
    /// Too poor to judge a face or a document: frozen, too little video, or too lossy.
    pub poor: bool,
}

/// Every sample of one side, summed up for the call's record.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct QualitySummary {
    /// Seconds sampled while connected.
    pub seconds: u32,
    pub video_kbps_min: Option<u32>,
    pub video_kbps_avg: Option<u32>,
    pub loss_pct_avg: Option<f64>,
    pub loss_pct_max: Option<f64>,
    pub rtt_ms_avg: Option<u32>,
    pub rtt_ms_max: Option<u32>,
    /// Times the video stopped for a second or more while connected, and how long in all.
    pub freezes: u32,
    pub frozen_ms: u64,
    /// Times the connection was lost and came back within the grace period.
    pub reconnections: u32,
    pub transport: Option<&'static str>,
}

/// Both sides of a call.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CallQuality {
    pub customer: SideQuality,
    pub agent: SideQuality,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SideQuality {
    pub now: Option<LinkQuality>,
    pub summary: QualitySummary,
}

/// Collects one side's figures between samples.
#[derive(Debug)]
pub struct Meter {
    next_sample: Instant,
    video_bytes: u64,
    audio_bytes: u64,
    video_frames: u32,
    last_video: Option<Instant>,
    frozen_since: Option<Instant>,
    loss: Option<f64>,
    rtt: Option<Duration>,
    transport: Option<&'static str>,
    latest: LinkQuality,
    summary: QualitySummary,
    loss_sum: f64,
    loss_n: u32,
    rtt_sum: u64,
    rtt_n: u32,
    kbps_sum: u64,
}

impl Meter {
    pub fn new(now: Instant) -> Meter {
        Meter {
            next_sample: now + SAMPLE,
            video_bytes: 0,
            audio_bytes: 0,
            video_frames: 0,
            last_video: None,
            frozen_since: None,
            loss: None,
            rtt: None,
            transport: None,
            latest: LinkQuality {
                state: "connecting",
                ..LinkQuality::default()
            },
            summary: QualitySummary::default(),
            loss_sum: 0.0,
            loss_n: 0,
            rtt_sum: 0,
            rtt_n: 0,
            kbps_sum: 0,
        }
    }

    pub fn on_media(&mut self, video: bool, bytes: usize, now: Instant) {
        if video {
            self.video_bytes += bytes as u64;
            self.video_frames += 1;
            self.last_video = Some(now);
        } else {
            self.audio_bytes += bytes as u64;
        }
    }

    /// Loss as a fraction (0..1), as str0m reports it; kept in % to one decimal.
    pub fn on_loss(&mut self, fraction: f32) {
        self.loss = Some((fraction.clamp(0.0, 1.0) as f64 * 1000.0).round() / 10.0);
    }

    pub fn on_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    pub fn on_transport(&mut self, tcp: bool) {
        let t = if tcp { "tcp" } else { "udp" };
        self.transport = Some(t);
        self.summary.transport = Some(t);
    }

    pub fn on_reconnected(&mut self) {
        self.summary.reconnections += 1;
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_sample
    }

    /// Closes the second: the latest figures, and the summary when connected.
    pub fn sample(&mut self, now: Instant, connected: bool, lost: bool) {
        let secs = now
            .saturating_duration_since(self.next_sample - SAMPLE)
            .as_secs_f64()
            .max(0.001);
        self.next_sample = now + SAMPLE;
        let kbps = |bytes: u64| (bytes as f64 * 8.0 / 1000.0 / secs).round() as u32;
        let video_kbps = kbps(std::mem::take(&mut self.video_bytes));
        let audio_kbps = kbps(std::mem::take(&mut self.audio_bytes));
        let video_fps = (std::mem::take(&mut self.video_frames) as f64 / secs).round() as u32;
        let state = match (connected, lost) {
            (_, true) => "reconnecting",
            (true, false) => "connected",
            (false, false) => "connecting",
        };
        let live = state == "connected";
        let since_video = self.last_video.map(|t| now.saturating_duration_since(t));
        let frozen = live && since_video.is_none_or(|d| d >= FREEZE);
        match (frozen, self.frozen_since) {
            (true, None) => {
                self.frozen_since = Some(now);
                self.summary.freezes += 1;
            }
            (false, Some(since)) => {
                self.summary.frozen_ms += now.saturating_duration_since(since).as_millis() as u64;
                self.frozen_since = None;
            }
            _ => {}
        }
        let loss = self.loss.take();
        let rtt_ms = self.rtt.map(|r| r.as_millis() as u32);
        self.latest = LinkQuality {
            state,
            transport: self.transport,
            rtt_ms,
            loss_pct: loss,
            video_kbps,
            audio_kbps,
            video_fps,
            frozen,
            poor: live
                && (frozen || video_kbps < POOR_VIDEO_KBPS || loss.unwrap_or(0.0) > POOR_LOSS_PCT),
        };
        if !live {
            return;
        }
        let s = &mut self.summary;
        s.seconds += 1;
        s.video_kbps_min = Some(s.video_kbps_min.map_or(video_kbps, |m| m.min(video_kbps)));
        self.kbps_sum += video_kbps as u64;
        s.video_kbps_avg = Some((self.kbps_sum / s.seconds as u64) as u32);
        if let Some(l) = loss {
            self.loss_sum += l;
            self.loss_n += 1;
            s.loss_pct_avg = Some((self.loss_sum / self.loss_n as f64 * 10.0).round() / 10.0);
            s.loss_pct_max = Some(s.loss_pct_max.map_or(l, |m| m.max(l)));
        }
        if let Some(r) = rtt_ms {
            self.rtt_sum += r as u64;
            self.rtt_n += 1;
            s.rtt_ms_avg = Some((self.rtt_sum / self.rtt_n as u64) as u32);
            s.rtt_ms_max = Some(s.rtt_ms_max.map_or(r, |m| m.max(r)));
        }
    }

    pub fn latest(&self) -> &LinkQuality {
        &self.latest
    }

    /// The summary, with a freeze still going counted up to `now`.
    pub fn summary(&self, now: Instant) -> QualitySummary {
        let mut s = self.summary.clone();
        if let Some(since) = self.frozen_since {
            s.frozen_ms += now.saturating_duration_since(since).as_millis() as u64;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_second_then_a_frozen_one() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        for i in 0..25 {
            m.on_media(true, 4_000, t0 + Duration::from_millis(i * 40));
        }
        m.on_media(false, 4_000, t0);
        m.on_loss(0.02);
        m.on_rtt(Duration::from_millis(150));
        m.sample(t0 + SAMPLE, true, false);
        let q = m.latest().clone();
        assert_eq!(q.state, "connected");
        assert_eq!(q.video_kbps, 800);
        assert_eq!(q.audio_kbps, 32);
        assert_eq!(q.video_fps, 25);
        assert_eq!(q.rtt_ms, Some(150));
        assert_eq!(q.loss_pct, Some(2.0));
        assert!(!q.frozen && !q.poor);

        // Nothing for two seconds: frozen, poor, and one freeze of 1 s so far.
        m.sample(t0 + SAMPLE * 2, true, false);
        m.sample(t0 + SAMPLE * 3, true, false);
        assert!(m.latest().frozen && m.latest().poor);
        let s = m.summary(t0 + SAMPLE * 3);
        assert_eq!(s.freezes, 1);
        assert_eq!(s.frozen_ms, 1000);
        assert_eq!(s.seconds, 3);
        assert_eq!(s.video_kbps_min, Some(0));
        assert_eq!(s.video_kbps_avg, Some(266));
        assert_eq!(s.rtt_ms_max, Some(150));

        // While reconnecting nothing is summed, and it is not "poor" but "reconnecting".
        m.sample(t0 + SAMPLE * 4, true, true);
        assert_eq!(m.latest().state, "reconnecting");
        assert!(!m.latest().poor);
        assert_eq!(m.summary(t0 + SAMPLE * 4).seconds, 3);
    }
}
