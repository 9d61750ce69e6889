//! Aadhaar fetched from a DigiLocker-style provider: the customer is sent to the
//! provider's page, allows it to share their Aadhaar, and comes back with a code that
//! this server exchanges for the Aadhaar as the issuer holds it.
//!
//! [`AadhaarProvider`] is the seam: the real DigiLocker needs a partner agreement (its
//! client id, secret and endpoints), so the one implementation here is [`Sandbox`], whose
//! "provider page" this server serves itself and whose Aadhaar is a fixed test identity.

use super::aadhaar::{Address, OfflineKyc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::future::Future;
use std::pin::Pin;

/// Why a provider gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider does not know this code (used, expired or made up)")]
    BadCode,
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
}

pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<OfflineKyc, ProviderError>> + Send + 'a>>;

/// A DigiLocker-style provider.
pub trait AadhaarProvider: Send + Sync {
    /// Its name, as the step's evidence records it.
    fn name(&self) -> &'static str;
    /// The provider's page for the customer. It sends them back to `return_to` with
    /// `state` and either `code` or `error`.
    fn authorize_url(&self, base_url: &str, return_to: &str, state: &str) -> String;
    /// The customer's Aadhaar for a code the provider gave.
    fn fetch<'a>(&'a self, code: &'a str) -> Fetch<'a>;
}

/// The sandbox provider: codes are signed by this server, and every code gives the same
/// test identity (docs/templates.md names it).
pub struct Sandbox {
    key: [u8; 32],
}

impl Sandbox {
    pub fn new(key: [u8; 32]) -> Sandbox {
        Sandbox { key }
    }

    fn sign(&self, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A code the sandbox page hands out when the customer allows sharing.
    pub fn issue_code(&self) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        format!("sbx.{nonce}.{}", self.sign(&nonce))
    }

    /// The test identity every sandbox code gives.
    pub fn identity() -> OfflineKyc {
        OfflineKyc {
            reference_id: "sandbox-digilocker".into(),
            aadhaar_last4: "0000".into(),
            generated_at: chrono::Utc::now(),
            name: "Sandbox DigiLocker Customer".into(),
            dob: "01-01-1990".into(),
            gender: "F".into(),
            address: Address {
                careof: "D/O Sandbox Parent".into(),
                house: "1".into(),
                street: "Test Street".into(),
                vtc: "Bengaluru".into(),
                dist: "Bengaluru Urban".into(),
                state: "Karnataka".into(),
                country: "India".into(),
                pc: "560001".into(),
                ..Address::default()
            },
            email_hash: None,
            mobile_hash: None,
            photo_jpeg: Vec::new(),
        }
    }
}

impl AadhaarProvider for Sandbox {
    fn name(&self) -> &'static str {
        "digilocker_sandbox"
    }

    fn authorize_url(&self, base_url: &str, return_to: &str, state: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", state)
            .append_pair("return_to", return_to)
            .finish();
        format!("{base_url}/sandbox/digilocker?{query}")
    }

    fn fetch<'a>(&'a self, code: &'a str) -> Fetch<'a> {
        Box::pin(async move {
            let mut parts = code.splitn(3, '.');
            let (Some("sbx"), Some(nonce), Some(signature)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(ProviderError::BadCode);
            };
            if nonce.len() != 32 || self.sign(nonce) != signature {
                return Err(ProviderError::BadCode);
            }
            Ok(Sandbox::identity())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_codes_the_sandbox_issued_fetch() {
        let sandbox = Sandbox::new([1; 32]);
        let code = sandbox.issue_code();
        assert_eq!(
            sandbox.fetch(&code).await.unwrap().name,
            "Sandbox DigiLocker Customer"
        );
        let other = Sandbox::new([2; 32]);
        assert!(other.fetch(&code).await.is_err());
        for bad in ["", "sbx", "sbx.aa.bb", &code.replace("sbx.", "xyz.")] {
            assert!(sandbox.fetch(bad).await.is_err(), "{bad}");
        }
    }
}
