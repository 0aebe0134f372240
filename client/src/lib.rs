//! A Rust client for Switchyard: the public signaling protocol over WebSocket plus two webrtc-rs
//! (`rtc`, sans-IO) peer connections, as a browser would use them.
//!
//! Used by the integration tests, and meant for the load tester and the recorder: it can
//! publish synthetic audio and video RTP, receives every track it is offered without decoding
//! it, and reports what it sees as [`ClientEvent`]s. It also sends raw frames on request, so
//! tests can play a misbehaving client.

pub mod media;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use media::{MediaPacket, MediaSource, SyntheticAudio, SyntheticVideo};
use protocol::{ClientMessage, IceCandidate, ServerMessage, Target, TrackKind};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::{
    SctpMaxMessageSize, SettingEngineBuilder,
};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How often the client proves it is alive (the server drops a client silent for 15 s).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the signaling server at {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("WebRTC engine: {0}")]
    Engine(#[from] rtc::shared::error::Error),
    #[error("the client task has stopped")]
    Stopped,
}

/// What the client observed.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A signaling message from the server.
    Message(ServerMessage),
    /// The server offered a track (stream id = publisher's participant id).
    TrackOpened {
        participant_id: String,
        track_id: String,
        kind: TrackKind,
        /// The track's negotiated codecs: RTP payload type and MIME type (`video/VP8`, ...);
        /// [`ClientEvent::Rtp::payload_type`] picks one.
        codecs: Vec<(u8, String)>,
    },
    /// One received RTP packet.
    Rtp {
        participant_id: String,
        kind: TrackKind,
        sequence_number: u16,
        timestamp: u32,
        ssrc: u32,
        /// The RTP payload type (its codec is in the track's [`ClientEvent::TrackOpened`]).
        payload_type: u8,
        /// The RTP marker bit (end of a video frame).
        marker: bool,
        payload_len: usize,
        /// The RTP payload, shared with the packet (no copy).
        payload: Bytes,
    },
    /// A peer connection changed state (`connected`, `failed`, ...).
    PeerState { target: Target, state: String },
    /// One of our data channels (`reliable` or `lossy`) is open.
    DataOpen { label: String },
    /// A data-channel message from the SFU: a delivered message or an error frame.
    Data {
        reliable: bool,
        header: serde_json::Value,
        payload: Vec<u8>,
    },
    /// Raw datagrams were put on the wire (see [`Client::send_raw_datagrams`]).
    RawDatagramsSent { count: usize },
    /// The WebSocket closed (close code if the server sent one).
    Closed { code: Option<u16>, reason: String },
}

enum Command {
    Send(ClientMessage),
    SendText(String),
    SendBinary(Vec<u8>),
    Publish {
        audio: Option<Box<dyn MediaSource>>,
        video: Option<Box<dyn MediaSource>>,
    },
    OpenData,
    SendData {
        reliable: bool,
        frame: Vec<u8>,
        text: bool,
    },
    PauseData(bool),
    RawDatagrams(Vec<Vec<u8>>),
    Disconnect,
}

