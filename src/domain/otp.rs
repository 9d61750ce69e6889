//! The mobile OTP's rules: how long a code lives, how many tries and sends a link gets,
//! and how a code is kept (only as a keyed hash). Pure: the store counts, the journey
//! sends.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A code is valid this long after it is sent.
pub const VALID_MS: i64 = 5 * 60_000;
/// Wrong codes allowed before the step waits.
pub const MAX_TRIES: i64 = 5;
/// Codes sent before the step waits: the first and three resends.
pub const MAX_SENDS: i64 = 4;
/// A resend waits this long after the last code, so a page cannot spray messages.
pub const RESEND_AFTER_MS: i64 = 30_000;
/// How long the step waits once the tries or the sends are spent; then the counts start
/// again with a new code.
pub const WAIT_MS: i64 = 30 * 60_000;
/// The code a sandbox sends and accepts (recorded, never sent).
pub const SANDBOX_CODE: &str = "123456";

/// A fresh 6-digit code.
pub fn generate() -> String {
    use rand::Rng;
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// The code as stored: HMAC-SHA256 under a key derived from the master key, bound to the
/// request, so the hash of one request's code says nothing of another's and a copy of
/// the database alone cannot test codes.
pub fn hash(key: &[u8; 32], request_id: i64, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(&request_id.to_be_bytes());
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `given` is `stored`'s code, in constant time.
pub fn matches(key: &[u8; 32], request_id: i64, given: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(
        hash(key, request_id, given)
            .as_bytes()
            .ct_eq(stored.as_bytes()),
    )
}

/// A code's form: exactly six ASCII digits.
pub fn well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The phone number as the page shows it: only its last four digits.
pub fn masked(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("••••••{tail}")
}

/// Where a link's OTP stands, as stored.
#[derive(Debug, Clone, Default)]
pub struct OtpRow {
    pub code_hash: String,
    pub channel: String,
    pub sent_at: i64,
    pub expires_at: i64,
    pub sends: i64,
    pub tries: i64,
    pub locked_until: Option<i64>,
    pub verified_at: Option<i64>,
}

impl OtpRow {
    /// The step is waiting (tries or sends spent) until this time.
    pub fn waiting_until(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|&t| t > now)
    }

    pub fn tries_left(&self) -> i64 {
        (MAX_TRIES - self.tries).max(0)
    }

    pub fn resends_left(&self) -> i64 {
        (MAX_SENDS - self.sends).max(0)
    }

    /// When the next code may be sent.
    pub fn resend_at(&self) -> i64 {
        self.sent_at + RESEND_AFTER_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hash_per_request_and_compare_exactly() {
        let key = [7u8; 32];
        let stored = hash(&key, 1, "123456");
        assert!(matches(&key, 1, "123456", &stored));
        assert!(!matches(&key, 1, "123457", &stored));
        assert!(!matches(&key, 2, "123456", &stored));
        assert!(!matches(&[8u8; 32], 1, "123456", &stored));
        assert!(!stored.contains("123456"));
        for _ in 0..50 {
            assert!(well_formed(&generate()));
        }
        assert!(!well_formed("12345") && !well_formed("12345a") && !well_formed("１２３４５６"));
        assert_eq!(masked("+91 98765 43210"), "••••••3210");
        assert_eq!(masked("12"), "••••••12");
    }
}
