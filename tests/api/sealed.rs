//! Personal data sealed at rest: the Aadhaar details (proved in the journey or sent by the
//! merchant), the Aadhaar photo, the call's stills and the customer's address are in the
//! database only sealed under the master key, while the API, the desk's case file, the
//! auditor's screen and the export show them whole; `vkyc master-key rotate` re-seals
//! them; a database written before sealing existed is sealed on its first start.

use crate::calls::{agent, complete_checks, jpeg, queue_and_assign, staff, Desk, JPEG_B64};
use crate::helpers::*;
use crate::journey::Customer;
use crate::support::Signer;
use base64::Engine;
use reqwest::header::COOKIE;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Read;
use vkyc::secrets::MasterKey;

// The customer who proves Aadhaar in the journey (the street is the test file's own).
const NAME: &str = "Ishita Raghunathan";
const DOB: &str = "14-02-1987";
const CARE_OF: &str = "D/O Prakash Raghunathan";
const STREET: &str = "100 Feet Road";
const ADDRESS: &str = "Flat 7B, Lotus Residency, HSR Layout";
// The customer whose Aadhaar details the merchant sends.
const M_NAME: &str = "Kavya Subramanian";
const M_DOB: &str = "23-09-1991";
const M_STREET: &str = "Besant Avenue Road";
const M_ADDRESS: &str = "221 Residency Road, Shanthinagar";

/// The columns that hold personal data, with the table's key.
const SEALED: [(&str, &str, &str); 5] = [
    ("users", "id", "address"),
    ("requests", "id", "aadhaar_details"),
    ("aadhaar_kyc", "request_id", "details"),
    ("aadhaar_kyc", "request_id", "photo"),
    ("captures", "id", "image"),
];

/// What the set-up below stored, as the screens show it.
struct Case {
    /// The journey customer's reference id, and their call.
    reference: i64,
    call: i64,
    /// The merchant-sent customer's reference id.
    merchant_sent: i64,
    /// The Aadhaar photo from the e-KYC file (a JPEG).
    photo: Vec<u8>,
}

fn open_all_day(c: &mut vkyc::config::Config, cert: String) {
    c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    c.journey.working_hours = "00:00-24:00".into();
    c.journey.uidai_certificate = cert;
    c.agent_stale_seconds = 3600;
    c.calls.drop_grace_seconds = 3600;
}

async fn app_for(uidai: &Signer) -> TestApp {
    let cert = uidai.cert.clone();
    spawn_app_with(move |c| open_all_day(c, cert)).await
}

/// A user (with an address, without a name: the name stays in clear for the case search)
/// and a request for them.
async fn customer_with_address<'a>(
    app: &'a TestApp,
    id: &str,
    address: &str,
    extra: Value,
) -> Customer<'a> {
    app.call(
        Method::POST,
        "/user",
        Some(json!({"user_id": id, "phone": "9876543210", "address": address})),
    )
    .await
    .ok();
    let mut body = json!({"verification_id": id, "user_id": id});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = app.call(Method::POST, "/vkyc", Some(body)).await.ok();
    let link = created["vkyc_link"].as_str().unwrap();
    Customer {
        app,
        key: link.rsplit('/').next().unwrap().to_string(),
        verification_id: id.to_string(),
    }
}

