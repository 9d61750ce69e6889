//! What sealing recordings at rest costs (`[media] encrypt_recordings`), against plain
//! file work measured in the same run.
//!
//!   cargo run --release --example seal_bench -- [MiB] [repeats]
//!
//! Writes a file of MiB (default 100) random bytes (a WebM is compressed: random bytes
//! are as incompressible), then, each `repeats` (default 5) times, the median of:
//! - copy: `std::fs::copy` of the file (the baseline for a pass over it);
//! - seal: `sealing::seal_file`, as the end of a call does;
//! - read clear / read sealed: the whole file through `storage::reading`, as playback or
//!   an export reads it;
//! - seek clear / seek sealed: 200 reads of 64 KiB at random offsets, as a player seeking.
//!
//! Prints a Markdown table for BENCHMARKS.md. Nothing is asserted.

use futures::StreamExt;
use rand::{Rng, RngCore};
use std::path::Path;
use std::time::Instant;
use vkyc::storage::{sealing, FileKey, StoredRecording};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn read_whole(recording: &StoredRecording, media: &vkyc::config::MediaSettings) -> u64 {
    let opened = recording.open(media).await.unwrap().unwrap();
    let mut stream = opened.stream(0..opened.len).await.unwrap();
    let mut total = 0;
    while let Some(piece) = stream.next().await {
        total += piece.unwrap().len() as u64;
    }
    total
}

async fn seeks(
    recording: &StoredRecording,
    media: &vkyc::config::MediaSettings,
    offsets: &[u64],
) -> u64 {
    let mut total = 0;
    for &at in offsets {
        let opened = recording.open(media).await.unwrap().unwrap();
        let end = (at + 64 * 1024).min(opened.len);
        total += opened.read_all(at..end).await.unwrap().len() as u64;
    }
    total
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map_or(100, |a| a.parse().expect("MiB"));
    let repeats: usize = args.get(2).map_or(5, |a| a.parse().expect("repeats"));
    let dir = tempfile::tempdir().unwrap();
    let clear = dir.path().join("call.webm");
    let sealed = dir.path().join("call.sealed.webm");
    let copy = dir.path().join("copy.webm");
    {
        let mut bytes = vec![0u8; (mib * 1024 * 1024) as usize];
        rand::thread_rng().fill_bytes(&mut bytes);
        std::fs::write(&clear, &bytes).unwrap();
    }
    let len = mib * 1024 * 1024;
    let media = vkyc::config::Config::default().media;
    let key = FileKey::generate();
    let clear_rec = StoredRecording {
        location: clear.display().to_string(),
        key: None,
    };
    let sealed_rec = StoredRecording {
        location: sealed.display().to_string(),
        key: Some(key.clone()),
    };
    let offsets: Vec<u64> = (0..200)
        .map(|_| rand::thread_rng().gen_range(0..len))
        .collect();
    let time = |f: &dyn Fn()| {
        let started = Instant::now();
        f();
        started.elapsed().as_secs_f64()
    };
    let (mut copies, mut seals, mut reads_c, mut reads_s, mut seeks_c, mut seeks_s) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..repeats {
        copies.push(time(&|| {
            std::fs::copy(&clear, &copy).unwrap();
        }));
        seals.push(time(&|| {
            sealing::seal_file(&key, &clear, &sealed).unwrap();
        }));
        let started = Instant::now();
        assert_eq!(read_whole(&clear_rec, &media).await, len);
        reads_c.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        assert_eq!(read_whole(&sealed_rec, &media).await, len);
        reads_s.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let a = seeks(&clear_rec, &media, &offsets).await;
        seeks_c.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let b = seeks(&sealed_rec, &media, &offsets).await;
        seeks_s.push(started.elapsed().as_secs_f64());
        assert_eq!(a, b);
    }
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let mbps = |s: f64| mib as f64 / s;
    println!("| {mib} MiB file, median of {repeats} | time | MiB/s |");
    println!("|---|---|---|");
    for (name, v) in [
        ("copy (baseline)", &copies),
        ("seal", &seals),
        ("read whole, clear", &reads_c),
        ("read whole, sealed", &reads_s),
    ] {
        let m = median(v.clone());
        println!("| {name} | {:.3} s | {:.0} |", m, mbps(m));
    }
    for (name, v) in [
        ("200 seeks of 64 KiB, clear", &seeks_c),
        ("200 seeks of 64 KiB, sealed", &seeks_s),
    ] {
        println!("| {name} | {:.1} ms | |", median(v.clone()) * 1000.0);
    }
    println!(
        "\nsealed size: {} bytes for {} ({:+.3} %)",
        size(&sealed),
        size(&clear),
        (size(&sealed) as f64 / size(&clear) as f64 - 1.0) * 100.0
    );
}
