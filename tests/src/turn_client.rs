//! A small TURN client for tests: just enough of RFC 8656 over UDP or TCP to probe a TURN relay
//! (allocations, refreshes, permissions, channel bindings, Send/Data indications, ChannelData)
//! and to observe the error codes it answers with.
//!
//! STUN encoding and decoding is done by `stun-rs`. This module adds what a client needs on top:
//! transactions (retransmission over UDP with an RTO of 250 ms doubling up to 1 s, at most five
//! transmissions, 3 s overall; one transmission over TCP), RFC 8656 TCP framing of STUN and
//! ChannelData, the long-term credential mechanism (401 → retry with USERNAME, REALM, NONCE,
//! MESSAGE-INTEGRITY and FINGERPRINT; one retry on 438 Stale Nonce) and TURN REST API
//! credentials.
//!
//! It is permissive in what it sends (any REQUESTED-TRANSPORT protocol number, a nonce chosen
//! by the test, raw bytes) and strict in what it accepts: a success response to an
//! authenticated request must carry a valid MESSAGE-INTEGRITY, and malformed replies become
//! [`TurnError::Protocol`], never a panic.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, Nonce, Realm, UserName};
use stun_rs::attributes::turn::{
    ChannelNumber, Data, LifeTime, RequestedTrasport, XorPeerAddress, XorRelayedAddress,
};
// (`stun-rs` spells CreatePermission `CREATE_PERMMISSION`.)
use stun_rs::methods::{
    ALLOCATE, CHANNEL_BIND, CREATE_PERMMISSION as CREATE_PERMISSION, DATA, REFRESH, SEND,
};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MAGIC_COOKIE, MessageClass,
    MessageDecoder, MessageDecoderBuilder, MessageEncoderBuilder, MessageMethod, StunAttribute,
    StunMessage, StunMessageBuilder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// First retransmission timeout over UDP.
const RTO_INITIAL: Duration = Duration::from_millis(250);
/// The RTO doubles after each transmission up to this value.
const RTO_MAX: Duration = Duration::from_secs(1);
/// Transmissions of one request over UDP, the first included.
const MAX_TRANSMISSIONS: u32 = 5;
/// How long a transaction may take before [`TurnError::Timeout`].
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(3);
/// STUN header size.
const HEADER: usize = 20;
/// REQUESTED-TRANSPORT attribute type.
const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;

/// TURN REST API credentials: username "expiry:identity", password base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &str, identity: &str, expiry_unix: u64) -> (String, String) {
    let username = format!("{expiry_unix}:{identity}");
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

