//! Recordings sealed at rest (`[media] encrypt_recordings = true`): the kept WebM and
//! sidecar are sealed under a key of their own, kept in the call row under the master
//! key; the clear files are gone; playback, by range, is the plain WebM; an altered file
//! does not play; a master-key rotation keeps them playable; the same in the bucket.

use crate::helpers::*;
use crate::recordings_s3::{call_and_end, with_store, S3Server};
use reqwest::Method;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const EBML: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];

fn sealing(c: &mut vkyc::config::Config) {
    c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    c.journey.working_hours = "00:00-24:00".into();
    c.agent_stale_seconds = 3600;
    c.calls.drop_grace_seconds = 3600;
    c.media.encrypt_recordings = true;
}

/// The call row's recording path, sealed key and plain size.
async fn row(app: &TestApp, call: i64) -> (String, Option<String>, i64) {
    let db = app.pool().await;
    let row: (Option<String>, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT recording_path, recording_key, recording_bytes FROM calls WHERE id = $1",
    )
    .bind(call)
    .fetch_one(&db)
    .await
    .unwrap();
    db.close().await;
    (row.0.unwrap(), row.1, row.2.unwrap())
}

async fn get(app: &TestApp, link: &str, method: Method, range: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(method, link);
    if let Some(range) = range {
        req = req.header("range", range);
    }
    req.send().await.unwrap()
}

