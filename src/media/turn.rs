//! TURN credentials for a call's browsers, by the TURN REST API scheme that coturn's
//! `use-auth-secret` implements: the username is `<expiry unix time>:<subject>` and
//! the password is base64(HMAC-SHA1(shared secret, username)). The TURN server checks
//! both with the secret alone, so nothing is stored and a leaked pair dies at expiry.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::config::MediaSettings;

/// The `iceServers` a browser is given for one call: `[]` when no TURN server is set.
pub fn ice_servers(settings: &MediaSettings, subject: &str, now_s: i64) -> Value {
    if settings.turn_urls.is_empty() {
        return json!([]);
    }
    let expiry = now_s + settings.turn_ttl_seconds as i64;
    let (username, credential) = credentials(&settings.turn_shared_secret, subject, expiry);
    json!([{ "urls": settings.turn_urls, "username": username, "credential": credential }])
}

/// (username, password) valid until `expiry` (unix seconds).
pub fn credentials(secret: &str, subject: &str, expiry: i64) -> (String, String) {
    let username = format!("{expiry}:{subject}");
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_turn_rest_api_example() {
        // The same as
        // `printf '1700000000:call-42' | openssl dgst -sha1 -hmac s3cret -binary | base64`.
        let (user, pass) = credentials("s3cret", "call-42", 1_700_000_000);
        assert_eq!(user, "1700000000:call-42");
        assert_eq!(pass, "DG5kxzi2C9CaOz7qENl4pkS9pH8=");
    }
}
