//! `vkyc backup` and `vkyc restore`, the real binary beside a running server: a backup
//! taken while merchants keep creating and moving requests, restored into a new data
//! directory (on PostgreSQL, a new database) and served by a new `vkyc serve`. Every
//! request acknowledged before the backup began is there with its history, the
//! recording plays from the merchant's link and the desk, and a backup whose files were
//! altered is refused. A backup or restore into something not empty, or with another
//! deployment's master key, is refused too, and a restored deployment without its master
//! key does not start.

use crate::calls::{calls_app, decided};
use crate::crash::{start_server_with, Server};
use crate::helpers::{test_database, TestApp};
use crate::recording_sides::{ffprobe, recording};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `vkyc` command line on a deployment: its data directory and database.
fn vkyc(data_dir: &Path, database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(args)
        .env("VKYC_DATA_DIR", data_dir)
        .env("VKYC_DATABASE_URL", database_url)
        .env_remove("VKYC_CONFIG")
        .env_remove("VKYC_MASTER_KEY")
        .env_remove("VKYC_MEDIA__RECORDINGS_DIR")
        .output()
        .expect("vkyc runs")
}

async fn vkyc_async(data_dir: &Path, database_url: &str, args: &[&str]) -> Output {
    let (dir, url) = (data_dir.to_path_buf(), database_url.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vkyc(&dir, &url, &args)
    })
    .await
    .unwrap()
}

