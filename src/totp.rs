//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 30-second
//! steps, 6 digits, accepted one step either side of the server's clock.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "vkyc";

/// A new 160-bit secret, the size RFC 4226 recommends for HMAC-SHA-1.
pub fn generate_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::thread_rng().fill_bytes(&mut secret);
    secret
}

/// RFC 4226 HOTP value of `counter`, as a number below 10^digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The 6-digit code for Unix time `unix_seconds`, zero-padded.
pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, unix_seconds / STEP_SECONDS, DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `code` is the code of the current step, the one before or the one after.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64) -> bool {
    verify_step(secret, code, unix_seconds).is_some()
}

/// The step `code` belongs to (the current one, the one before or the one after), so that
/// a code once used can be refused when it comes again.
pub fn verify_step(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = unix_seconds / STEP_SECONDS;
    // Every candidate is compared in constant time, and all three always are.
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = format!(
            "{:0width$}",
            hotp(secret, s, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(s);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI an authenticator app scans to enrol.
pub fn otpauth_uri(username: &str, secret: &[u8]) -> String {
    let label: String =
        url::form_urlencoded::byte_serialize(format!("{ISSUER}:{username}").as_bytes()).collect();
    format!(
        "otpauth://totp/{label}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, time / 30, 8), expected, "t={time}");
        }
        assert_eq!(code_at(secret, 59), "287082");
    }

    #[test]
    fn codes_are_accepted_one_step_either_side_only() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        assert!(verify(secret, &code_at(secret, now), now));
        assert!(verify(secret, &code_at(secret, now - 30), now));
        assert!(verify(secret, &code_at(secret, now + 30), now));
        assert!(!verify(secret, &code_at(secret, now - 60), now));
        assert!(!verify(secret, &code_at(secret, now + 60), now));
        for bad in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert!(!verify(secret, bad, now), "{bad:?}");
        }
    }

    #[test]
    fn base32_is_rfc_4648_unpadded() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let uri = otpauth_uri("asha@bank", b"12345678901234567890");
        assert!(uri.starts_with("otpauth://totp/vkyc%3Aasha%40bank?secret=GEZDG"));
    }
}
