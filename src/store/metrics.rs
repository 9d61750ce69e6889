//! What `/metrics` reads from the database at each scrape: the queue, the desk, the
//! live calls, the outboxes and how far behind each background worker is. Every count
//! is served by a partial index, so a scrape stays cheap however large the tables grow.

use super::requests::due_clause;
use super::{Backend, Store};
use crate::error::Result;
use sqlx::Row;

/// The database's side of the operational picture, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    /// Customers waiting in the live queue.
    pub queued: i64,
    /// Agents online with a fresh heartbeat.
    pub agents_online: i64,
    /// Calls an agent has invited a customer to, not yet answered.
    pub calls_invited: i64,
    /// Calls under way.
    pub calls_active: i64,
    /// Webhook deliveries still to be made (due now or waiting for a retry).
    pub webhook_backlog: i64,
    /// Messages to customers not yet sent.
    pub notification_backlog: i64,
    /// For each worker, when its oldest due row fell due (Unix ms); None: nothing due.
    pub oldest_due: Vec<(&'static str, Option<i64>)>,
}

/// How full one connection pool is.
#[derive(Debug, Clone)]
pub struct PoolUse {
    pub pool: &'static str,
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Reads the [`Backlog`] at `now`: agents count as online while their last heartbeat
    /// is newer than `stale_after_ms`, an invitation falls due `invite_ms` after it went.
    pub async fn backlog(&self, now: i64, stale_after_ms: i64, invite_ms: i64) -> Result<Backlog> {
        let count = |sql: &'static str| async move {
            let row = sqlx::query(sql).fetch_one(&self.read).await?;
            row.try_get::<i64, _>("n")
        };
        let oldest = |sql: String| async move {
            let row = sqlx::query(&sql).bind(now).fetch_one(&self.read).await?;
            row.try_get::<Option<i64>, _>("due")
        };
        let queued = count(
            "SELECT COUNT(*) AS n FROM queue_entries q JOIN requests r ON r.id = q.request_id \
             WHERE q.state = 'waiting' AND r.sub_status IN ('USER_QUEUED', 'SCHEDULED_USER_QUEUED')",
        )
        .await?;
        let mut calls_invited = 0;
        let mut calls_active = 0;
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM calls WHERE state IN ('invited', 'active') \
             GROUP BY state",
        )
        .fetch_all(&self.read)
        .await?;
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            match state.as_str() {
                "invited" => calls_invited = n,
                _ => calls_active = n,
            }
        }
        let webhook_backlog =
            count("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'").await?;
        let notification_backlog =
            count("SELECT COUNT(*) AS n FROM notifications WHERE state = 'pending'").await?;

        let expiry = oldest(format!(
            "SELECT MIN(link_expires_at) AS due FROM {} WHERE {}",
            self.due_source(),
            due_clause()
        ))
        .await?;
        let webhooks = oldest(
            "SELECT MIN(next_attempt_at) AS due FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1"
                .into(),
        )
        .await?;
        // A message is due as soon as it is written, unless a process holds it.
        let notifications = oldest(
            "SELECT MIN(created_at) AS due FROM notifications WHERE state = 'pending' \
             AND (lease_until IS NULL OR lease_until < $1)"
                .into(),
        )
        .await?;
        let invited: Option<i64> =
            sqlx::query("SELECT MIN(invited_at) AS due FROM calls WHERE state = 'invited'")
                .fetch_one(&self.read)
                .await?
                .try_get("due")?;
        let invites = invited
            .map(|at| at.saturating_add(invite_ms))
            .filter(|due| *due <= now);
        Ok(Backlog {
            queued,
            agents_online: self.agents_online(now, stale_after_ms).await?,
            calls_invited,
            calls_active,
            webhook_backlog,
            notification_backlog,
            oldest_due: vec![
                ("expiry", expiry),
                ("webhooks", webhooks),
                ("notifications", notifications),
                ("call_invites", invites),
            ],
        })
    }

    /// How full each connection pool is. On SQLite writes have a pool of one connection
    /// beside the readers' pool; on PostgreSQL one pool serves both, and rate-limit
    /// counters have their own.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        let of = |pool: &'static str, p: &sqlx::AnyPool| PoolUse {
            pool,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        };
        match self.backend {
            Backend::Sqlite => vec![of("write", &self.write), of("read", &self.read)],
            Backend::Postgres => vec![of("main", &self.write), of("counters", &self.counters)],
        }
    }
}
