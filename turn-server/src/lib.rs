//! Switchyard's TURN relay (RFC 8656), with its security policy built in.
//!
//! Clients reach the relay over UDP and TCP (and TLS when a certificate is configured) and
//! get UDP relayed addresses. Allocate, Refresh, CreatePermission, ChannelBind, Send and Data
//! indications and ChannelData are supported; messages are encoded with `stun-rs`, except
//! the per-packet ones ([`wire`]), which are framed in place without allocating.
//!
//! What the relay will do for whom is decided inside it:
//! - [`credentials`]: TURN REST API credentials checked against a shared secret, and
//!   stateless nonces that go stale after ten minutes;
//! - [`policy`]: which peer addresses may be reached, after canonicalising IPv6 forms of
//!   IPv4 addresses (bundled with the SFU, only the SFU's own media address is allowed);
//! - [`limits`]: allocations per user and in total, permissions per allocation, bandwidth
//!   per allocation, and 401 challenges per source address.
//!
//! [`TurnServer::start`] binds the listeners and returns a handle; everything stops when
//! the cancellation token given to it is cancelled. It never opens a TCP connection to a peer: an
//! Allocate for any transport but UDP gets 442.

mod config;
pub mod credentials;
pub mod limits;
pub mod policy;
mod server;
pub mod stats;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{TlsConfig, TurnConfig};
pub use credentials::{Credential, RestSecret};
pub use policy::{AllowRule, PeerPolicy};
pub use server::StartError;
pub use stats::StatsSnapshot;

/// A running relay.
#[derive(Debug, Clone)]
pub struct TurnServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    shared: Arc<server::Shared>,
}

impl TurnServer {
    /// Binds the listeners and starts serving until `cancel` is cancelled.
    pub async fn start(config: TurnConfig, cancel: CancellationToken) -> Result<Self, StartError> {
        let (udp_addr, tcp_addr, tls_addr, shared) = server::start(config, cancel).await?;
        Ok(Self {
            udp_addr,
            tcp_addr,
            tls_addr,
            shared,
        })
    }

    /// The UDP listener's address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The TLS listener's address, if TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Mints a credential for `identity` valid for `lifetime` (capped at 24 h).
    pub fn mint(&self, identity: &str, lifetime: Duration) -> Credential {
        self.shared.config.secret.mint(identity, lifetime)
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared
            .stats
            .snapshot(self.shared.quotas.in_use() as u64)
    }
}

/// Entry points for the fuzz targets in `turn-server/fuzz` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// Handles one packet from a client as a listener would and returns the reply, if any.
    /// A packet cannot create an allocation here (that needs valid credentials), so no task
    /// is spawned and no socket is bound.
    pub fn handle_client_packet(packet: &[u8]) -> Option<Vec<u8>> {
        crate::server::fuzz_one_packet(packet)
    }
}
