//! One side of a call recording as a WebM of its own, so that both cameras can be
//! watched at once: a browser's `<video>` plays only a file's first video track (and
//! first audio track), and a recording holds both sides' video.
//!
//! Each side's file carries that side's video and that side's own voice. Two players
//! of the two files, kept at the same `currentTime`, then show both cameras and let
//! both voices be heard; either file alone plays with the voice of the person on screen.
//!
//! The frames are replayed through [`WebmWriter`] with their timestamps unchanged
//! (media time 0 is the recording's DateUTC in both files), so the copy has its own
//! Cues and Duration (it is seekable) and keeps the recording's Title, DateUTC and tags.

use std::io::{Read, Seek, Write};

use anyhow::{bail, Context};

use super::recorder::{track_number, Kind};
use super::webm::{Codec, SegmentMeta, TrackSpec, WebmWriter};
use super::webm_read::{TrackKind, WebmReader};
use super::Side;

/// Track numbers in a side's file.
const VIDEO_TRACK: u64 = 1;
const AUDIO_TRACK: u64 = 2;

/// What a side's copy holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideCopy {
    pub video_frames: u64,
    pub audio_frames: u64,
    /// The copy's Duration: the recording's, so both files have the same length.
    pub duration_ms: u64,
    /// The source was cut off (a recording of a crashed call); its complete part was copied.
    pub truncated: bool,
}

/// Writes `side`'s video and audio of the recording read from `input` into `out` as a
/// WebM of its own. A side without video frames (a camera never on) still gives a
/// valid file: callers decide what to do with `video_frames == 0`.
pub fn copy_side<R: Read, W: Write + Seek>(
    input: R,
    out: W,
    side: Side,
) -> anyhow::Result<(W, SideCopy)> {
    let mut reader = WebmReader::open(input)?;
    let header = reader.header().clone();
    let source_video = track_number(side, Kind::Video);
    let source_audio = track_number(side, Kind::Audio);
    let video = header
        .track(source_video)
        .filter(|t| t.kind == TrackKind::Video && t.codec_id == "V_VP8")
        .with_context(|| format!("the recording has no VP8 {} video track", side.name()))?;
    let audio = header
        .track(source_audio)
        .filter(|t| t.kind == TrackKind::Audio && t.codec_id == "A_OPUS");
    let mut tracks = vec![TrackSpec {
        number: VIDEO_TRACK,
        name: video.name.clone(),
        codec: Codec::Vp8,
    }];
    if let Some(a) = audio {
        tracks.push(TrackSpec {
            number: AUDIO_TRACK,
            name: a.name.clone(),
            codec: Codec::Opus,
        });
    }
    let Some(date_utc_ms) = header.date_utc_ms else {
        bail!("the recording has no DateUTC");
    };
    let mut tags = header.tags.clone();
    tags.push(("VKYC_SIDE".to_string(), side.name().to_string()));
    let meta = SegmentMeta {
        title: header.title.clone(),
        date_utc_ms,
        tags,
    };
    let mut writer = WebmWriter::new(out, &meta, &tracks)?;
    if let Some((w, h)) = video.size {
        writer.set_video_size(VIDEO_TRACK, w, h)?;
    }
    let has_audio = audio.is_some();
    let mut copy = SideCopy {
        video_frames: 0,
        audio_frames: 0,
        duration_ms: 0,
        truncated: false,
    };
    let mut last_ts = 0u64;
    while let Some(block) = reader.next_block()? {
        last_ts = last_ts.max(block.ts_ms);
        if block.track == source_video {
            // The recorder starts each video track on a keyframe; a copy must too.
            if copy.video_frames == 0 && !block.keyframe {
                continue;
            }
            writer.write_frame(VIDEO_TRACK, block.ts_ms, block.keyframe, &block.data)?;
            copy.video_frames += 1;
        } else if has_audio && block.track == source_audio {
            writer.write_frame(AUDIO_TRACK, block.ts_ms, block.keyframe, &block.data)?;
            copy.audio_frames += 1;
        }
    }
    // The recording's Duration when it was finalised; else (a cut-off recording) its
    // last frame, as the recorder itself would have written.
    copy.duration_ms = if header.duration_ms > 0.0 {
        header.duration_ms.round() as u64
    } else {
        last_ts
    }
    .max(writer.last_ts());
    copy.truncated = reader.truncated();
    let (out, _) = writer.finalize(copy.duration_ms)?;
    Ok((out, copy))
}

#[cfg(test)]
mod tests {
    use super::super::webm_read::WebmReader;
    use super::*;
    use std::io::Cursor;

