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
//! the cancellation token given to it is cancelled.

pub mod credentials;
pub mod limits;
pub mod policy;
mod server;
pub mod stats;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use credentials::{Credential, RestSecret};
pub use policy::{AllowRule, PeerPolicy};
pub use stats::StatsSnapshot;

/// Everything the relay needs to know.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// Address for the UDP and TCP listeners (RFC 8656's default port is 3478).
    pub listen: SocketAddr,
    /// TLS listener, when a certificate is configured.
    pub tls: Option<TlsConfig>,
    /// Address advertised in XOR-RELAYED-ADDRESS (IPv4); relayed sockets are bound to it
    /// unless `relay_bind_ip` says otherwise.
    pub relay_ip: IpAddr,
    /// Local address relayed sockets are bound to, when `relay_ip` is a public address
    /// that is not on this host (1:1 NAT, as on most clouds).
    pub relay_bind_ip: Option<IpAddr>,
    /// Ports for relayed sockets, inclusive.
    pub relay_ports: (u16, u16),
    /// The REALM of long-term credentials.
    pub realm: String,
    /// The secret behind REST credentials.
    pub secret: RestSecret,
    /// Which peers may be reached.
    pub policy: PeerPolicy,
    /// Allocations one identity may hold at once.
    pub max_allocations_per_user: usize,
    /// Allocations the relay holds at most.
    pub max_allocations: usize,
    /// Permissions one allocation may hold.
    pub max_permissions_per_allocation: usize,
    /// Bytes per second one allocation may relay in each direction (0: unlimited).
    pub max_bandwidth_per_allocation: u64,
    /// Unauthenticated replies (401, 438, 400, Binding) one source address may draw per 10 s.
    pub challenges_per_ten_seconds: u32,
    /// TCP and TLS connections open at once (handshakes included).
    pub max_stream_connections: usize,
    /// Allocation lifetime when the client asks for none, and the shortest one granted.
    pub default_lifetime: Duration,
    /// The longest allocation lifetime granted.
    pub max_lifetime: Duration,
    /// How long a nonce is accepted before the client is told 438 Stale Nonce.
    pub nonce_lifetime: Duration,
}

/// The TLS listener's address and PEM files.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address of the TLS listener (5349 by default).
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
}

impl TurnConfig {
    /// Defaults for the given secret and policy: port 3478 on every interface, relayed
    /// sockets on 127.0.0.1 (set `relay_ip` to the address peers can reach).
    pub fn new(secret: RestSecret, policy: PeerPolicy) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3478)),
            tls: None,
            relay_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay_bind_ip: None,
            relay_ports: (49152, 65535),
            realm: "switchyard".into(),
            secret,
            policy,
            max_allocations_per_user: 12,
            max_allocations: 10_000,
            max_permissions_per_allocation: 1024,
            max_bandwidth_per_allocation: 4_000_000,
            challenges_per_ten_seconds: 200,
            max_stream_connections: 4096,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            nonce_lifetime: credentials::NONCE_LIFETIME,
        }
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot bind the TURN {transport} listener on {addr}")]
    Bind {
        /// "UDP", "TCP" or "TLS".
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("cannot load TURN TLS {what} from {path}: {reason}")]
    Tls {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("invalid TURN configuration: {0}")]
    Config(String),
}

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