/// What can go wrong talking to a TURN server.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The server answered with an error response (ERROR-CODE).
    #[error("TURN error {code} {reason}")]
    Status { code: u16, reason: String },
    /// No answer within the transaction timeout (or the receive timeout).
    #[error("timed out")]
    Timeout,
    /// Socket error, including `UnexpectedEof` when the server closed a TCP connection.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Something the server sent (or something asked of the client) does not make sense.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl TurnError {
    /// The STUN error code of a [`TurnError::Status`], `None` for other errors.
    pub fn code(&self) -> Option<u16> {
        match self {
            TurnError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Transport between the client and the TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A Data indication or a ChannelData message relayed from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The peer (XOR-PEER-ADDRESS) of a Data indication; `None` for ChannelData.
    pub peer: Option<SocketAddr>,
    /// The channel number of a ChannelData message; `None` for a Data indication.
    pub channel: Option<u16>,
    /// The application data.
    pub data: Vec<u8>,
}

/// The connection to the server.
#[derive(Debug)]
enum Conn {
    /// A UDP socket connected to the server, so datagrams from elsewhere are dropped.
    Udp(UdpSocket),
    /// A TCP stream and the bytes read from it that do not yet form a whole frame.
    Tcp { stream: TcpStream, buffer: Vec<u8> },
}

/// An Allocate request as sent, kept for [`TurnClient::retransmit_last_allocate`].
#[derive(Debug, Clone)]
struct SentRequest {
    bytes: Vec<u8>,
    transaction_id: [u8; 12],
    key: Option<HMACKey>,
}

/// A TURN client holding one connection to one server (so at most one allocation).
#[derive(Debug)]
pub struct TurnClient {
    conn: Conn,
    local_addr: SocketAddr,
    username: String,
    password: String,
    realm: Option<String>,
    nonce: Option<String>,
    last_allocate: Option<SentRequest>,
    /// Data indications and ChannelData that arrived while waiting for a response.
    pending: VecDeque<Received>,
}

impl TurnClient {
    /// Opens a UDP socket (connected to `server`) or a TCP connection to `server`. Nothing is
    /// sent yet.
    pub async fn connect(
        transport: Transport,
        server: SocketAddr,
        username: &str,
        password: &str,
    ) -> Result<Self, TurnError> {
        let conn = match transport {
            Transport::Udp => {
                let any = match server {
                    SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                    SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
                };
                let socket = UdpSocket::bind(any).await?;
                socket.connect(server).await?;
                Conn::Udp(socket)
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(server).await?;
                stream.set_nodelay(true)?;
                Conn::Tcp {
                    stream,
                    buffer: Vec::new(),
                }
            }
        };
        let local_addr = match &conn {
            Conn::Udp(socket) => socket.local_addr()?,
            Conn::Tcp { stream, .. } => stream.local_addr()?,
        };
        Ok(Self {
            conn,
            local_addr,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: None,
            nonce: None,
            last_allocate: None,
            pending: VecDeque::new(),
        })
    }

    /// Replaces the username and password; the realm and nonce learnt so far are kept.
    pub fn set_credentials(&mut self, username: &str, password: &str) {
        self.username = username.to_owned();
        self.password = password.to_owned();
    }

    /// Replaces the nonce sent with authenticated requests (to test stale or forged nonces).
    pub fn set_nonce(&mut self, nonce: &str) {
        self.nonce = Some(nonce.to_owned());
    }

    /// The nonce learnt from the server (or set with [`TurnClient::set_nonce`]).
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The client's own address on the connection to the server.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Allocate with REQUESTED-TRANSPORT=UDP (17); does the 401 → retry with credentials dance (and one 438 stale-nonce retry, taking the new nonce). Returns the XOR-RELAYED-ADDRESS.
    pub async fn allocate(&mut self) -> Result<SocketAddr, TurnError> {
        self.allocate_with(17, None).await
    }

    /// Same with a chosen transport protocol number (e.g. 6 for TCP, expect 442) and optional lifetime.
    pub async fn allocate_with(
        &mut self,
        transport_protocol: u8,
        lifetime: Option<u32>,
    ) -> Result<SocketAddr, TurnError> {
        let mut attributes = vec![requested_transport(transport_protocol)?];
        if let Some(lifetime) = lifetime {
            attributes.push(LifeTime::new(lifetime).into());
        }
        let response = self.request(ALLOCATE, &attributes).await?;
        relayed_address(&response)
    }

    /// Resend the previous Allocate request byte-for-byte with the same transaction id (a retransmission); returns its result.
    pub async fn retransmit_last_allocate(&mut self) -> Result<SocketAddr, TurnError> {
        let sent = self
            .last_allocate
            .clone()
            .ok_or_else(|| TurnError::Protocol("no Allocate request was sent yet".into()))?;
        let raw = self.transact(&sent.bytes, sent.transaction_id).await?;
        let response = self.interpret(&raw, sent.key.as_ref())?;
        relayed_address(&response)
    }

    /// Refreshes the allocation with the requested LIFETIME (0 deletes it); returns the
    /// lifetime granted by the server.
    pub async fn refresh(&mut self, lifetime: u32) -> Result<u32, TurnError> {
        let response = self
            .request(REFRESH, &[LifeTime::new(lifetime).into()])
            .await?;
        let granted = response
            .get::<LifeTime>()
            .ok_or_else(|| TurnError::Protocol("Refresh success without LIFETIME".into()))?
            .as_life_time()
            .map_err(|e| TurnError::Protocol(format!("bad LIFETIME: {e}")))?;
        Ok(granted.as_u32())
    }

    /// Installs permissions for `peers` (one XOR-PEER-ADDRESS each, port 0) in one request.
    pub async fn create_permission(&mut self, peers: &[IpAddr]) -> Result<(), TurnError> {
        let attributes: Vec<StunAttribute> = peers
            .iter()
            .map(|ip| XorPeerAddress::from(SocketAddr::new(*ip, 0)).into())
            .collect();
        self.request(CREATE_PERMISSION, &attributes).await?;
        Ok(())
    }

    /// Binds `channel` to `peer` (which also installs a permission for the peer's address).
    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), TurnError> {
        let attributes = [
            ChannelNumber::new(channel).into(),
            XorPeerAddress::from(peer).into(),
        ];
        self.request(CHANNEL_BIND, &attributes).await?;
        Ok(())
    }

    /// Sends `data` to `peer` in a Send indication (unauthenticated, as indications are).
    pub async fn send_indication(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), TurnError> {
        let message = StunMessageBuilder::new(SEND, MessageClass::Indication)
            .with_attribute(XorPeerAddress::from(peer))
            .with_attribute(Data::new(data))
            .with_attribute(Fingerprint::default())
            .build();
        let bytes = encode(&message, data.len())?;
        self.send_bytes(&bytes).await
    }

    /// Sends `data` on `channel` as a ChannelData message (padded to a multiple of 4 over TCP).
    /// The channel number is not checked, so invalid ones can be tried.
    pub async fn send_channel_data(&mut self, channel: u16, data: &[u8]) -> Result<(), TurnError> {
        let length = u16::try_from(data.len())
            .map_err(|_| TurnError::Protocol("ChannelData payload over 65535 bytes".into()))?;
        let mut bytes = Vec::with_capacity(data.len() + 7);
        bytes.extend_from_slice(&channel.to_be_bytes());
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(data);
        if matches!(self.conn, Conn::Tcp { .. }) {
            bytes.resize(bytes.len().next_multiple_of(4), 0);
        }
        self.send_bytes(&bytes).await
    }

    /// Next Data indication or ChannelData received (skipping stray responses), as (Some(peer) or None for channel data, channel number if ChannelData, payload).
    pub async fn recv_data(&mut self, timeout: Duration) -> Result<Received, TurnError> {
        if let Some(received) = self.pending.pop_front() {
            return Ok(received);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let Some(raw) = self.recv_frame(deadline).await? else {
                return Err(TurnError::Timeout);
            };
            if let Some(received) = relayed_data(&raw) {
                return received;
            }
        }
    }

    /// Send arbitrary bytes to the server (for malformed-input tests) and return whatever comes back within `timeout` (None if nothing).
    ///
    /// Over TCP, what comes back is one frame (a STUN message or a ChannelData message), or all
    /// buffered bytes if they cannot be framed; a server that closes the connection yields
    /// [`TurnError::Io`] with `UnexpectedEof`.
    pub async fn send_raw(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TurnError> {
        self.send_bytes(bytes).await?;
        self.recv_frame(Instant::now() + timeout).await
    }

    /// Sends a request, authenticated once the realm and nonce are known, and returns the
    /// (integrity-checked) success response. Retries once after a 401 to an unauthenticated
    /// request that taught us a realm and nonce, and once after a 438.
    async fn request(
        &mut self,
        method: MessageMethod,
        attributes: &[StunAttribute],
    ) -> Result<StunMessage, TurnError> {
        let mut authenticate = self.realm.is_some() && self.nonce.is_some();
        let mut stale_nonce_retried = false;
        loop {
            let key = if authenticate {
                Some(self.key()?)
            } else {
                None
            };
            let (bytes, transaction_id) = self.encode_request(method, attributes, key.as_ref())?;
            if method == ALLOCATE {
                self.last_allocate = Some(SentRequest {
                    bytes: bytes.clone(),
                    transaction_id,
                    key: key.clone(),
                });
            }
            let raw = self.transact(&bytes, transaction_id).await?;
            match self.interpret(&raw, key.as_ref()) {
                Err(TurnError::Status { code: 401, .. })
                    if !authenticate && self.realm.is_some() && self.nonce.is_some() =>
                {
                    authenticate = true;
                }
                Err(TurnError::Status { code: 438, .. })
                    if !stale_nonce_retried && self.realm.is_some() && self.nonce.is_some() =>
                {
                    stale_nonce_retried = true;
                    authenticate = true;
                }
                result => return result,
            }
        }
    }

    /// The long-term credential key for the current username, realm and password.
    fn key(&self) -> Result<HMACKey, TurnError> {
        let realm = self.realm.as_deref().unwrap_or_default();
        HMACKey::new_long_term(
            &self.username,
            realm,
            &self.password,
            Algorithm::from(AlgorithmId::MD5),
        )
        .map_err(|e| TurnError::Protocol(format!("cannot derive the long-term key: {e}")))
    }

    /// Encodes a request with a fresh transaction id: `attributes`, then USERNAME, REALM,
    /// NONCE and MESSAGE-INTEGRITY when `key` is given, then FINGERPRINT.
    fn encode_request(
        &self,
        method: MessageMethod,
        attributes: &[StunAttribute],
        key: Option<&HMACKey>,
    ) -> Result<(Vec<u8>, [u8; 12]), TurnError> {
        let mut builder = StunMessageBuilder::new(method, MessageClass::Request);
        for attribute in attributes {
            builder = builder.with_attribute(attribute.clone());
        }
        if let Some(key) = key {
            let invalid = |what: &str, e: stun_rs::StunError| {
                TurnError::Protocol(format!("cannot send {what}: {e}"))
            };
            let username = UserName::new(&self.username).map_err(|e| invalid("USERNAME", e))?;
            let realm = Realm::new(self.realm.as_deref().unwrap_or_default())
                .map_err(|e| invalid("REALM", e))?;
            let nonce = Nonce::new(self.nonce.as_deref().unwrap_or_default())
                .map_err(|e| invalid("NONCE", e))?;
            builder = builder
                .with_attribute(username)
                .with_attribute(realm)
                .with_attribute(nonce)
                .with_attribute(MessageIntegrity::new(key.clone()));
        }
        let message = builder.with_attribute(Fingerprint::default()).build();
        let bytes = encode(&message, 32 * attributes.len())?;
        Ok((bytes, *message.transaction_id().as_bytes()))
    }

    /// Decodes a response: an error response becomes [`TurnError::Status`] (after taking the
    /// REALM and NONCE of a 401 or 438); a success response to an authenticated request must
    /// carry a MESSAGE-INTEGRITY that verifies with `key`.
    fn interpret(&mut self, raw: &[u8], key: Option<&HMACKey>) -> Result<StunMessage, TurnError> {
        let message = decode(raw)?;
        match message.class() {
            MessageClass::ErrorResponse => {
                let error = message
                    .get::<stun_rs::attributes::stun::ErrorCode>()
                    .and_then(|attribute| attribute.as_error_code().ok())
                    .ok_or_else(|| {
                        TurnError::Protocol("error response without a valid ERROR-CODE".into())
                    })?;
                let code = error.error_code().error_code();
                if code == 401 || code == 438 {
                    if let Some(nonce) = message.get::<Nonce>().and_then(|a| a.as_nonce().ok()) {
                        self.nonce = Some(nonce.as_str().to_owned());
                    }
                    if let Some(realm) = message.get::<Realm>().and_then(|a| a.as_realm().ok()) {
                        self.realm = Some(realm.as_str().to_owned());
                    }
                }
                Err(TurnError::Status {
                    code,
                    // Some servers (coturn) count NUL padding into the reason phrase.
                    reason: error
                        .error_code()
                        .reason()
                        .trim_end_matches('\0')
                        .to_owned(),
                })
            }
            MessageClass::SuccessResponse => match key {
                None => Ok(message),
                Some(key) => {
                    if message.get::<MessageIntegrity>().is_none() {
                        return Err(TurnError::Protocol(
                            "success response without MESSAGE-INTEGRITY".into(),
                        ));
                    }
                    decode_checked(raw, key).map_err(|e| {
                        TurnError::Protocol(format!("success response fails integrity check: {e}"))
                    })
                }
            },
            class => Err(TurnError::Protocol(format!(
                "expected a response, got {class:?}"
            ))),
        }
    }

    /// Sends `request` and waits for the response with the same transaction id, retransmitting
    /// over UDP. Data that arrives meanwhile is queued for [`TurnClient::recv_data`].
    async fn transact(
        &mut self,
        request: &[u8],
        transaction_id: [u8; 12],
    ) -> Result<Vec<u8>, TurnError> {
        let start = Instant::now();
        let deadline = start + TRANSACTION_TIMEOUT;
        let max_transmissions = match self.conn {
            Conn::Udp(_) => MAX_TRANSMISSIONS,
            Conn::Tcp { .. } => 1,
        };
        let mut transmissions = 0;
        let mut rto = RTO_INITIAL;
        let mut next_transmission = start;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(TurnError::Timeout);
            }
            if transmissions < max_transmissions && now >= next_transmission {
                self.send_bytes(request).await?;
                transmissions += 1;
                next_transmission = now + rto;
                rto = (rto * 2).min(RTO_MAX);
            }
            let wait_until = if transmissions < max_transmissions {
                next_transmission.min(deadline)
            } else {
                deadline
            };
            let Some(raw) = self.recv_frame(wait_until).await? else {
                continue;
            };
            if stun_transaction_id(&raw) == Some(transaction_id) && is_response(&raw) {
                return Ok(raw);
            }
            if let Some(Ok(received)) = relayed_data(&raw) {
                self.pending.push_back(received);
            }
        }
    }

    async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), TurnError> {
        match &mut self.conn {
            Conn::Udp(socket) => {
                socket.send(bytes).await?;
            }
            Conn::Tcp { stream, .. } => stream.write_all(bytes).await?,
        }
        Ok(())
    }

    /// The next datagram (UDP) or frame (TCP) from the server, `None` once `deadline` passes.
    async fn recv_frame(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, TurnError> {
        match &mut self.conn {
            Conn::Udp(socket) => {
                let mut buffer = vec![0; 65536];
                match timeout_at(deadline, socket.recv(&mut buffer)).await {
                    Err(_) => Ok(None),
                    Ok(result) => {
                        buffer.truncate(result?);
                        Ok(Some(buffer))
                    }
                }
            }
            Conn::Tcp { stream, buffer } => loop {
                if let Some(frame) = take_tcp_frame(buffer) {
                    return Ok(Some(frame));
                }
                buffer.reserve(4096);
                // `read_buf` is cancel safe: bytes read before the deadline stay in `buffer`.
                match timeout_at(deadline, stream.read_buf(buffer)).await {
                    Err(_) => return Ok(None),
                    Ok(Ok(0)) => {
                        return Err(TurnError::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the TCP connection",
                        )));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                }
            },
        }
    }
}

