//! Attempts at a journey step, counted before the check runs, so that a customer (or
//! someone guessing a share code) cannot retry a step without bound, however many tries
//! arrive at once.

use super::{Backend, Store};
use crate::error::Result;
use sqlx::Row;

impl Store {
    /// Counts an attempt at `step` of `request_id` at `now`, unless `max` were already made
    /// after `since`. `Ok(n)`: counted, the n-th in the window. `Err(oldest)`: refused;
    /// `oldest` is when the window's oldest attempt was made.
    pub async fn claim_step_attempt(
        &self,
        request_id: i64,
        step: &str,
        now: i64,
        since: i64,
        max: i64,
    ) -> Result<std::result::Result<i64, i64>> {
        let mut tx = self.write.begin().await?;
        // Concurrent attempts on one request queue here (SQLite has one writer).
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM requests WHERE id = $1 FOR UPDATE")
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM journey_attempts \
             WHERE request_id = $1 AND step = $2 AND at > $3",
        )
        .bind(request_id)
        .bind(step)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let count: i64 = row.try_get("n")?;
        if count >= max {
            let oldest: Option<i64> = row.try_get("oldest")?;
            return Ok(Err(oldest.unwrap_or(now)));
        }
        sqlx::query("INSERT INTO journey_attempts (request_id, step, at) VALUES ($1, $2, $3)")
            .bind(request_id)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(count + 1))
    }

    /// The attempts at `step` of `request_id` made after `since` (what the page says is
    /// left of the window's tries).
    pub async fn step_attempts_since(
        &self,
        request_id: i64,
        step: &str,
        since: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM journey_attempts WHERE request_id = $1 AND step = $2 \
             AND at > $3",
        )
        .bind(request_id)
        .bind(step)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("n")?)
    }
}
