//! The allocations of one listener (UDP) or one connection (TCP, TLS), keyed by client
//! address, and their expiry sweep. Request handling lives in the sibling files. It never reads the
//! clock: callers pass `now`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::allocation::Allocation;
use super::shared::Shared;

/// How often expired allocations, permissions and channels are swept.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The allocations of one listener (UDP) or one connection (TCP, TLS).
pub(super) struct AllocationTable {
    pub(super) shared: Arc<Shared>,
    pub(super) allocations: HashMap<SocketAddr, Allocation>,
    pub(super) out: Vec<u8>,
}

impl AllocationTable {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            allocations: HashMap::new(),
            out: vec![0; 2048],
        }
    }

    pub(super) fn sweep(&mut self, now: Instant) {
        self.allocations.retain(|client, allocation| {
            let live = allocation.expires > now;
            if !live {
                debug!(%client, relayed = %allocation.relayed, "allocation expired");
            }
            live
        });
        for allocation in self.allocations.values_mut() {
            allocation.sweep(now);
        }
    }
}