/// A connected client. Dropping it drops the WebSocket without a goodbye.
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    /// Everything the client observes, in order.
    pub events: mpsc::UnboundedReceiver<ClientEvent>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Opens the signaling WebSocket at `url` (for example `ws://127.0.0.1:8080/ws`).
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let local_ip = local_ip_towards(url).await;
        let publisher = Peer::new(local_ip).await?;
        let subscriber = Peer::new(local_ip).await?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut engine = Engine {
                ws,
                publisher,
                subscriber,
                events: event_tx,
                media: None,
                reliable: None,
                lossy: None,
                data_paused: false,
            };
            engine.run(command_rx).await;
        });
        Ok(Client {
            commands,
            events,
            task,
        })
    }

    /// Sends `join`.
    pub fn join(&self, room: &str, token: &str) {
        self.send(ClientMessage::Join {
            room: room.to_owned(),
            token: token.to_owned(),
        });
    }

    /// Sends any protocol message.
    pub fn send(&self, message: ClientMessage) {
        let _ = self.commands.send(Command::Send(message));
    }

    /// Sends a raw text frame (for testing how the server treats bad input).
    pub fn send_text(&self, text: impl Into<String>) {
        let _ = self.commands.send(Command::SendText(text.into()));
    }

    /// Sends a raw binary frame.
    pub fn send_binary(&self, data: Vec<u8>) {
        let _ = self.commands.send(Command::SendBinary(data));
    }

    /// Adds synthetic tracks (Opus-shaped audio every 20 ms, VP8 keyframes at 30 fps) to the
    /// publisher connection, offers them, and starts sending once connected.
    pub fn publish(&self, audio: bool, video: bool) {
        let now = Instant::now();
        self.publish_sources(
            audio.then(|| Box::new(SyntheticAudio::new(now)) as Box<dyn MediaSource>),
            video.then(|| Box::new(SyntheticVideo::new(now)) as Box<dyn MediaSource>),
        );
    }

    /// Publishes an Opus track fed by `audio` and a VP8 track fed by `video` (either may be
    /// absent), and renegotiates.
    pub fn publish_sources(
        &self,
        audio: Option<Box<dyn MediaSource>>,
        video: Option<Box<dyn MediaSource>>,
    ) {
        let _ = self.commands.send(Command::Publish { audio, video });
    }

    /// Opens the `reliable` and `lossy` data channels on the publisher connection (and
    /// renegotiates it).
    pub fn open_data_channels(&self) {
        let _ = self.commands.send(Command::OpenData);
    }

    /// Sends a message through the SFU: `header` addresses it, `payload` is the content.
    pub fn send_data(&self, reliable: bool, header: &protocol::data::SendHeader, payload: &[u8]) {
        let frame = protocol::data::encode_frame(header, payload);
        let _ = self.commands.send(Command::SendData {
            reliable,
            frame,
            text: false,
        });
    }

    /// Sends raw bytes (or text) on a data channel, for testing malformed framing.
    pub fn send_data_raw(&self, reliable: bool, frame: Vec<u8>, text: bool) {
        let _ = self.commands.send(Command::SendData {
            reliable,
            frame,
            text,
        });
    }

    /// Stops (or resumes) reading data-channel messages, as a slow receiver would; media keeps
    /// flowing.
    pub fn pause_data(&self, paused: bool) {
        let _ = self.commands.send(Command::PauseData(paused));
    }

    /// Sends raw datagrams from the publisher connection's socket to the address its ICE
    /// agent talks to (for testing how the server treats garbage from a known peer).
    pub fn send_raw_datagrams(&self, datagrams: Vec<Vec<u8>>) {
        let _ = self.commands.send(Command::RawDatagrams(datagrams));
    }

    /// Says `leave` and closes the WebSocket cleanly.
    pub fn leave(&self) {
        let _ = self.commands.send(Command::Send(ClientMessage::Leave));
        let _ = self.commands.send(Command::Disconnect);
    }

    /// Waits up to `timeout` for an event matching `want`, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()??;
            if let Some(t) = want(&event) {
                return Some(t);
            }
        }
    }

    /// Waits for the next server message matching `want`.
    pub async fn wait_message<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> Option<T> {
        self.wait_for(timeout, |e| match e {
            ClientEvent::Message(m) => want(m),
            _ => None,
        })
        .await
    }
}

/// The address of this host that packets to the signaling server leave from: 127.0.0.1 for a
/// local server, the outgoing interface's address for a remote one. Media goes the same way.
async fn local_ip_towards(url: &str) -> IpAddr {
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Ok(uri) = url.parse::<tokio_tungstenite::tungstenite::http::Uri>() else {
        return fallback;
    };
    let Some(host) = uri.host() else {
        return fallback;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return fallback;
    };
    let Some(server) = addrs.find(SocketAddr::is_ipv4) else {
        return fallback;
    };
    let Ok(probe) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
        return fallback;
    };
    if probe.connect(server).await.is_err() {
        return fallback;
    }
    probe.local_addr().map(|a| a.ip()).unwrap_or(fallback)
}

