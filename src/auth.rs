//! Merchant authentication: the `x-client-id` / `x-client-secret` / `x-api-version`
//! headers of every merchant API call.
//!
//! Secrets are 256 random bits, so the store keeps only their SHA-256 digest and a check
//! is one hash and one constant-time comparison, never a slow password hash. Credentials
//! are cached in memory for `credential_cache_seconds`, so a call does not read the
//! database either; a revoked secret stops working when its cache entry ages out.

use crate::config::Environment;
use crate::error::{Error, Result};
use crate::store::{MerchantEnv, Store};
use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
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
}

pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

struct Cached {
    merchant_id: i64,
    env: MerchantEnv,
    digests: Vec<[u8; 32]>,
    loaded: Instant,
}

pub struct Authenticator {
    store: Store,
    environment: Environment,
    ttl: Duration,
    cache: RwLock<HashMap<String, Cached>>,
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
    pub fn new(store: Store, environment: Environment, ttl: Duration) -> Authenticator {
        Authenticator {
            store,
            environment,
            ttl,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Checks the headers of a merchant API call, in the order the hosted service
    /// answers them: missing headers, the API version, the secret's environment, then
    /// the id/secret pair.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller> {
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
        if let Some(caller) = self.check_cached(client_id, &given) {
            return caller;
        }
        self.reload(client_id).await?;
        self.check_cached(client_id, &given)
            .unwrap_or_else(|| Err(Error::unauthorized()))
    }

    /// `None` when the cache has no fresh entry for `client_id`.
    fn check_cached(&self, client_id: &str, given: &[u8; 32]) -> Option<Result<Caller>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(client_id)?;
        if entry.loaded.elapsed() > self.ttl {
            return None;
        }
        // Compare against every digest so the time taken does not say which matched.
        let matched = entry
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(given));
        Some(if bool::from(matched) {
            Ok(Caller {
                merchant_id: entry.merchant_id,
                client_id: client_id.to_string(),
                env: entry.env,
            })
        } else {
            Err(Error::unauthorized())
        })
    }

    async fn reload(&self, client_id: &str) -> Result<()> {
        let credential = self.store.credential(client_id).await?;
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        match credential {
            Some(c) => {
                let digests = c
                    .secret_digests
                    .iter()
                    .filter_map(|d| hex::decode(d).ok()?.try_into().ok())
                    .collect();
                cache.insert(
                    client_id.to_string(),
                    Cached {
                        merchant_id: c.merchant_id,
                        env: c.env,
                        digests,
                        loaded: Instant::now(),
                    },
                );
            }
            None => {
                cache.remove(client_id);
            }
        }
        Ok(())
    }
}
