//! Merchants, their credentials (secret digests, second factors, rate limits) and the
//! sealed values that a master-key rotation re-seals.

use super::{is_unique_violation, Store};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use sqlx::Row;
use std::str::FromStr;

/// A merchant's environment: test credentials work on sandbox deployments, live ones on
/// production deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantEnv {
    Test,
    Live,
}

impl MerchantEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantEnv::Test => "test",
            MerchantEnv::Live => "live",
        }
    }
}

impl FromStr for MerchantEnv {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<MerchantEnv> {
        match s {
            "test" => Ok(MerchantEnv::Test),
            "live" => Ok(MerchantEnv::Live),
            other => anyhow::bail!("environment must be test or live, not {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: i64,
    pub name: String,
    pub env: MerchantEnv,
}

/// A credential as the authenticator needs it.
#[derive(Debug, Clone)]
pub struct Credential {
    pub client_id: String,
    pub merchant_id: i64,
    pub env: MerchantEnv,
    /// Hex SHA-256 digests of the secrets that are not revoked.
    pub secret_digests: Vec<String>,
    /// `none`, `ip` or `signature`.
    pub second_factor: String,
    /// JSON array of addresses and CIDR ranges.
    pub ip_allowlist: Option<String>,
    /// The PKCS#8 DER private key, sealed under the master key.
    pub private_key_enc: Option<String>,
    pub rate_limit_per_minute: Option<i64>,
}
impl Store {
    pub async fn merchant_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM merchants")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates a merchant with one credential.
    pub async fn create_merchant(
        &self,
        name: &str,
        env: MerchantEnv,
        client_id: &str,
        secret_digest: &str,
        secret_enc: &str,
    ) -> Result<Merchant> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO merchants (name, env, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(env.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        sqlx::query(
            "INSERT INTO credentials (client_id, merchant_id, secret_digest, secret_enc, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(id)
        .bind(secret_digest)
        .bind(secret_enc)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Merchant {
            id,
            name: name.to_string(),
            env,
        })
    }

    pub async fn merchants(&self) -> Result<Vec<(Merchant, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT m.id, m.name, m.env, c.client_id FROM merchants m \
             LEFT JOIN credentials c ON c.merchant_id = m.id AND c.revoked_at IS NULL \
             ORDER BY m.id, c.client_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<(Merchant, Vec<String>)> = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let client_id: Option<String> = row.try_get("client_id")?;
            if out.last().map(|(m, _)| m.id) != Some(id) {
                let env: String = row.try_get("env")?;
                out.push((
                    Merchant {
                        id,
                        name: row.try_get("name")?,
                        env: env.parse().map_err(Error::internal)?,
                    },
                    Vec::new(),
                ));
            }
            if let (Some(client_id), Some(last)) = (client_id, out.last_mut()) {
                if !last.1.contains(&client_id) {
                    last.1.push(client_id);
                }
            }
        }
        Ok(out)
    }

    /// A client id's merchant and its active secrets and security settings.
    pub async fn credential(&self, client_id: &str) -> Result<Option<Credential>> {
        let rows = sqlx::query(
            "SELECT c.merchant_id, c.secret_digest, m.env, m.second_factor, m.ip_allowlist, \
             m.private_key_enc, m.rate_limit_per_minute FROM credentials c \
             JOIN merchants m ON m.id = c.merchant_id \
             WHERE c.client_id = $1 AND c.revoked_at IS NULL ORDER BY c.id",
        )
        .bind(client_id)
        .fetch_all(&self.read)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let env: String = first.try_get("env")?;
        Ok(Some(Credential {
            client_id: client_id.to_string(),
            merchant_id: first.try_get("merchant_id")?,
            env: env.parse().map_err(Error::internal)?,
            secret_digests: rows
                .iter()
                .map(|r| r.try_get("secret_digest"))
                .collect::<Result<_, _>>()?,
            second_factor: first.try_get("second_factor")?,
            ip_allowlist: first.try_get("ip_allowlist")?,
            private_key_enc: first.try_get("private_key_enc")?,
            rate_limit_per_minute: first.try_get("rate_limit_per_minute")?,
        }))
    }

    /// The merchant a client id belongs to (revoked or not).
    pub async fn merchant_by_client_id(&self, client_id: &str) -> Result<Option<Merchant>> {
        let row = sqlx::query(
            "SELECT m.id, m.name, m.env FROM merchants m \
             JOIN credentials c ON c.merchant_id = m.id WHERE c.client_id = $1 LIMIT 1",
        )
        .bind(client_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let env: String = row.try_get("env")?;
        Ok(Some(Merchant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            env: env.parse().map_err(Error::internal)?,
        }))
    }

    /// Adds a second active secret to a client id (rotation). Refused (`Ok(false)`) while
    /// two are already active: the old one must be revoked first.
    pub async fn add_secret(
        &self,
        merchant_id: i64,
        client_id: &str,
        secret_digest: &str,
        secret_enc: &str,
    ) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM credentials WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?;
        let active: i64 = row.try_get("n")?;
        if active >= 2 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO credentials (client_id, merchant_id, secret_digest, secret_enc, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(client_id)
        .bind(merchant_id)
        .bind(secret_digest)
        .bind(secret_enc)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes the oldest active secret of a client id, if it has two; `Ok(false)` when it
    /// has only one (revoking it would lock the merchant out).
    pub async fn revoke_oldest_secret(&self, client_id: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "SELECT id FROM credentials WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await?;
        if rows.len() < 2 {
            return Ok(false);
        }
        let oldest: i64 = rows[0].try_get("id")?;
        sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(oldest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets a merchant's second factor: `none`, `ip` with its allow-list (JSON), or
    /// `signature` with the key pair.
    pub async fn set_second_factor(
        &self,
        merchant_id: i64,
        factor: &str,
        ip_allowlist: Option<&str>,
        key_pair: Option<(&str, &str)>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE merchants SET second_factor = $1, ip_allowlist = COALESCE($2, ip_allowlist), \
             public_key_pem = COALESCE($3, public_key_pem), \
             private_key_enc = COALESCE($4, private_key_enc) WHERE id = $5",
        )
        .bind(factor)
        .bind(ip_allowlist)
        .bind(key_pair.map(|k| k.0))
        .bind(key_pair.map(|k| k.1))
        .bind(merchant_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a used `x-cf-signature` until `expires_at`; `Ok(false)` when it was used
    /// before (a replay). Expired records are cleared on the way.
    pub async fn use_signature(&self, digest: &str, expires_at: i64) -> Result<bool> {
        sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        let inserted =
            sqlx::query("INSERT INTO used_signatures (digest, expires_at) VALUES ($1, $2)")
                .bind(digest)
                .bind(expires_at)
                .execute(&self.write)
                .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// One value sealed under the master key, if the database holds any: a start checks
    /// that its key opens it before it uses the key for anything.
    pub async fn sealed_sample(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT secret_enc FROM credentials ORDER BY id LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("secret_enc")).transpose()?)
    }

    /// Every value sealed under the master key, for re-sealing under a new one:
    /// (table, row id, sealed text).
    pub async fn sealed_values(&self) -> Result<Vec<(&'static str, i64, String)>> {
        let mut out = Vec::new();
        for row in sqlx::query("SELECT id, secret_enc FROM credentials")
            .fetch_all(&self.read)
            .await?
        {
            out.push((
                "credentials",
                row.try_get("id")?,
                row.try_get("secret_enc")?,
            ));
        }
        for row in sqlx::query(
            "SELECT id, private_key_enc FROM merchants WHERE private_key_enc IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await?
        {
            out.push((
                "merchants",
                row.try_get("id")?,
                row.try_get("private_key_enc")?,
            ));
        }
        for row in
            sqlx::query("SELECT id, totp_secret_enc FROM staff WHERE totp_secret_enc IS NOT NULL")
                .fetch_all(&self.read)
                .await?
        {
            out.push(("staff", row.try_get("id")?, row.try_get("totp_secret_enc")?));
        }
        for row in sqlx::query("SELECT id, private_key_enc FROM signing_keys")
            .fetch_all(&self.read)
            .await?
        {
            out.push((
                "signing_keys",
                row.try_get("id")?,
                row.try_get("private_key_enc")?,
            ));
        }
        Ok(out)
    }

    /// Replaces sealed values in one transaction (all or nothing).
    pub async fn reseal(&self, values: &[(&'static str, i64, String)]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for (table, id, sealed) in values {
            let sql = match *table {
                "credentials" => "UPDATE credentials SET secret_enc = $1 WHERE id = $2",
                "staff" => "UPDATE staff SET totp_secret_enc = $1 WHERE id = $2",
                "signing_keys" => "UPDATE signing_keys SET private_key_enc = $1 WHERE id = $2",
                _ => "UPDATE merchants SET private_key_enc = $1 WHERE id = $2",
            };
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