    /// A recording in the recorder's layout: 1 customer video, 2 customer audio,
    /// 3 agent audio, 4 agent video.
    fn recording(seconds: u64) -> Vec<u8> {
        let meta = SegmentMeta {
            title: "Video KYC call 7".into(),
            date_utc_ms: 1_700_000_000_250,
            tags: vec![("CALL_ID".into(), "7".into())],
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
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &meta, &tracks).unwrap();
        let key = [0x50u8, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        w.set_video_size(1, 320, 240).unwrap();
        w.set_video_size(4, 640, 360).unwrap();
        for i in 0..seconds * 50 {
            let ts = i * 20;
            w.write_frame(2, ts, true, &[0xf8, 2]).unwrap();
            w.write_frame(3, ts + 1, true, &[0xf8, 3]).unwrap();
            if i % 2 == 0 {
                // The agent's camera comes on at 400 ms; its first keyframe is at 522.
                if ts >= 400 {
                    w.write_frame(4, ts + 2, i % 50 == 26, &key).unwrap();
                }
                w.write_frame(1, ts + 3, i % 50 == 0, &key).unwrap();
            }
        }
        let (cur, _) = w.finalize(seconds * 1000).unwrap();
        cur.into_inner()
    }

    #[test]
    fn each_side_gets_its_video_and_voice_on_the_same_timeline() {
        let src = recording(3);
        let (out, agent) =
            copy_side(Cursor::new(&src), Cursor::new(Vec::new()), Side::Agent).unwrap();
        assert_eq!(agent.audio_frames, 150);
        assert_eq!(agent.duration_ms, 3000);
        assert!(!agent.truncated);
        let mut r = WebmReader::open(Cursor::new(out.into_inner())).unwrap();
        let h = r.header().clone();
        assert_eq!(h.title, "Video KYC call 7");
        assert_eq!(h.date_utc_ms, Some(1_700_000_000_250));
        assert_eq!(h.duration_ms, 3000.0);
        assert!(h.tags.contains(&("CALL_ID".into(), "7".into())));
        assert!(h.tags.contains(&("VKYC_SIDE".into(), "agent".into())));
        let names: Vec<_> = h.tracks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["agent video", "agent audio"]);
        assert_eq!(h.tracks[0].size, Some((640, 360)));
        let mut blocks = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            blocks.push(b);
        }
        let video: Vec<_> = blocks.iter().filter(|b| b.track == 1).collect();
        assert_eq!(video.len() as u64, agent.video_frames);
        // The deltas before the first keyframe are dropped: they cannot be decoded.
        assert_eq!(agent.video_frames, 62);
        assert_eq!(video[0].ts_ms, 522);
        assert!(video[0].keyframe);
        // Audio keeps its times: frame i at 20 i + 1.
        let audio: Vec<_> = blocks.iter().filter(|b| b.track == 2).collect();
        assert!(audio
            .iter()
            .enumerate()
            .all(|(i, b)| b.ts_ms == i as u64 * 20 + 1));
        assert!(audio.iter().all(|b| b.data == [0xf8, 3]));
        // Seek points: one per agent keyframe.
        assert_eq!(
            r.cues().iter().map(|c| c.0).collect::<Vec<_>>(),
            [522, 1522, 2522]
        );

        let (out, customer) =
            copy_side(Cursor::new(&src), Cursor::new(Vec::new()), Side::Customer).unwrap();
        assert_eq!((customer.video_frames, customer.audio_frames), (75, 150));
        let mut r = WebmReader::open(Cursor::new(out.into_inner())).unwrap();
        let first = r.next_block().unwrap().unwrap();
        assert_eq!((first.track, first.ts_ms), (2, 0));
        assert_eq!(r.header().tracks[0].size, Some((320, 240)));
    }

    #[test]
    fn a_cut_off_recording_copies_what_is_complete() {
        let src = recording(3);
        let cut = &src[..src.len() * 2 / 3];
        let (out, copy) =
            copy_side(Cursor::new(cut), Cursor::new(Vec::new()), Side::Customer).unwrap();
        assert!(copy.truncated);
        assert!(copy.video_frames > 0 && copy.video_frames < 75);
        let r = WebmReader::open(Cursor::new(out.into_inner())).unwrap();
        assert!(r.header().duration_ms > 0.0);
    }

    #[test]
    fn a_file_without_the_side_is_an_error() {
        let meta = SegmentMeta::default();
        let tracks = [TrackSpec {
            number: 1,
            name: "customer video".into(),
            codec: Codec::Vp8,
        }];
        let w = WebmWriter::new(Cursor::new(Vec::new()), &meta, &tracks).unwrap();
        let (cur, _) = w.finalize(0).unwrap();
        let err = copy_side(
            Cursor::new(cur.into_inner()),
            Cursor::new(Vec::new()),
            Side::Agent,
        )
        .unwrap_err();
        assert!(err.to_string().contains("agent video"), "{err}");
    }
}
