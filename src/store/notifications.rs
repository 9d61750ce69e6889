//! The messages sent to customers (`notification_types`): queued in the transaction of
//! the move or reminder that causes them, then claimed, sent and finished by the
//! notification worker.

use super::Store;
use crate::clock::now_ms;
use crate::error::Result;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: i64,
    pub request_id: i64,
    pub channel: String,
    pub kind: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

impl Store {
    /// Messages waiting to be sent that no process holds.
    pub async fn pending_notifications(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE state = 'pending' \
             AND (lease_until IS NULL OR lease_until < $2) ORDER BY id LIMIT $1"
        ))
        .bind(limit)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn notifications_for(&self, request_id: i64) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE request_id = $1 ORDER BY id"
        ))
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Takes a pending message for `until`; false when another process has it.
    pub async fn claim_notification(&self, id: i64, now: i64, until: i64) -> Result<bool> {
        let claimed = sqlx::query(
            "UPDATE notifications SET lease_until = $1 WHERE id = $2 AND state = 'pending' \
             AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Records how sending went: `sent`, `recorded`, `failed`, or back to `pending` with
    /// the error (another try later).
    pub async fn finish_notification(
        &self,
        id: i64,
        state: &str,
        recipient: Option<&str>,
        subject: Option<&str>,
        body: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET state = $1, recipient = COALESCE($2, recipient), \
             subject = COALESCE($3, subject), body = COALESCE($4, body), last_error = $5, \
             attempts = attempts + 1, lease_until = NULL, sent_at = CASE WHEN $1 IN ('sent', 'recorded') THEN $6 \
             ELSE sent_at END WHERE id = $7",
        )
        .bind(state)
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

const NOTIFICATION_COLUMNS: &str = "id, request_id, channel, kind, recipient, subject, body, \
     state, attempts, last_error, created_at, sent_at";

fn notification_from_row(r: &sqlx::any::AnyRow) -> Result<NotificationRow, sqlx::Error> {
    Ok(NotificationRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        channel: r.try_get("channel")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// Queues a `kind` message on each channel a request's `notification_types` (a JSON list,
/// as the merchant gave it) names.
pub(super) async fn insert_notifications(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    request_id: i64,
    notification_types: Option<&str>,
    kind: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let channels: Vec<String> = notification_types
        .and_then(|n| serde_json::from_str(n).ok())
        .unwrap_or_default();
    for channel in channels {
        sqlx::query(
            "INSERT INTO notifications (request_id, channel, kind, state, attempts, created_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4)",
        )
        .bind(request_id)
        .bind(channel)
        .bind(kind)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
