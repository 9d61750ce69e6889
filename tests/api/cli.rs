//! The `vkyc` binary as an operator uses it.

use std::process::Command;

fn vkyc(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(args)
        .env("VKYC_DATA_DIR", dir)
        .env_remove("VKYC_DATABASE_URL")
        .env_remove("VKYC_CONFIG")
        .output()
        .expect("vkyc runs")
}

#[test]
fn vkyc_config_prints_the_commented_defaults_that_parse() {
    let dir = tempfile::tempdir().unwrap();
    let out = vkyc(dir.path(), &["config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# Lifetime of a vkyc_link"));
    assert!(text.contains("default_link_expiry_hours = 72"));
    let parsed: vkyc::config::Config = toml::from_str(&text).unwrap();
    assert_eq!(parsed.default_link_expiry_hours, 72);
}

#[test]
fn merchant_create_prints_credentials_that_work_and_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = vkyc(
        dir.path(),
        &[
            "merchant",
            "create",
            "--name",
            "Acme Finance",
            "--env",
            "live",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let client_id = text
        .lines()
        .find_map(|l| l.strip_prefix("client id:"))
        .unwrap()
        .trim()
        .to_string();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client secret:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(client_id.starts_with("CF"));
    assert!(secret.starts_with("cfsk_ma_prod_"));
    let listed = String::from_utf8(vkyc(dir.path(), &["merchant", "list"]).stdout).unwrap();
    assert!(
        listed.contains("Acme Finance") && listed.contains(&client_id),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "secrets are never shown again");
    // The database keeps only a digest of the secret.
    let db = std::fs::read(dir.path().join("vkyc.db")).unwrap();
    let needle = secret.as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle));

    let bad = vkyc(
        dir.path(),
        &["merchant", "create", "--name", "X", "--env", "prod"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("test or live"));
}

#[test]
fn migrate_creates_the_database_and_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vkyc.toml");
    std::fs::write(&config, "max_body_bytes = 1\n").unwrap();
    // The file's value is invalid; the environment wins over it.
    let out = Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .env("VKYC_DATA_DIR", dir.path())
        .env("VKYC_MAX_BODY_BYTES", "4096")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("vkyc.db").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_vkyc"))
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .env("VKYC_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_body_bytes"));
}

#[test]
fn serve_prints_the_api_url_and_the_bootstrap_secret_once_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    // Starts the server and collects what it prints in its first moments.
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vkyc"))
            .arg("serve")
            .env("VKYC_DATA_DIR", dir.path())
            .env("VKYC_LISTEN", "127.0.0.1:0")
            .env("VKYC_MEDIA__UDP_BIND", "127.0.0.1:0")
            .env_remove("VKYC_DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = String::new();
        let mut wait = Duration::from_secs(30);
        while let Ok(line) = rx.recv_timeout(wait) {
            if line.starts_with("merchant API:") {
                wait = Duration::from_millis(500);
            }
            printed.push_str(&line);
            printed.push('\n');
        }
        (child, printed)
    };
    let (child, first) = start();
    assert!(first.contains("merchant API: http://127.0.0.1:"), "{first}");
    assert!(first.contains("client secret: cfsk_ma_test_"), "{first}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a graceful stop exits 0");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.contains("cfsk_ma_"), "the secret is never logged");

    let (child, second) = start();
    assert!(second.contains("merchant API:"), "{second}");
    assert!(
        !second.contains("client secret"),
        "shown only once: {second}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}
