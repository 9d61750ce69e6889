//! The live queue as one process last read it, and the board through which that
//! snapshot reaches the customers' sockets.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The queue as one process last read it.
#[derive(Debug, Default, PartialEq)]
pub struct QueueSnapshot {
    /// 1-based position of each waiting request.
    pub positions: HashMap<i64, usize>,
    pub waiting: usize,
    pub agents_online: i64,
    /// Median length of recent calls (or the configured default before any).
    pub call_seconds: u64,
    pub open: bool,
}

impl QueueSnapshot {
    /// Expected wait at `position`: the calls ahead shared among the agents online.
    pub fn expected_wait_seconds(&self, position: usize) -> Option<u64> {
        if self.agents_online <= 0 {
            return None;
        }
        let agents = self.agents_online as u64;
        let rounds = (position as u64).div_ceil(agents);
        Some(rounds * self.call_seconds)
    }

    pub fn message(&self, request_id: i64) -> Option<Value> {
        let position = *self.positions.get(&request_id)?;
        Some(json!({
            "type": "queue",
            "position": position,
            "waiting": self.waiting,
            "agents_online": self.agents_online,
            "expected_wait_seconds": self.expected_wait_seconds(position),
            "open": self.open,
        }))
    }
}

/// Where a process publishes its latest snapshot to its sockets.
#[derive(Clone)]
pub struct QueueBoard {
    sender: Arc<watch::Sender<Arc<QueueSnapshot>>>,
}

impl Default for QueueBoard {
    fn default() -> QueueBoard {
        let (sender, _) = watch::channel(Arc::new(QueueSnapshot::default()));
        QueueBoard {
            sender: Arc::new(sender),
        }
    }
}

impl QueueBoard {
    pub fn subscribe(&self) -> watch::Receiver<Arc<QueueSnapshot>> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> Arc<QueueSnapshot> {
        self.sender.borrow().clone()
    }

    /// Wakes the sockets only when something they show has changed.
    pub fn publish(&self, snapshot: QueueSnapshot) {
        self.sender.send_if_modified(|current| {
            if **current == snapshot {
                return false;
            }
            *current = Arc::new(snapshot);
            true
        });
    }
}
