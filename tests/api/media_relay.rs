//! The relay without a browser: two str0m clients on loopback play customer
//! and agent, send fake VP8/Opus frames, and must receive each other's. Also
//! the API's rules: join needs an open call, an ended call can't be joined,
//! end_call is idempotent.

use std::time::{Duration, Instant};

use serde_json::json;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use vkyc::media::{MediaConfig, MediaEvent, Relay, Side};

async fn relay(dir: &std::path::Path) -> Relay {
    Relay::start(MediaConfig {
        udp_bind: "127.0.0.1:0".parse().unwrap(),
        advertised_ip: "127.0.0.1".parse().unwrap(),
        recordings_dir: dir.to_path_buf(),
    })
    .await
    .unwrap()
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
}

/// A str0m client (full ICE, controlling) that joins `side`, sends 20 ms audio
/// and ~30 fps video for `dur`, and counts what it receives.
async fn client(relay: Relay, call: &'static str, side: Side, dur: Duration) -> Received {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
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
        answer.contains(&format!("127.0.0.1 {}", relay.local_addr().port())),
        "{answer}"
    );
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    let start = Instant::now();
    let mut got = Received::default();
    let (mut next_audio, mut next_video) = (start, start);
    let mut buf = vec![0u8; 2000];
    while start.elapsed() < dur {
        let now = Instant::now();
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
                Output::Transmit(t) => {
                    sock.send_to(&t.contents, t.destination).await.unwrap();
                }
                Output::Event(Event::Connected) => got.connected = true,
                Output::Event(Event::MediaData(d)) if d.mid == audio => got.audio += 1,
                Output::Event(Event::MediaData(d)) if d.mid == video => got.video += 1,
                Output::Event(_) => {}
            }
        };
        let wake = deadline.min(Instant::now() + Duration::from_millis(5));
        let wait = wake.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let r = Receive::new(Protocol::Udp, from, local, &buf[..n]).unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            }
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
