//! What the tests share: the scripts that make their inputs (signed Aadhaar files, IP
//! databases, certificates, a local S3 server) and a local SMTP receiver.

pub mod smtp_receiver;

use std::path::PathBuf;
use std::process::Command;
use tempfile::TempDir;

/// The folder of the input-making scripts (`VKYC_SUPPORT_DIR` overrides it).
pub fn support_dir() -> PathBuf {
    std::env::var_os("VKYC_SUPPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support")))
}

/// Runs one of those scripts and fails the test with its error output if it fails.
pub fn run(script: &str, args: &[&str]) {
    let path = support_dir().join(script);
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in for UIDAI: a key and certificate of its own, and the offline e-KYC files
/// it signs with them (through xmlsec1, an independent signer).
pub struct Signer {
    pub dir: TempDir,
    pub key: String,
    pub cert: String,
}

impl Signer {
    pub fn new() -> Signer {
        let dir = tempfile::tempdir().unwrap();
        run("make-uidai-cert", &[dir.path().to_str().unwrap()]);
        let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let (key, cert) = (file("uidai-test.key"), file("uidai-test.crt"));
        Signer { dir, key, cert }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A signed e-KYC ZIP with share code 1234, made with `extra` arguments of
    /// make-aadhaar-zip.
    pub fn zip(&self, extra: &[&str]) -> Vec<u8> {
        let out = self.path("out.zip");
        let mut args = vec![
            "--key",
            &self.key,
            "--cert",
            &self.cert,
            "--out",
            out.to_str().unwrap(),
            "--share-code",
            "1234",
        ];
        args.extend_from_slice(extra);
        run("make-aadhaar-zip", &args);
        std::fs::read(&out).unwrap()
    }
}
