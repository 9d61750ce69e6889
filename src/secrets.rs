//! The master key, and what the server keeps encrypted under it: client secrets (webhooks
//! are signed with them), the RSA private keys that open `x-cf-signature`, and the
//! customers' personal data (Aadhaar details and photo, call stills, address; see
//! `store::personal`).
//!
//! The key comes from `VKYC_MASTER_KEY` (64 hex digits), else from `master_key_file`, else
//! from `<data_dir>/master.key`, which the first start creates with mode 0600. A copy of
//! the database without the key reveals no secret. Values are sealed with
//! XChaCha20-Poly1305 under a fresh random nonce and stored as `v1:<base64>`.

use anyhow::Context;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::path::{Path, PathBuf};

const PREFIX: &str = "v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Whether `VKYC_MASTER_KEY` gives the key (it then wins over any file).
pub fn from_env() -> bool {
    std::env::var("VKYC_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty())
}

/// Where the master key lives when it is not given by the environment.
pub fn key_path(data_dir: &Path, configured: &str) -> PathBuf {
    if configured.is_empty() {
        data_dir.join("master.key")
    } else {
        PathBuf::from(configured)
    }
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        MasterKey(key)
    }

    pub fn from_hex(text: &str) -> anyhow::Result<MasterKey> {
        let bytes = hex::decode(text.trim()).context("the master key is not hex")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the master key must be 32 bytes (64 hex digits)"))?;
        Ok(MasterKey(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The environment's key, or the file's, creating the file on first use.
    pub fn load_or_create(path: &Path) -> anyhow::Result<MasterKey> {
        match MasterKey::load(path)? {
            Some(key) => Ok(key),
            None => {
                let key = MasterKey::generate();
                key.write(path)?;
                Ok(key)
            }
        }
    }

    /// The environment's key, or the file's; None when there is neither (nothing is
    /// created).
    pub fn load(path: &Path) -> anyhow::Result<Option<MasterKey>> {
        if from_env() {
            let hex = std::env::var("VKYC_MASTER_KEY").unwrap_or_default();
            return MasterKey::from_hex(&hex)
                .context("VKYC_MASTER_KEY")
                .map(Some);
        }
        MasterKey::read(path)
    }

    /// The key in the file at `path`; None when there is no such file.
    pub fn read(path: &Path) -> anyhow::Result<Option<MasterKey>> {
        match std::fs::read_to_string(path) {
            Ok(text) => MasterKey::from_hex(&text)
                .with_context(|| format!("reading the master key {}", path.display()))
                .map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// A short public name for the key (derived one way from it): tells two keys apart,
    /// e.g. the one a backup needs and the one at hand, without revealing either.
    pub fn fingerprint(&self) -> String {
        self.key_id()[..16].to_string()
    }

    /// Writes the key readable by its owner only, without ever leaving a wider-open file.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("creating the master key {}", path.display()))?;
        file.write_all(format!("{}\n", self.to_hex()).as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    /// Names the key without revealing it (an HMAC of a fixed text under the key): the
    /// database keeps it, so that a server given another key refuses to start.
    pub fn key_id(&self) -> String {
        hex::encode(self.derive("vkyc master key id"))
    }

    /// A key for one purpose (e.g. signing recording links), derived from the master key
    /// so that no second secret has to be kept.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, plaintext: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let data = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|d| d.len() > 24)
            .context("a sealed value is malformed")?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(XNonce::from_slice(&data[..24]), &data[24..])
            .map_err(|_| anyhow::anyhow!("a sealed value does not open with this master key"))
    }
}

/// A value as the database keeps it, sealed (`v1:<base64>`): what it holds can only be
/// read with the master key, through the store.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    pub fn new(stored: String) -> Sealed {
        Sealed(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"cfsk_ma_test_secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(key.open(&sealed).unwrap(), b"cfsk_ma_test_secret");
        assert_ne!(key.seal(b"x"), key.seal(b"x"), "a fresh nonce each time");
        assert!(MasterKey::generate().open(&sealed).is_err());
        assert!(key.open("v1:AAAA").is_err());
        assert!(key.open("garbage").is_err());
        assert_eq!(key.key_id(), key.key_id());
        assert_ne!(key.key_id(), MasterKey::generate().key_id());
        assert!(!key.key_id().contains(&key.to_hex()));
    }

    #[test]
    fn the_key_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            MasterKey::load_or_create(&path).unwrap().to_hex(),
            key.to_hex()
        );
        assert!(format!("{key:?}").contains("redacted"));
    }
}
