//! Uploaded logos (migration 0023): re-encoded PNGs named by their SHA-256. A logo is
//! never changed; a new picture is a new id.

use super::Store;
use crate::clock::now_ms;
use crate::domain::logo::Logo;
use crate::error::Result;
use base64::Engine;
use sqlx::Row;

impl Store {
    /// Keeps a logo; the same picture uploaded again is the same row.
    pub async fn add_logo(&self, logo: &Logo, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO logos (id, png, width, height, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&logo.id)
        .bind(base64::engine::general_purpose::STANDARD.encode(&logo.png))
        .bind(i64::from(logo.width))
        .bind(i64::from(logo.height))
        .bind(now_ms())
        .bind(by)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A logo's PNG.
    pub async fn logo_png(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT png FROM logos WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("png")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(text).ok())
    }
}
