//! The stills captured in calls (sealed, as personal data) and the Aadhaar step's photo.

use super::{call_events, Store};
use crate::clock::now_ms;
use crate::error::Result;
use serde_json::json;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct CaptureRow {
    pub id: i64,
    pub call_id: i64,
    pub kind: String,
    pub at: i64,
}

impl Store {
    /// Keeps a still (JPEG) of the call, sealed.
    pub async fn insert_capture(&self, call_id: i64, kind: &str, jpeg: &[u8]) -> Result<i64> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        self.check_key_in(&mut tx).await?;
        let row = sqlx::query(
            "INSERT INTO captures (call_id, kind, image, at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(call_id)
        .bind(kind)
        .bind(self.seal_bytes(jpeg))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        let detail = json!({ "kind": kind, "capture_id": id });
        call_events::insert_in(&mut tx, call_id, now, "capture", Some(&detail)).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn captures(&self, call_id: i64) -> Result<Vec<CaptureRow>> {
        let rows = sqlx::query(
            "SELECT id, call_id, kind, at FROM captures WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CaptureRow {
                    id: r.try_get("id")?,
                    call_id: r.try_get("call_id")?,
                    kind: r.try_get("kind")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// A capture's image (JPEG), opened, and the call it belongs to.
    pub async fn capture_image(&self, id: i64) -> Result<Option<(i64, Vec<u8>)>> {
        let row = sqlx::query("SELECT call_id, image FROM captures WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let image: String = row.try_get("image")?;
        Ok(Some((row.try_get("call_id")?, self.open_bytes(&image)?)))
    }

    /// The photo proved in the Aadhaar step (JPEG), opened.
    pub async fn aadhaar_photo(&self, request_id: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT photo FROM aadhaar_kyc WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.read)
            .await?;
        let photo: Option<String> = row
            .map(|r| r.try_get::<Option<String>, _>("photo"))
            .transpose()?
            .flatten();
        photo.map(|p| self.open_bytes(&p)).transpose()
    }

    /// Whether the Aadhaar step kept a photo (without opening it).
    pub async fn has_aadhaar_photo(&self, request_id: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM aadhaar_kyc WHERE request_id = $1 AND photo IS NOT NULL",
        )
        .bind(request_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }
}
