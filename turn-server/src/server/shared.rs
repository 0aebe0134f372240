//! The state every listener and task of one relay shares: configuration, counters, quotas.
//! Nothing here is touched per packet except the counters; it never owns an allocation.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::TurnConfig;
use crate::credentials::NonceIssuer;
use crate::limits::{ChallengeLimiter, Quotas};
use crate::stats::RelayStats;

/// State every listener shares. Nothing here is touched per packet except the counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: TurnConfig,
    pub(crate) stats: RelayStats,
    pub(crate) quotas: Arc<Quotas>,
    /// One permit per open TCP or TLS connection (handshakes included).
    pub(super) stream_slots: Arc<tokio::sync::Semaphore>,
    pub(super) challenges: ChallengeLimiter,
    pub(super) nonces: NonceIssuer,
    pub(super) cancel: CancellationToken,
}
