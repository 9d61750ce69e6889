//! The webhook outbox: events written with their status moves, deliveries claimed with a
//! lease, and the record of every attempt.

use super::{Backend, Request, Store, ROWS_PER_STATEMENT};
use crate::clock::now_ms;
use crate::domain::events::{envelope, new_event_id};
use crate::error::Result;
use sqlx::Row;

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
    /// The merchant's newest client secret, sealed: webhooks are signed with it.
    pub secret_enc: String,
}

/// A delivery as the merchant and the operator see it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub verification_id: String,
    pub seq: i64,
    pub url: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: i64,
    pub at: i64,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub response_snippet: Option<String>,
    pub error: Option<String>,
}

const DELIVERY_COLUMNS: &str = "d.id, e.event_id, e.event_type, r.verification_id, d.seq, d.url, \
     d.status, d.attempts, d.next_attempt_at, d.created_at, d.delivered_at, d.last_status_code, \
     d.last_error";

fn delivery_from_row(row: &sqlx::any::AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        verification_id: row.try_get("verification_id")?,
        seq: row.try_get("seq")?,
        url: row.try_get("url")?,
        next_attempt_at: if status == "pending" {
            Some(row.try_get("next_attempt_at")?)
        } else {
            None
        },
        status,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        last_status_code: row.try_get("last_status_code")?,
        last_error: row.try_get("last_error")?,
    })
}

impl Store {
    /// Writes one event per snapshot (sequence numbers from `first_seq`) and a delivery for
    /// the merchant's webhook URL and the request's own, inside the move's transaction.
    pub(super) async fn write_events(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        snapshots: &[Request],
        first_seq: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let events: Vec<(&Request, i64)> = snapshots.iter().zip(first_seq..).collect();
        self.write_events_of(tx, &events, now).await
    }