struct Peer {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    /// Track id → (publisher participant id, kind), for received tracks.
    tracks: std::collections::HashMap<String, (String, TrackKind)>,
    connected: bool,
    /// The last address the ICE agent sent to.
    remote: Option<SocketAddr>,
}

fn client_codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let mut codecs = vec![
        (
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        ),
        (
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: 96,
            },
            RtpCodecKind::Video,
        ),
        // Received only (we publish VP8): rooms may carry these from browsers.
        (
            RTCRtpCodecParameters {
                rtp_codec: video_codec(MIME_TYPE_VP9, ""),
                payload_type: PAYLOAD_TYPE_VP9,
            },
            RtpCodecKind::Video,
        ),
    ];
    // Every H.264 profile browsers send, in both packetization modes.
    let mut payload_type = PAYLOAD_TYPE_H264;
    for profile in ["42001f", "42e01f", "4d001f", "64001f"] {
        for mode in [1, 0] {
            let fmtp = format!(
                "level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}"
            );
            codecs.push((
                RTCRtpCodecParameters {
                    rtp_codec: video_codec(MIME_TYPE_H264, &fmtp),
                    payload_type,
                },
                RtpCodecKind::Video,
            ));
            payload_type += 1;
        }
    }
    codecs
}

const PAYLOAD_TYPE_VP8: u8 = 96;
const PAYLOAD_TYPE_VP9: u8 = 98;
/// The first of the H.264 payload types (one per profile and packetization mode).
const PAYLOAD_TYPE_H264: u8 = 102;

