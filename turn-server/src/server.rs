//! The relay's engine: listeners, the allocation table each listener owns, and one task
//! per allocation that carries peer traffic back to its client.
//!
//! Ownership keeps the per-packet path free of locks: a UDP listener (or a TCP/TLS
//! connection task) owns the allocations of its clients and relays client→peer packets
//! itself; each allocation's relay task owns the relayed socket's receive side and a
//! mirror of the permissions and channel bindings (sent to it on a channel when they
//! change) and relays peer→client packets. Shared state is limited to atomic counters and
//! the quota table, which is touched only when allocations come and go.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use stun_rs::attributes::stun::{
    ErrorCode, Fingerprint, MessageIntegrity, Nonce, Realm, Software, UnknownAttributes, UserName,
    XorMappedAddress,
};
use stun_rs::attributes::turn::{
    ChannelNumber, Data, EvenPort, LifeTime, RequestedAddressFamily, RequestedTrasport,
    ReservationToken, XorPeerAddress, XorRelayedAddress,
};
use stun_rs::{
    AddressFamily, Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass,
    MessageDecoderBuilder, MessageEncoderBuilder, MessageMethod, StunAttribute, StunMessage,
    StunMessageBuilder, methods,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::credentials::{NonceCheck, NonceIssuer, RestUsername, unix_now};
use crate::limits::{ChallengeLimiter, QuotaTicket, Quotas, TokenBucket};
use crate::stats::RelayStats;
use crate::wire::{self, PacketKind};
use crate::{StartError, TurnConfig};

/// How long a permission lives (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lives (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// How often expired allocations, permissions and channels are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// A stream connection with no allocation is closed after this long.
const IDLE_STREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames queued for one stream client before more are dropped.
const STREAM_QUEUE: usize = 1024;
/// The SOFTWARE attribute on responses.
const SOFTWARE: &str = "Switchyard TURN";
/// Requests larger than this are dropped unparsed: no legitimate request comes near it, and
/// parsing costs grow with the number of attributes.
const MAX_REQUEST_LEN: usize = 4096;
/// UNKNOWN-ATTRIBUTES lists at most this many types.
const MAX_UNKNOWN_LISTED: usize = 16;
/// Channel bindings the relay task mirrors before it drops expired ones (every number in
/// the channel range, twice).
const MIRRORED_CHANNELS: usize = 2 * (wire::MAX_CHANNEL - wire::MIN_CHANNEL + 1) as usize;
/// Bytes queued for one stream client before relayed packets are dropped.
const STREAM_QUEUE_BYTES: usize = 1024 * 1024;
/// A stream client that does not take a frame within this long is disconnected.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// State every listener shares. Nothing here is touched per packet except the counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: TurnConfig,
    pub(crate) stats: RelayStats,
    pub(crate) quotas: Arc<Quotas>,
    /// One permit per open TCP or TLS connection (handshakes included).
    stream_slots: Arc<tokio::sync::Semaphore>,
    challenges: ChallengeLimiter,
    nonces: NonceIssuer,
    cancel: CancellationToken,
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

fn tls_acceptor(tls: &crate::TlsConfig) -> Result<tokio_rustls::TlsAcceptor, StartError> {
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

/// How replies and relayed packets reach one client.
#[derive(Debug, Clone)]
enum ClientLink {
    /// Datagrams from the shared listener socket.
    Udp {
        socket: Arc<UdpSocket>,
        client: SocketAddr,
    },
    /// Frames queued for the connection's writer task.
    Stream { frames: StreamQueue },
}

/// The frames waiting for one TCP/TLS client's writer task, bounded in bytes.
#[derive(Debug, Clone)]
struct StreamQueue {
    frames: mpsc::Sender<Bytes>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl StreamQueue {
    fn new() -> (Self, mpsc::Receiver<Bytes>) {
        let (frames, receiver) = mpsc::channel(STREAM_QUEUE);
        let queue = Self {
            frames,
            queued_bytes: Arc::default(),
        };
        (queue, receiver)
    }

    /// Queues a copy of `frame`; `false` (dropped) if the client is this far behind.
    fn push(&self, frame: &[u8]) -> bool {
        use std::sync::atomic::Ordering;
        if self.queued_bytes.load(Ordering::Relaxed) + frame.len() > STREAM_QUEUE_BYTES {
            return false;
        }
        self.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed);
        let sent = self.frames.try_send(Bytes::copy_from_slice(frame)).is_ok();
        if !sent {
            self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        }
        sent
    }

    /// The counter the writer lowers as it takes frames off the queue.
    fn byte_counter(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        Arc::clone(&self.queued_bytes)
    }
}

impl ClientLink {
    fn is_stream(&self) -> bool {
        matches!(self, ClientLink::Stream { .. })
    }

    /// Sends without waiting; `false` if the packet had to be dropped.
    fn send(&self, frame: &[u8]) -> bool {
        match self {
            ClientLink::Udp { socket, client } => socket.try_send_to(frame, *client).is_ok(),
            ClientLink::Stream { frames } => frames.push(frame),
        }
    }
}

/// Where a listener's packets come from, to make a [`ClientLink`] when one is needed.
enum LinkSource<'a> {
    Udp(&'a Arc<UdpSocket>),
    Stream(&'a StreamQueue),
}

impl LinkSource<'_> {
    fn link(&self, client: SocketAddr) -> ClientLink {
        match self {
            LinkSource::Udp(socket) => ClientLink::Udp {
                socket: Arc::clone(socket),
                client,
            },
            LinkSource::Stream(frames) => ClientLink::Stream {
                frames: (*frames).clone(),
            },
        }
    }
}

/// A change the relay task mirrors.
#[derive(Debug)]
enum RelayUpdate {
    Permission(IpAddr, Instant),
    Channel(SocketAddr, u16, Instant),
}

#[derive(Debug, Clone, Copy)]
struct ChannelBinding {
    peer: SocketAddr,
    expires: Instant,
}

/// One allocation, owned by the listener (or connection) its client talks to.
struct Allocation {
    username: String,
    relay: Arc<UdpSocket>,
    relayed: SocketAddr,
    expires: Instant,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, ChannelBinding>,
    peer_channels: HashMap<SocketAddr, u16>,
    updates: mpsc::UnboundedSender<RelayUpdate>,
    allocate_transaction: [u8; 12],
    allocate_response: Vec<u8>,
    bucket: TokenBucket,
    stop: CancellationToken,
    _quota: QuotaTicket,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Allocation {
    fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .get(&ip)
            .is_some_and(|expires| *expires > now)
    }

    fn install_permission(&mut self, ip: IpAddr, now: Instant) {
        let expires = now + PERMISSION_LIFETIME;
        self.permissions.insert(ip, expires);
        let _ = self.updates.send(RelayUpdate::Permission(ip, expires));
    }

    fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|_, expires| *expires > now);
        let peer_channels = &mut self.peer_channels;
        self.channels.retain(|_, binding| {
            let live = binding.expires > now;
            if !live {
                peer_channels.remove(&binding.peer);
            }
            live
        });
    }
}