/// Through the real paths: one customer proves Aadhaar with the e-KYC file, passes the
/// checks and has a call with two stills, which the agent approves; another's Aadhaar
/// details come from the merchant and are kept once the IP check passes.
async fn a_case(app: &TestApp, uidai: &Signer, agent: &Desk<'_>) -> Case {
    let c = customer_with_address(app, "sealed-1", ADDRESS, json!({})).await;
    c.consent().await;
    let zip = uidai.zip(&["--name", NAME, "--dob", DOB, "--careof", CARE_OF]);
    let uploaded = send(
        app.client
            .post(format!("{}/v/{}/api/aadhaar", app.base, c.key))
            .header("content-type", "application/zip")
            .header("x-share-code", "1234")
            .body(zip),
    )
    .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    assert_eq!(c.call(Method::POST, "ip", None).await.status, 200);
    let here = json!({"permission": "granted", "latitude": 12.97, "longitude": 77.64});
    assert_eq!(
        c.call(Method::POST, "location", Some(here)).await.status,
        200
    );
    let ok = json!({"camera": "ok", "microphone": "ok", "bandwidth_kbps": 2000});
    assert_eq!(c.call(Method::POST, "devices", Some(ok)).await.status, 200);
    queue_and_assign(&c).await;
    c.call(Method::POST, "call/accept", None).await.ok();
    let call = agent.call_view().await["call"]["id"].as_i64().unwrap();
    complete_checks(agent, call).await;
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "matches"}),
        )
        .await
        .ok();

    let details = json!({"aadhaar_details": {
        "last_verified_at": "2026-11-30T10:00:00Z", "care_of": "W/O Arjun Subramanian",
        "dob": M_DOB, "name": M_NAME, "photo_link": "https://example.in/p.jpg", "gender": "F",
        "split_address": {"country": "India", "dist": "Chennai", "house": "No 5",
                          "state": "Tamil Nadu", "street": M_STREET, "pincode": 600090}}});
    let m = customer_with_address(app, "sealed-2", M_ADDRESS, details).await;
    m.consent().await;
    assert_eq!(m.call(Method::POST, "ip", None).await.status, 200);

    let reference = app.status("sealed-1").await["reference_id"]
        .as_i64()
        .unwrap();
    let merchant_sent = app.status("sealed-2").await["reference_id"]
        .as_i64()
        .unwrap();
    let photo = photo_of(app, agent, reference).await;
    Case {
        reference,
        call,
        merchant_sent,
        photo,
    }
}

/// The Aadhaar photo as the desk serves it.
async fn photo_of(app: &TestApp, desk: &Desk<'_>, reference: i64) -> Vec<u8> {
    let res = app
        .client
        .get(format!("{}/desk/api/photos/{reference}", app.base))
        .header(COOKIE, &desk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let photo = res.bytes().await.unwrap().to_vec();
    assert!(photo.len() > 100 && photo.starts_with(&[0xFF, 0xD8, 0xFF]));
    photo
}

/// What must never be found in the database: the known details, and the photo and the
/// stills as bytes and as the Base64 they were sent in.
fn clear_values(case: &Case) -> Vec<(String, Vec<u8>)> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut out: Vec<(String, Vec<u8>)> = [
        NAME, DOB, CARE_OF, STREET, ADDRESS, M_NAME, M_DOB, M_STREET, M_ADDRESS,
    ]
    .iter()
    .map(|s| (s.to_string(), s.as_bytes().to_vec()))
    .collect();
    out.push(("the Aadhaar photo".into(), case.photo.clone()));
    out.push((
        "the Aadhaar photo in Base64".into(),
        b64(&case.photo).into_bytes(),
    ));
    out.push(("a still".into(), jpeg()));
    out.push(("a still in Base64".into(), JPEG_B64.as_bytes().to_vec()));
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The SQLite database as a copy of it would hold it: the file and its WAL, read by
/// another process (`cat`), as a backup would. (Opening and closing the file in this
/// process, which runs the server, would drop the server's POSIX locks on it.)
fn sqlite_bytes(app: &TestApp) -> Option<Vec<u8>> {
    let path = app.database_url.strip_prefix("sqlite://")?;
    let wal = format!("{path}-wal");
    let mut args = vec![path];
    if std::path::Path::new(&wal).exists() {
        args.push(&wal);
    }
    let out = std::process::Command::new("cat")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    Some(out.stdout)
}

/// Every stored value of the personal columns: (table.column, row key, value).
async fn raw_values(app: &TestApp) -> Vec<(String, i64, String)> {
    let pool = app.pool().await;
    let mut out = Vec::new();
    for (table, key, column) in SEALED {
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {key}"
        ))
        .fetch_all(&pool)
        .await
        .unwrap();
        for (k, v) in rows {
            out.push((format!("{table}.{column}"), k, v));
        }
    }
    pool.close().await;
    out
}

