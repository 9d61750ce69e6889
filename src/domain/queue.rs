//! The live queue as one process last read it, and the board through which that
//! snapshot reaches the customers' sockets.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// Open queue sockets per request, so that one link cannot hold many.
    sockets: Arc<Mutex<HashMap<i64, usize>>>,
}

/// One of a request's queue sockets; the count goes down when it is dropped.
pub struct SocketSlot {
    sockets: Arc<Mutex<HashMap<i64, usize>>>,
    request_id: i64,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = sockets.get_mut(&self.request_id) {
            *open -= 1;
            if *open == 0 {
                sockets.remove(&self.request_id);
            }
        }
    }
}

impl Default for QueueBoard {
    fn default() -> QueueBoard {
        let (sender, _) = watch::channel(Arc::new(QueueSnapshot::default()));
        QueueBoard {
            sender: Arc::new(sender),
            sockets: Arc::default(),
        }
    }
}

impl QueueBoard {
    pub fn subscribe(&self) -> watch::Receiver<Arc<QueueSnapshot>> {
        self.sender.subscribe()
    }

    /// A socket slot for `request_id`, unless it already holds `max`.
    pub fn take_socket(&self, request_id: i64, max: usize) -> Option<SocketSlot> {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let open = sockets.entry(request_id).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(SocketSlot {
            sockets: Arc::clone(&self.sockets),
            request_id,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_holds_a_few_sockets_and_gets_one_back_when_one_closes() {
        let board = QueueBoard::default();
        let held: Vec<SocketSlot> = (0..3).map(|_| board.take_socket(7, 3).unwrap()).collect();
        assert!(board.take_socket(7, 3).is_none(), "a fourth is refused");
        assert!(
            board.take_socket(8, 3).is_some(),
            "another link is not affected"
        );
        drop(held);
        assert!(board.take_socket(7, 3).is_some());
        assert!(
            board.sockets.lock().unwrap().get(&8).is_none(),
            "closed slots are forgotten"
        );
    }
}