fn video_codec(mime_type: &str, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

impl Peer {
    async fn new(local_ip: IpAddr) -> Result<Peer, ClientError> {
        let socket = UdpSocket::bind((local_ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut media_engine = MediaEngine::default();
        for (codec, kind) in client_codecs() {
            media_engine.register_codec(codec, kind)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                    .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(1024 * 1024))
                    .build(),
            )
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        pc.add_local_candidate(RTCIceCandidateInit::default())?;
        Ok(Peer {
            pc,
            socket,
            local,
            buf: vec![0; 2048],
            tracks: Default::default(),
            connected: false,
            remote: None,
        })
    }
}

/// One published track: its sender, SSRC, next sequence number and what feeds it.
struct OutgoingTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    source: Box<dyn MediaSource>,
}

struct Media {
    tracks: Vec<OutgoingTrack>,
    /// Reused for each poll of a source.
    due: Vec<MediaPacket>,
}

impl Media {
    fn next_due(&self) -> Option<Instant> {
        self.tracks.iter().map(|t| t.source.next_due()).min()
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Engine {
    ws: Ws,
    publisher: Peer,
    subscriber: Peer,
    events: mpsc::UnboundedSender<ClientEvent>,
    media: Option<Media>,
    reliable: Option<rtc::data_channel::RTCDataChannelId>,
    lossy: Option<rtc::data_channel::RTCDataChannelId>,
    data_paused: bool,
}

impl Engine {
    async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        loop {
            self.drain(Target::Publisher).await;
            self.drain(Target::Subscriber).await;
            let now = Instant::now();
            let mut deadline = now + Duration::from_millis(200);
            for pc in [&mut self.publisher.pc, &mut self.subscriber.pc] {
                if let Some(t) = pc.poll_timeout() {
                    deadline = deadline.min(t);
                }
            }
            if let Some(due) = self.media.as_ref().and_then(Media::next_due)
                && self.publisher.connected
            {
                deadline = deadline.min(due);
            }
            tokio::select! {
                command = commands.recv() => match command {
                    // The Client was dropped: vanish without a goodbye, like a lost network.
                    None => return,
                    Some(Command::Disconnect) => {
                        let _ = self.ws.close(None).await;
                        return;
                    }
                    Some(c) => self.on_command(c).await,
                },
                frame = self.ws.next() => {
                    if !self.on_frame(frame).await {
                        return;
                    }
                }
                r = self.publisher.socket.recv_from(&mut self.publisher.buf) => {
                    if let Ok((n, peer)) = r {
                        read(&mut self.publisher, n, peer);
                    }
                }
                r = self.subscriber.socket.recv_from(&mut self.subscriber.buf) => {
                    if let Ok((n, peer)) = r {
                        read(&mut self.subscriber, n, peer);
                    }
                }
                _ = keepalive.tick() => {
                    let ts = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0);
                    self.send_ws(&ClientMessage::Ping { ts }).await;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    let _ = self.publisher.pc.handle_timeout(now);
                    let _ = self.subscriber.pc.handle_timeout(now);
                    self.send_media(now);
                }
            }
        }
    }

    fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event);
    }

    async fn send_ws(&mut self, message: &ClientMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.ws.send(Message::text(text)).await;
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Send(m) => self.send_ws(&m).await,
            Command::SendText(t) => {
                let _ = self.ws.send(Message::text(t)).await;
            }
            Command::SendBinary(b) => {
                let _ = self.ws.send(Message::binary(b)).await;
            }
            Command::Publish { audio, video } => {
                if let Err(e) = self.start_publishing(audio, video).await {
                    tracing::warn!(error = %e, "publish failed");
                }
            }
            Command::OpenData => {
                if let Err(e) = self.open_data_channels().await {
                    tracing::warn!(error = %e, "opening data channels failed");
                }
            }
            Command::SendData {
                reliable,
                frame,
                text,
            } => {
                let id = if reliable { self.reliable } else { self.lossy };
                if let Some(mut dc) = id.and_then(|id| self.publisher.pc.data_channel(id)) {
                    let now = Instant::now();
                    let result = if text {
                        dc.send_text(now, String::from_utf8_lossy(&frame).into_owned())
                    } else {
                        dc.send(now, BytesMut::from(&frame[..]))
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "data send failed");
                    }
                }
            }
            Command::PauseData(paused) => self.data_paused = paused,
            Command::RawDatagrams(datagrams) => {
                let Some(remote) = self.publisher.remote else {
                    tracing::warn!("no remote address yet; raw datagrams not sent");
                    return;
                };
                let mut count = 0;
                for d in datagrams {
                    if self.publisher.socket.send_to(&d, remote).await.is_ok() {
                        count += 1;
                    }
                }
                self.emit(ClientEvent::RawDatagramsSent { count });
            }
            Command::Disconnect => {}
        }
    }

    async fn open_data_channels(&mut self) -> Result<(), ClientError> {
        self.reliable = Some(
            self.publisher
                .pc
                .create_data_channel("reliable", None)?
                .id(),
        );
        let lossy = rtc::data_channel::RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        self.lossy = Some(
            self.publisher
                .pc
                .create_data_channel("lossy", Some(lossy))?
                .id(),
        );
        let offer = self.publisher.pc.create_offer(None)?;
        self.publisher
            .pc
            .set_local_description(Instant::now(), offer.clone())?;
        self.send_ws(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: offer.sdp,
        })
        .await;
        Ok(())
    }

    async fn start_publishing(
        &mut self,
        audio: Option<Box<dyn MediaSource>>,
        video: Option<Box<dyn MediaSource>>,
    ) -> Result<(), ClientError> {
        let stream = format!("stream-{}", rand::random::<u32>());
        let mut tracks = Vec::new();
        let sources = [
            (RtpCodecKind::Audio, opus(), 111, audio),
            (RtpCodecKind::Video, vp8(), PAYLOAD_TYPE_VP8, video),
        ];
        for (kind, codec, payload_type, source) in sources {
            let Some(source) = source else {
                continue;
            };
            let ssrc = rand::random::<u32>();
            let track = MediaStreamTrack::new(
                stream.clone(),
                format!("{kind}-{ssrc}"),
                format!("{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            );
            tracks.push(OutgoingTrack {
                sender: self.publisher.pc.add_track(track)?,
                ssrc,
                payload_type,
                sequence: rand::random(),
                source,
            });
        }
        let offer = self.publisher.pc.create_offer(None)?;
        self.publisher
            .pc
            .set_local_description(Instant::now(), offer.clone())?;
        self.media = Some(Media {
            tracks,
            due: Vec::new(),
        });
        self.send_ws(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: offer.sdp,
        })
        .await;
        Ok(())
    }

    /// Writes the media that is due on every published track.
    fn send_media(&mut self, now: Instant) {
        if !self.publisher.connected {
            return;
        }
        let Some(media) = self.media.as_mut() else {
            return;
        };
        for track in &mut media.tracks {
            media.due.clear();
            track.source.poll(now, &mut media.due);
            for packet in media.due.drain(..) {
                track.sequence = track.sequence.wrapping_add(1);
                let rtp = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        marker: packet.marker,
                        payload_type: track.payload_type,
                        sequence_number: track.sequence,
                        timestamp: packet.timestamp,
                        ssrc: track.ssrc,
                        ..Default::default()
                    },
                    payload: packet.payload,
                };
                if let Some(mut sender) = self.publisher.pc.rtp_sender(track.sender) {
                    let _ = sender.write_rtp(now, rtp);
                }
            }
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> bool {
        let text = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(CloseFrame { code, reason }) => {
                        (Some(u16::from(code)), reason.to_string())
                    }
                    None => (None, String::new()),
                };
                self.emit(ClientEvent::Closed { code, reason });
                return false;
            }
            Some(Ok(_)) => return true,
            Some(Err(e)) => {
                self.emit(ClientEvent::Closed {
                    code: None,
                    reason: e.to_string(),
                });
                return false;
            }
            None => {
                self.emit(ClientEvent::Closed {
                    code: None,
                    reason: "connection ended".into(),
                });
                return false;
            }
        };
        let Ok(message) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
            tracing::warn!(%text, "unparsable server message");
            return true;
        };
        match &message {
            ServerMessage::Answer {
                target: Target::Publisher,
                sdp,
            } => {
                let result = RTCSessionDescription::answer(sdp.clone())
                    .and_then(|a| self.publisher.pc.set_remote_description(Instant::now(), a));
                if let Err(e) = result {
                    tracing::warn!(error = %e, "publisher answer refused");
                }
            }
            ServerMessage::Offer {
                target: Target::Subscriber,
                sdp,
            } => {
                let result = (|| {
                    let offer = RTCSessionDescription::offer(sdp.clone())?;
                    let pc = &mut self.subscriber.pc;
                    pc.set_remote_description(Instant::now(), offer)?;
                    let answer = pc.create_answer(None)?;
                    pc.set_local_description(Instant::now(), answer.clone())?;
                    Ok::<_, rtc::shared::error::Error>(answer.sdp)
                })();
                match result {
                    Ok(sdp) => {
                        tracing::debug!(%sdp, "subscriber answer");
                        self.send_ws(&ClientMessage::Answer {
                            target: Target::Subscriber,
                            sdp,
                        })
                        .await
                    }
                    Err(e) => tracing::warn!(error = %e, "subscriber offer refused"),
                }
            }
            ServerMessage::Candidate {
                target,
                candidate: Some(IceCandidate { candidate, .. }),
            } => {
                let peer = match target {
                    Target::Publisher => &mut self.publisher,
                    Target::Subscriber => &mut self.subscriber,
                };
                let _ = peer.pc.add_remote_candidate(RTCIceCandidateInit {
                    candidate: candidate.clone(),
                    ..Default::default()
                });
            }
            _ => {}
        }
        self.emit(ClientEvent::Message(message));
        true
    }

    async fn drain(&mut self, target: Target) {
        let events = self.events.clone();
        let data_paused = self.data_paused;
        let reliable_id = self.reliable;
        let peer = match target {
            Target::Publisher => &mut self.publisher,
            Target::Subscriber => &mut self.subscriber,
        };
        loop {
            while let Some(out) = peer.pc.poll_write() {
                peer.remote = Some(out.transport.peer_addr);
                let _ = peer
                    .socket
                    .send_to(&out.message, out.transport.peer_addr)
                    .await;
            }
            if let Some(event) = peer.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        peer.connected =
                            state == rtc::peer_connection::state::RTCPeerConnectionState::Connected;
                        let _ = events.send(ClientEvent::PeerState {
                            target,
                            state: state.to_string(),
                        });
                    }
                    RTCPeerConnectionEvent::OnDataChannel(
                        rtc::peer_connection::event::RTCDataChannelEvent::OnOpen(id),
                    ) => {
                        let label = peer.pc.data_channel(id).map(|dc| dc.label().to_owned());
                        if let Some(label) = label {
                            let _ = events.send(ClientEvent::DataOpen { label });
                        }
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let (kind, codecs) = match peer.pc.rtp_receiver(init.receiver_id) {
                            Some(mut receiver) => {
                                let kind = receiver.track().kind();
                                let codecs = receiver
                                    .get_parameters()
                                    .rtp_parameters
                                    .codecs
                                    .iter()
                                    .map(|c| (c.payload_type, c.rtp_codec.mime_type.clone()))
                                    .collect();
                                (kind, codecs)
                            }
                            None => (RtpCodecKind::Video, Vec::new()),
                        };
                        let kind = match kind {
                            RtpCodecKind::Audio => TrackKind::Audio,
                            _ => TrackKind::Video,
                        };
                        let participant_id = init.stream_ids.first().cloned().unwrap_or_default();
                        peer.tracks
                            .insert(init.track_id.clone(), (participant_id.clone(), kind));
                        let _ = events.send(ClientEvent::TrackOpened {
                            participant_id,
                            track_id: init.track_id,
                            kind,
                            codecs,
                        });
                    }
                    _ => {}
                }
                continue;
            }
            let next = if data_paused {
                peer.pc.poll_media_read()
            } else {
                peer.pc.poll_read()
            };
            if let Some(TaggedRTCMessage { message, .. }) = next {
                if let RTCMessage::DataChannelMessage(id, data) = &message {
                    if let Ok((header, payload)) = protocol::data::split_frame(&data.data) {
                        let _ = events.send(ClientEvent::Data {
                            reliable: Some(*id) == reliable_id,
                            header: serde_json::from_slice(header).unwrap_or_default(),
                            payload: payload.to_vec(),
                        });
                    }
                    continue;
                }
                if let RTCMessage::RtpPacket(track_id, packet) = message {
                    let (participant_id, kind) = peer
                        .tracks
                        .get(&track_id)
                        .cloned()
                        .unwrap_or_else(|| (String::new(), TrackKind::Video));
                    let _ = events.send(ClientEvent::Rtp {
                        participant_id,
                        kind,
                        sequence_number: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        ssrc: packet.header.ssrc,
                        payload_type: packet.header.payload_type,
                        marker: packet.header.marker,
                        payload_len: packet.payload.len(),
                        payload: packet.payload.clone(),
                    });
                }
                continue;
            }
            break;
        }
    }
}

fn read(peer: &mut Peer, n: usize, from: SocketAddr) {
    let _ = peer.pc.handle_read(TaggedBytesMut {
        now: Instant::now(),
        transport: TransportContext {
            local_addr: peer.local,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(&peer.buf[..n]),
    });
}
