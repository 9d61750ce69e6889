//! What happened during a call and when, for the markers on the auditor's player. Each
//! event is written in the transaction of the change it records, so a marker exists
//! exactly when its change does.

use super::Store;
use crate::clock::now_ms;
use crate::error::Result;
use serde_json::Value;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub at: i64,
    /// `started`, `connected`, `lost`, `question_asked`, `question_answered`,
    /// `liveness_asked`, `liveness_marked`, `capture`, `pan_entered`, `ended`.
    pub kind: String,
    /// JSON: the side, the question's index, the mark, the capture.
    pub detail: Option<String>,
}

/// Records one event inside the caller's transaction.
pub(super) async fn insert_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    call_id: i64,
    at: i64,
    kind: &str,
    detail: Option<&Value>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO call_events (call_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(call_id)
        .bind(at)
        .bind(kind)
        .bind(detail.map(Value::to_string))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Records an event that changes nothing else (a question or the liveness number
    /// asked for).
    pub async fn add_call_event(&self, call_id: i64, kind: &str, detail: &Value) -> Result<()> {
        let mut tx = self.write.begin().await?;
        insert_in(&mut tx, call_id, now_ms(), kind, Some(detail)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A call's events, in the order they happened.
    pub async fn call_events(&self, call_id: i64) -> Result<Vec<CallEvent>> {
        let rows = sqlx::query(
            "SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at, id",
        )
        .bind(call_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallEvent {
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