/// REQUESTED-TRANSPORT with any protocol number. `stun-rs` only exposes UDP's, so another
/// number is obtained by decoding a minimal message that carries it.
fn requested_transport(protocol: u8) -> Result<StunAttribute, TurnError> {
    if protocol == 17 {
        return Ok(RequestedTrasport::from(stun_rs::protocols::UDP).into());
    }
    let mut raw = Vec::with_capacity(HEADER + 8);
    raw.extend_from_slice(&[0x00, 0x01, 0x00, 0x08]); // Binding request, 8 bytes of attributes
    raw.extend_from_slice(&MAGIC_COOKIE.as_u32().to_be_bytes());
    raw.extend_from_slice(&[0; 12]);
    raw.extend_from_slice(&ATTR_REQUESTED_TRANSPORT.to_be_bytes());
    raw.extend_from_slice(&[0x00, 0x04, protocol, 0, 0, 0]);
    decode(&raw)?
        .get::<RequestedTrasport>()
        .cloned()
        .ok_or_else(|| TurnError::Protocol("cannot build REQUESTED-TRANSPORT".into()))
}

/// The XOR-RELAYED-ADDRESS of an Allocate success response.
fn relayed_address(response: &StunMessage) -> Result<SocketAddr, TurnError> {
    let attribute = response
        .get::<XorRelayedAddress>()
        .ok_or_else(|| TurnError::Protocol("Allocate success without XOR-RELAYED-ADDRESS".into()))?
        .as_xor_relayed_address()
        .map_err(|e| TurnError::Protocol(format!("bad XOR-RELAYED-ADDRESS: {e}")))?;
    Ok(*attribute.socket_address())
}