/// A request's verdict before the method-specific handling.
enum Authenticated {
    /// Credentials checked: sign the response with this key.
    Yes { username: String, key: HMACKey },
    /// An error response is ready in the output buffer (or nothing is to be sent).
    Replied(Option<usize>),
}

/// The allocations of one listener (UDP) or one connection (TCP, TLS).
struct AllocationTable {
    shared: Arc<Shared>,
    allocations: HashMap<SocketAddr, Allocation>,
    out: Vec<u8>,
}

impl AllocationTable {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            allocations: HashMap::new(),
            out: vec![0; 2048],
        }
    }

    /// Handles one packet from `client`; returns a reply to send back, if any.
    fn handle(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<&[u8]> {
        match wire::classify(packet) {
            PacketKind::ChannelData => {
                self.relay_channel_data(client, packet, now);
                None
            }
            PacketKind::Stun => {
                let len = self.handle_stun(client, packet, source, now)?;
                Some(&self.out[..len])
            }
            PacketKind::Other => {
                RelayStats::count(&self.shared.stats.malformed);
                None
            }
        }
    }

    /// The client→peer fast path: no allocation, no lock.
    fn relay_channel_data(&mut self, client: SocketAddr, packet: &[u8], now: Instant) {
        let stats = &self.shared.stats;
        let Some((channel, data)) = wire::parse_channel_data(packet) else {
            RelayStats::count(&stats.malformed);
            return;
        };
        let Some(allocation) = self.allocations.get_mut(&client) else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        let Some(binding) = allocation.channels.get(&channel).copied() else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        if binding.expires <= now
            || !allocation.permitted(binding.peer.ip(), now)
            || !allocation.bucket.take(data.len(), now)
        {
            RelayStats::count(&stats.dropped_packets);
            return;
        }
        match allocation.relay.try_send_to(data, binding.peer) {
            Ok(_) => RelayStats::add(&stats.packets_to_peers, &stats.bytes_to_peers, data.len()),
            Err(_) => RelayStats::count(&stats.dropped_packets),
        }
    }

    fn handle_stun(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<usize> {
        // Only indications (Send, carrying data) may be large; a request never is.
        let is_indication = packet.len() >= 2 && packet[0] & 0x01 == 0 && packet[1] & 0x10 != 0;
        if packet.len() > MAX_REQUEST_LEN && !is_indication {
            RelayStats::count(&self.shared.stats.malformed);
            return None;
        }
        let message = match MessageDecoderBuilder::default().build().decode(packet) {
            Ok((message, _)) => message,
            Err(error) => {
                RelayStats::count(&self.shared.stats.malformed);
                debug!(%client, %error, "malformed STUN message");
                if !self.may_answer_unauthenticated(client, now) {
                    return None;
                }
                return self.bad_request_from_raw(packet);
            }
        };
        match message.class() {
            MessageClass::Request => {}
            MessageClass::Indication => {
                if message.method() == methods::SEND {
                    self.relay_send_indication(client, &message, now);
                }
                return None;
            }
            // Responses have no business arriving at a server.
            _ => return None,
        }
        let method = message.method();
        // (401s and 438s are counted where they are built.)
        let unauthenticated_reply =
            method == methods::BINDING || unknown_required(&message).is_some();
        if unauthenticated_reply && !self.may_answer_unauthenticated(client, now) {
            return None;
        }
        if let Some(unknown) = unknown_required(&message) {
            return self.reply_error(&message, 420, "Unknown Attribute", None, |b| {
                b.with_attribute(unknown)
            });
        }
        if method == methods::BINDING {
            let reply = StunMessageBuilder::new(methods::BINDING, MessageClass::SuccessResponse)
                .with_transaction_id(*message.transaction_id())
                .with_attribute(XorMappedAddress::from(client))
                .with_attribute(software())
                .with_attribute(Fingerprint::default())
                .build();
            return self.encode(&reply);
        }
        if ![
            methods::ALLOCATE,
            methods::REFRESH,
            methods::CREATE_PERMMISSION,
            methods::CHANNEL_BIND,
        ]
        .contains(&method)
        {
            return self.reply_error(&message, 400, "Unsupported method", None, |b| b);
        }
        // A retransmitted Allocate gets the same answer and is not charged twice.
        if method == methods::ALLOCATE
            && let Some(existing) = self.allocations.get(&client)
            && existing.allocate_transaction == *message.transaction_id().as_bytes()
        {
            let len = existing.allocate_response.len();
            self.out[..len].copy_from_slice(&existing.allocate_response);
            return Some(len);
        }
        let (username, key) = match self.authenticate(client, packet, &message, now) {
            Authenticated::Yes { username, key } => (username, key),
            Authenticated::Replied(reply) => return reply,
        };
        if method == methods::ALLOCATE {
            self.allocate(client, &message, username, key, source, now)
        } else {
            match self.allocations.get(&client) {
                None => self.reply_error(&message, 437, "Allocation Mismatch", Some(&key), |b| b),
                Some(allocation) if allocation.username != username => {
                    self.reply_error(&message, 441, "Wrong Credentials", Some(&key), |b| b)
                }
                Some(_) if method == methods::REFRESH => self.refresh(client, &message, key, now),
                Some(_) if method == methods::CREATE_PERMMISSION => {
                    self.create_permission(client, &message, key, now)
                }
                Some(_) => self.channel_bind(client, &message, key, now),
            }
        }
    }

    /// RFC 8489 §9.2.4 long-term credential checks with REST usernames and our nonces.
    fn authenticate(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        message: &StunMessage,
        now: Instant,
    ) -> Authenticated {
        let shared = Arc::clone(&self.shared);
        let unix = unix_now();
        if message.get::<MessageIntegrity>().is_none() {
            return Authenticated::Replied(self.challenge(
                client,
                message,
                401,
                "Unauthorized",
                now,
            ));
        }
        let username = message
            .get::<UserName>()
            .and_then(|a| a.as_user_name().ok());
        let realm = message.get::<Realm>().and_then(|a| a.as_realm().ok());
        let nonce = message.get::<Nonce>().and_then(|a| a.as_nonce().ok());
        let (Some(username), Some(realm), Some(nonce)) = (username, realm, nonce) else {
            return Authenticated::Replied(self.reply_error(
                message,
                400,
                "Missing USERNAME, REALM or NONCE",
                None,
                |b| b,
            ));
        };
        match shared.nonces.check(nonce.as_str(), client.ip(), unix) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale | NonceCheck::Invalid => {
                RelayStats::count(&shared.stats.stale_nonces);
                return Authenticated::Replied(self.challenge(
                    client,
                    message,
                    438,
                    "Stale Nonce",
                    now,
                ));
            }
        }
        let username = username.as_str();
        let unauthorized = |table: &mut Self| {
            Authenticated::Replied(table.challenge(client, message, 401, "Unauthorized", now))
        };
        if realm.as_str() != shared.config.realm {
            return unauthorized(self);
        }
        let Ok(rest) = RestUsername::parse(username) else {
            return unauthorized(self);
        };
        let password = shared.config.secret.password_for(username);
        let Ok(key) = HMACKey::new_long_term(
            username,
            realm.as_str(),
            password,
            Algorithm::from(AlgorithmId::MD5),
        ) else {
            return unauthorized(self);
        };
        let context = DecoderContextBuilder::default()
            .with_key(key.clone())
            .with_validation()
            .build();
        if MessageDecoderBuilder::default()
            .with_context(context)
            .build()
            .decode(packet)
            .is_err()
        {
            return unauthorized(self);
        }
        // An expired credential may not start an allocation, but one already made with it
        // keeps being served (a call in progress survives).
        if message.method() == methods::ALLOCATE && rest.check_fresh(unix).is_err() {
            return unauthorized(self);
        }
        Authenticated::Yes {
            username: username.to_owned(),
            key,
        }
    }

    /// Whether `client` may get another reply to an unauthenticated request (401, 438, 400,
    /// Binding): bounded per source address, so the relay is no amplifier.
    fn may_answer_unauthenticated(&self, client: SocketAddr, now: Instant) -> bool {
        let allowed = self.shared.challenges.allow(client.ip(), now);
        if !allowed {
            debug!(%client, "unauthenticated reply limit reached; request dropped");
        }
        allowed
    }

    /// A 401 or 438 with REALM and a fresh NONCE, unless this source has drawn too many.
    fn challenge(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        code: u16,
        reason: &str,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        if !self.may_answer_unauthenticated(client, now) {
            return None;
        }
        if code == 401 {
            RelayStats::count(&shared.stats.unauthorized);
        }
        let nonce = shared.nonces.issue(client.ip(), unix_now());
        let realm = Realm::new(shared.config.realm.as_str()).ok()?;
        let nonce = Nonce::new(nonce).ok()?;
        self.reply_error(message, code, reason, None, |b| {
            b.with_attribute(realm).with_attribute(nonce)
        })
    }

    fn allocate(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        username: String,
        key: HMACKey,
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        if self.allocations.contains_key(&client) {
            return self.reply_error(message, 437, "Allocation Mismatch", Some(&key), |b| b);
        }
        let transport = message
            .get::<RequestedTrasport>()
            .and_then(|a| a.as_requested_trasport().ok());
        match transport {
            None => {
                return self.reply_error(
                    message,
                    400,
                    "Missing REQUESTED-TRANSPORT",
                    Some(&key),
                    |b| b,
                );
            }
            Some(t) if t.protocol().as_u8() != 17 => {
                return self.reply_error(
                    message,
                    442,
                    "Unsupported Transport Protocol",
                    Some(&key),
                    |b| b,
                );
            }
            Some(_) => {}
        }
        if let Some(family) = message
            .get::<RequestedAddressFamily>()
            .and_then(|a| a.as_requested_address_family().ok())
        {
            let wanted_v6 = family.family() == AddressFamily::IPv6;
            if wanted_v6 != shared.config.relay_ip.is_ipv6() {
                return self.reply_error(
                    message,
                    440,
                    "Address Family not Supported",
                    Some(&key),
                    |b| b,
                );
            }
        }
        if message.get::<ReservationToken>().is_some() {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        let even_port = message.get::<EvenPort>().is_some();
        let identity = RestUsername::parse(&username)
            .map(|rest| rest.identity.to_owned())
            .unwrap_or_else(|_| username.clone());
        let ticket = match shared.quotas.acquire(&identity) {
            Ok(ticket) => ticket,
            Err(error) => {
                RelayStats::count(&shared.stats.quota_refusals);
                debug!(%client, %error, "allocation refused");
                return self.reply_error(
                    message,
                    486,
                    "Allocation Quota Reached",
                    Some(&key),
                    |b| b,
                );
            }
        };
        let Some(relay) = bind_relay_socket(&shared.config, even_port) else {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        };
        // Advertised as relay_ip, which differs from the bound address behind 1:1 NAT.
        let relayed = match relay.local_addr() {
            Ok(addr) => SocketAddr::new(shared.config.relay_ip, addr.port()),
            Err(_) => {
                return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
            }
        };
        let lifetime = requested_lifetime(message, &shared.config);
        let relay = Arc::new(relay);
        let (updates, updates_rx) = mpsc::unbounded_channel();
        let stop = shared.cancel.child_token();
        tokio::spawn(relay_to_client(
            Arc::clone(&relay),
            source.link(client),
            updates_rx,
            stop.clone(),
            Arc::clone(&shared),
        ));
        let len = self.success(message, key, |b| {
            b.with_attribute(XorRelayedAddress::from(relayed))
                .with_attribute(LifeTime::new(lifetime.as_secs() as u32))
                .with_attribute(XorMappedAddress::from(client))
        })?;
        RelayStats::count(&shared.stats.allocations_created);
        debug!(%client, %relayed, %username, "allocation created");
        self.allocations.insert(
            client,
            Allocation {
                username,
                relay,
                relayed,
                expires: now + lifetime,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                peer_channels: HashMap::new(),
                updates,
                allocate_transaction: *message.transaction_id().as_bytes(),
                allocate_response: self.out[..len].to_vec(),
                bucket: TokenBucket::new(shared.config.max_bandwidth_per_allocation, now),
                stop,
                _quota: ticket,
            },
        );
        Some(len)
    }

    fn refresh(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let requested = message
            .get::<LifeTime>()
            .and_then(|a| a.as_life_time().ok())
            .map(|l| l.as_u32());
        let lifetime = if requested == Some(0) {
            self.allocations.remove(&client);
            debug!(%client, "allocation deleted by refresh");
            Duration::ZERO
        } else {
            let lifetime = requested_lifetime(message, &self.shared.config);
            if let Some(allocation) = self.allocations.get_mut(&client) {
                allocation.expires = now + lifetime;
            }
            lifetime
        };
        self.success(message, key, |b| {
            b.with_attribute(LifeTime::new(lifetime.as_secs() as u32))
        })
    }

    fn create_permission(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        let mut peers = Vec::new();
        for attribute in message.attributes() {
            if let StunAttribute::XorPeerAddress(peer) = attribute {
                match shared.config.policy.check_ip(peer.socket_address().ip()) {
                    Ok(ip) if peers.contains(&ip) => {}
                    Ok(ip) => peers.push(ip),
                    Err(refusal) => {
                        RelayStats::count(&shared.stats.refused_peers);
                        debug!(%client, peer = %peer.socket_address(), %refusal, "permission refused");
                        return self.reply_error(message, 403, "Forbidden", Some(&key), |b| b);
                    }
                }
            }
        }
        if peers.is_empty() {
            return self.reply_error(message, 400, "Missing XOR-PEER-ADDRESS", Some(&key), |b| b);
        }
        let allocation = self.allocations.get_mut(&client)?;
        let new = peers
            .iter()
            .filter(|ip| !allocation.permissions.contains_key(ip))
            .count();
        if allocation.permissions.len() + new > shared.config.max_permissions_per_allocation {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        for ip in peers {
            allocation.install_permission(ip, now);
        }
        self.success(message, key, |b| b)
    }

    fn channel_bind(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        let channel = message
            .get::<ChannelNumber>()
            .and_then(|a| a.as_channel_number().ok())
            .map(|c| c.number());
        let peer = message
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let (Some(channel), Some(peer)) = (channel, peer) else {
            return self.reply_error(
                message,
                400,
                "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS",
                Some(&key),
                |b| b,
            );
        };
        if !(wire::MIN_CHANNEL..=wire::MAX_CHANNEL).contains(&channel) {
            return self.reply_error(message, 400, "Bad channel number", Some(&key), |b| b);
        }
        let peer = match shared.config.policy.check_addr(peer) {
            Ok(peer) => peer,
            Err(refusal) => {
                RelayStats::count(&shared.stats.refused_peers);
                debug!(%client, %peer, %refusal, "channel bind refused");
                return self.reply_error(message, 403, "Forbidden", Some(&key), |b| b);
            }
        };
        let allocation = self.allocations.get_mut(&client)?;
        let channel_taken = allocation
            .channels
            .get(&channel)
            .is_some_and(|b| b.peer != peer && b.expires > now);
        let peer_taken = allocation.peer_channels.get(&peer).is_some_and(|c| {
            *c != channel && allocation.channels.get(c).is_some_and(|b| b.expires > now)
        });
        if channel_taken || peer_taken {
            return self.reply_error(
                message,
                400,
                "Channel or peer already bound",
                Some(&key),
                |b| b,
            );
        }
        if !allocation.permissions.contains_key(&peer.ip())
            && allocation.permissions.len() >= shared.config.max_permissions_per_allocation
        {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        // Expired bindings that the sweep has not reached yet give way.
        if let Some(old) = allocation.channels.get(&channel).copied()
            && old.peer != peer
        {
            allocation.peer_channels.remove(&old.peer);
        }
        if let Some(old) = allocation.peer_channels.get(&peer).copied()
            && old != channel
        {
            allocation.channels.remove(&old);
        }
        let expires = now + CHANNEL_LIFETIME;
        allocation
            .channels
            .insert(channel, ChannelBinding { peer, expires });
        allocation.peer_channels.insert(peer, channel);
        let _ = allocation
            .updates
            .send(RelayUpdate::Channel(peer, channel, expires));
        allocation.install_permission(peer.ip(), now);
        self.success(message, key, |b| b)
    }

    /// Send indications: relayed if the policy and a permission allow, else dropped
    /// silently (indications get no answer).
    fn relay_send_indication(&mut self, client: SocketAddr, message: &StunMessage, now: Instant) {
        let stats = &self.shared.stats;
        let Some(allocation) = self.allocations.get_mut(&client) else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        let peer = message
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let data = message.get::<Data>().and_then(|a| a.as_data().ok());
        let (Some(peer), Some(data)) = (peer, data) else {
            RelayStats::count(&stats.malformed);
            return;
        };
        let peer = match self.shared.config.policy.check_addr(peer) {
            Ok(peer) => peer,
            Err(_) => {
                RelayStats::count(&stats.refused_peers);
                return;
            }
        };
        let data = data.as_bytes();
        if !allocation.permitted(peer.ip(), now) || !allocation.bucket.take(data.len(), now) {
            RelayStats::count(&stats.dropped_packets);
            return;
        }
        match allocation.relay.try_send_to(data, peer) {
            Ok(_) => RelayStats::add(&stats.packets_to_peers, &stats.bytes_to_peers, data.len()),
            Err(_) => RelayStats::count(&stats.dropped_packets),
        }
    }

    fn sweep(&mut self, now: Instant) {
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

    /// A signed success response carrying what `extra` adds.
    fn success(
        &mut self,
        request: &StunMessage,
        key: HMACKey,
        extra: impl FnOnce(StunMessageBuilder) -> StunMessageBuilder,
    ) -> Option<usize> {
        let builder = StunMessageBuilder::new(request.method(), MessageClass::SuccessResponse)
            .with_transaction_id(*request.transaction_id());
        let reply = extra(builder)
            .with_attribute(software())
            .with_attribute(MessageIntegrity::new(key))
            .with_attribute(Fingerprint::default())
            .build();
        self.encode(&reply)
    }

    fn reply_error(
        &mut self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        key: Option<&HMACKey>,
        extra: impl FnOnce(StunMessageBuilder) -> StunMessageBuilder,
    ) -> Option<usize> {
        let error = stun_rs::ErrorCode::new(code, reason).ok()?;
        let mut builder = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id())
            .with_attribute(ErrorCode::from(error));
        builder = extra(builder).with_attribute(software());
        if let Some(key) = key {
            builder = builder.with_attribute(MessageIntegrity::new(key.clone()));
        }
        let reply = builder.with_attribute(Fingerprint::default()).build();
        self.encode(&reply)
    }

    /// A 400 for a request that `stun-rs` could not decode, built from its raw header.
    fn bad_request_from_raw(&mut self, packet: &[u8]) -> Option<usize> {
        if packet.len() < wire::STUN_HEADER_LEN {
            return None;
        }
        let message_type = u16::from_be_bytes([packet[0], packet[1]]);
        let cookie = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        // Only a request (class bits 0b00) with the magic cookie gets an answer.
        if message_type & 0x0110 != 0 || cookie != wire::MAGIC_COOKIE {
            return None;
        }
        let method = (message_type & 0x000F)
            | ((message_type & 0x00E0) >> 1)
            | ((message_type & 0x3E00) >> 2);
        let method = MessageMethod::try_from(method).ok()?;
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&packet[8..20]);
        let error = stun_rs::ErrorCode::new(400, "Bad Request").ok()?;
        let reply = StunMessageBuilder::new(method, MessageClass::ErrorResponse)
            .with_transaction_id(transaction.into())
            .with_attribute(ErrorCode::from(error))
            .with_attribute(software())
            .build();
        self.encode(&reply)
    }

    fn encode(&mut self, message: &StunMessage) -> Option<usize> {
        match MessageEncoderBuilder::default()
            .build()
            .encode(&mut self.out, message)
        {
            Ok(len) => Some(len),
            Err(error) => {
                warn!(?error, "cannot encode a STUN reply");
                None
            }
        }
    }
}

fn software() -> Software {
    Software::new(SOFTWARE).expect("the SOFTWARE text is a valid STUN string")
}

/// An UNKNOWN-ATTRIBUTES listing comprehension-required attributes we do not know.
fn unknown_required(message: &StunMessage) -> Option<UnknownAttributes> {
    let mut unknown: Vec<u16> = Vec::new();
    for attribute in message.attributes() {
        let kind = attribute.attribute_type();
        if attribute.is_unknown()
            && kind.is_comprehension_required()
            && !unknown.contains(&kind.as_u16())
        {
            unknown.push(kind.as_u16());
            if unknown.len() == MAX_UNKNOWN_LISTED {
                break;
            }
        }
    }
    (!unknown.is_empty()).then(|| UnknownAttributes::from(&unknown[..]))
}

fn requested_lifetime(message: &StunMessage, config: &TurnConfig) -> Duration {
    let requested = message
        .get::<LifeTime>()
        .and_then(|a| a.as_life_time().ok())
        .map(|l| Duration::from_secs(u64::from(l.as_u32())));
    match requested {
        Some(asked) => asked.clamp(config.default_lifetime, config.max_lifetime),
        None => config.default_lifetime,
    }
}

/// Binds a relayed socket on a random port of the configured range.
fn bind_relay_socket(config: &TurnConfig, even: bool) -> Option<UdpSocket> {
    let (low, high) = config.relay_ports;
    for _ in 0..64 {
        let mut port = rand::random_range(low..=high);
        if even {
            port &= !1;
            if port < low {
                continue;
            }
        }
        let bind_ip = config.relay_bind_ip.unwrap_or(config.relay_ip);
        let Ok(socket) = std::net::UdpSocket::bind((bind_ip, port)) else {
            continue;
        };
        if socket.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(socket) = UdpSocket::from_std(socket) {
            return Some(socket);
        }
    }
    warn!(low, high, "no free relay port");
    None
}

/// Peer→client: reads the relayed socket and frames what it may pass on.
async fn relay_to_client(
    relay: Arc<UdpSocket>,
    link: ClientLink,
    mut updates: mpsc::UnboundedReceiver<RelayUpdate>,
    stop: CancellationToken,
    shared: Arc<Shared>,
) {
    let stats = &shared.stats;
    let mut permissions: HashMap<IpAddr, Instant> = HashMap::new();
    let mut channels: HashMap<SocketAddr, (u16, Instant)> = HashMap::new();
    let headroom = wire::DATA_INDICATION_HEADROOM;
    let mut buf = vec![0u8; headroom + wire::MAX_UDP_PAYLOAD + 4];
    let mut ids = wire::TransactionIds::new();
    let mut bucket = TokenBucket::new(shared.config.max_bandwidth_per_allocation, Instant::now());
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let received = tokio::select! {
            biased;
            _ = &mut stopped => break,
            update = updates.recv() => {
                match update {
                    Some(RelayUpdate::Permission(ip, expires)) => {
                        permissions.insert(ip, expires);
                    }
                    Some(RelayUpdate::Channel(peer, channel, expires)) => {
                        channels.insert(peer, (channel, expires));
                    }
                    None => break,
                }
                if permissions.len() > 2 * shared.config.max_permissions_per_allocation
                    || channels.len() > MIRRORED_CHANNELS
                {
                    let now = Instant::now();
                    permissions.retain(|_, expires| *expires > now);
                    channels.retain(|_, (_, expires)| *expires > now);
                }
                continue;
            }
            received = relay.recv_from(&mut buf[headroom..headroom + wire::MAX_UDP_PAYLOAD]) => received,
        };
        let Ok((len, peer)) = received else {
            // ICMP errors surface here on some systems; the socket stays usable.
            continue;
        };
        let now = Instant::now();
        if permissions.get(&peer.ip()).is_none_or(|e| *e <= now) || !bucket.take(len, now) {
            RelayStats::count(&stats.dropped_packets);
            continue;
        }
        let frame = match channels.get(&peer) {
            Some((channel, expires)) if *expires > now => {
                let start = headroom - wire::CHANNEL_HEADER_LEN;
                wire::write_channel_header(&mut buf[start..], *channel, len);
                let mut end = headroom + len;
                if link.is_stream() {
                    let padded = start + wire::CHANNEL_HEADER_LEN + len.next_multiple_of(4);
                    buf[end..padded].fill(0);
                    end = padded;
                }
                start..end
            }
            _ => {
                let start = headroom - wire::data_indication_header_len(peer);
                match wire::write_data_indication(&mut buf[start..], peer, ids.next_id(), len) {
                    Some(total) => start..start + total,
                    None => {
                        RelayStats::count(&stats.dropped_packets);
                        continue;
                    }
                }
            }
        };
        if link.send(&buf[frame]) {
            RelayStats::add(&stats.packets_to_clients, &stats.bytes_to_clients, len);
        } else {
            RelayStats::count(&stats.dropped_packets);
        }
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut table = AllocationTable::new(Arc::clone(&shared));
    let mut buf = vec![0u8; 65_536];
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let source = LinkSource::Udp(&socket);
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = sweep.tick() => table.sweep(Instant::now()),
            received = socket.recv_from(&mut buf) => {
                let Ok((len, client)) = received else { continue };
                if let Some(reply) = table.handle(client, &buf[..len], &source, Instant::now()) {
                    let _ = socket.try_send_to(reply, client);
                }
            }
        }
    }
}