    /// Writes one event per (snapshot, sequence number), of any number of requests, and
    /// their deliveries (the merchant's webhook URL and the request's own): two statements
    /// per [`super::ROWS_PER_STATEMENT`] events, however many there are.
    pub(super) async fn write_events_of(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        events: &[(&Request, i64)],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        use std::fmt::Write;
        for chunk in events.chunks(super::ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO webhook_events (event_id, merchant_id, request_id, seq, event_type, \
                 body, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 2 + 6 * i;
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(
                    sql,
                    "{sep}(${}, ${}, ${}, ${}, ${}, ${}, $1)",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                );
            }
            sql.push_str(" RETURNING id");
            let full = chunk.len() == super::ROWS_PER_STATEMENT;
            let mut query = sqlx::query(&sql).persistent(full).bind(now);
            for (snapshot, seq) in chunk {
                let event_id = new_event_id();
                let body = envelope(
                    snapshot,
                    self.link_base(),
                    self.recording_signer.get(),
                    &event_id,
                    *seq,
                    now,
                );
                query = query
                    .bind(event_id)
                    .bind(snapshot.merchant_id)
                    .bind(snapshot.id)
                    .bind(*seq)
                    .bind(crate::domain::events::event_type(snapshot.sub_status))
                    .bind(body);
            }
            let ids: Vec<i64> = query
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            // The ids are numbers from the database: safe to write into the statement.
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO webhook_deliveries (event_id, merchant_id, request_id, seq, url, \
                 status, attempts, next_attempt_at, created_at) \
                 SELECT e.id, e.merchant_id, e.request_id, e.seq, urls.url, 'pending', 0, $1, $1 \
                 FROM webhook_events e JOIN ( \
                   SELECT ev.id AS event_ref, m.webhook_url AS url FROM webhook_events ev \
                   JOIN merchants m ON m.id = ev.merchant_id \
                   WHERE ev.id IN ({list}) AND m.webhook_url IS NOT NULL \
                   UNION \
                   SELECT ev.id AS event_ref, r.webhook_url AS url FROM webhook_events ev \
                   JOIN requests r ON r.id = ev.request_id \
                   WHERE ev.id IN ({list}) AND r.webhook_url IS NOT NULL \
                 ) urls ON urls.event_ref = e.id ORDER BY e.id, urls.url"
            );
            sqlx::query(&sql)
                .persistent(false)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Frees every claimed delivery, for a process that knows it is the only one.
    pub async fn release_leases(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET lease_until = NULL \
             WHERE status = 'pending' AND lease_until IS NOT NULL",
        )
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Sets (or with `None` removes) a merchant's webhook URL.
    pub async fn set_webhook_url(&self, merchant_id: i64, url: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE merchants SET webhook_url = $1 WHERE id = $2")
            .bind(url)
            .bind(merchant_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries until `lease_until`. Only the earliest pending
    /// delivery of each (request, URL) is due, so events arrive in order; a row claimed by
    /// a worker that died is due again once its lease has run out.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_until = $1 WHERE id IN ( \
               SELECT d.id FROM webhook_deliveries d \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $2 \
                 AND (d.lease_until IS NULL OR d.lease_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = 'pending' \
                   AND p.request_id = d.request_id AND p.url = d.url AND p.seq < d.seq) \
               ORDER BY d.next_attempt_at LIMIT $3 {lock}) \
             RETURNING id"
        );
        let ids: Vec<i64> = sqlx::query(&sql)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.write)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids are numbers from the database: safe to write into the statement.
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT d.id, e.event_id, d.url, e.body, d.attempts, \
               (SELECT c.secret_enc FROM credentials c WHERE c.merchant_id = d.merchant_id \
                  AND c.revoked_at IS NULL ORDER BY c.id DESC LIMIT 1) AS secret_enc \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.id IN ({}) ORDER BY d.id",
            list.join(", ")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.write).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(ClaimedDelivery {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                url: row.try_get("url")?,
                body: row.try_get("body")?,
                attempts: row.try_get("attempts")?,
                secret_enc: row
                    .try_get::<Option<String>, _>("secret_enc")?
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Records attempts and settles their deliveries (delivered, due again at `next`, or
    /// failed for good when `next` is `None` after a failure), all in one transaction: a
    /// worker's whole pass costs one commit, and two statements per
    /// [`ROWS_PER_STATEMENT`] deliveries.
    pub async fn record_attempts(
        &self,
        results: &[(ClaimedDelivery, Outcome, Option<i64>)],
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        for chunk in results.chunks(ROWS_PER_STATEMENT) {
            // Only full chunks share a text worth keeping prepared.
            let keep = chunk.len() == ROWS_PER_STATEMENT;
            let insert = format!(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, latency_ms, \
                 status_code, response_snippet, error) VALUES {}",
                value_rows(chunk.len(), 7)
            );
            let mut attempts = sqlx::query(&insert).persistent(keep);
            for (delivery, outcome, _) in chunk {
                attempts = attempts
                    .bind(delivery.id)
                    .bind(delivery.attempts + 1)
                    .bind(now)
                    .bind(outcome.latency_ms)
                    .bind(outcome.status_code.map(i64::from))
                    .bind(&outcome.snippet)
                    .bind(&outcome.error);
            }
            attempts.execute(&mut *tx).await?;
            // VALUES' columns are column1..column7 on both backends.
            let update = format!(
                "UPDATE webhook_deliveries SET status = v.column2, attempts = v.column3, \
                 next_attempt_at = v.column4, lease_until = NULL, delivered_at = v.column5, \
                 last_status_code = v.column6, last_error = v.column7 \
                 FROM (VALUES {}) AS v WHERE webhook_deliveries.id = v.column1",
                value_rows(chunk.len(), 7)
            );
            let mut settle = sqlx::query(&update).persistent(keep);
            for (delivery, outcome, next) in chunk {
                let status = if outcome.succeeded() {
                    "delivered"
                } else if next.is_some() {
                    "pending"
                } else {
                    "failed"
                };
                settle = settle
                    .bind(delivery.id)
                    .bind(status)
                    .bind(delivery.attempts + 1)
                    .bind(next.unwrap_or(now))
                    .bind(outcome.succeeded().then_some(now))
                    .bind(outcome.status_code.map(i64::from))
                    .bind(&outcome.error);
            }
            settle.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A merchant's deliveries, newest first, optionally of one request.
    pub async fn deliveries(
        &self,
        merchant_id: i64,
        request_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id JOIN requests r ON r.id = d.request_id \
             WHERE d.merchant_id = $1 AND ($2 = 0 OR d.request_id = $2) \
             ORDER BY d.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(merchant_id)
            .bind(request_id.unwrap_or(0))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// One of the merchant's deliveries with its attempts, oldest first.
    pub async fn delivery(
        &self,
        merchant_id: i64,
        id: i64,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRow>)>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id JOIN requests r ON r.id = d.request_id \
             WHERE d.merchant_id = $1 AND d.id = $2"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(merchant_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query(
            "SELECT attempt, at, latency_ms, status_code, response_snippet, error \
             FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRow {
                attempt: r.try_get("attempt")?,
                at: r.try_get("at")?,
                latency_ms: r.try_get("latency_ms")?,
                status_code: r.try_get("status_code")?,
                response_snippet: r.try_get("response_snippet")?,
                error: r.try_get("error")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((delivery_from_row(&row)?, attempts)))
    }

    /// Sends a delivery again: a new pending delivery of the same event to the same URL,
    /// due now. Returns its id, or `None` when the merchant has no such delivery.
    pub async fn resend(&self, merchant_id: i64, id: i64) -> Result<Option<i64>> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO webhook_deliveries (event_id, merchant_id, request_id, seq, url, status, \
             attempts, next_attempt_at, created_at) \
             SELECT event_id, merchant_id, request_id, seq, url, 'pending', 0, $1, $1 \
             FROM webhook_deliveries WHERE id = $2 AND merchant_id = $3 RETURNING id",
        )
        .bind(now)
        .bind(id)
        .bind(merchant_id)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub snippet: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<u64>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// `($1, .., $width), ($width+1, ..), ..` for `rows` rows.
fn value_rows(rows: usize, width: usize) -> String {
    let row = |r: usize| {
        let cols: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        format!("({})", cols.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}