/// Each personal column holds sealed values only, none of the clear values, and `key`
/// (and no other) opens them to what the screens show.
async fn assert_sealed_under(app: &TestApp, case: &Case, key: &MasterKey) {
    let raw = raw_values(app).await;
    let columns: Vec<&str> = raw.iter().map(|(c, _, _)| c.as_str()).collect();
    for (table, _, column) in SEALED {
        let name = format!("{table}.{column}");
        assert!(columns.contains(&name.as_str()), "no {name} was stored");
    }
    let clear = clear_values(case);
    for (column, row, value) in &raw {
        assert!(value.starts_with("v1:"), "{column} of {row} is not sealed");
        for (what, bytes) in &clear {
            assert!(
                !contains(value.as_bytes(), bytes),
                "{what} is in {column} of {row}"
            );
        }
        let opened = key
            .open(value)
            .unwrap_or_else(|e| panic!("{column} of {row}: {e}"));
        assert!(MasterKey::generate().open(value).is_err());
        match column.as_str() {
            "captures.image" => assert_eq!(opened, jpeg()),
            "aadhaar_kyc.photo" => assert_eq!(opened, case.photo),
            _ => assert!(!opened.starts_with(&[0xFF, 0xD8, 0xFF])),
        }
    }
    let opened = |column: &str, row: i64| {
        let (_, _, v) = raw
            .iter()
            .find(|(c, k, _)| c == column && *k == row)
            .unwrap_or_else(|| panic!("no {column} for {row}"));
        String::from_utf8(key.open(v).unwrap()).unwrap()
    };
    assert!(opened("aadhaar_kyc.details", case.reference).contains(NAME));
    assert!(opened("aadhaar_kyc.details", case.merchant_sent).contains(M_NAME));
    assert!(opened("requests.aadhaar_details", case.merchant_sent).contains(M_DOB));
}

/// On SQLite, the database file and its WAL hold none of the clear values.
fn assert_file_reveals_nothing(app: &TestApp, case: &Case) {
    let Some(bytes) = sqlite_bytes(app) else {
        return;
    };
    for (what, needle) in clear_values(case) {
        assert!(!contains(&bytes, &needle), "{what} is in the database file");
    }
}

