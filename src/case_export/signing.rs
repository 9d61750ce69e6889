//! The deployment's export signing key: Ed25519, made on first use, its private half
//! sealed under the master key in `signing_keys` (re-sealed by `vkyc master-key rotate`
//! like every other secret). Ed25519 because anyone can check a signature with stock
//! OpenSSL 3 (`openssl pkeyutl -verify -rawin`), with no parameters to get wrong.

use crate::secrets::MasterKey;
use crate::store::{SigningKeyRow, Store};
use anyhow::Context;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use base64::Engine;

const PURPOSE: &str = "case_export";
/// The sibling key that signs the audit trail's daily anchors.
pub const ANCHOR_PURPOSE: &str = "audit_anchor";
const ALGORITHM: &str = "Ed25519";
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Signs case exports.
pub struct ExportSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for ExportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportSigner(<redacted>)")
    }
}

impl ExportSigner {
    /// The deployment's key, made and stored on first use.
    pub async fn load_or_create(store: &Store, master: &MasterKey) -> anyhow::Result<Self> {
        Self::load_or_create_for(store, master, PURPOSE).await
    }

    /// The deployment's key for `purpose` (a sibling of the export key, such as
    /// [`ANCHOR_PURPOSE`]), made and stored on first use, sealed the same way.
    pub async fn load_or_create_for(
        store: &Store,
        master: &MasterKey,
        purpose: &str,
    ) -> anyhow::Result<Self> {
        if store.signing_key(purpose).await?.is_none() {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
            let key = Ed25519KeyPair::from_seed_unchecked(&seed)
                .map_err(|e| anyhow::anyhow!("making the {purpose} signing key: {e}"))?;
            store
                .insert_signing_key(
                    purpose,
                    &SigningKeyRow {
                        algorithm: ALGORITHM.into(),
                        private_key_enc: master.seal(&seed),
                        public_key: hex::encode(key.public_key().as_ref()),
                    },
                )
                .await?;
        }
        // Read back what is stored: another process may have stored its key first.
        let row = store
            .signing_key(purpose)
            .await?
            .with_context(|| format!("the {purpose} signing key was not stored"))?;
        anyhow::ensure!(
            row.algorithm == ALGORITHM,
            "the {purpose} signing key is {}, not {ALGORITHM}",
            row.algorithm
        );
        let seed = master
            .open(&row.private_key_enc)
            .with_context(|| format!("opening the {purpose} signing key"))?;
        let key = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| anyhow::anyhow!("the stored {purpose} signing key is not usable: {e}"))?;
        anyhow::ensure!(
            hex::encode(key.public_key().as_ref()) == row.public_key,
            "the stored {purpose} signing key does not match its public key"
        );
        Ok(ExportSigner { key })
    }

    pub fn algorithm(&self) -> &'static str {
        ALGORITHM
    }

    /// The 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).as_ref().to_vec()
    }

    /// The public key as a PEM SubjectPublicKeyInfo, as OpenSSL reads it.
    pub fn public_pem(&self) -> String {
        public_pem(self.key.public_key().as_ref())
    }
}

/// A raw Ed25519 public key as PEM.
pub fn public_pem(raw: &[u8]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// The raw key inside an Ed25519 public key PEM, if it is one.
pub fn raw_public_key(pem: &str) -> Option<[u8; 32]> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let raw = der.strip_prefix(&SPKI_PREFIX[..])?;
    raw.try_into().ok()
}

/// Whether `sig` is the signature of `message` under the PEM public key.
pub fn verify(public_key_pem: &str, message: &[u8], sig: &[u8]) -> bool {
    let Some(raw) = raw_public_key(public_key_pem) else {
        return false;
    };
    signature::UnparsedPublicKey::new(&signature::ED25519, raw)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_round_trips_and_signatures_verify_only_unaltered() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let signer = ExportSigner { key };
        let pem = signer.public_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(
            raw_public_key(&pem).unwrap().as_slice(),
            signer.key.public_key().as_ref()
        );
        let sig = signer.sign(b"manifest");
        assert_eq!(sig.len(), 64);
        assert!(verify(&pem, b"manifest", &sig));
        assert!(!verify(&pem, b"manifest!", &sig));
        let other = ExportSigner {
            key: Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap(),
        };
        assert!(!verify(&other.public_pem(), b"manifest", &sig));
        assert!(!verify("not a key", b"manifest", &sig));
    }
}
