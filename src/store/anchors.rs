//! Daily anchors of the audit trail: a signed digest of the chain heads that moved since
//! the anchor before, kept with what each one covered so `vkyc audit verify` can hold the
//! chains against every anchor it finds (docs/records.md).

use super::{is_unique_violation, Store, ROWS_PER_STATEMENT};
use crate::domain::chain::{anchor_message, AnchorDigest};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::fmt::Write;

/// One anchor, as stored, logged and appended to the anchor file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRow {
    pub id: i64,
    pub at: i64,
    /// How many chain heads it covers.
    pub chains: i64,
    pub prev_digest: String,
    pub digest: String,
    /// The Ed25519 public key (PEM) the signature verifies under.
    pub public_key: String,
    /// Base64 Ed25519 signature of [`AnchorRow::message`].
    pub signature: String,
}

impl AnchorRow {
    pub fn message(&self) -> String {
        anchor_message(
            self.id,
            self.at,
            self.chains,
            &self.prev_digest,
            &self.digest,
        )
    }
}

/// One chain head an anchor covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorEntry {
    pub anchor_id: i64,
    pub chain: i64,
    pub seq: i64,
    pub hash: String,
}

const HEADS_PER_PAGE: i64 = 10_000;
const ANCHOR_COLUMNS: &str = "id, at, chains, prev_digest, digest, public_key, signature";

fn anchor_from_row(row: &sqlx::any::AnyRow) -> Result<AnchorRow, sqlx::Error> {
    Ok(AnchorRow {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        chains: row.try_get("chains")?,
        prev_digest: row.try_get("prev_digest")?,
        digest: row.try_get("digest")?,
        public_key: row.try_get("public_key")?,
        signature: row.try_get("signature")?,
    })
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<AnchorEntry, sqlx::Error> {
    Ok(AnchorEntry {
        anchor_id: row.try_get("anchor_id")?,
        chain: row.try_get("chain")?,
        seq: row.try_get("seq")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    pub async fn last_anchor(&self) -> Result<Option<AnchorRow>> {
        let sql = format!("SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY id DESC LIMIT 1");
        let row = sqlx::query(&sql).fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(anchor_from_row).transpose()?)
    }

    /// Up to `limit` anchors after `after`, oldest first.
    pub async fn anchors_after(&self, after: i64, limit: i64) -> Result<Vec<AnchorRow>> {
        let sql = format!(
            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(anchor_from_row).collect::<Result<_, _>>()?)
    }

    /// What anchor `anchor_id` covered, `limit` chains after `after_chain`, in chain order.
    pub async fn anchor_entries(
        &self,
        anchor_id: i64,
        after_chain: i64,
        limit: i64,
    ) -> Result<Vec<AnchorEntry>> {
        let rows = sqlx::query(
            "SELECT anchor_id, chain, seq, hash FROM audit_anchor_entries \
             WHERE anchor_id = $1 AND chain > $2 ORDER BY chain LIMIT $3",
        )
        .bind(anchor_id)
        .bind(after_chain)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(entry_from_row).collect::<Result<_, _>>()?)
    }

    /// Every anchor entry of the chains `first..=last`.
    pub async fn anchor_entries_of(&self, first: i64, last: i64) -> Result<Vec<AnchorEntry>> {
        let rows = sqlx::query(
            "SELECT anchor_id, chain, seq, hash FROM audit_anchor_entries \
             WHERE chain BETWEEN $1 AND $2",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(entry_from_row).collect::<Result<_, _>>()?)
    }

    /// Takes the next anchor at `at`: the heads that moved since the last one, their
    /// digest chained to the last anchor's, signed by `sign`. `None` when another process
    /// took this anchor at the same moment.
    pub async fn write_anchor(
        &self,
        at: i64,
        public_key: &str,
        sign: &(dyn Fn(&[u8]) -> String + Sync),
    ) -> Result<Option<AnchorRow>> {
        let mut tx = self.write.begin().await?;
        let last = sqlx::query("SELECT id, digest FROM audit_anchors ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (id, prev) = match last {
            Some(row) => (
                row.try_get::<i64, _>("id")? + 1,
                row.try_get::<String, _>("digest")?,
            ),
            None => (1, String::new()),
        };
        // The row first: a second process taking the same anchor waits on its key, then
        // finds it taken.
        let inserted = sqlx::query(
            "INSERT INTO audit_anchors (id, at, chains, prev_digest, digest, public_key, \
             signature) VALUES ($1, $2, 0, $3, '', $4, '')",
        )
        .bind(id)
        .bind(at)
        .bind(&prev)
        .bind(public_key)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        let mut digest = AnchorDigest::new(id, at, &prev);
        let mut chains = 0i64;
        let mut after = -1i64;
        loop {
            let rows = sqlx::query(
                "SELECT chain, seq, hash FROM audit_heads WHERE seq <> anchored_seq \
                 AND chain > $1 ORDER BY chain LIMIT $2",
            )
            .bind(after)
            .bind(HEADS_PER_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let mut page = Vec::with_capacity(rows.len());
            for row in &rows {
                let chain: i64 = row.try_get("chain")?;
                let seq: i64 = row.try_get("seq")?;
                let hash: String = row.try_get("hash")?;
                digest.entry(chain, seq, &hash);
                page.push((chain, seq, hash));
            }
            for chunk in page.chunks(ROWS_PER_STATEMENT) {
                let mut insert = String::from(
                    "INSERT INTO audit_anchor_entries (anchor_id, chain, seq, hash) VALUES ",
                );
                for (i, (chain, seq, _)) in chunk.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    // Numbers from the database; the hash is bound.
                    let _ = write!(insert, "{sep}({id}, {chain}, {seq}, ${})", i + 1);
                }
                let mut query = sqlx::query(&insert).persistent(false);
                for (_, _, hash) in chunk {
                    query = query.bind(hash);
                }
                query.execute(&mut *tx).await?;
                let mark =
                    super::update_by_key("audit_heads", "chain", &["anchored_seq"], chunk.len());
                let mut query = sqlx::query(&mark).persistent(chunk.len() == ROWS_PER_STATEMENT);
                for (chain, seq, _) in chunk {
                    query = query.bind(*chain).bind(*seq);
                }
                query.execute(&mut *tx).await?;
            }
            chains += page.len() as i64;
            match page.last() {
                Some((chain, _, _)) if page.len() as i64 == HEADS_PER_PAGE => after = *chain,
                _ => break,
            }
        }
        let digest = digest.finish(chains);
        let mut anchor = AnchorRow {
            id,
            at,
            chains,
            prev_digest: prev,
            digest,
            public_key: public_key.to_string(),
            signature: String::new(),
        };
        anchor.signature = sign(anchor.message().as_bytes());
        sqlx::query(
            "UPDATE audit_anchors SET chains = $1, digest = $2, signature = $3 WHERE id = $4",
        )
        .bind(anchor.chains)
        .bind(&anchor.digest)
        .bind(&anchor.signature)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(anchor))
    }
}