/// The API and every screen show the details, the photo and the stills whole.
async fn assert_shown_whole(app: &TestApp, case: &Case) {
    let user = app
        .call(Method::GET, "/user?user_id=sealed-1", None)
        .await
        .ok();
    assert_eq!(user["address"], ADDRESS);
    let status = app.status("sealed-1").await;
    assert_eq!(status["sub_status"], "AGENT_APPROVED");
    let journey = app
        .call(Method::GET, "/vkyc/journey?verification_id=sealed-1", None)
        .await
        .ok();
    assert_eq!(journey["aadhaar"]["source"], "offline_ekyc");
    assert_eq!(journey["aadhaar"]["details"]["name"], NAME);
    assert_eq!(journey["aadhaar"]["details"]["dob"], DOB);
    assert_eq!(journey["aadhaar"]["details"]["address"]["street"], STREET);
    let journey = app
        .call(Method::GET, "/vkyc/journey?verification_id=sealed-2", None)
        .await
        .ok();
    assert_eq!(journey["aadhaar"]["source"], "merchant");
    assert_eq!(journey["aadhaar"]["details"]["name"], M_NAME);
    assert_eq!(
        journey["aadhaar"]["details"]["split_address"]["street"],
        M_STREET
    );

    // The case file (admin).
    let admin = staff(app, &format!("admin-{}", rand::random::<u32>()), "admin").await;
    let view = admin.get(&format!("/cases/{}", case.reference)).await.ok();
    assert_eq!(view["aadhaar"]["name"], NAME);
    assert_eq!(view["aadhaar"]["dob"], DOB);
    assert_eq!(view["aadhaar"]["care_of"], CARE_OF);
    assert_eq!(view["aadhaar"]["address"]["street"], STREET);
    assert_eq!(view["user"]["address"], ADDRESS);
    let data_url = view["aadhaar"]["photo"].as_str().unwrap();
    let b64 = data_url.strip_prefix("data:image/jpeg;base64,").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        case.photo
    );
    let stills = view["calls"][0]["captures"].as_array().unwrap();
    assert_eq!(stills.len(), 2);
    for still in stills {
        let url = format!("{}{}", app.base, still["url"].as_str().unwrap());
        let res = app
            .client
            .get(url)
            .header(COOKIE, &admin.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.unwrap().to_vec(), jpeg());
    }
    let other = admin
        .get(&format!("/cases/{}", case.merchant_sent))
        .await
        .ok();
    assert_eq!(other["aadhaar"]["name"], M_NAME);
    assert_eq!(other["aadhaar"]["dob"], M_DOB);
    assert_eq!(other["user"]["address"], M_ADDRESS);

    // The export.
    let res = app
        .client
        .get(format!(
            "{}/desk/api/cases/{}/export",
            app.base, case.reference
        ))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    assert_eq!(read("aadhaar_photo.jpg"), case.photo);
    let case_json: Value = serde_json::from_slice(&read("case.json")).unwrap();
    assert_eq!(case_json["aadhaar"]["name"], NAME);
    assert_eq!(case_json["user"]["address"], ADDRESS);
    for still in case_json["calls"][0]["captures"].as_array().unwrap() {
        assert_eq!(read(still["file"].as_str().unwrap()), jpeg());
    }

    // The auditor's screen (another staff member than the call's agent).
    let auditor = staff(
        app,
        &format!("auditor-{}", rand::random::<u32>()),
        "auditor",
    )
    .await;
    let review = auditor
        .get(&format!("/audit/cases/{}", case.reference))
        .await
        .ok();
    assert_eq!(review["aadhaar"]["details"]["name"], NAME);
    assert_eq!(review["aadhaar"]["details"]["dob"], DOB);
    assert_eq!(review["aadhaar_photo"]["source"], "ekyc");
    assert_eq!(photo_of(app, &auditor, case.reference).await, case.photo);
    assert_eq!(review["call"]["id"], case.call);
    for still in review["call"]["captures"].as_array().unwrap() {
        let url = format!("{}{}", app.base, still["url"].as_str().unwrap());
        let res = app
            .client
            .get(url)
            .header(COOKIE, &auditor.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.bytes().await.unwrap().to_vec(), jpeg());
    }
}

/// A server on `app`'s database with the master key in `key_file`.
async fn restart(app: &TestApp, uidai: &Signer, key_file: &std::path::Path) -> TestApp {
    let cert = uidai.cert.clone();
    let database_url = app.database_url.clone();
    let key_path = key_file.display().to_string();
    let mut restarted = spawn_app_with(move |c| {
        open_all_day(c, cert);
        c.database_url = database_url;
        c.master_key_file = key_path;
    })
    .await;
    // The merchant's requests, read with the merchant's credentials.
    restarted.client_id = app.client_id.clone();
    restarted.secret = app.secret.clone();
    // The command line (`vkyc staff create`) beside it reads the key from its data
    // directory.
    std::fs::copy(key_file, restarted._dir.path().join("master.key")).unwrap();
    restarted
}

#[tokio::test]
async fn sealed_personal_data_is_unreadable_at_rest_and_shown_whole() {
    let uidai = Signer::new();
    let app = app_for(&uidai).await;
    let agent = agent(&app, "sealed-agent").await;
    let case = a_case(&app, &uidai, &agent).await;
    assert_sealed_under(&app, &case, &app.key).await;
    assert_file_reveals_nothing(&app, &case);
    assert_shown_whole(&app, &case).await;
}

