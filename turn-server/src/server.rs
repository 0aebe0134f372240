//! The relay's engine: listeners, the allocation table each listener owns, and one task
//! per allocation that carries peer traffic back to its client. This file validates the
//! configuration and binds the listeners; it never handles a packet itself.

// Ownership keeps the per-packet path free of locks: a UDP listener (or a TCP/TLS
// connection task) owns the allocations of its clients and relays client→peer packets
// itself; each allocation's relay task owns the relayed socket's receive side and a
// mirror of the permissions and channel bindings (sent to it on a channel when they
// change) and relays peer→client packets. Shared state is limited to atomic counters and
// the quota table, which is touched only when allocations come and go.

mod allocation;
mod auth;
mod forward;
mod fuzz;
mod handler;
mod link;
mod reply;
mod requests;
mod shared;
mod stream;
mod table;
mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub(crate) use fuzz::fuzz_one_packet;
pub(crate) use shared::Shared;

use crate::config::{TlsConfig, TurnConfig};
use crate::credentials::NonceIssuer;
use crate::limits::{ChallengeLimiter, Quotas};
use crate::stats::RelayStats;
use stream::accept_streams;
use udp::serve_udp;

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

/// Binds the listeners and spawns their tasks.
pub(crate) async fn start(
    config: TurnConfig,
    cancel: CancellationToken,
) -> Result<(SocketAddr, SocketAddr, Option<SocketAddr>, Arc<Shared>), StartError> {
    if config.max_lifetime < config.default_lifetime {
        return Err(StartError::Config(format!(
            "max_lifetime ({:?}) is shorter than default_lifetime ({:?})",
            config.max_lifetime, config.default_lifetime
        )));
    }
    if !config.relay_ip.is_ipv4() || config.relay_ip.is_unspecified() {
        return Err(StartError::Config(format!(
            "relay_ip must be an IPv4 address of this host that peers can reach, got {}",
            config.relay_ip
        )));
    }
    let bind_ip = config.relay_bind_ip.unwrap_or(config.relay_ip);
    if let Err(error) = std::net::UdpSocket::bind((bind_ip, 0)) {
        return Err(StartError::Config(format!(
            "cannot bind relayed sockets on {bind_ip} ({error}); behind NAT, set the relay \
             bind address to a local one and advertise the public one"
        )));
    }
    if config.relay_ports.0 > config.relay_ports.1 || config.relay_ports.0 == 0 {
        return Err(StartError::Config(format!(
            "relay port range {}-{} is empty",
            config.relay_ports.0, config.relay_ports.1
        )));
    }
    let tls_acceptor = match &config.tls {
        Some(tls) => Some((tls.listen, tls_acceptor(tls)?)),
        None => None,
    };
    let (udp, udp_addr, tcp, tcp_addr) = bind_udp_and_tcp(config.listen).await?;
    let tls = match tls_acceptor {
        Some((addr, acceptor)) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind {
                    transport: "TLS",
                    addr,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| StartError::Bind {
                transport: "TLS",
                addr,
                source,
            })?;
            Some((listener, bound, acceptor))
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        quotas: Quotas::new(config.max_allocations_per_user, config.max_allocations),
        stream_slots: Arc::new(tokio::sync::Semaphore::new(config.max_stream_connections)),
        challenges: ChallengeLimiter::new(
            config.challenges_per_ten_seconds,
            Duration::from_secs(10),
            100_000,
        ),
        nonces: NonceIssuer::with_lifetime(config.nonce_lifetime),
        stats: RelayStats::default(),
        cancel,
        config,
    });
    tokio::spawn(serve_udp(Arc::new(udp), Arc::clone(&shared)));
    tokio::spawn(accept_streams(tcp, None, Arc::clone(&shared)));
    let tls_addr = tls.as_ref().map(|(_, bound, _)| *bound);
    if let Some((listener, _, acceptor)) = tls {
        tokio::spawn(accept_streams(
            listener,
            Some(acceptor),
            Arc::clone(&shared),
        ));
    }
    info!(%udp_addr, %tcp_addr, ?tls_addr, relay_ip = %shared.config.relay_ip, "TURN relay listening");
    Ok((udp_addr, tcp_addr, tls_addr, shared))
}

/// Binds the UDP socket and the TCP listener on one port. With port 0 the UDP socket picks a
/// free port and TCP takes the same number; should another program hold that TCP port, a few
/// other ports are tried before giving up.
async fn bind_udp_and_tcp(
    listen: SocketAddr,
) -> Result<(UdpSocket, SocketAddr, TcpListener, SocketAddr), StartError> {
    let attempts = if listen.port() == 0 { 8 } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                transport: "UDP",
                addr: listen,
                source,
            })?;
        let udp_addr = udp.local_addr().map_err(|source| StartError::Bind {
            transport: "UDP",
            addr: listen,
            source,
        })?;
        let tcp_bind = SocketAddr::new(listen.ip(), udp_addr.port());
        let bound = match TcpListener::bind(tcp_bind).await {
            Ok(tcp) => tcp.local_addr().map(|addr| (tcp, addr)),
            Err(error) => Err(error),
        };
        match bound {
            Ok((tcp, tcp_addr)) => return Ok((udp, udp_addr, tcp, tcp_addr)),
            Err(source) if attempt >= attempts => {
                return Err(StartError::Bind {
                    transport: "TCP",
                    addr: tcp_bind,
                    source,
                });
            }
            Err(_) => continue,
        }
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.certificate)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| StartError::Tls {
                what: "certificate",
                path: tls.certificate.clone(),
                reason: e.to_string(),
            })?;
    let key = PrivateKeyDer::from_pem_file(&tls.private_key).map_err(|e| StartError::Tls {
        what: "private key",
        path: tls.private_key.clone(),
        reason: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| {
        builder
            .with_no_client_auth()
            .with_single_cert(certificates, key)
    })
    .map_err(|e| StartError::Tls {
        what: "certificate",
        path: tls.certificate.clone(),
        reason: e.to_string(),
    })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