/// The link plays the plain WebM of `len` bytes, whole and by range; answers its bytes.
async fn plays(app: &TestApp, verification_id: &str, len: usize) -> Vec<u8> {
    let link = app.status(verification_id).await["recording_link"]
        .as_str()
        .unwrap()
        .to_string();
    let whole = get(app, &link, Method::GET, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-length"], len.to_string().as_str());
    let plain = whole.bytes().await.unwrap().to_vec();
    assert_eq!(plain.len(), len);
    assert_eq!(plain[..4], EBML, "a WebM");
    let part = get(app, &link, Method::GET, Some("bytes=10-49")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-49/{len}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap().to_vec(), plain[10..50]);
    let tail = get(app, &link, Method::GET, Some("bytes=-16")).await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().to_vec(), plain[len - 16..]);
    let head = get(app, &link, Method::HEAD, None).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    assert!(head.bytes().await.unwrap().is_empty());
    let beyond = get(app, &link, Method::GET, Some(&format!("bytes={len}-"))).await;
    assert_eq!(beyond.status(), 416);
    plain
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn mode(file: &Path) -> u32 {
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn sealed_recordings_are_unreadable_at_rest_and_play_whole() {
    let app = spawn_app_with(sealing).await;
    let call = call_and_end(&app, "sealed-rec").await;

    // The row names the sealed file and holds its key under the master key.
    let dir = app._dir.path().join("recordings");
    let (path, key, len) = row(&app, call).await;
    assert_eq!(Path::new(&path), dir.join(format!("{call}.sealed.webm")));
    let key = key.expect("a recording key");
    assert!(key.starts_with("v1:"), "sealed under the master key");
    assert_eq!(app.key.open(&key).unwrap().len(), 32);

    // At rest: neither the WebM nor the sidecar (with its GPS) in clear, and no clear
    // file left behind; both private.
    let sealed = std::fs::read(&path).unwrap();
    let sidecar_path = dir.join(format!("{call}.sealed.json"));
    let sidecar = std::fs::read(&sidecar_path).unwrap();
    assert_eq!(&sealed[..8], b"VKYCSEAL");
    assert!(!contains(&sealed, &EBML), "no WebM header in the file");
    assert!(!contains(&sidecar, b"call_id"), "no JSON in the sidecar");
    assert!(sealed.len() as i64 > len, "a header and a tag per chunk");
    assert!(!dir.join(format!("{call}.webm")).exists());
    assert!(!dir.join(format!("{call}.json")).exists());
    assert_eq!(mode(Path::new(&path)), 0o600);
    assert_eq!(mode(&sidecar_path), 0o600);

    // Playback: the plain WebM, whole and by range, as many bytes as were recorded.
    let plain = plays(&app, "sealed-rec", len as usize).await;
    assert!(!contains(&sealed, &plain[..32.min(plain.len())]));

    // The case export carries the plain WebM too (its manifest's size is the plain size).
    let reference = app.status("sealed-rec").await["reference_id"].clone();
    let admin = crate::calls::staff(&app, "admin.sealedrec", "admin").await;
    let export = app
        .client
        .get(admin.url(&format!("/cases/{reference}/export")))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let zip = export.bytes().await.unwrap().to_vec();
    let work = tempfile::tempdir().unwrap();
    let zip_path = work.path().join("case.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let verified = vkyc::case_export::verify(&zip_path, None).unwrap();
    let files = verified.manifest["files"].as_array().unwrap();
    let webm = files
        .iter()
        .find(|f| f["name"] == format!("recordings/call-{call}.webm"))
        .expect("the recording in the export");
    assert_eq!(webm["bytes"], Value::from(len));

    // One byte changed in the file: the body is cut short, never the altered bytes.
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    std::fs::write(&path, &altered).unwrap();
    let link = app.status("sealed-rec").await["recording_link"]
        .as_str()
        .unwrap()
        .to_string();
    // The error comes with the first chunk opened: before or after the response head
    // left, as the connection's buffers go.
    let played = match app.client.get(&link).send().await {
        Ok(res) => res.bytes().await.ok(),
        Err(_) => None,
    };
    assert_eq!(played, None, "an altered recording does not play");
    std::fs::write(&path, &sealed).unwrap();

    // A master-key rotation re-seals the recording's key: a server started with the new
    // key plays it; the old key no longer opens the row's key.
    let out = app.cli(&["master-key", "rotate"]);
    assert!(out.contains("values re-sealed"), "{out}");
    let (_, rotated, _) = row(&app, call).await;
    let rotated = rotated.unwrap();
    assert!(app.key.open(&rotated).is_err());
    let key_file = app._dir.path().join("master.key");
    let (database_url, key_path) = (app.database_url.clone(), key_file.display().to_string());
    let mut restarted = spawn_app_with(move |c| {
        sealing(c);
        c.database_url = database_url;
        c.master_key_file = key_path;
    })
    .await;
    restarted.client_id = app.client_id.clone();
    restarted.secret = app.secret.clone();
    assert_eq!(plays(&restarted, "sealed-rec", len as usize).await, plain);
}

#[tokio::test]
async fn sealed_recordings_in_the_bucket_are_sealed_objects() {
    let s3 = S3Server::start();
    s3.create_bucket("sealed-recs").await;
    let app = spawn_app_with(|c| {
        with_store(&s3, "s3://sealed-recs/calls")(c);
        c.media.encrypt_recordings = true;
    })
    .await;
    let call = call_and_end(&app, "sealed-s3").await;
    let (path, key, len) = row(&app, call).await;
    let object_key = format!("calls/{call}.sealed.webm");
    assert_eq!(path, format!("s3://sealed-recs/{object_key}"));
    assert!(key.is_some());
    let object = s3
        .object("sealed-recs", &object_key)
        .await
        .expect("the object");
    assert_eq!(&object[..8], b"VKYCSEAL");
    assert!(!contains(&object, &EBML));
    let sidecar = s3
        .object("sealed-recs", &format!("calls/{call}.sealed.json"))
        .await
        .expect("the sealed sidecar");
    assert!(!contains(&sidecar, b"call_id"));
    assert!(s3
        .object("sealed-recs", &format!("calls/{call}.webm"))
        .await
        .is_none());
    // Nothing is left on this machine: not the clear files, not the sealed ones.
    let dir = app._dir.path().join("recordings");
    for name in ["webm", "json", "sealed.webm", "sealed.json"] {
        assert!(!dir.join(format!("{call}.{name}")).exists(), "{name}");
    }
    plays(&app, "sealed-s3", len as usize).await;
}
