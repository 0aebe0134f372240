//! The relay's configuration: listeners, relayed addresses, credentials, policy and limits.
//! Plain data with defaults; it never binds a socket or checks itself (starting the relay does).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::credentials::{self, RestSecret};
use crate::policy::PeerPolicy;

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