/// Encodes `message`; `extra` is room needed beyond 1 KiB (payload, many attributes).
fn encode(message: &StunMessage, extra: usize) -> Result<Vec<u8>, TurnError> {
    let mut buffer = vec![0; 1024 + extra];
    let size = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buffer, message)
        .map_err(|e| TurnError::Protocol(format!("cannot encode STUN message: {e}")))?;
    buffer.truncate(size);
    Ok(buffer)
}

/// Decodes a whole STUN message.
fn decode(raw: &[u8]) -> Result<StunMessage, TurnError> {
    run_decoder(MessageDecoderBuilder::default().build(), raw).map_err(TurnError::Protocol)
}

/// Decodes a whole STUN message, verifying its MESSAGE-INTEGRITY (and FINGERPRINT) with `key`.
fn decode_checked(raw: &[u8], key: &HMACKey) -> Result<StunMessage, String> {
    let context = DecoderContextBuilder::default()
        .with_key(key.clone())
        .with_validation()
        .build();
    run_decoder(
        MessageDecoderBuilder::default()
            .with_context(context)
            .build(),
        raw,
    )
}

/// Runs `decoder` on `raw`, which must hold exactly one message. A panic inside the decoder
/// becomes an error too, so no reply can bring a test down.
fn run_decoder(decoder: MessageDecoder, raw: &[u8]) -> Result<StunMessage, String> {
    match catch_unwind(AssertUnwindSafe(|| decoder.decode(raw))) {
        Ok(Ok((message, size))) if size == raw.len() => Ok(message),
        Ok(Ok((_, size))) => Err(format!(
            "{} bytes after a {size}-byte STUN message",
            raw.len() - size
        )),
        Ok(Err(e)) => Err(format!("undecodable STUN message: {e}")),
        Err(_) => Err("the STUN decoder panicked on a malformed message".into()),
    }
}