#[tokio::test]
async fn sealed_personal_data_is_resealed_by_a_master_key_rotation() {
    let uidai = Signer::new();
    let app = app_for(&uidai).await;
    let agent = agent(&app, "rotation-agent").await;
    let case = a_case(&app, &uidai, &agent).await;
    let before = raw_values(&app).await;

    let secrets = app.store.sealed_values().await.unwrap().len();
    let out = app.cli(&["master-key", "rotate"]);
    // The secrets and the personal values.
    let count = format!("{} values re-sealed", secrets + before.len());
    assert!(out.contains(&count), "{out}");
    let key_file = app._dir.path().join("master.key");
    let new_key = MasterKey::load_or_create(&key_file).unwrap();
    assert_ne!(new_key.to_hex(), app.key.to_hex());
    assert_sealed_under(&app, &case, &new_key).await;
    for (column, row, value) in raw_values(&app).await {
        assert!(
            app.key.open(&value).is_err(),
            "the old key opens {column} of {row}"
        );
    }

    // The server still holding the old key stores no personal data any more: it would
    // be sealed under a key the database has left.
    app.call(
        Method::POST,
        "/user",
        Some(json!({"user_id": "late", "phone": "9876543210", "address": "1 Late Lane"})),
    )
    .await
    .assert_error(
        503,
        "internal_error",
        "master_key_changed",
        "the server's master key was changed; the server must be restarted to store this.",
    );
    app.call(Method::GET, "/user?user_id=late", None)
        .await
        .assert_code(404, "user_id_not_found");

    // Nor does a server start with it.
    let old_file = app._dir.path().join("old.key");
    app.key.write(&old_file).unwrap();
    let mut config = vkyc::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: tempfile::tempdir().unwrap().keep(),
        database_url: app.database_url.clone(),
        master_key_file: old_file.display().to_string(),
        ..vkyc::config::Config::default()
    };
    config.media.udp_bind = "127.0.0.1:0".into();
    let refused = vkyc::http::app::Application::build(config).await;
    let err = format!("{:#}", refused.err().expect("the old key is refused"));
    assert!(err.contains("master key does not open"), "{err}");

    // Restarted with the new key, everything reads as before.
    let restarted = restart(&app, &uidai, &key_file).await;
    assert_shown_whole(&restarted, &case).await;
    assert_file_reveals_nothing(&restarted, &case);
}

#[tokio::test]
async fn sealed_personal_data_written_before_sealing_is_sealed_on_the_first_start() {
    let uidai = Signer::new();
    let app = app_for(&uidai).await;
    let agent = agent(&app, "upgrade-agent").await;
    let case = a_case(&app, &uidai, &agent).await;

    // The database as the version before sealing left it: each personal value in clear
    // (text as it was, images in Base64), and migration 0019 not yet applied.
    let pool = app.pool().await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (column, row, value) in raw_values(&app).await {
        let opened = app.key.open(&value).unwrap();
        let clear = match column.as_str() {
            "captures.image" | "aadhaar_kyc.photo" => b64(&opened),
            _ => String::from_utf8(opened).unwrap(),
        };
        let (table, name) = column.split_once('.').unwrap();
        let key = SEALED.iter().find(|s| s.0 == table).unwrap().1;
        sqlx::query(&format!("UPDATE {table} SET {name} = $1 WHERE {key} = $2"))
            .bind(clear)
            .bind(row)
            .execute(&pool)
            .await
            .unwrap();
    }
    for statement in [
        "DROP TABLE unsealed_values",
        "DROP TABLE master_key_id",
        "DELETE FROM _sqlx_migrations WHERE version = 19",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let clear = raw_values(&app).await;
    assert!(clear.iter().all(|(_, _, v)| !v.starts_with("v1:")));
    if let Some(bytes) = sqlite_bytes(&app) {
        assert!(contains(&bytes, NAME.as_bytes()), "the clear copy is seen");
    }

    // The first start after the upgrade seals them all, and the clear copies are gone
    // from the SQLite file too.
    let key_file = app._dir.path().join("master.key");
    let upgraded = restart(&app, &uidai, &key_file).await;
    assert_sealed_under(&upgraded, &case, &app.key).await;
    assert_file_reveals_nothing(&upgraded, &case);
    let pool = upgraded.pool().await;
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM unsealed_values")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(left, 0);
    assert_shown_whole(&upgraded, &case).await;

    // Starting again changes nothing: every value was sealed once.
    let sealed = raw_values(&upgraded).await;
    assert_eq!(sealed.len(), clear.len());
    let again = restart(&app, &uidai, &key_file).await;
    assert_eq!(raw_values(&again).await, sealed);
    assert_shown_whole(&again, &case).await;
}
