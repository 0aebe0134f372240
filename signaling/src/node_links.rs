//! A node's bookkeeping of its links to other nodes ([`NodeLinks`]): live connections per
//! peer, dials under way (one per node at a time), handshake failures, and the `/metrics`
//! lines about them. A leaf: the links themselves run in `node_link.rs`; this never opens a
//! socket or reads a frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sfu::Sfu;
use tokio::sync::Semaphore;

/// Handshakes the accepting side runs at once; more are refused with 503 (the route is not
/// authenticated until the handshake is done).
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 64;
/// Failed dials to one node are logged as warnings at most this often (the others at debug).
const WARN_EVERY: Duration = Duration::from_secs(30);

/// This node's link bookkeeping: live connections, dials under way and counters. Cloning is
/// cheap; [`crate::cluster_link::ClusterLink`] holds one.
#[derive(Clone)]
pub struct NodeLinks {
    inner: Arc<NodeLinksInner>,
}

struct NodeLinksInner {
    /// Live (handshaken) connections per peer node.
    connections: Mutex<HashMap<String, usize>>,
    handshake_failures: AtomicU64,
    /// One gate per node being dialled, so that concurrent callers dial once.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Handshakes the accepting side may run at once.
    accepting: Arc<Semaphore>,
    /// When a failed dial to each node was last logged as a warning.
    warned: Mutex<HashMap<String, Instant>>,
}

impl Default for NodeLinks {
    fn default() -> Self {
        NodeLinks {
            inner: Arc::new(NodeLinksInner {
                connections: Mutex::default(),
                handshake_failures: AtomicU64::new(0),
                dialing: Mutex::default(),
                accepting: Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES)),
                warned: Mutex::default(),
            }),
        }
    }
}

impl std::fmt::Debug for NodeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLinks")
            .field("handshake_failures", &self.handshake_failures())
            .finish_non_exhaustive()
    }
}

impl NodeLinks {
    /// Nodes this node has a registered link with now.
    pub fn links_up(&self, sfu: &Sfu) -> usize {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|node| sfu.links().is_up(node))
            .count()
    }

    /// Handshakes that failed, on either side, since start.
    pub fn handshake_failures(&self) -> u64 {
        self.inner.handshake_failures.load(Ordering::Relaxed)
    }

    /// Prometheus lines with the links' figures.
    pub fn metrics(&self, sfu: &Sfu) -> String {
        format!(
            "# HELP switchyard_cluster_links_up Other nodes this node has an authenticated link with now.\n\
             # TYPE switchyard_cluster_links_up gauge\n\
             switchyard_cluster_links_up {}\n\
             # HELP switchyard_cluster_link_handshake_failures_total Node-link handshakes that failed, either side (wrong secret, another cluster, wrong node, malformed, timed out, closed).\n\
             # TYPE switchyard_cluster_link_handshake_failures_total counter\n\
             switchyard_cluster_link_handshake_failures_total {}\n",
            self.links_up(sfu),
            self.handshake_failures()
        )
    }

    /// A handshake slot of the accepting side, if one is free.
    pub(crate) fn try_accept(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.accepting.clone().try_acquire_owned().ok()
    }

    /// Live connections to `peer` (for tests).
    #[cfg(test)]
    pub(crate) fn connections_to(&self, peer: &str) -> Option<usize> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .copied()
    }

    /// Whether no dial is under way (for tests).
    #[cfg(test)]
    pub(crate) fn no_dials(&self) -> bool {
        self.inner
            .dialing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    pub(crate) fn count_failure(&self) {
        self.inner
            .handshake_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a failed dial to `node` deserves a warning: the first in [`WARN_EVERY`] (callers
    /// retry every few seconds while a room needs the link).
    pub(crate) fn should_warn(&self, node: &str) -> bool {
        let now = Instant::now();
        let mut warned = self
            .inner
            .warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        warned.retain(|_, at| now.duration_since(*at) < WARN_EVERY);
        match warned.entry(node.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(now);
                true
            }
        }
    }

    /// Counts a live connection to `peer` until the guard drops.
    pub(crate) fn connection_up(&self, peer: &str) -> ConnectionGuard {
        *self
            .inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(peer.to_owned())
            .or_default() += 1;
        ConnectionGuard {
            links: self.clone(),
            peer: peer.to_owned(),
        }
    }

    /// The gate that serialises dials to `node`.
    pub(crate) fn dial_gate(&self, node: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .dialing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(node.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets `node`'s gate when nobody else holds it.
    pub(crate) fn release_gate(&self, node: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut dialing = self
            .inner
            .dialing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody waits.
        if Arc::strong_count(&gate) <= 2 {
            dialing.remove(node);
        }
    }
}

pub(crate) struct ConnectionGuard {
    links: NodeLinks,
    peer: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut connections = self
            .links
            .inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = connections.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                connections.remove(&self.peer);
            }
        }
    }
}