#[track_caller]
fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn refused(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have been refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every directory in `dir` is 0700 and every file 0600.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// Tables in a PostgreSQL database outside the system's schemas.
async fn pg_tables(url: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

/// Where a restore puts the database: a new PostgreSQL database when the suite runs on
/// PostgreSQL, else the SQLite file in the new data directory.
async fn new_target(root: &Path, name: &str) -> (PathBuf, String) {
    let data_dir = root.join(name);
    let url = match std::env::var("VKYC_TEST_PG_URL") {
        Ok(pg) if !pg.is_empty() => test_database(root).await,
        _ => format!("sqlite://{}", data_dir.join("vkyc.db").display()),
    };
    (data_dir, url)
}

/// A merchant API client for any server, with the source's credentials.
#[derive(Clone)]
struct Merchant {
    client: reqwest::Client,
    client_id: String,
    secret: String,
}

impl Merchant {
    async fn call(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{base}/verification{path}"))
            .header("x-client-id", &self.client_id)
            .header("x-client-secret", &self.secret)
            .header("x-api-version", "2024-12-01");
        if let Some(body) = body {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(err) => (0, Value::String(err.to_string())),
        }
    }

    async fn history(&self, base: &str, vid: &str) -> Vec<Value> {
        let path = format!("/vkyc/history?verification_id={vid}");
        let (status, body) = self.call(base, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{vid}: {body}");
        body["history"].as_array().unwrap().clone()
    }
}

/// One request the load made: when its creation was sent and acknowledged, and when
/// its move to AUDITOR_APPROVED was (every other request).
#[derive(Clone, Debug)]
struct Made {
    vid: String,
    sent: Instant,
    created: Option<Instant>,
    approved: Option<Instant>,
}

/// Creates requests (and approves every other one through the sandbox) until `stop`;
/// any answer but 200 is kept in `failures`.
async fn load(
    merchant: Merchant,
    base: String,
    task: usize,
    stop: Arc<AtomicBool>,
    made: Arc<Mutex<Vec<Made>>>,
    failures: Arc<Mutex<Vec<String>>>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..20_000 {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return;
        }
        let vid = format!("load-{task}-{i}");
        let sent = Instant::now();
        let body = json!({"verification_id": vid, "user_id": "u-load"});
        let (status, answer) = merchant
            .call(&base, Method::POST, "/vkyc", Some(body))
            .await;
        let created = (status == 200).then(Instant::now);
        if created.is_none() {
            failures
                .lock()
                .unwrap()
                .push(format!("create {vid}: {status} {answer}"));
        }
        let mut approved = None;
        if created.is_some() && i % 2 == 0 {
            let body = json!({"verification_id": vid, "sub_status": "AUDITOR_APPROVED"});
            let (status, answer) = merchant
                .call(&base, Method::POST, "/sandbox/vkyc/advance", Some(body))
                .await;
            approved = (status == 200).then(Instant::now);
            if approved.is_none() {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("advance {vid}: {status} {answer}"));
            }
        }
        made.lock().unwrap().push(Made {
            vid,
            sent,
            created,
            approved,
        });
    }
}

/// Signs in to a server's desk: the session cookie.
async fn desk_login(base: &str, username: &str, password: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/desk/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login {username}");
    res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A decided call whose recording (real VP8 and Opus, in the recorder's layout) and
/// sidecar are where the relay keeps them; answers the call id and the recording.
async fn recorded_call(app: &TestApp, work: &Path) -> (i64, PathBuf) {
    let agent = crate::calls::agent(app, "agent.backup").await;
    let (_, call) = decided(app, &agent, "recorded", "approved").await;
    let recordings = app._dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let file = recordings.join(format!("{call}.webm"));
    let _ = std::fs::remove_file(&file);
    recording(work, &file);
    std::fs::write(
        recordings.join(format!("{call}.json")),
        json!({"call_id": call, "gps": {"lat": 12.97, "lon": 77.59}}).to_string(),
    )
    .unwrap();
    let db = app.pool().await;
    sqlx::query("UPDATE calls SET recording_path = $1 WHERE id = $2")
        .bind(file.display().to_string())
        .bind(call)
        .execute(&db)
        .await
        .unwrap();
    (call, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_acknowledged_request_and_the_recording() {
    let app = calls_app(60, 3600).await;
    let work = tempfile::tempdir().unwrap();
    let (call, original) = recorded_call(&app, work.path()).await;
    let original_bytes = std::fs::read(&original).unwrap();
    let created = app.cli(&[
        "staff",
        "create",
        "--username",
        "auditor.backup",
        "--role",
        "auditor",
    ]);
    let password = created
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password")
        .to_string();
    app.create_user("u-load").await;
    let merchant = Merchant {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        client_id: app.client_id.clone(),
        secret: app.secret.clone(),
    };

    // Merchants keep writing: four clients creating and approving requests.
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(Mutex::new(Vec::<Made>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            tokio::spawn(load(
                merchant.clone(),
                app.base.clone(),
                task,
                stop.clone(),
                made.clone(),
                failures.clone(),
            ))
        })
        .collect();
    let acknowledged = |made: &Mutex<Vec<Made>>| {
        made.lock()
            .unwrap()
            .iter()
            .filter(|m| m.created.is_some())
            .count()
    };
    let start = Instant::now();
    while acknowledged(&made) < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the load makes no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The backup, while they write.
    let root = tempfile::tempdir().unwrap();
    let backup = root.path().join("backup");
    let began = Instant::now();
    let out = vkyc_async(
        app._dir.path(),
        &app.database_url,
        &["backup", "--to", backup.to_str().unwrap()],
    )
    .await;
    let ended = Instant::now();
    let printed = succeeded(&out, "vkyc backup");
    let before_end = acknowledged(&made);
    while acknowledged(&made) < before_end + 10 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the load stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        failures.lock().unwrap().clone(),
        Vec::<String>::new(),
        "the server kept answering during the backup"
    );
    let made = made.lock().unwrap().clone();
    let during = made
        .iter()
        .filter(|m| m.created.is_some_and(|t| t > began && t < ended))
        .count();
    assert!(
        during > 0,
        "requests were acknowledged while the backup ran"
    );
    assert!(
        printed.contains("The master key is NOT in the backup"),
        "{printed}"
    );

    // What the backup holds: private, with a manifest of every file.
    assert_private(&backup);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "vkyc-backup/1");
    assert_eq!(manifest["vkyc_version"], env!("CARGO_PKG_VERSION"));
    let pg = app.database_url.starts_with("postgres");
    assert_eq!(manifest["backend"], if pg { "postgres" } else { "sqlite" });
    assert_eq!(
        manifest["schema_version"].as_i64().unwrap(),
        vkyc::store::backup::latest_migration(app.store.backend())
    );
    assert_eq!(manifest["master_key"]["included"], false);
    assert_eq!(manifest["master_key"]["fingerprint"], app.key.fingerprint());
    let files = manifest["files"].as_array().unwrap();
    let listed: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    let db_file = if pg {
        "database/vkyc.pgdump"
    } else {
        "database/vkyc.db"
    };
    let webm = format!("recordings/{call}.webm");
    let sidecar = format!("recordings/{call}.json");
    assert_eq!(listed, [db_file, webm.as_str(), sidecar.as_str()]);
    assert!(!backup.join("recordings/sides").exists());
    for file in files {
        let bytes = std::fs::read(backup.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(file["bytes"], bytes.len());
        assert_eq!(file["sha256"], hex::encode(Sha256::digest(&bytes)));
    }
    assert_eq!(std::fs::read(backup.join(&webm)).unwrap(), original_bytes);

    // Restored into a new data directory (and database), with the key kept apart.
    let (restored_dir, restored_url) = new_target(root.path(), "restored").await;
    let key_file = app._dir.path().join("master.key");
    let out = vkyc_async(
        &restored_dir,
        &restored_url,
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--master-key",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    let printed = succeeded(&out, "vkyc restore");
    assert!(printed.contains("master key written to"), "{printed}");
    assert_private(&restored_dir);
    let restored_webm = restored_dir.join(format!("recordings/{call}.webm"));
    assert_eq!(std::fs::read(&restored_webm).unwrap(), original_bytes);

    // The original deployment's files are gone (a lost machine): the restored one serves
    // its own copies.
    std::fs::remove_file(&original).unwrap();
    std::fs::remove_file(original.with_extension("json")).unwrap();
    let server: Server = start_server_with(&restored_dir, &restored_url, 1, &[]).await;
    let base = server.base.clone();
    let mut checked = 0;
    let mut approved = 0;
    for m in &made {
        let path = format!("/vkyc?verification_id={}", m.vid);
        let (status, body) = merchant.call(&base, Method::GET, &path, None).await;
        if m.created.is_some_and(|t| t < began) {
            assert_eq!(
                status, 200,
                "{} was acknowledged before the backup: {body}",
                m.vid
            );
            let history = merchant.history(&base, &m.vid).await;
            let source = merchant.history(&app.base, &m.vid).await;
            assert!(
                !history.is_empty() && source.starts_with(&history),
                "{}: restored history {history:?} is not the source's {source:?}",
                m.vid
            );
            let last = &history.last().unwrap()["to_sub_status"];
            assert_eq!(body["sub_status"], *last, "{}", m.vid);
            if m.approved.is_some_and(|t| t < began) {
                assert_eq!(history, source, "{}", m.vid);
                assert_eq!(body["sub_status"], "AUDITOR_APPROVED", "{}", m.vid);
                approved += 1;
            }
            checked += 1;
        } else if m.sent > ended {
            assert_eq!(status, 404, "{} was made after the backup: {body}", m.vid);
        } else {
            assert!(matches!(status, 200 | 404), "{}: {status} {body}", m.vid);
        }
    }
    eprintln!(
        "backup: {} ms, {during} requests acknowledged while it ran; {checked} requests \
         acknowledged before it checked after the restore ({approved} approved)",
        (ended - began).as_millis()
    );
    assert!(
        checked >= 40 && approved > 0,
        "{checked} checked, {approved} approved"
    );

    // The recording plays: the merchant's signed link serves the same bytes, and the
    // auditor's desk serves the customer's side, which ffprobe reads.
    let (status, body) = merchant
        .call(&base, Method::GET, "/vkyc?verification_id=recorded", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let link = body["recording_link"]
        .as_str()
        .expect("a recording link")
        .to_string();
    assert!(link.starts_with(&base), "{link}");
    let served = reqwest::get(&link).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().to_vec(), original_bytes);
    let cookie = desk_login(&base, "auditor.backup", &password).await;
    let side = reqwest::Client::new()
        .get(format!(
            "{base}/desk/api/calls/{call}/recording/customer.webm"
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(side.status(), 200);
    let side_file = work.path().join("restored-customer.webm");
    std::fs::write(&side_file, side.bytes().await.unwrap()).unwrap();
    let probe = ffprobe(&side_file);
    let kinds: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio"]);
    let seconds: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 3.0, "{seconds}");
    drop(server);

    // A backup file altered afterwards: the restore names it and puts nothing in place.
    let mut bytes = std::fs::read(backup.join(&webm)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(backup.join(&webm), &bytes).unwrap();
    let (tampered_dir, tampered_url) = new_target(root.path(), "tampered").await;
    let out = vkyc_async(
        &tampered_dir,
        &tampered_url,
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--master-key",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    let said = refused(&out, "restoring an altered backup");
    assert!(
        said.contains(&format!(
            "the backup is damaged: {webm} does not match manifest.json"
        )),
        "{said}"
    );
    assert!(!tampered_dir.exists(), "nothing was put in place");
    if pg {
        assert_eq!(pg_tables(&tampered_url).await, 0);
    }
}

#[tokio::test]
async fn backups_and_restores_refuse_what_is_not_empty_and_a_foreign_master_key() {
    let app = crate::helpers::spawn_app().await;
    app.create_user("u1").await;
    app.create_vkyc("kept", "u1").await;
    let root = tempfile::tempdir().unwrap();
    let (data, url) = (app._dir.path(), app.database_url.as_str());

    // Into a directory that holds something: refused, and left as it was.
    let busy = root.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let said = refused(
        &vkyc_async(data, url, &["backup", "--to", busy.to_str().unwrap()]).await,
        "a backup into a directory that is not empty",
    );
    assert!(
        said.contains("is not empty: give an empty or a new directory"),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    let backup = root.path().join("backup");
    succeeded(
        &vkyc_async(data, url, &["backup", "--to", backup.to_str().unwrap()]).await,
        "vkyc backup",
    );
    let from = backup.to_str().unwrap();

    // A restore into a data directory that is not empty: refused, and left as it was.
    let (target, target_url) = new_target(root.path(), "target").await;
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), b"mine").unwrap();
    let said = refused(
        &vkyc_async(&target, &target_url, &["restore", "--from", from]).await,
        "a restore into a data directory that is not empty",
    );
    assert!(
        said.contains(&format!(
            "the data directory {} is not empty",
            target.display()
        )),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);

    // Another deployment's master key: refused before anything is restored.
    let foreign = root.path().join("foreign.key");
    vkyc::secrets::MasterKey::generate()
        .write(&foreign)
        .unwrap();
    let (fresh, fresh_url) = new_target(root.path(), "fresh").await;
    let said = refused(
        &vkyc_async(
            &fresh,
            &fresh_url,
            &[
                "restore",
                "--from",
                from,
                "--master-key",
                foreign.to_str().unwrap(),
            ],
        )
        .await,
        "a restore with another deployment's key",
    );
    assert!(
        said.contains("is not the one this backup's secrets are sealed under"),
        "{said}"
    );
    assert!(!fresh.exists());

    // Without the key: restored, but the server refuses to start until the key is back.
    let printed = succeeded(
        &vkyc_async(&fresh, &fresh_url, &["restore", "--from", from]).await,
        "vkyc restore without the key",
    );
    assert!(
        printed.contains("The master key is not in place"),
        "{printed}"
    );
    let out = {
        let (dir, url) = (fresh.clone(), fresh_url.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_vkyc"))
                .arg("serve")
                .env("VKYC_DATA_DIR", &dir)
                .env("VKYC_DATABASE_URL", &url)
                .env("VKYC_LISTEN", "127.0.0.1:0")
                .env("VKYC_MEDIA__UDP_BIND", "127.0.0.1:0")
                .env_remove("VKYC_CONFIG")
                .env_remove("VKYC_MASTER_KEY")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let said = refused(&out, "serving a restored database without its master key");
    assert!(
        said.contains("this database holds secrets sealed under one"),
        "{said}"
    );
    assert!(
        !fresh.join("master.key").exists(),
        "no stray key is left behind"
    );
    std::fs::copy(data.join("master.key"), fresh.join("master.key")).unwrap();
    let server = start_server_with(&fresh, &fresh_url, 1, &[]).await;
    let merchant = Merchant {
        client: reqwest::Client::new(),
        client_id: app.client_id.clone(),
        secret: app.secret.clone(),
    };
    let (status, body) = merchant
        .call(
            &server.base,
            Method::GET,
            "/vkyc?verification_id=kept",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verification_id"], "kept");

    // PostgreSQL without pg_dump: the recordings and the manifest only, said loudly, and
    // such a backup is not restored.
    if url.starts_with("postgres") {
        let undumped = root.path().join("undumped");
        let out = Command::new(env!("CARGO_BIN_EXE_vkyc"))
            .args(["backup", "--to", undumped.to_str().unwrap()])
            .env("VKYC_DATA_DIR", data)
            .env("VKYC_DATABASE_URL", url)
            .env("PATH", root.path())
            .env_remove("VKYC_CONFIG")
            .env_remove("VKYC_MASTER_KEY")
            .output()
            .unwrap();
        let printed = succeeded(&out, "vkyc backup without pg_dump");
        assert!(printed.contains("the database was NOT copied"), "{printed}");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(undumped.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["database"], Value::Null);
        let (target, target_url) = new_target(root.path(), "undumped-target").await;
        let said = refused(
            &vkyc_async(
                &target,
                &target_url,
                &["restore", "--from", undumped.to_str().unwrap()],
            )
            .await,
            "restoring a backup without a database",
        );
        assert!(said.contains("this backup holds no database"), "{said}");
        assert!(!target.exists());
    }
}
