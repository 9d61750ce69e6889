use super::*;
use crate::media::webm::{Codec, SegmentMeta, TrackSpec, WebmWriter};
use std::io::Cursor;

fn meta() -> SegmentMeta {
    SegmentMeta {
        title: "Video KYC call c1".into(),
        date_utc_ms: 1_700_000_000_123,
        tags: vec![
            ("CALL_ID".into(), "c1".into()),
            ("LOCATION".into(), "+12.900000+077.600000/".into()),
        ],
    }
}

fn tracks() -> [TrackSpec; 2] {
    [
        TrackSpec {
            number: 1,
            name: "customer video".into(),
            codec: Codec::Vp8,
        },
        TrackSpec {
            number: 2,
            name: "customer audio".into(),
            codec: Codec::Opus,
        },
    ]
}

/// Frames written: video every 40 ms (a keyframe each second), audio every 20 ms.
fn frames(seconds: u64) -> Vec<Block> {
    let mut out = Vec::new();
    for i in 0..seconds * 50 {
        let ts = i * 20;
        out.push(Block {
            track: 2,
            ts_ms: ts,
            keyframe: true,
            data: vec![0xf8, i as u8],
        });
        if i % 2 == 0 {
            out.push(Block {
                track: 1,
                ts_ms: ts + 1,
                keyframe: i % 50 == 0,
                data: vec![0x51, (i >> 8) as u8, i as u8],
            });
        }
    }
    out
}

/// A file as the writer leaves it: finalised, or (a crash) only flushed.
fn written(seconds: u64, finalize: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.webm");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = WebmWriter::new(file, &meta(), &tracks()).unwrap();
    w.set_video_size(1, 320, 240).unwrap();
    for b in frames(seconds) {
        w.write_frame(b.track, b.ts_ms, b.keyframe, &b.data)
            .unwrap();
    }
    if finalize {
        w.finalize(seconds * 1000).unwrap();
    } else {
        // What a crash leaves: every cluster flushed, nothing finalised.
        w.flush().unwrap();
        drop(w);
    }
    std::fs::read(&path).unwrap()
}

fn all_blocks(data: &[u8]) -> (WebmReader<Cursor<&[u8]>>, Vec<Block>) {
    let mut r = WebmReader::open(Cursor::new(data)).unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        blocks.push(b);
    }
    (r, blocks)
}

#[test]
fn reads_back_what_the_writer_wrote() {
    let file = written(3, true);
    let (r, blocks) = all_blocks(&file);
    let h = r.header();
    assert_eq!(h.doc_type, "webm");
    assert_eq!(h.title, "Video KYC call c1");
    assert_eq!(h.date_utc_ms, Some(1_700_000_000_123));
    assert_eq!(h.duration_ms, 3000.0);
    assert_eq!(h.timestamp_scale, 1_000_000);
    assert_eq!(h.tags, meta().tags);
    assert_eq!(h.tracks.len(), 2);
    assert_eq!(
        h.tracks[0],
        TrackInfo {
            number: 1,
            name: "customer video".into(),
            kind: TrackKind::Video,
            codec_id: "V_VP8".into(),
            size: Some((320, 240)),
        }
    );
    assert_eq!(h.tracks[1].kind, TrackKind::Audio);
    assert_eq!(h.tracks[1].codec_id, "A_OPUS");
    assert_eq!(blocks, frames(3));
    assert!(!r.truncated());
    // One seek point per video keyframe, each at a cluster's start.
    assert_eq!(
        r.cues().iter().map(|c| c.0).collect::<Vec<_>>(),
        [1, 1001, 2001]
    );
}

#[test]
fn a_recording_never_finalised_reads_to_its_last_cluster() {
    let file = written(2, false);
    let (r, blocks) = all_blocks(&file);
    assert_eq!(r.header().duration_ms, 0.0);
    assert_eq!(blocks, frames(2));
    assert!(!r.truncated(), "the writer's clusters are whole");
    assert!(r.cues().is_empty());
}

#[test]
fn a_file_cut_anywhere_reads_its_complete_clusters_and_never_fails() {
    let file = written(3, false);
    let all = frames(3);
    let mut header_len = None;
    for cut in (0..file.len()).step_by(7) {
        match WebmReader::open(Cursor::new(&file[..cut])) {
            Err(_) => assert!(
                header_len.is_none(),
                "a longer cut read as a header at {cut}"
            ),
            Ok(mut r) => {
                header_len.get_or_insert(cut);
                let mut n = 0;
                while let Some(b) = r.next_block().unwrap() {
                    assert_eq!(b, all[n], "cut at {cut}");
                    n += 1;
                }
                // The last cluster is always cut off.
                assert!(n < all.len());
            }
        }
    }
    assert!(header_len.is_some());
    // Cut exactly where a cluster starts: nothing is lost before it, nothing is partial.
    let starts: Vec<usize> = file
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x1F, 0x43, 0xB6, 0x75])
        .map(|(i, _)| i)
        .collect();
    assert!(starts.len() >= 3, "a cluster at least each second");
    let mut before = 0;
    for (k, &at) in starts.iter().enumerate() {
        let (r, blocks) = all_blocks(&file[..at]);
        assert!(!r.truncated());
        assert_eq!(blocks, all[..blocks.len()]);
        assert!(k == 0 || blocks.len() > before, "cluster {k} adds blocks");
        before = blocks.len();
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(WebmReader::open(Cursor::new(&[][..])).is_err());
    assert!(WebmReader::open(Cursor::new(&b"RIFF....WAVEfmt "[..])).is_err());
    assert!(WebmReader::open(Cursor::new(&[0u8; 64][..])).is_err());
    // An EBML header that claims 2^56 bytes is refused before anything is allocated.
    let huge = [
        0x1A, 0x45, 0xDF, 0xA3, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    ];
    let err = WebmReader::open(Cursor::new(&huge[..])).err().unwrap();
    assert!(err.to_string().contains("too large"), "{err}");

    // Every single-byte corruption of a real file: an error or some blocks, never a panic.
    let file = written(2, true);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..file.len() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bad = file.clone();
        bad[i] ^= (seed as u8) | 1;
        if let Ok(mut r) = WebmReader::open(Cursor::new(&bad[..])) {
            let mut n = 0;
            while let Ok(Some(_)) = r.next_block() {
                n += 1;
                assert!(n <= 10_000);
            }
        }
    }
}

#[test]
fn sizes_past_the_parent_or_the_segment_are_refused() {
    let file = written(1, true);
    // The first cluster's size byte: make the cluster claim more than the Segment holds.
    let at = file
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .unwrap();
    let mut bad = file.clone();
    bad[at + 4] = 0x01;
    bad[at + 5..at + 12].copy_from_slice(&[0, 0, 0, 0, 0x10, 0, 0]);
    let err = WebmReader::open(Cursor::new(&bad[..]))
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("past the end")),
        "{err:?}"
    );
}
