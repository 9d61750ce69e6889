//! Each side of a call recording as its own WebM, for the auditor's two players: made
//! from a recording in the recorder's layout (customer video and audio, agent audio
//! and video) of real VP8 and Opus frames (ffmpeg encodes them; the server's own WebM
//! reader takes them out and its writer writes the recording), then checked with ffprobe:
//! one video track each, that side's voice, the recording's duration, the same
//! timeline, seekable. Who may fetch them, range requests, and the case view's links.

use crate::calls::{calls_app, decided, staff, Desk};
use crate::helpers::spawn_app_with;
use reqwest::header::{COOKIE, RANGE};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use vkyc::media::webm::{Codec, SegmentMeta, TrackSpec, WebmWriter};
use vkyc::media::webm_read::{Block, WebmReader};

/// When the agent's side joins the recording's timeline.
const AGENT_JOINS_MS: u64 = 600;
/// The recording's DateUTC (its media time 0).
const STARTED_MS: i64 = 1_796_000_000_123;

/// Encodes `seconds` of a test picture and a tone with ffmpeg, and reads the frames back
/// with the server's reader: (video size, frames).
fn encoded(dir: &Path, name: &str, picture: &str, hz: u32) -> ((u16, u16), Vec<Block>) {
    let out = dir.join(format!("{name}.webm"));
    let status = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "lavfi", "-i", picture, "-f", "lavfi", "-i",
        ])
        .arg(format!("sine=frequency={hz}:sample_rate=48000"))
        .args(["-t", "4", "-c:v", "libvpx", "-g", "25", "-b:v", "300k"])
        .args(["-c:a", "libopus", "-ac", "2", "-f", "webm"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let mut r = WebmReader::open(std::fs::File::open(&out).unwrap()).unwrap();
    let size = r.header().tracks[0].size.unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        blocks.push(b);
    }
    (size, blocks)
}

/// A recording as the recorder writes it: tracks 1 customer video, 2 customer audio,
/// 3 agent audio, 4 agent video; the agent joins 600 ms in.
pub(crate) fn recording(dir: &Path, file: &Path) -> u64 {
    let (customer_size, customer) = encoded(dir, "c", "testsrc=size=320x240:rate=25", 440);
    let (agent_size, agent) = encoded(dir, "a", "smptebars=size=240x176:rate=25", 660);
    let mut frames: Vec<(u64, u64, Block)> = Vec::new();
    for b in customer {
        let track = if b.track == 1 { 1 } else { 2 };
        frames.push((b.ts_ms, track, b));
    }
    for b in agent {
        let track = if b.track == 1 { 4 } else { 3 };
        frames.push((b.ts_ms + AGENT_JOINS_MS, track, b));
    }
    frames.sort_by_key(|f| (f.0, f.1));
    let meta = SegmentMeta {
        title: "Video KYC call test".into(),
        date_utc_ms: STARTED_MS,
        tags: vec![("CALL_ID".into(), "test".into())],
    };
    let spec = |number, name: &str, codec| TrackSpec {
        number,
        name: name.into(),
        codec,
    };
    let tracks = [
        spec(1, "customer video", Codec::Vp8),
        spec(2, "customer audio", Codec::Opus),
        spec(3, "agent audio", Codec::Opus),
        spec(4, "agent video", Codec::Vp8),
    ];
    let mut w = WebmWriter::new(std::fs::File::create(file).unwrap(), &meta, &tracks).unwrap();
    w.set_video_size(1, customer_size.0, customer_size.1)
        .unwrap();
    w.set_video_size(4, agent_size.0, agent_size.1).unwrap();
    for (ts, track, b) in frames {
        w.write_frame(track, ts, b.keyframe, &b.data).unwrap();
    }
    let duration = w.last_ts();
    w.finalize(duration).unwrap();
    duration
}

pub(crate) fn ffprobe(file: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The times of the first `n` video frames decoded after seeking to `at` seconds.
fn frames_after_seek(file: &Path, at: f64, n: usize) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-read_intervals"])
        .arg(format!("{at}%+#{n}"))
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().unwrap())
        .collect()
}

async fn fetch(desk: &Desk<'_>, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = desk
        .app
        .client
        .get(desk.url(path))
        .header(COOKIE, &desk.cookie);
    if let Some(range) = range {
        req = req.header(RANGE, range);
    }
    req.send().await.unwrap()
}

fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn recording_sides_play_each_camera_with_its_voice_on_one_timeline() {
    let app = calls_app(60, 3600).await;
    let agent = crate::calls::agent(&app, "agent.sides").await;
    let auditor = staff(&app, "auditor.sides", "auditor").await;
    let admin = staff(&app, "admin.sides", "admin").await;
    let (_, call) = decided(&app, &agent, "sides", "approved").await;

    // The call's recording, where the relay keeps recordings.
    let work = tempfile::tempdir().unwrap();
    let recordings = app._dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let original = recordings.join(format!("{call}-test.webm"));
    let recorded_ms = recording(work.path(), &original);
    let db = app.pool().await;
    sqlx::query("UPDATE calls SET recording_path = $1 WHERE id = $2")
        .bind(original.display().to_string())
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    let whole = ffprobe(&original);
    assert_eq!(whole["streams"].as_array().unwrap().len(), 4);

    // The case view links both sides and gives media time 0.
    let reference = app.status("sides").await["reference_id"].clone();
    let case = auditor.get(&format!("/audit/cases/{reference}")).await.ok();
    let link = |side: &str| format!("/desk/api/calls/{call}/recording/{side}.webm");
    assert_eq!(
        case["recording_sides"],
        json!({"customer": link("customer"), "agent": link("agent")})
    );
    assert_eq!(case["recording_started_at"], "2026-11-30T00:53:20.123Z");

    // Who may fetch: auditors and admins; agents 403, no session 401.
    let path = |side: &str| format!("/calls/{call}/recording/{side}.webm");
    let refused = fetch(&agent, &path("agent"), None).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "role_forbidden"
    );
    let anonymous = app
        .client
        .get(format!("{}/desk/api{}", app.base, path("agent")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(!recordings.join("sides").exists(), "nothing made for them");

    let mut files: Vec<PathBuf> = Vec::new();
    for (side, desk, width, hz_track) in [
        ("customer", &auditor, 320, "customer audio"),
        ("agent", &admin, 240, "agent audio"),
    ] {
        let res = fetch(desk, &path(side), None).await;
        assert_eq!(res.status(), 200, "{side}");
        assert_eq!(res.headers()["content-type"], "video/webm");
        assert_eq!(res.headers()["accept-ranges"], "bytes");
        let bytes = res.bytes().await.unwrap().to_vec();
        let file = work.path().join(format!("{side}.webm"));
        std::fs::write(&file, &bytes).unwrap();
        let probe = ffprobe(&file);
        let streams = probe["streams"].as_array().unwrap();
        let kinds: Vec<&str> = streams
            .iter()
            .map(|s| s["codec_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["video", "audio"], "{side}: one camera, one voice");
        assert_eq!(streams[0]["codec_name"], "vp8");
        assert_eq!(streams[0]["width"], width);
        assert_eq!(streams[1]["codec_name"], "opus");
        assert_eq!(streams[1]["tags"]["title"], hz_track);
        assert!(
            (duration(&probe) - duration(&whole)).abs() <= 0.5,
            "{side}: {} against {}",
            duration(&probe),
            duration(&whole)
        );
        assert!((duration(&probe) * 1000.0 - recorded_ms as f64).abs() <= 500.0);
        let tags = &probe["format"]["tags"];
        assert_eq!(tags["title"], "Video KYC call test");
        assert_eq!(tags["CALL_ID"], "test");
        assert_eq!(tags["VKYC_SIDE"], side);
        assert_eq!(tags["creation_time"], "2026-11-30T00:53:20.123000Z");

        // Seekable: from the middle, a frame decodes at the keyframe before 2 s.
        let after = frames_after_seek(&file, 2.0, 3);
        assert_eq!(after.len(), 3, "{side}: {after:?}");
        assert!(after[0] <= 2.0 && after[0] > 1.0, "{side}: {after:?}");

        let head = desk
            .app
            .client
            .head(desk.url(&path(side)))
            .header(COOKIE, &desk.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            bytes.len().to_string().as_str()
        );

        // A range, as a player asks for it.
        let part = fetch(desk, &path(side), Some("bytes=100-1099")).await;
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 100-1099/{}", bytes.len())
        );
        assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[100..1100]);
        files.push(file);
    }

    // One timeline: the agent's first picture is where it was in the recording.
    let first = |file: &Path| frames_after_seek(file, 0.0, 1)[0];
    assert!(first(&files[0]) < 0.05, "{}", first(&files[0]));
    let agent_first = first(&files[1]);
    assert!(
        (agent_first - AGENT_JOINS_MS as f64 / 1000.0).abs() < 0.05,
        "{agent_first}"
    );

    // Made once, kept private next to the recordings.
    let sides = recordings.join("sides");
    assert_eq!(
        std::fs::metadata(&sides).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let kept: Vec<_> = std::fs::read_dir(&sides)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for f in &kept {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = fetch(&auditor, &path("customer"), None).await;
    assert_eq!(
        again.bytes().await.unwrap().to_vec(),
        std::fs::read(&files[0]).unwrap()
    );

    // Wrong side, unknown call, a call without a recording: 404 in the API's shape.
    let wrong = |res: reqwest::Response, code: &'static str| async move {
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    };
    wrong(
        fetch(
            &auditor,
            &format!("/calls/{call}/recording/both.webm"),
            None,
        )
        .await,
        "recording_side_not_found",
    )
    .await;
    wrong(
        fetch(&auditor, "/calls/999999/recording/agent.webm", None).await,
        "call_not_found",
    )
    .await;
    wrong(
        fetch(&auditor, "/calls/x/recording/agent.webm", None).await,
        "call_not_found",
    )
    .await;
    // A recording in which the agent's camera never came on: nothing to watch, and
    // nothing kept.
    let no_camera = recordings.join(format!("{call}-no-camera.webm"));
    let tracks: Vec<TrackSpec> = [
        (1, "customer video", Codec::Vp8),
        (2, "customer audio", Codec::Opus),
        (3, "agent audio", Codec::Opus),
        (4, "agent video", Codec::Vp8),
    ]
    .map(|(number, name, codec)| TrackSpec {
        number,
        name: name.into(),
        codec,
    })
    .to_vec();
    let meta = SegmentMeta {
        title: "t".into(),
        date_utc_ms: STARTED_MS,
        tags: vec![],
    };
    let mut w =
        WebmWriter::new(std::fs::File::create(&no_camera).unwrap(), &meta, &tracks).unwrap();
    for i in 0..50u64 {
        w.write_frame(2 + i % 2, i * 20, true, &[0xf8]).unwrap();
    }
    w.finalize(1000).unwrap();
    sqlx::query("UPDATE calls SET recording_path = $1 WHERE id = $2")
        .bind(no_camera.display().to_string())
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    wrong(
        fetch(&auditor, &path("agent"), None).await,
        "recording_side_empty",
    )
    .await;
    assert_eq!(std::fs::read_dir(&sides).unwrap().count(), 2);

    sqlx::query("UPDATE calls SET recording_path = NULL WHERE id = $1")
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    wrong(
        fetch(&auditor, &path("agent"), None).await,
        "recording_not_found",
    )
    .await;
    let case = auditor.get(&format!("/audit/cases/{reference}")).await.ok();
    assert_eq!(case["recording_sides"], Value::Null);
    assert_eq!(case["recording_started_at"], Value::Null);
}

/// A recording in the bucket: streamed down once to make the side, served by range; an
/// object gone from the bucket is 404.
#[tokio::test]
async fn recording_sides_of_a_recording_in_the_bucket() {
    use crate::recordings_s3::{call_and_end, set_recording_path, with_store, S3Server};
    let s3 = S3Server::start();
    s3.create_bucket("sides-recs").await;
    let app = spawn_app_with(with_store(&s3, "s3://sides-recs/calls")).await;
    let call = call_and_end(&app, "sides-s3").await;
    let auditor = staff(&app, "auditor.s3", "auditor").await;

    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("rec.webm");
    let recorded_ms = recording(work.path(), &original);
    let mut config = vkyc::config::Config::default();
    with_store(&s3, "s3://sides-recs/calls")(&mut config);
    let vkyc::storage::RecordingStore::S3(store) =
        vkyc::storage::RecordingStore::from_settings(&config.media).unwrap()
    else {
        panic!("an S3 store")
    };
    let recording = vkyc::media::Recording {
        path: original.clone(),
        sidecar: work.path().join("rec.json"),
        started_at_ms: STARTED_MS,
        duration_ms: recorded_ms as i64,
        bytes: std::fs::metadata(&original).unwrap().len(),
        quality: Default::default(),
    };
    let stored = vkyc::storage::upload(&store, call, &recording)
        .await
        .unwrap();
    set_recording_path(&app, call, &stored).await;

    let path = format!("/calls/{call}/recording/agent.webm");
    let res = fetch(&auditor, &path, None).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    let file = work.path().join("agent.webm");
    std::fs::write(&file, &bytes).unwrap();
    let probe = ffprobe(&file);
    let streams = probe["streams"].as_array().unwrap();
    let kinds: Vec<&str> = streams
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio"]);
    assert_eq!(streams[0]["width"], 240);
    assert!((duration(&probe) * 1000.0 - recorded_ms as f64).abs() <= 500.0);
    let part = fetch(&auditor, &path, Some("bytes=-100")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.bytes().await.unwrap().to_vec(),
        bytes[bytes.len() - 100..]
    );
    // Only the side file is kept: the download is gone.
    let kept: Vec<String> = std::fs::read_dir(app._dir.path().join("recordings/sides"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with(&format!("{call}-agent-")), "{kept:?}");

    set_recording_path(&app, call, "s3://sides-recs/calls/0.webm").await;
    let gone = fetch(&auditor, &path, None).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(
        gone.json::<Value>().await.unwrap()["code"],
        "recording_not_found"
    );
}

/// A sealed recording (`encrypt_recordings`): its sides play, with ranges and the start
/// time, but are kept sealed under the recording's key; the export carries the plain
/// WebM; a purge's deletion of the call's side copies removes them.
#[tokio::test]
async fn recording_sides_of_a_sealed_recording_are_kept_sealed() {
    let app = calls_app(60, 3600).await;
    let agent = crate::calls::agent(&app, "agent.sealedsides").await;
    let auditor = staff(&app, "auditor.sealedsides", "auditor").await;
    let (_, call) = decided(&app, &agent, "sealedsides", "approved").await;

    // The recording sealed as the server seals it: the file under a key of its own, the
    // key under the master key in the call row.
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("rec.webm");
    let recorded_ms = recording(work.path(), &original);
    let recordings = app._dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let sealed = recordings.join(format!("{call}.sealed.webm"));
    let key = vkyc::storage::FileKey::generate();
    vkyc::storage::sealing::seal_file(&key, &original, &sealed).unwrap();
    let db = app.pool().await;
    sqlx::query("UPDATE calls SET recording_path = $1, recording_key = $2 WHERE id = $3")
        .bind(sealed.display().to_string())
        .bind(app.key.seal(key.as_bytes()))
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;

    let reference = app.status("sealedsides").await["reference_id"].clone();
    let case = auditor.get(&format!("/audit/cases/{reference}")).await.ok();
    assert_eq!(case["recording_started_at"], "2026-11-30T00:53:20.123Z");

    let path = format!("/calls/{call}/recording/customer.webm");
    let res = fetch(&auditor, &path, None).await;
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    let file = work.path().join("customer.webm");
    std::fs::write(&file, &bytes).unwrap();
    let probe = ffprobe(&file);
    let kinds: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio"]);
    assert!((duration(&probe) * 1000.0 - recorded_ms as f64).abs() <= 500.0);
    let part = fetch(&auditor, &path, Some("bytes=100-1099")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-1099/{}", bytes.len())
    );
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[100..1100]);

    // Kept sealed: the side file holds no WebM, and no clear download is left.
    let sides = recordings.join("sides");
    let kept: Vec<PathBuf> = std::fs::read_dir(&sides)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let stored = std::fs::read(&kept[0]).unwrap();
    assert_eq!(&stored[..8], b"VKYCSEAL");
    assert!(!stored.windows(4).any(|w| w == [0x1a, 0x45, 0xdf, 0xa3]));
    assert!(!stored.windows(64).any(|w| w == &bytes[200..264]));

    // What a purge leaves to delete: the side copies of the call go.
    let config = vkyc::config::Config {
        data_dir: app._dir.path().to_path_buf(),
        ..Default::default()
    };
    vkyc::storage::delete(&config, &format!("sides:{call}"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&sides).unwrap().count(), 0);
}
