//! Recording links: the request row stores `call:<id>`; the link is signed each time it
//! is shown (in `GET /vkyc` and in webhook events), so a link that leaked stops working on
//! its own.

use hmac::Mac;
use subtle::ConstantTimeEq;

/// What a request row stores for a call's recording.
pub fn reference(call_id: i64) -> String {
    format!("call:{call_id}")
}

/// Signs and checks recording links.
#[derive(Clone)]
pub struct RecordingSigner {
    key: [u8; 32],
    ttl_ms: i64,
}

impl RecordingSigner {
    pub fn new(master: &crate::secrets::MasterKey, ttl_seconds: u64) -> RecordingSigner {
        RecordingSigner {
            key: master.derive("vkyc recording links"),
            ttl_ms: ttl_seconds as i64 * 1000,
        }
    }

    fn signature(&self, call_id: i64, expires: i64) -> String {
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{call_id}.{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The link for a stored reference, valid from `now` for the configured time.
    pub fn link(&self, base_url: &str, stored: &str, now: i64) -> String {
        match stored
            .strip_prefix("call:")
            .and_then(|id| id.parse::<i64>().ok())
        {
            Some(call_id) => {
                let expires = now + self.ttl_ms;
                format!(
                    "{base_url}/recordings/{call_id}.webm?expires={expires}&sig={}",
                    self.signature(call_id, expires)
                )
            }
            // Not ours (set by the sandbox, for instance): shown as it is.
            None => stored.to_string(),
        }
    }

    pub fn verify(&self, call_id: i64, expires: i64, sig: &str, now: i64) -> bool {
        expires > now
            && bool::from(
                self.signature(call_id, expires)
                    .as_bytes()
                    .ct_eq(sig.as_bytes()),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire_and_not_when_altered() {
        let signer = RecordingSigner::new(&crate::secrets::MasterKey::generate(), 60);
        let link = signer.link("https://kyc.example.in", &reference(7), 1_000);
        let url = url::Url::parse(&link).unwrap();
        assert_eq!(url.path(), "/recordings/7.webm");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let expires: i64 = q["expires"].parse().unwrap();
        assert_eq!(expires, 61_000);
        assert!(signer.verify(7, expires, &q["sig"], 60_999));
        assert!(!signer.verify(7, expires, &q["sig"], 61_000), "expired");
        assert!(!signer.verify(8, expires, &q["sig"], 2_000), "another call");
        assert!(
            !signer.verify(7, expires + 1, &q["sig"], 2_000),
            "another expiry"
        );
        let other = RecordingSigner::new(&crate::secrets::MasterKey::generate(), 60);
        assert!(!other.verify(7, expires, &q["sig"], 2_000), "another key");
        assert_eq!(signer.link("b", "https://x/y", 0), "https://x/y");
    }
}
