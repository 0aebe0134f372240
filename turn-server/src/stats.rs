//! The relay's counters: what it relayed, what it refused and why. Updated with relaxed
//! atomics (no lock on the per-packet path) and read as a [`StatsSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every listener and relay task.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub(crate) allocations_created: AtomicU64,
    pub(crate) packets_to_peers: AtomicU64,
    pub(crate) bytes_to_peers: AtomicU64,
    pub(crate) packets_to_clients: AtomicU64,
    pub(crate) bytes_to_clients: AtomicU64,
    pub(crate) refused_peers: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) stale_nonces: AtomicU64,
    pub(crate) quota_refusals: AtomicU64,
    pub(crate) dropped_packets: AtomicU64,
    pub(crate) malformed: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Allocations held now.
    pub allocations: u64,
    /// Allocations created since start.
    pub allocations_created: u64,
    /// Datagrams the relay sent to peers.
    pub packets_to_peers: u64,
    /// Payload bytes the relay sent to peers.
    pub bytes_to_peers: u64,
    /// Packets (ChannelData or Data indications) the relay sent to clients.
    pub packets_to_clients: u64,
    /// Payload bytes the relay sent to clients.
    pub bytes_to_clients: u64,
    /// Peer addresses refused by policy (403s and dropped Send indications).
    pub refused_peers: u64,
    /// 401 replies.
    pub unauthorized: u64,
    /// 438 replies.
    pub stale_nonces: u64,
    /// 486 replies.
    pub quota_refusals: u64,
    /// Packets dropped: no permission, over the bandwidth cap, or a full send buffer.
    pub dropped_packets: u64,
    /// Packets that were not valid STUN or ChannelData.
    pub malformed: u64,
}

impl RelayStats {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(packets: &AtomicU64, bytes: &AtomicU64, len: usize) {
        packets.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Reads every counter; `allocations` is supplied by the quota table.
    pub fn snapshot(&self, allocations: u64) -> StatsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            allocations,
            allocations_created: read(&self.allocations_created),
            packets_to_peers: read(&self.packets_to_peers),
            bytes_to_peers: read(&self.bytes_to_peers),
            packets_to_clients: read(&self.packets_to_clients),
            bytes_to_clients: read(&self.bytes_to_clients),
            refused_peers: read(&self.refused_peers),
            unauthorized: read(&self.unauthorized),
            stale_nonces: read(&self.stale_nonces),
            quota_refusals: read(&self.quota_refusals),
            dropped_packets: read(&self.dropped_packets),
            malformed: read(&self.malformed),
        }
    }
}
