//! The relay nodes (migration 0024): each process that runs a media relay keeps a row
//! with its addresses, capacity and heartbeat. A new call is placed on the live node
//! with the fewest active calls for its capacity; a node whose heartbeat stopped is
//! dead, and its calls are dropped by the call sweep.

use super::Store;
use crate::error::Result;
use sqlx::Row;

/// One node's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayNode {
    pub id: String,
    pub internal_url: String,
    pub udp_addr: String,
    pub tcp_addr: Option<String>,
    pub capacity: i64,
    /// What the node said at its last heartbeat.
    pub live_calls: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

const NODE_COLUMNS: &str =
    "id, internal_url, udp_addr, tcp_addr, capacity, live_calls, started_at, heartbeat_at";

fn node_from_row(r: &sqlx::any::AnyRow) -> std::result::Result<RelayNode, sqlx::Error> {
    Ok(RelayNode {
        id: r.try_get("id")?,
        internal_url: r.try_get("internal_url")?,
        udp_addr: r.try_get("udp_addr")?,
        tcp_addr: r.try_get("tcp_addr")?,
        capacity: r.try_get("capacity")?,
        live_calls: r.try_get("live_calls")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
    })
}

/// Rows of nodes dead this long are removed by the heartbeat (a day: an operator who
/// looks into a drop still finds the node that had the call).
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Registers the node or beats its heartbeat.
    pub async fn beat_relay_node(&self, node: &RelayNode) -> Result<()> {
        sqlx::query(
            "INSERT INTO relay_nodes (id, internal_url, udp_addr, tcp_addr, capacity, \
             live_calls, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET internal_url = excluded.internal_url, \
             udp_addr = excluded.udp_addr, tcp_addr = excluded.tcp_addr, \
             capacity = excluded.capacity, live_calls = excluded.live_calls, \
             heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&node.id)
        .bind(&node.internal_url)
        .bind(&node.udp_addr)
        .bind(&node.tcp_addr)
        .bind(node.capacity)
        .bind(node.live_calls)
        .bind(node.started_at)
        .bind(node.heartbeat_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Removes the rows of nodes dead for a day (done as a node starts: every new node
    /// tidies up, and a heartbeat stays one statement).
    pub async fn forget_dead_relay_nodes(&self, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM relay_nodes WHERE heartbeat_at < $1")
            .bind(now - FORGET_AFTER_MS)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// A node that stops on purpose says so, so that its calls drop and new calls
    /// avoid it at once rather than after the heartbeat timeout.
    pub async fn relay_node_gone(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE relay_nodes SET heartbeat_at = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn relay_node(&self, id: &str) -> Result<Option<RelayNode>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM relay_nodes WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(node_from_row).transpose()?)
    }

    /// Every registered node, newest first (for operators).
    pub async fn relay_nodes(&self) -> Result<Vec<RelayNode>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM relay_nodes ORDER BY started_at DESC");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(node_from_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// The live node (heartbeat at or after `alive_since`) with the fewest active calls
    /// for its capacity and room for one more; on a tie the longest-running one. The
    /// count is the calls table's, so a call placed a moment ago by another process
    /// counts already.
    pub async fn least_loaded_relay_node(&self, alive_since: i64) -> Result<Option<RelayNode>> {
        let sql = "SELECT n.id, n.internal_url, n.udp_addr, n.tcp_addr, n.capacity, \
             n.started_at, n.heartbeat_at, \
             (SELECT COUNT(*) FROM calls c WHERE c.relay_node = n.id AND c.state = 'active') \
             AS live_calls FROM relay_nodes n WHERE n.heartbeat_at >= $1";
        let rows = sqlx::query(sql)
            .bind(alive_since)
            .fetch_all(&self.write)
            .await?;
        let mut nodes = rows
            .iter()
            .map(node_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        nodes.retain(|n| n.live_calls < n.capacity);
        // live/capacity compared without division: a/b < c/d as a*d < c*b.
        nodes.sort_by(|a, b| {
            (a.live_calls * b.capacity)
                .cmp(&(b.live_calls * a.capacity))
                .then(a.started_at.cmp(&b.started_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(nodes.into_iter().next())
    }
}
