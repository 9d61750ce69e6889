//! The relay without a browser: two str0m clients on loopback play customer
//! and agent, send fake VP8/Opus frames, and must receive each other's. Also
//! the API's rules: join needs an open call, an ended call can't be joined,
//! end_call is idempotent. The same call over ICE-TCP (RFC 4571 framing), as a
//! browser on a network without UDP makes it.

use std::time::{Duration, Instant};

use serde_json::json;
use std::net::SocketAddr;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use vkyc::media::{MediaConfig, MediaEvent, Relay, Side};

async fn relay(dir: &std::path::Path) -> Relay {
    Relay::start(MediaConfig {
        udp_bind: "127.0.0.1:0".parse().unwrap(),
        advertised_ip: "127.0.0.1".parse().unwrap(),
        tcp_bind: Some("127.0.0.1:0".parse().unwrap()),
        recordings_dir: dir.to_path_buf(),
        drop_grace: Duration::from_secs(20),
        shards: 2,
    })
    .await
    .unwrap()
}

/// How a test client reaches the relay: its UDP port, or a TCP connection to its
/// ICE-TCP port with each packet framed by a two-byte length.
enum Wire {
    Udp(UdpSocket),
    Tcp(TcpStream, SocketAddr),
}

impl Wire {
    async fn open(relay: &Relay, call: &str, tcp: bool) -> (Wire, Candidate) {
        if tcp {
            let to = relay.tcp_addr(call).expect("TCP is on");
            let stream = TcpStream::connect(to).await.unwrap();
            let local = stream.local_addr().unwrap();
            let candidate = Candidate::builder()
                .tcp()
                .host(local)
                .tcptype(TcpType::Active)
                .build()
                .unwrap();
            (Wire::Tcp(stream, to), candidate)
        } else {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let local = sock.local_addr().unwrap();
            (Wire::Udp(sock), Candidate::host(local, "udp").unwrap())
        }
    }

    async fn send(&mut self, t: &Transmit) {
        match self {
            Wire::Udp(sock) => {
                sock.send_to(&t.contents, t.destination).await.unwrap();
            }
            Wire::Tcp(stream, _) => {
                let len = (t.contents.len() as u16).to_be_bytes();
                stream.write_all(&len).await.unwrap();
                stream.write_all(&t.contents).await.unwrap();
            }
        }
    }

    /// One packet as str0m input, or None when nothing came within `wait`.
    async fn recv(&mut self, wait: Duration) -> Option<Receive<'static>> {
        let mut buf = vec![0u8; 2000];
        match self {
            Wire::Udp(sock) => {
                let local = sock.local_addr().unwrap();
                let (n, from) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
                let data: &'static [u8] = Box::leak(buf[..n].to_vec().into_boxed_slice());
                Receive::new(Protocol::Udp, from, local, data).ok()
            }
            Wire::Tcp(stream, from) => {
                let local = stream.local_addr().unwrap();
                let mut len = [0u8; 2];
                tokio::time::timeout(wait, stream.read_exact(&mut len))
                    .await
                    .ok()?
                    .ok()?;
                let n = u16::from_be_bytes(len) as usize;
                stream.read_exact(&mut buf[..n]).await.ok()?;
                let data: &'static [u8] = Box::leak(buf[..n].to_vec().into_boxed_slice());
                Receive::new(Protocol::Tcp, *from, local, data).ok()
            }
        }
    }
}