/// Accepts TCP connections (TLS ones when `tls` is set) within the connection limit and
/// serves each on its own task.
async fn accept_streams(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let transport = if tls.is_some() { "TLS" } else { "TCP" };
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, transport, "TURN accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&shared.stream_slots).try_acquire_owned() else {
            debug!(%client, transport, "connection refused: the stream connection limit is reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = tls else {
                return serve_stream(stream, client, shared).await;
            };
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => serve_stream(tls, client, shared).await,
                Ok(Err(error)) => debug!(%client, %error, "TLS handshake failed"),
                Err(_) => debug!(%client, "TLS handshake timed out"),
            }
        });
    }
}

/// One TCP or TLS client: frames the byte stream and owns that client's allocation.
async fn serve_stream<S>(stream: S, client: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (frames, mut queued) = StreamQueue::new();
    // The writer gives up on a client that stops reading, and closes the connection.
    let writer_gone = CancellationToken::new();
    let mut writer_task = tokio::spawn({
        let queued_bytes = frames.byte_counter();
        let writer_gone = writer_gone.clone();
        async move {
            while let Some(frame) = queued.recv().await {
                let written = tokio::time::timeout(STREAM_WRITE_TIMEOUT, writer.write_all(&frame));
                queued_bytes.fetch_sub(frame.len(), std::sync::atomic::Ordering::Relaxed);
                if !matches!(written.await, Ok(Ok(()))) {
                    debug!(%client, "stream client stopped reading; closing");
                    break;
                }
            }
            writer_gone.cancel();
            let _ = writer.shutdown().await;
        }
    });
    let mut table = AllocationTable::new(Arc::clone(&shared));
    let source = LinkSource::Stream(&frames);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let mut last_allocation = Instant::now();
    let cancelled = shared.cancel.cancelled();
    let writer_stopped = writer_gone.cancelled();
    tokio::pin!(cancelled, writer_stopped);
    'connection: loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = &mut writer_stopped => break,
            _ = sweep.tick() => {
                let now = Instant::now();
                table.sweep(now);
                if !table.allocations.is_empty() {
                    last_allocation = now;
                } else if now.duration_since(last_allocation) > IDLE_STREAM_TIMEOUT {
                    debug!(%client, "closing a stream connection without an allocation");
                    break;
                }
            }
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    let frame_len = match wire::stream_frame_len(&buf) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(error) => {
                            RelayStats::count(&shared.stats.malformed);
                            debug!(%client, %error, "closing a stream that is not TURN");
                            break 'connection;
                        }
                    };
                    let frame = buf.split_to(frame_len);
                    if let Some(reply) = table.handle(client, &frame, &source, Instant::now()) {
                        // A client this far behind is not reading; the writer's timeout ends it.
                        frames.push(reply);
                    }
                }
            }
        }
    }
    // Dropping the allocations stops their relay tasks, the last holders of the queue; the
    // writer then flushes what is left and ends.
    drop(table);
    drop(frames);
    if tokio::time::timeout(Duration::from_secs(2), &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}

/// Drives the allocation table with one packet from a fixed client, as a listener would, for
/// fuzzing: the parse, authentication and reply paths, with nothing bound to the network.
pub(crate) fn fuzz_one_packet(packet: &[u8]) -> Option<Vec<u8>> {
    use std::sync::OnceLock;
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let config = TurnConfig::new(
            crate::RestSecret::new("fuzz-secret"),
            crate::PeerPolicy::public(Vec::new()),
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
