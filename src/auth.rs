//! Merchant authentication: the `x-client-id` / `x-client-secret` / `x-api-version`
//! headers of every merchant API call, then the merchant's second factor (an IP allow-list
//! or an `x-cf-signature`).
//!
//! Secrets are 256 random bits, so the store keeps only their SHA-256 digest and a check
//! is one hash and one constant-time comparison, never a slow password hash. Credentials
//! are cached in memory for `credential_cache_seconds`, so a call does not read the
//! database either; a revoked secret stops working when its cache entry ages out.

use crate::config::{parse_ip_list, Environment};
use crate::error::{Error, ErrorType, Result};
use crate::secrets::MasterKey;
use crate::store::{MerchantEnv, Store};
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use ipnet::IpNet;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const TEST_SECRET_PREFIX: &str = "cfsk_ma_test_";
pub const LIVE_SECRET_PREFIX: &str = "cfsk_ma_prod_";

/// The merchant a call was authenticated as.
#[derive(Debug, Clone)]
pub struct Caller {
    pub merchant_id: i64,
    pub client_id: String,
    pub env: MerchantEnv,
    /// The merchant's own limit, when it has one.
    pub rate_limit_per_minute: Option<u32>,
}

/// A new client id and secret, shown once to the operator.
pub struct NewCredential {
    pub client_id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl NewCredential {
    pub fn generate(env: MerchantEnv) -> NewCredential {
        let mut id = [0u8; 10];
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut id);
        rand::thread_rng().fill_bytes(&mut secret);
        let prefix = match env {
            MerchantEnv::Test => TEST_SECRET_PREFIX,
            MerchantEnv::Live => LIVE_SECRET_PREFIX,
        };
        NewCredential {
            client_id: format!("CF{}", hex::encode_upper(id)),
            secret: format!("{prefix}{}", hex::encode(secret)),
        }
    }

    pub fn digest(&self) -> String {
        secret_digest(&self.secret)
    }

    /// The secret sealed under the master key, as the store keeps it.
    pub fn sealed(&self, key: &MasterKey) -> String {
        key.seal(self.secret.as_bytes())
    }
}

/// A merchant's second factor, ready to check.
#[derive(Clone)]
enum Factor {
    None,
    Ip(Vec<IpNet>),
    /// Decrypts with AWS-LC, whose RSA is constant-time and blinded (the `rsa` crate's
    /// decryption is not: RUSTSEC-2023-0071).
    Signature(Arc<OaepPrivateDecryptingKey>),
}

/// The caller's address: the socket's, unless the socket is a trusted proxy, in which
/// case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A peer
/// that is not trusted cannot change its address with the header.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                if !is_trusted(&ip) {
                    return ip;
                }
                last = ip;
            }
            // A hop we cannot read ends the trust chain at the last one we could.
            Err(_) => return last,
        }
    }
    last
}

fn ip_refused(ip: IpAddr) -> Error {
    Error::new(
        StatusCode::FORBIDDEN,
        ErrorType::AuthenticationError,
        "ip_validation_failed",
        format!(
            "IP not whitelisted your current ip is {ip}.For IP whitelisting assistance, visit our guide at https://www.cashfree.com/docs/secure-id/get-started/integration/ip-whitelisting-verification"
        ),
    )
}

fn signature_refused(message: &'static str) -> Error {
    Error::new(
        StatusCode::FORBIDDEN,
        ErrorType::AuthenticationError,
        "x-cf-signature_value_invalid",
        message,
    )
}

pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

struct Cached {
    merchant_id: i64,
    env: MerchantEnv,
    digests: Vec<[u8; 32]>,
    factor: Factor,
    rate_limit_per_minute: Option<u32>,
    loaded: Instant,
}

pub struct Authenticator {
    store: Store,
    environment: Environment,
    ttl: Duration,
    key: MasterKey,
    trusted_proxies: Vec<IpNet>,
    signature_window: Duration,
    cache: RwLock<HashMap<String, Cached>>,
}

/// What the authenticator needs beside the store.
pub struct AuthSettings {
    pub environment: Environment,
    pub cache_ttl: Duration,
    pub key: MasterKey,
    pub trusted_proxies: Vec<IpNet>,
    pub signature_window: Duration,
}