/// The transaction id of anything that looks like a STUN message.
fn stun_transaction_id(raw: &[u8]) -> Option<[u8; 12]> {
    if raw.len() < HEADER || raw[0] >> 6 != 0 || raw[4..8] != MAGIC_COOKIE.as_u32().to_be_bytes() {
        return None;
    }
    raw[8..20].try_into().ok()
}

/// Whether a STUN message is a success or error response (class bits C1 set).
fn is_response(raw: &[u8]) -> bool {
    raw.first().is_some_and(|b| b & 0x01 != 0)
}

/// A Data indication or ChannelData message as [`Received`]: `None` for other STUN messages,
/// `Some(Err)` for a malformed one or for bytes that are neither STUN nor ChannelData.
fn relayed_data(raw: &[u8]) -> Option<Result<Received, TurnError>> {
    let first = *raw.first()?;
    if (0x40..=0x7F).contains(&first) {
        if raw.len() < 4 {
            return Some(Err(TurnError::Protocol("truncated ChannelData".into())));
        }
        let channel = u16::from_be_bytes([raw[0], raw[1]]);
        let length = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
        let Some(data) = raw.get(4..4 + length) else {
            return Some(Err(TurnError::Protocol(format!(
                "ChannelData says {length} bytes but carries {}",
                raw.len() - 4
            ))));
        };
        return Some(Ok(Received {
            peer: None,
            channel: Some(channel),
            data: data.to_vec(),
        }));
    }
    if stun_transaction_id(raw).is_none() {
        return Some(Err(TurnError::Protocol(format!(
            "neither STUN nor ChannelData: {} bytes starting {first:#04x}",
            raw.len()
        ))));
    }
    let message = match decode(raw) {
        Ok(message) => message,
        Err(e) => return Some(Err(e)),
    };
    if message.method() != DATA || message.class() != MessageClass::Indication {
        return None;
    }
    let peer = message
        .get::<XorPeerAddress>()
        .and_then(|a| a.as_xor_peer_address().ok())
        .map(|a| *a.socket_address());
    let data = message
        .get::<Data>()
        .and_then(|a| a.as_data().ok())
        .map(|a| a.as_bytes().to_vec());
    Some(match (peer, data) {
        (Some(peer), Some(data)) => Ok(Received {
            peer: Some(peer),
            channel: None,
            data,
        }),
        _ => Err(TurnError::Protocol(
            "Data indication without XOR-PEER-ADDRESS or DATA".into(),
        )),
    })
}

/// Takes one frame off the front of a TCP receive buffer (RFC 8656 §11.5): a STUN message is
/// 20 + length bytes, ChannelData 4 + length padded to a multiple of 4. Bytes that are
/// neither are returned all at once, as the stream cannot be framed any more.
fn take_tcp_frame(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let header: [u8; 4] = buffer.get(..4)?.try_into().ok()?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let size = match header[0] {
        0x00..=0x3F => HEADER + length,
        0x40..=0x7F => (4 + length).next_multiple_of(4),
        _ => buffer.len(),
    };
    if buffer.len() < size {
        return None;
    }
    let rest = buffer.split_off(size);
    Some(std::mem::replace(buffer, rest))
}
