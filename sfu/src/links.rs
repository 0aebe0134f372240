//! The links to the other nodes of a cluster that serve parts of the same rooms: for each
//! node, the queue of frames waiting to go to it. The transport (an authenticated, encrypted
//! WebSocket, `signaling/src/node_link.rs`) registers a link when its handshake succeeded and
//! takes it out when the connection ends; rooms only ever push frames onto a queue with
//! `try_send` (a full queue drops the frame and counts it). The lock is taken when a room
//! looks a link up (when a peer node joins its room), never per packet. It never does I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Frames queued for one node before the link drops them.
pub const LINK_QUEUE: usize = 4096;

/// One registered link.
#[derive(Clone)]
pub struct LinkSender {
    /// Tells two registrations for the same node apart.
    pub id: u64,
    pub frames: mpsc::Sender<Bytes>,
}

/// The node links of this node. Cloning is cheap.
#[derive(Clone, Default)]
pub struct Links {
    inner: Arc<LinksInner>,
}

#[derive(Default)]
struct LinksInner {
    by_node: Mutex<HashMap<String, LinkSender>>,
    next_id: AtomicU64,
}

impl Links {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, LinkSender>> {
        self.inner
            .by_node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers the queue of a link to `node` that just came up (replacing an older one);
    /// returns its id, for [`Links::unregister`].
    pub fn register(&self, node: &str, frames: mpsc::Sender<Bytes>) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.map()
            .insert(node.to_owned(), LinkSender { id, frames });
        id
    }

    /// Takes the link `id` to `node` out, unless a newer one replaced it. Returns whether it
    /// was the current link.
    pub fn unregister(&self, node: &str, id: u64) -> bool {
        let mut map = self.map();
        if map.get(node).is_some_and(|l| l.id == id) {
            map.remove(node);
            return true;
        }
        false
    }

    /// The current link to `node`, if it is up.
    pub fn get(&self, node: &str) -> Option<LinkSender> {
        self.map()
            .get(node)
            .filter(|l| !l.frames.is_closed())
            .cloned()
    }

    /// Whether a link to `node` is up.
    pub fn is_up(&self, node: &str) -> bool {
        self.get(node).is_some()
    }
}
