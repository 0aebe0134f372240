//! The fuzzing entry point: one packet through an allocation table, nothing bound to the
//! network. Used by `turn_server::fuzzing`; the relay itself never calls it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::link::{LinkSource, StreamQueue};
use super::shared::Shared;
use super::table::AllocationTable;
use crate::config::TurnConfig;
use crate::credentials::{NonceIssuer, RestSecret};
use crate::limits::{ChallengeLimiter, Quotas};
use crate::policy::PeerPolicy;
use crate::stats::RelayStats;

/// Drives the allocation table with one packet from a fixed client, as a listener would, for
/// fuzzing: the parse, authentication and reply paths, with nothing bound to the network.
pub(crate) fn fuzz_one_packet(packet: &[u8]) -> Option<Vec<u8>> {
    use std::sync::OnceLock;
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let config = TurnConfig::new(
            RestSecret::new("fuzz-secret"),
            PeerPolicy::public(Vec::new()),
        );
        Arc::new(Shared {
            quotas: Quotas::new(config.max_allocations_per_user, config.max_allocations),
            stream_slots: Arc::new(tokio::sync::Semaphore::new(1)),
            challenges: ChallengeLimiter::new(u32::MAX, Duration::from_secs(10), 16),
            nonces: NonceIssuer::new(),
            stats: RelayStats::default(),
            cancel: CancellationToken::new(),
            config,
        })
    });
    let (frames, _queued) = StreamQueue::new();
    let mut table = AllocationTable::new(Arc::clone(shared));
    let client = SocketAddr::from(([192, 0, 2, 1], 40000));
    table
        .handle(client, packet, &LinkSource::Stream(&frames), Instant::now())
        .map(<[u8]>::to_vec)
}
