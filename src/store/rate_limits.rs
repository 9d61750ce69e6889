//! Rate limits: each merchant's configured calls per minute, and the per-minute call
//! counters that every process sharing a PostgreSQL database counts into.
//!
//! A counter is one row per merchant per one-minute window, bumped by a single atomic
//! upsert, so concurrent calls from any number of processes each see a distinct count.

use super::Store;
use crate::error::Result;
use sqlx::Row;

impl Store {
    /// Counts one call of `merchant_id` in the window starting at `window_start` (Unix
    /// milliseconds) and returns the window's count including this call.
    ///
    /// One statement, atomic on both backends: on PostgreSQL two racing first calls of a
    /// window cannot both insert; the loser waits on the winner's row and updates it.
    pub async fn count_call(&self, merchant_id: i64, window_start: i64) -> Result<i64> {
        self.count_calls(merchant_id, window_start, 1).await
    }

    /// [`Store::count_call`] for `n` calls at once: a process leasing a block of the
    /// merchant's allowance (`ratelimit`).
    pub async fn count_calls(&self, merchant_id: i64, window_start: i64, n: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO rate_counters (merchant_id, window_start, calls) VALUES ($1, $2, $3) \
             ON CONFLICT (merchant_id, window_start) \
             DO UPDATE SET calls = rate_counters.calls + $3 \
             RETURNING calls",
        )
        .bind(merchant_id)
        .bind(window_start)
        .bind(n)
        .fetch_one(&self.counters)
        .await?;
        Ok(row.try_get("calls")?)
    }

    /// Deletes the counters of windows that started before `before`; returns how many.
    pub async fn prune_rate_counters(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM rate_counters WHERE window_start < $1")
            .bind(before)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// Sets a merchant's calls per minute; `None` means the deployment's default.
    /// `false` when there is no such merchant.
    pub async fn set_rate_limit(&self, merchant_id: i64, per_minute: Option<i64>) -> Result<bool> {
        let done = sqlx::query("UPDATE merchants SET rate_limit_per_minute = $1 WHERE id = $2")
            .bind(per_minute)
            .bind(merchant_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A merchant's own calls per minute; `None` when it uses the deployment's default
    /// (or when there is no such merchant).
    pub async fn rate_limit(&self, merchant_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT rate_limit_per_minute FROM merchants WHERE id = $1")
            .bind(merchant_id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => Ok(row.try_get("rate_limit_per_minute")?),
            None => Ok(None),
        }
    }
}
