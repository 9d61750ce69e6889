//! Staff passwords and usernames: argon2id hashing, generated passwords, the username
//! rule. Shared by the desk's sign-in and by the operations that create accounts.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::RngCore;

/// Longest password accepted (argon2 takes any length; this bounds the work a caller asks).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Shortest password a new account may be given.
pub const MIN_PASSWORD_LEN: usize = 12;

/// An argon2id PHC string of `password` with a fresh salt and the default parameters.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A strong random password for a new account: 144 bits, URL-safe base64 (24 characters).
pub fn generate_password() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Usernames are compared in lower case, without surrounding spaces.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// 1 to 64 characters: ASCII lower-case letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_username(username: &str) -> bool {
    (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_plain_lower_case() {
        assert_eq!(normalize_username("  Asha.Rao "), "asha.rao");
        assert!(valid_username("asha.rao@bank-1_x"));
        for bad in ["", "Asha", "asha rao", "asha;", &"a".repeat(65), "ásha"] {
            assert!(!valid_username(bad), "{bad:?}");
        }
    }

    #[test]
    fn passwords_hash_to_phc_strings_that_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse"));
        assert!(!verify_password("not a hash", "x"));
        assert_eq!(generate_password().len(), 24);
    }
}
