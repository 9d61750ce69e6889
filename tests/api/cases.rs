//! Case search and the case file for admins and auditors: every filter, keyset pages,
//! refusals, the case file of a whole case (masked Aadhaar, location, consent, calls,
//! captures, recording) and its signed export, checked as a regulator would.

use crate::calls::{agent, calls_app, complete_checks, queue_and_assign, staff, Desk};
use crate::helpers::*;
use crate::journey::{consent_text, customer};
use crate::support::Signer;
use reqwest::header::COOKIE;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Creates a user and `n` requests for them; answers the verification ids.
async fn requests_of(app: &TestApp, user: &str, phone: &str, name: &str, n: usize) -> Vec<String> {
    app.call(
        Method::POST,
        "/user",
        Some(json!({"user_id": user, "phone": phone, "name": name})),
    )
    .await
    .ok();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{user}-{i}");
        app.create_vkyc(&id, user).await;
        ids.push(id);
    }
    ids
}

/// The verification ids of a search result, and its cursor.
async fn search(desk: &Desk<'_>, query: &str) -> (Vec<String>, Option<String>) {
    let body = desk.get(&format!("/cases?{query}")).await.ok();
    let ids = body["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verification_id"].as_str().unwrap().to_string())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_string))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn set_created(app: &TestApp, verification_id: &str, at: i64) {
    sqlx::query("UPDATE requests SET created_at = $1 WHERE verification_id = $2")
        .bind(at)
        .bind(verification_id)
        .execute(&app.pool().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn cases_are_found_by_every_filter_a_page_at_a_time() {
    let app = calls_app(60, 3600).await;
    let asha = requests_of(&app, "asha", "9876500001", "Asha Rao", 3).await;
    let ravi = requests_of(&app, "ravi", "9876500002", "Ravi Kumar", 4).await;
    let admin = staff(&app, "case-admin", "admin").await;
    let auditor = staff(&app, "case-auditor", "auditor").await;
    let all: Vec<String> = asha.iter().chain(&ravi).cloned().collect();

    // Each filter alone.
    for desk in [&admin, &auditor] {
        assert_eq!(search(desk, "").await.0.len(), 7);
        assert_eq!(search(desk, "verification_id=ravi-2").await.0, ["ravi-2"]);
    }
    let reference = app.status("asha-1").await["reference_id"].as_i64().unwrap();
    assert_eq!(
        search(&admin, &format!("reference_id={reference}")).await.0,
        ["asha-1"]
    );
    assert_eq!(sorted(search(&admin, "user_id=asha").await.0), asha);
    assert_eq!(
        sorted(search(&admin, "phone=%2B91%2098765%2000002").await.0),
        ravi
    );
    assert_eq!(sorted(search(&admin, "name=asha%20RAO").await.0), asha);
    assert!(
        search(&admin, "name=Asha").await.0.is_empty(),
        "names match whole"
    );
    assert_eq!(
        sorted(search(&admin, "status=RECEIVED").await.0),
        sorted(all.clone())
    );
    assert!(search(&admin, "status=AGENT_REVIEWED").await.0.is_empty());
    assert_eq!(
        search(&admin, "sub_status=LINK_GENERATED&user_id=ravi")
            .await
            .0
            .len(),
        4
    );

    // Dates are whole IST days, or instants.
    let day = chrono::DateTime::parse_from_rfc3339("2026-01-15T00:00:00+05:30")
        .unwrap()
        .timestamp_millis();
    set_created(&app, "asha-0", day).await; // the day's first millisecond
    set_created(&app, "ravi-0", day + 86_400_000 - 1).await; // and its last
    set_created(&app, "ravi-1", day + 86_400_000).await; // the next day
    assert_eq!(
        sorted(search(&admin, "from=2026-01-15&to=2026-01-15").await.0),
        ["asha-0", "ravi-0"]
    );
    assert_eq!(
        search(&admin, "to=2026-01-14T18:30:00Z").await.0,
        ["asha-0"],
        "an instant is inclusive"
    );
    assert_eq!(
        sorted(search(&admin, "from=2026-01-16&to=2026-01-16").await.0),
        ["ravi-1"]
    );

    // Pages of two, newest first, until the last; nothing missed or repeated.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let (ids, next) = search(&admin, &query).await;
        pages += 1;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(sorted(seen.clone()), sorted(all.clone()));
    assert_eq!(seen.last().unwrap(), "asha-0", "the oldest last");
    assert_eq!(seen[seen.len() - 2], "ravi-0");
    let (first, _) = search(&admin, "limit=1&status=RECEIVED").await;
    assert_eq!(first, ["ravi-3"], "the newest first");
    assert_eq!(seen[0], "ravi-3");
    assert_eq!(seen[seen.len() - 3], "ravi-1");

    // Wrong input: a clear 400 naming the field; an agent gets 403; no session, 401.
    for (query, code) in [
        ("status=NOPE", "status_value_invalid"),
        ("sub_status=received", "sub_status_value_invalid"),
        ("phone=12345", "phone_value_invalid"),
        ("reference_id=-3", "reference_id_value_invalid"),
        ("limit=0", "limit_value_invalid"),
        ("limit=201", "limit_value_invalid"),
        ("cursor=abc", "cursor_value_invalid"),
        ("from=2026-13-01", "from_value_invalid"),
        ("from=2026-02-01&to=2026-01-01", "date_range_invalid"),
        ("agent=nobody", "agent_not_found"),
        ("colour=red", "colour_unknown"),
        ("status=RECEIVED&status=EXPIRED", "status_value_invalid"),
    ] {
        admin
            .get(&format!("/cases?{query}"))
            .await
            .assert_code(400, code);
    }
    let agent = agent(&app, "case-agent").await;
    agent.get("/cases").await.assert_error(
        403,
        "authentication_error",
        "role_forbidden",
        "your role does not allow this action.",
    );
    let anonymous = send(app.client.get(format!("{}/desk/api/cases", app.base))).await;
    anonymous.assert_code(401, "session_required");

    // Searches are audited by what was searched for, never by the values.
    let audited: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, details FROM staff_audit WHERE action = 'case_search'")
            .fetch_all(&app.pool().await)
            .await
            .unwrap();
    assert!(audited.iter().any(|(_, d)| d.as_deref() == Some("phone")));
    assert!(!audited
        .iter()
        .any(|(_, d)| d.as_deref().unwrap_or("").contains("98765")));
}

/// Every filter reads an index, whatever the table's size: no scan of the requests.
#[tokio::test]
async fn cases_every_search_filter_is_served_by_an_index() {
    let app = spawn_app().await;
    let filters = [
        vkyc::store::CaseFilter::default(),
        vkyc::store::CaseFilter {
            verification_id: Some("x".into()),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            user_id: Some("x".into()),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            phone: Some("9876543210".into()),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            name: Some("asha rao".into()),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            status: Some("RECEIVED"),
            from: Some(1),
            until: Some(2),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            sub_status: Some("LINK_GENERATED"),
            ..Default::default()
        },
        vkyc::store::CaseFilter {
            agent_id: Some(1),
            ..Default::default()
        },
    ];
    for filter in &filters {
        for cursor in [None, Some((5, 5))] {
            let plan = app
                .store
                .explain_search_cases(filter, cursor)
                .await
                .unwrap();
            let scans_requests = plan.lines().any(|l| {
                (l.contains("SCAN r") && !l.contains("USING")) || l.contains("Seq Scan on requests")
            });
            assert!(!scans_requests, "{filter:?} scans the requests:\n{plan}");
            let scans_users = plan.lines().any(|l| {
                (l.contains("SCAN u") && !l.contains("USING")) || l.contains("Seq Scan on users")
            });
            assert!(!scans_users, "{filter:?} scans the users:\n{plan}");
            if filter.agent_id.is_some() {
                // An agent's page is read in order, not gathered from all their calls
                // and sorted.
                let sorts = plan.contains("TEMP B-TREE") || plan.contains("Sort");
                assert!(!sorts, "{filter:?} sorts:\n{plan}");
            }
        }
    }
}

/// A whole case: Aadhaar proved offline, checks, a call with captures and a recording,
/// the agent's decision. The case file shows it all with the Aadhaar number masked; the
/// export carries it with files whose hashes and signature a regulator can check.
#[tokio::test]
async fn cases_the_case_file_and_its_signed_export() {
    let uidai = Signer::new();
    let cert = uidai.cert.clone();
    let app = spawn_app_with(move |c| {
        c.journey.working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec();
        c.journey.working_hours = "00:00-24:00".into();
        c.journey.uidai_certificate = cert;
        c.agent_stale_seconds = 3600;
        c.calls.drop_grace_seconds = 3600;
    })
    .await;
    let desk_agent = agent(&app, "file-agent").await;
    let c = customer(&app, "file-1", json!({})).await;
    c.consent().await;
    let zip = uidai.zip(&[
        "--name",
        "Asha Rao",
        "--last4",
        "4321",
        "--careof",
        "S/O Ravi (2345 6789 4321)",
    ]);
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
    let here =
        json!({"permission": "granted", "latitude": 28.61, "longitude": 77.21, "accuracy": 35});
    assert_eq!(
        c.call(Method::POST, "location", Some(here)).await.status,
        200
    );
    let ok = json!({"camera": "ok", "microphone": "ok", "bandwidth_kbps": 2000});
    assert_eq!(c.call(Method::POST, "devices", Some(ok)).await.status, 200);
    queue_and_assign(&c).await;
    c.call(Method::POST, "call/accept", None).await.ok();
    let call = desk_agent.call_view().await["call"]["id"].as_i64().unwrap();
    complete_checks(&desk_agent, call).await;
    desk_agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    desk_agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "all good"}),
        )
        .await
        .ok();
    // The call's recording, where the call row says (no media flowed in this test).
    let recording: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let file = app._dir.path().join("call.webm");
    std::fs::write(&file, &recording).unwrap();
    sqlx::query("UPDATE calls SET recording_path = $1, recording_bytes = $2 WHERE id = $3")
        .bind(file.display().to_string())
        .bind(recording.len() as i64)
        .bind(call)
        .execute(&app.pool().await)
        .await
        .unwrap();
    let reference = app.status("file-1").await["reference_id"].as_i64().unwrap();

    // ---- the case file ----
    let admin = staff(&app, "file-admin", "admin").await;
    let view = admin.get(&format!("/cases/{reference}")).await.ok();
    let text = view.to_string();
    assert_eq!(view["verification_id"], "file-1");
    assert_eq!(view["sub_status"], "AGENT_APPROVED");
    assert_eq!(view["aadhaar"]["number"], "XXXX XXXX 4321");
    assert_eq!(view["aadhaar"]["source"], "offline_ekyc");
    assert!(
        !text.contains("2345 6789") && !text.contains("23456789"),
        "{text}"
    );
    assert_eq!(view["user"]["phone"], "9876543210");
    assert_eq!(view["consent"]["text"], consent_text("en"));
    assert_eq!(view["location"]["evidence"]["latitude"], 28.61);
    assert_eq!(view["location"]["evidence"]["accuracy_m"], 35.0);
    assert!(
        view["ip"]["evidence"]["verdict"].is_object(),
        "{}",
        view["ip"]
    );
    let timeline: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to_sub_status"].as_str().unwrap())
        .collect();
    assert_eq!(timeline.first(), Some(&"LINK_GENERATED"));
    assert_eq!(timeline.last(), Some(&"AGENT_APPROVED"));
    assert!(
        timeline.contains(&"AADHAAR_VERIFICATION_SUCCESS"),
        "{timeline:?}"
    );
    let the_call = &view["calls"][0];
    assert_eq!(the_call["agent"], "file-agent");
    assert_eq!(the_call["decision"], "approved");
    assert_eq!(the_call["liveness_result"], "passed");
    assert_eq!(the_call["pan"], "ABCDE1234F");
    assert_eq!(the_call["captures"].as_array().unwrap().len(), 2);
    let still = the_call["captures"][0]["url"].as_str().unwrap();
    let res = app
        .client
        .get(format!("{}{still}", app.base))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.bytes().await.unwrap().to_vec(), crate::calls::jpeg());
    let played = app
        .client
        .get(the_call["recording"]["url"].as_str().unwrap())
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), 206);
    assert_eq!(played.bytes().await.unwrap().to_vec(), recording[..100]);
    assert!(view["webhooks"].is_array() && view["notifications"].is_array());
    // The customer's link token would let a reader act as the customer: never shown.
    assert!(
        !text.contains(&c.key),
        "the link token is not in the case file"
    );

    // ---- the export ----
    let res = app
        .client
        .get(format!("{}/desk/api/cases/{reference}/export", app.base))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"case-file-1.zip\""
    );
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let manifest_bytes = read("manifest.json");
    let signature = read("manifest.sig");
    let pem = String::from_utf8(read("public_key.pem")).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["verification_id"], "file-1");
    assert_eq!(manifest["exported_by"], "file-admin");
    let mut names = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let content = read(name);
        assert_eq!(
            hex::encode(Sha256::digest(&content)),
            f["sha256"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(f["bytes"].as_u64().unwrap(), content.len() as u64);
        names.push(name.to_string());
    }
    let recording_name = format!("recordings/call-{call}.webm");
    assert!(names.contains(&recording_name), "{names:?}");
    assert_eq!(read(&recording_name), recording);
    assert_eq!(read("aadhaar_photo.jpg")[..3], [0xFF, 0xD8, 0xFF]);
    let stills: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("captures/"))
        .collect();
    assert_eq!(stills.len(), 2);
    assert_eq!(read(stills[0]), crate::calls::jpeg());
    let case_json: Value = serde_json::from_slice(&read("case.json")).unwrap();
    assert_eq!(case_json["aadhaar"]["number"], "XXXX XXXX 4321");
    assert_eq!(
        case_json["calls"][0]["recording"]["file"],
        recording_name.as_str()
    );
    assert!(!String::from_utf8_lossy(&read("case.json")).contains("2345 6789"));

    // The signature, checked with OpenSSL from the unpacked files, as a regulator would.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), &manifest_bytes).unwrap();
    std::fs::write(dir.path().join("manifest.sig"), &signature).unwrap();
    std::fs::write(dir.path().join("public_key.pem"), &pem).unwrap();
    let openssl = |manifest: &str| {
        std::process::Command::new("openssl")
            .args([
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "public_key.pem",
                "-rawin",
            ])
            .args(["-in", manifest, "-sigfile", "manifest.sig"])
            .current_dir(dir.path())
            .output()
            .expect("openssl runs")
    };
    let checked = openssl("manifest.json");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let mut altered = manifest_bytes.clone();
    altered[10] ^= 1;
    std::fs::write(dir.path().join("altered.json"), &altered).unwrap();
    assert!(!openssl("altered.json").status.success());
    // The deployment publishes the same key, to anyone.
    let published = send(
        app.client
            .get(format!("{}/desk/api/cases/signing-key.pem", app.base)),
    )
    .await;
    assert_eq!(published.status, 200);
    assert_eq!(published.body, Value::String(pem.clone()));

    // `vkyc export verify` accepts it, against the published key too, and refuses a
    // copy with one byte of the recording changed.
    let zip_path = dir.path().join("case.zip");
    std::fs::write(&zip_path, &bytes).unwrap();
    let key_path = dir.path().join("deployment.pem");
    std::fs::write(&key_path, &pem).unwrap();
    let out = app.cli(&[
        "export",
        "verify",
        zip_path.to_str().unwrap(),
        "--public-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(out.starts_with("OK: case file-1"), "{out}");
    let at = bytes
        .windows(64)
        .position(|w| w == &recording[1000..1064])
        .unwrap();
    let mut tampered = bytes.clone();
    tampered[at] ^= 0xFF;
    std::fs::write(&zip_path, &tampered).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(["export", "verify", zip_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    // The damaged entry is named (its ZIP checksum fails before its hash is compared).
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("recordings/call-") && why.contains("cannot be read from the archive"),
        "{why}"
    );

    // Viewing and exporting are in the staff audit: who looked at whose data.
    let audited: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.action, a.target FROM staff_audit a JOIN staff s ON s.id = a.staff_id \
         WHERE s.username = 'file-admin' AND a.action IN ('case_viewed', 'case_exported') \
         ORDER BY a.id",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [
            ("case_viewed".to_string(), Some("file-1".to_string())),
            ("case_exported".to_string(), Some("file-1".to_string()))
        ]
    );

    // An auditor may export too, under the same key; an agent may not; no such case: 404.
    let auditor = staff(&app, "file-auditor", "auditor").await;
    let res = app
        .client
        .get(format!("{}/desk/api/cases/{reference}/export", app.base))
        .header(COOKIE, &auditor.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again = res.bytes().await.unwrap().to_vec();
    let mut second = zip::ZipArchive::new(std::io::Cursor::new(again)).unwrap();
    let mut second_pem = String::new();
    second
        .by_name("public_key.pem")
        .unwrap()
        .read_to_string(&mut second_pem)
        .unwrap();
    assert_eq!(second_pem, pem);
    for path in [
        format!("/cases/{reference}"),
        format!("/cases/{reference}/export"),
        format!("/cases/{reference}/captures/1"),
    ] {
        desk_agent
            .get(&path)
            .await
            .assert_code(403, "role_forbidden");
    }
    for path in ["/cases/999999", "/cases/999999/export", "/cases/abc"] {
        admin.get(path).await.assert_error(
            404,
            "validation_error",
            "case_not_found",
            "case does not exist.",
        );
    }
    admin
        .get(&format!("/cases/{reference}/captures/999999"))
        .await
        .assert_code(404, "capture_not_found");

    // The signing key is sealed like every other secret: a new master key re-seals it,
    // and it opens under the new key as the same key.
    app.cli(&["master-key", "rotate"]);
    let rotated =
        vkyc::secrets::MasterKey::load_or_create(&app._dir.path().join("master.key")).unwrap();
    assert_ne!(rotated.to_hex(), app.key.to_hex());
    let signer = vkyc::case_export::signing::ExportSigner::load_or_create(&app.store, &rotated)
        .await
        .unwrap();
    assert_eq!(signer.public_pem(), pem);
}