/// A VP8 keyframe header (640x480) followed by filler.
fn vp8_keyframe() -> Vec<u8> {
    let mut f = vec![0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    f.resize(1200, 0x11);
    f
}

#[derive(Default, Debug)]
struct Received {
    connected: bool,
    audio: usize,
    video: usize,
    /// Video frames received after the plan's outage or ICE restart.
    video_after: usize,
}

/// What a test client does besides sending: which transport, a network outage
/// (from, to) during which nothing goes out or comes in, an ICE restart at a time.
#[derive(Default, Clone, Copy)]
struct Plan {
    tcp: bool,
    outage: Option<(Duration, Duration)>,
    restart_at: Option<Duration>,
}

/// A str0m client (full ICE, controlling) that joins `side`, sends 20 ms audio
/// and ~30 fps video for `dur`, and counts what it receives.
async fn client(relay: Relay, call: &'static str, side: Side, dur: Duration) -> Received {
    client_on(relay, call, side, dur, Plan::default()).await
}

async fn client_on(
    relay: Relay,
    call: &'static str,
    side: Side,
    dur: Duration,
    plan: Plan,
) -> Received {
    let (mut wire, candidate) = Wire::open(&relay, call, plan.tcp).await;
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let answer = relay
        .join(call, side, &offer.to_sdp_string())
        .await
        .unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains(&format!("127.0.0.1 {}", relay.udp_addr(call).port())),
        "{answer}"
    );
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    let start = Instant::now();
    let mut got = Received::default();
    let (mut next_audio, mut next_video) = (start, start);
    let mut restarted = false;
    let mut after = plan.outage.map(|o| o.1).or(plan.restart_at);
    while start.elapsed() < dur {
        let now = Instant::now();
        let down = plan
            .outage
            .is_some_and(|(from, to)| (from..to).contains(&start.elapsed()));
        if plan.restart_at.is_some_and(|at| start.elapsed() >= at) && !restarted {
            // A new network: new ICE credentials, same DTLS session.
            restarted = true;
            let mut api = rtc.sdp_api();
            api.ice_restart(true);
            let (offer, pending) = api.apply().expect("an ICE restart offer");
            let answer = relay
                .join(call, side, &offer.to_sdp_string())
                .await
                .unwrap();
            rtc.sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                .unwrap();
        }
        if after.is_some_and(|a| start.elapsed() >= a) {
            after = None;
            got.video_after = 0;
        }
        if got.connected && now >= next_audio {
            let t = MediaTime::from_millis(next_audio.duration_since(start).as_millis() as u64);
            let w = rtc.writer(audio).unwrap();
            let pt = w.payload_params().next().unwrap().pt();
            w.write(pt, now, t, vec![0xfc; 80]).unwrap();
            next_audio += Duration::from_millis(20);
        }
        if got.connected && now >= next_video {
            let t = MediaTime::from_millis(next_video.duration_since(start).as_millis() as u64);
            let w = rtc.writer(video).unwrap();
            let pt = w.payload_params().next().unwrap().pt();
            w.write(pt, now, t, vp8_keyframe()).unwrap();
            next_video += Duration::from_millis(33);
        }
        let deadline = loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) if !down => wire.send(&t).await,
                Output::Transmit(_) => {}
                Output::Event(Event::Connected) => got.connected = true,
                Output::Event(Event::MediaData(d)) if d.mid == audio => got.audio += 1,
                Output::Event(Event::MediaData(d)) if d.mid == video => {
                    got.video += 1;
                    got.video_after += 1;
                }
                Output::Event(_) => {}
            }
        };
        let wake = deadline.min(Instant::now() + Duration::from_millis(5));
        let wait = wake.saturating_duration_since(Instant::now());
        match wire.recv(wait).await {
            Some(r) if !down => rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap(),
            _ => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_both_ways_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let mut events = relay.events();
    relay
        .open_call("c1", json!({"customer_gps": {"lat": 12.97, "lon": 77.59}}))
        .await
        .unwrap();
    let dur = Duration::from_secs(3);
    let customer = tokio::spawn(client(relay.clone(), "c1", Side::Customer, dur));
    let agent = tokio::spawn(client(relay.clone(), "c1", Side::Agent, dur));
    let (customer, agent) = (customer.await.unwrap(), agent.await.unwrap());
    assert!(customer.connected && agent.connected);
    // Each side got the other's media (most of ~2.5 s of it).
    assert!(
        customer.audio > 50 && customer.video > 40,
        "customer got {customer:?}"
    );
    assert!(agent.audio > 50 && agent.video > 40, "agent got {agent:?}");
    let stats = relay.stats();
    assert_eq!((stats.calls, stats.peers), (1, 2));
    assert!(
        stats.frames_forwarded > 200 && stats.frames_recorded > 200,
        "{stats:?}"
    );
    // The same counters as `/metrics` serves them, with the sides' loss reports.
    let text = vkyc::metrics::Metrics::new(Some(&relay)).encode();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    assert_eq!(value("vkyc_relay_calls"), 1.0);
    assert_eq!(value("vkyc_relay_peers"), 2.0);
    assert!(value("vkyc_relay_packets_received_total") > 200.0, "{text}");
    assert!(
        value("vkyc_relay_received_bytes_total") > 100_000.0,
        "{text}"
    );
    assert!(value("vkyc_relay_sent_bytes_total") > 100_000.0, "{text}");
    assert!(value("vkyc_relay_frames_forwarded_total") > 200.0, "{text}");
    assert!(
        value("vkyc_relay_reported_loss_ratios_count") >= 1.0,
        "{text}"
    );

    let rec = relay.end_call("c1").await.unwrap().expect("a recording");
    assert_eq!(rec.path, dir.path().join("c1.webm"));
    assert!(rec.bytes > 100_000, "{rec:?}");
    assert!((2_000..4_000).contains(&rec.duration_ms), "{rec:?}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec.sidecar).unwrap()).unwrap();
    assert_eq!(sidecar["customer_gps"]["lat"], 12.97);
    assert_eq!(sidecar["duration_ms"], rec.duration_ms);

    let mut seen = vec![];
    while let Ok(ev) = events.try_recv() {
        seen.push(match ev {
            MediaEvent::Connected { side, .. } => ("connected", side),
            MediaEvent::Disconnected { side, .. } => ("disconnected", side),
        });
    }
    for side in [Side::Customer, Side::Agent] {
        assert!(seen.contains(&("connected", side)), "{seen:?}");
        assert!(
            seen.contains(&("disconnected", side)),
            "end_call closes both: {seen:?}"
        );
    }
    assert_eq!(relay.stats().calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_and_records_over_ice_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    relay.open_call("t1", json!({})).await.unwrap();
    let dur = Duration::from_secs(3);
    let tcp = Plan {
        tcp: true,
        ..Plan::default()
    };
    let customer = tokio::spawn(client_on(relay.clone(), "t1", Side::Customer, dur, tcp));
    let agent = tokio::spawn(client_on(relay.clone(), "t1", Side::Agent, dur, tcp));
    let (customer, agent) = (customer.await.unwrap(), agent.await.unwrap());
    assert!(customer.connected && agent.connected);
    assert!(
        customer.video > 40 && agent.video > 40,
        "{customer:?} {agent:?}"
    );
    let rec = relay.end_call("t1").await.unwrap().expect("a recording");
    assert!(rec.bytes > 100_000, "{rec:?}");
    // The call's quality record: both sides measured each second, over TCP.
    for side in [&rec.quality.customer, &rec.quality.agent] {
        assert!(side.summary.seconds >= 1, "{:?}", rec.quality);
        assert_eq!(side.summary.transport, Some("tcp"), "{:?}", rec.quality);
        assert!(
            side.summary.video_kbps_avg.unwrap_or(0) > 100,
            "{:?}",
            rec.quality
        );
    }
}

/// The events the relay reported for one side, in order.
fn side_events(
    events: &mut tokio::sync::broadcast::Receiver<MediaEvent>,
    side: Side,
) -> Vec<&'static str> {
    let mut seen = vec![];
    while let Ok(ev) = events.try_recv() {
        match ev {
            MediaEvent::Connected { side: s, .. } if s == side => seen.push("connected"),
            MediaEvent::Disconnected { side: s, .. } if s == side => seen.push("disconnected"),
            _ => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_connection_and_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let mut events = relay.events();
    relay.open_call("r1", json!({})).await.unwrap();
    let dur = Duration::from_secs(4);
    let restart = Plan {
        restart_at: Some(Duration::from_millis(1500)),
        ..Plan::default()
    };
    let customer = tokio::spawn(client_on(relay.clone(), "r1", Side::Customer, dur, restart));
    let agent = tokio::spawn(client(relay.clone(), "r1", Side::Agent, dur));
    let (customer, agent) = (customer.await.unwrap(), agent.await.unwrap());
    // Media goes on both ways after the restart, on the same connection: no drop,
    // no second connection, one recording.
    assert!(customer.video_after > 30, "{customer:?}");
    assert!(agent.video_after > 30, "{agent:?}");
    assert_eq!(side_events(&mut events, Side::Customer), ["connected"]);
    let rec = relay.end_call("r1").await.unwrap().expect("a recording");
    assert!((3_000..5_000).contains(&rec.duration_ms), "{rec:?}");
    let webms = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("webm".as_ref()))
        .count();
    assert_eq!(webms, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_lost_for_seconds_comes_back_in_the_same_call() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let mut events = relay.events();
    relay.open_call("l1", json!({})).await.unwrap();
    // The customer's network is gone from 1 s to 7 s: longer than the relay's 5 s
    // of silence, shorter than the 20 s grace.
    let dur = Duration::from_secs(10);
    let outage = Plan {
        outage: Some((Duration::from_secs(1), Duration::from_secs(7))),
        ..Plan::default()
    };
    let customer = tokio::spawn(client_on(relay.clone(), "l1", Side::Customer, dur, outage));
    let agent = tokio::spawn(client(relay.clone(), "l1", Side::Agent, dur));
    let (customer, agent) = (customer.await.unwrap(), agent.await.unwrap());
    assert!(customer.video_after > 30, "{customer:?}");
    assert!(agent.video_after > 30, "{agent:?}");
    // Lost, then back: the call's status waits out the grace and goes on.
    assert_eq!(
        side_events(&mut events, Side::Customer),
        ["connected", "disconnected", "connected"]
    );
    let rec = relay.end_call("l1").await.unwrap().expect("a recording");
    assert_eq!(
        rec.quality.customer.summary.reconnections, 1,
        "{:?}",
        rec.quality
    );
    assert!(
        rec.quality.customer.summary.freezes >= 1,
        "{:?}",
        rec.quality
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_shards_each_on_its_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    assert_eq!(relay.stats().shards, 2);
    // Two calls on different shards (ids are spread by a stable hash).
    let ids = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let a = ids[0];
    let b = *ids
        .iter()
        .find(|id| relay.udp_addr(id) != relay.udp_addr(a))
        .expect("some id on the other shard");
    assert_ne!(relay.tcp_addr(a), relay.tcp_addr(b));
    let dur = Duration::from_secs(2);
    let mut sides = vec![];
    for call in [a, b] {
        relay.open_call(call, json!({})).await.unwrap();
        for side in [Side::Customer, Side::Agent] {
            sides.push(tokio::spawn(client(relay.clone(), call, side, dur)));
        }
    }
    for side in sides {
        let got = side.await.unwrap();
        assert!(got.connected && got.video > 20, "{got:?}");
    }
    assert_eq!((relay.stats().calls, relay.stats().peers), (2, 4));
    for call in [a, b] {
        assert!(relay.end_call(call).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn ice_tcp_closes_what_belongs_to_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    // A frame that is not STUN for any call: the relay hangs up.
    let mut stranger = TcpStream::connect(relay.tcp_addr("x").unwrap())
        .await
        .unwrap();
    stranger.write_all(&[0, 4, 1, 2, 3, 4]).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stranger.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    // A frame longer than any WebRTC packet: the connection is closed too.
    let mut big = TcpStream::connect(relay.tcp_addr("x").unwrap())
        .await
        .unwrap();
    big.write_all(&[0xff, 0xff]).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), big.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test]
async fn call_lifecycle_rules() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let offer = audio_offer();
    assert!(relay
        .join("c2", Side::Customer, "v=0\r\n")
        .await
        .unwrap_err()
        .to_string()
        .contains("SDP"));
    let err = relay
        .join("nope", Side::Customer, &offer)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not open"), "{err}");
    assert!(relay.open_call("../escape", json!({})).await.is_err());
    assert!(relay.end_call("never-opened").await.unwrap().is_none());

    relay.open_call("c2", json!({})).await.unwrap();
    relay.open_call("c2", json!({})).await.unwrap(); // already open: no-op
    let first = relay.end_call("c2").await.unwrap().unwrap();
    let again = relay.end_call("c2").await.unwrap().unwrap();
    assert_eq!((first.path.clone(), first.bytes), (again.path, again.bytes));
    assert!(relay
        .open_call("c2", json!({}))
        .await
        .unwrap_err()
        .to_string()
        .contains("ended"));

    let err = relay.join("c2", Side::Agent, &offer).await.unwrap_err();
    assert!(err.to_string().contains("ended"), "{err}");
}

fn audio_offer() -> String {
    let mut rtc = Rtc::builder().build(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}
