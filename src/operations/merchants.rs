//! Merchants and their credentials: create, list, rotate and revoke secrets, webhook URL,
//! rate limit and the second factor. A secret is returned only by the operation that
//! creates it, to be shown once; nothing lists one afterwards.

use super::{invalid, missing, refused, Actor};
use crate::auth::NewCredential;
use crate::config::Config;
use crate::error::Result;
use crate::secrets::MasterKey;
use crate::store::{Merchant, MerchantEnv, Store};

/// A new credential: the secret is in here once, never stored in clear.
pub struct Created {
    pub merchant: Merchant,
    pub client_id: String,
    pub secret: String,
}

pub fn parse_env(text: &str) -> Result<MerchantEnv> {
    text.parse().map_err(|_| {
        invalid(
            "env_value_invalid",
            format!("environment must be test or live, not {text:?}"),
        )
    })
}

pub async fn find(store: &Store, client_id: &str) -> Result<Merchant> {
    store
        .merchant_by_client_id(client_id)
        .await?
        .ok_or_else(|| {
            missing(
                "client_id_not_found",
                format!("no merchant has client id {client_id}"),
            )
        })
}

pub async fn find_id(store: &Store, id: i64) -> Result<Merchant> {
    store
        .merchant_by_id(id)
        .await?
        .ok_or_else(|| missing("merchant_not_found", "there is no such merchant"))
}

/// The client id must belong to this merchant (the console names both).
pub async fn own_client_id(store: &Store, merchant: &Merchant, client_id: &str) -> Result<()> {
    match store.merchant_by_client_id(client_id).await? {
        Some(m) if m.id == merchant.id => Ok(()),
        _ => Err(missing(
            "client_id_not_found",
            format!("{} has no client id {client_id}", merchant.name),
        )),
    }
}

pub async fn create(
    store: &Store,
    key: &MasterKey,
    actor: &Actor,
    name: &str,
    env: MerchantEnv,
) -> Result<Created> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid(
            "name_value_invalid",
            "the merchant's name must be 1 to 200 characters",
        ));
    }
    let credential = NewCredential::generate(env);
    let merchant = store
        .create_merchant(
            name,
            env,
            &credential.client_id,
            &credential.digest(),
            &credential.sealed(key),
        )
        .await?;
    actor
        .audit(
            store,
            "merchant_created",
            &credential.client_id,
            Some(env.as_str()),
        )
        .await?;
    Ok(Created {
        merchant,
        client_id: credential.client_id.clone(),
        secret: credential.secret.clone(),
    })
}

/// Gives a client id a second secret; both work until the older is revoked.
pub async fn rotate_secret(
    store: &Store,
    key: &MasterKey,
    actor: &Actor,
    merchant: &Merchant,
    client_id: &str,
) -> Result<String> {
    let mut credential = NewCredential::generate(merchant.env);
    credential.client_id = client_id.to_string();
    let added = store
        .add_secret(
            merchant.id,
            client_id,
            &credential.digest(),
            &credential.sealed(key),
        )
        .await?;
    if !added {
        return Err(refused(
            "secret_rotation_pending",
            format!("{client_id} already has two secrets: revoke the old one first"),
        ));
    }
    actor
        .audit(store, "merchant_secret_rotated", client_id, None)
        .await?;
    Ok(credential.secret.clone())
}

/// Revokes the older of a client id's two secrets, ending a rotation.
pub async fn revoke_secret(store: &Store, actor: &Actor, client_id: &str) -> Result<()> {
    if !store.revoke_oldest_secret(client_id).await? {
        return Err(refused(
            "secret_single",
            format!("{client_id} has only one secret; rotate first"),
        ));
    }
    actor
        .audit(store, "merchant_secret_revoked", client_id, None)
        .await
}

/// Allows calls only from these addresses or ranges (1 to 10). Returns them as stored.
pub async fn allow_ips(
    store: &Store,
    actor: &Actor,
    merchant: &Merchant,
    ips: &[String],
) -> Result<Vec<String>> {
    if ips.is_empty() || ips.len() > 10 {
        return Err(invalid(
            "ip_allowlist_value_invalid",
            "give 1 to 10 addresses or ranges",
        ));
    }
    let nets = crate::config::parse_ip_list(ips)
        .map_err(|e| invalid("ip_allowlist_value_invalid", e.to_string()))?;
    let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
    let json = serde_json::to_string(&list).map_err(crate::error::Error::internal)?;
    store
        .set_second_factor(merchant.id, "ip", Some(&json), None)
        .await?;
    actor
        .audit(
            store,
            "merchant_allowlist_set",
            &merchant_target(merchant),
            Some(&list.join(",")),
        )
        .await?;
    Ok(list)
}

/// Requires an `x-cf-signature`: makes an RSA key pair and returns the public key (the
/// merchant's to keep; not a secret).
pub async fn keygen(
    store: &Store,
    key: &MasterKey,
    actor: &Actor,
    merchant: &Merchant,
) -> Result<String> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(crate::error::Error::internal)?;
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(crate::error::Error::internal)?;
    let der = private
        .to_pkcs8_der()
        .map_err(crate::error::Error::internal)?;
    let sealed = key.seal(der.as_bytes());
    store
        .set_second_factor(merchant.id, "signature", None, Some((&public_pem, &sealed)))
        .await?;
    actor
        .audit(
            store,
            "merchant_signature_required",
            &merchant_target(merchant),
            None,
        )
        .await?;
    Ok(public_pem)
}

pub async fn clear_second_factor(store: &Store, actor: &Actor, merchant: &Merchant) -> Result<()> {
    store
        .set_second_factor(merchant.id, "none", None, None)
        .await?;
    actor
        .audit(
            store,
            "merchant_second_factor_cleared",
            &merchant_target(merchant),
            None,
        )
        .await
}

/// `standard` (100), `medium` (200), `restricted` (5), a number, `unlimited`, or
/// `default` (the deployment's). Returns the calls per minute set (None: the default).
pub async fn set_rate_limit(
    store: &Store,
    actor: &Actor,
    merchant: &Merchant,
    limit: &str,
) -> Result<Option<u32>> {
    let per_minute = match limit.trim() {
        "default" => None,
        text => Some(crate::ratelimit::parse_limit(text).ok_or_else(|| {
            invalid(
                "rate_limit_value_invalid",
                "the limit must be standard, medium, restricted, unlimited, default or a number",
            )
        })?),
    };
    store
        .set_rate_limit(merchant.id, per_minute.map(i64::from))
        .await?;
    actor
        .audit(
            store,
            "merchant_rate_limit_set",
            &merchant_target(merchant),
            Some(limit.trim()),
        )
        .await?;
    Ok(per_minute)
}

/// Sets the webhook URL (checked as deliveries will be), or with `None` removes it.
pub async fn set_webhook(
    store: &Store,
    config: &Config,
    actor: &Actor,
    merchant: &Merchant,
    url: Option<&str>,
) -> Result<Option<String>> {
    let url = match url {
        None => None,
        Some(url) => Some(
            crate::outbound::check_url(url, config.webhook_allow_private_addresses)
                .map_err(|reason| invalid("webhook_url_value_invalid", format!("url: {reason}")))?
                .to_string(),
        ),
    };
    store.set_webhook_url(merchant.id, url.as_deref()).await?;
    actor
        .audit(
            store,
            "merchant_webhook_set",
            &merchant_target(merchant),
            Some(url.as_deref().unwrap_or("none")),
        )
        .await?;
    Ok(url)
}

fn merchant_target(merchant: &Merchant) -> String {
    format!("merchant {}", merchant.id)
}