/// The value of a header as text, `None` when absent or empty.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Ok(Some(text.trim())),
            Err(_) => Err(Error::invalid(name)),
        },
    }
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn valid_api_version(value: &str) -> bool {
    value.len() == 10 && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

impl Authenticator {
    pub fn new(store: Store, settings: AuthSettings) -> Authenticator {
        Authenticator {
            store,
            environment: settings.environment,
            ttl: settings.cache_ttl,
            key: settings.key,
            trusted_proxies: settings.trusted_proxies,
            signature_window: settings.signature_window,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Drops what this process has cached of a merchant's credentials, so that a change
    /// made here (a revoked secret, a new second factor) applies to the next call.
    pub fn forget_merchant(&self, merchant_id: i64) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, cached| cached.merchant_id != merchant_id);
    }

    /// The caller's address for a request that came from `peer`: `X-Forwarded-For` is
    /// believed only from the configured trusted proxies (see [`client_ip`]).
    pub fn client_address(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        client_ip(peer, forwarded, &self.trusted_proxies)
    }

    /// Checks the headers of a merchant API call, in the order the hosted service
    /// answers them: missing headers, the API version, the secret's environment, then
    /// the id/secret pair.
    pub async fn authenticate(&self, headers: &HeaderMap, peer: IpAddr) -> Result<Caller> {
        let client_id =
            header(headers, "x-client-id")?.ok_or_else(|| Error::missing("x-client-id"))?;
        let secret =
            header(headers, "x-client-secret")?.ok_or_else(|| Error::missing("x-client-secret"))?;
        let version =
            header(headers, "x-api-version")?.ok_or_else(|| Error::missing("x-api-version"))?;
        if !valid_api_version(version) {
            return Err(Error::invalid("x-api-version"));
        }
        match self.environment {
            Environment::Production if secret.starts_with(TEST_SECRET_PREFIX) => {
                return Err(Error::validation(
                    "x-client-secret_value_invalid",
                    "Client secret belongs to test environment",
                ))
            }
            Environment::Sandbox if secret.starts_with(LIVE_SECRET_PREFIX) => {
                return Err(Error::validation(
                    "x-client-secret_value_invalid",
                    "Client secret belongs to production environment",
                ))
            }
            _ => {}
        }
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let (caller, factor) = match self.check_cached(client_id, &given, self.ttl) {
            Some(Ok(found)) => found,
            cached => {
                // Not cached, expired, or no secret matched. A just-rotated secret may not
                // be in the cached entry yet, so read the database again, but at most once
                // a second per client id when a cached entry already said no.
                let recently_loaded = cached.is_some()
                    && self
                        .entry_age(client_id)
                        .is_some_and(|age| age < Duration::from_secs(1));
                if !recently_loaded {
                    self.reload(client_id).await?;
                }
                // Just loaded: fresh whatever the TTL (which may be zero).
                self.check_cached(client_id, &given, Duration::MAX)
                    .unwrap_or_else(|| Err(Error::unauthorized()))?
            }
        };
        match factor {
            Factor::None => {}
            Factor::Ip(allowed) => {
                let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
                let ip = client_ip(peer, forwarded, &self.trusted_proxies);
                if !allowed.iter().any(|net| net.contains(&ip)) {
                    return Err(ip_refused(ip));
                }
            }
            Factor::Signature(key) => self.check_signature(headers, client_id, &key).await?,
        }
        Ok(caller)
    }

    /// Checks `x-cf-signature`: Base64 of RSA-OAEP (SHA-1, MGF1-SHA-1) encryption, under
    /// the merchant's public key, of `"<client id>.<unix seconds>"`. The time may carry a
    /// fraction, must lie within the signature window (and at most a minute ahead, for
    /// clock skew), and each signature is accepted once.
    async fn check_signature(
        &self,
        headers: &HeaderMap,
        client_id: &str,
        key: &OaepPrivateDecryptingKey,
    ) -> Result<()> {
        let Some(header) = headers.get("x-cf-signature") else {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorType::ValidationError,
                "authentication_failed",
                "x-cf-signature missing in the request header",
            ));
        };
        let garbage = || signature_refused("x-cf-signature is invalid.");
        let text = header.to_str().map_err(|_| garbage())?.trim();
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| garbage())?;
        if sealed.len() != key.key_size_bytes() {
            return Err(garbage());
        }
        let mut out = vec![0u8; key.min_output_size()];
        let plain = key
            .decrypt(&OAEP_SHA1_MGF1SHA1, &sealed, &mut out, None)
            .map_err(|_| garbage())?;
        let plain = std::str::from_utf8(plain).map_err(|_| garbage())?;
        let (signed_id, time) = plain.split_once('.').ok_or_else(garbage)?;
        if signed_id != client_id {
            return Err(garbage());
        }
        let seconds: f64 = time.parse().map_err(|_| garbage())?;
        if !seconds.is_finite() {
            return Err(garbage());
        }
        let now = crate::clock::now_ms() as f64 / 1000.0;
        let window = self.signature_window.as_secs_f64();
        if seconds < now - window || seconds > now + 60.0 {
            return Err(signature_refused("x-cf-signature has expired."));
        }
        let digest = hex::encode(Sha256::digest(&sealed));
        let until = ((seconds + window) * 1000.0) as i64;
        if !self.store.use_signature(&digest, until).await? {
            return Err(signature_refused("x-cf-signature has already been used."));
        }
        Ok(())
    }

    fn entry_age(&self, client_id: &str) -> Option<Duration> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.get(client_id).map(|entry| entry.loaded.elapsed())
    }

    /// The caller and its second factor if `given` matches a secret of a cached entry
    /// younger than `ttl`; `None` when there is no such entry.
    fn check_cached(
        &self,
        client_id: &str,
        given: &[u8; 32],
        ttl: Duration,
    ) -> Option<Result<(Caller, Factor)>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(client_id)?;
        if entry.loaded.elapsed() > ttl {
            return None;
        }
        // Compare against every digest so the time taken does not say which matched.
        let matched = entry
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(given));
        Some(if bool::from(matched) {
            Ok((
                Caller {
                    merchant_id: entry.merchant_id,
                    client_id: client_id.to_string(),
                    env: entry.env,
                    rate_limit_per_minute: entry.rate_limit_per_minute,
                },
                entry.factor.clone(),
            ))
        } else {
            Err(Error::unauthorized())
        })
    }

    async fn reload(&self, client_id: &str) -> Result<()> {
        let credential = self.store.credential(client_id).await?;
        let entry = match credential {
            Some(c) => {
                let factor = match c.second_factor.as_str() {
                    "ip" => {
                        let list: Vec<String> = c
                            .ip_allowlist
                            .as_deref()
                            .map(serde_json::from_str)
                            .transpose()
                            .map_err(Error::internal)?
                            .unwrap_or_default();
                        Factor::Ip(parse_ip_list(&list).map_err(Error::internal)?)
                    }
                    "signature" => {
                        let sealed = c.private_key_enc.as_deref().ok_or_else(|| {
                            Error::internal(anyhow::anyhow!("signature factor without a key"))
                        })?;
                        let der = self.key.open(sealed).map_err(Error::internal)?;
                        let key = PrivateDecryptingKey::from_pkcs8(&der).map_err(|e| {
                            Error::internal(anyhow::anyhow!("the signature key: {e}"))
                        })?;
                        let key = OaepPrivateDecryptingKey::new(key).map_err(|e| {
                            Error::internal(anyhow::anyhow!("the signature key: {e}"))
                        })?;
                        Factor::Signature(Arc::new(key))
                    }
                    _ => Factor::None,
                };
                Some(Cached {
                    merchant_id: c.merchant_id,
                    env: c.env,
                    digests: c
                        .secret_digests
                        .iter()
                        .filter_map(|d| hex::decode(d).ok()?.try_into().ok())
                        .collect(),
                    factor,
                    rate_limit_per_minute: c
                        .rate_limit_per_minute
                        .and_then(|n| u32::try_from(n).ok()),
                    loaded: Instant::now(),
                })
            }
            None => None,
        };
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        match entry {
            Some(entry) => cache.insert(client_id.to_string(), entry),
            None => cache.remove(client_id),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(items: &[&str]) -> Vec<IpNet> {
        parse_ip_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_socket_address_counts_unless_the_peer_is_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        // A forged header from an untrusted peer changes nothing.
        assert_eq!(client_ip(outsider, Some("1.2.3.4"), &proxies), outsider);
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4"), &proxies),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // The right-most untrusted entry wins over anything the client put before it.
        assert_eq!(
            client_ip(proxy, Some("6.6.6.6, 1.2.3.4, 10.2.2.2"), &proxies),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, None, &proxies), proxy);
        assert_eq!(
            client_ip(proxy, Some("junk, 10.2.2.2"), &proxies),
            "10.2.2.2".parse::<IpAddr>().unwrap()
        );
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(mapped, None, &[]), outsider);
    }

    #[test]
    fn allow_lists_take_addresses_and_ranges_of_both_families() {
        let list = nets(&["106.51.91.104", "192.168.0.0/16", "2001:db8::/32"]);
        for ip in ["106.51.91.104", "192.168.44.1", "2001:db8::1"] {
            assert!(
                list.iter()
                    .any(|n| n.contains(&ip.parse::<IpAddr>().unwrap())),
                "{ip}"
            );
        }
        for ip in ["106.51.91.105", "2001:db9::1"] {
            assert!(
                !list
                    .iter()
                    .any(|n| n.contains(&ip.parse::<IpAddr>().unwrap())),
                "{ip}"
            );
        }
        assert!(parse_ip_list(&["300.1.1.1".to_string()]).is_err());
    }
}
