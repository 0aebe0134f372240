//! A connected call in a room driven by hand ([`MemoryRoom`]), for the datagram fuzz target: a
//! publisher and a subscriber whose clients are real `rtc` peer connections that went through
//! ICE, DTLS and SRTP, with the harness carrying datagrams and signaling both ways. It never
//! opens a socket: the room's datagrams go to the clients in this process, or nowhere.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::{Grants, ServerMessage, Target};
use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::client::{SetupError, Vp8Source, client_pc, sdp_attribute, video_track};
use crate::config::SfuConfig;
use crate::data_channels::RELIABLE;
use crate::ids::RoomId;
use crate::memory::{MemberKey, MemoryRoom};
use crate::session::SessionCommand;

/// Longest the call may take to come up.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// Most rounds of carrying datagrams after one input.
const SETTLE_ROUNDS: usize = 64;
const PUBLISHER_SSRC: u32 = 0x5eed_0001;

/// One client connection: the publisher's publisher connection or the subscriber's subscriber
/// connection.
pub(crate) struct Peer {
    pub member: MemberKey,
    pub target: Target,
    pub address: SocketAddr,
    pub pc: RTCPeerConnection,
    pub connected: bool,
    /// RTP packets received (the subscriber's).
    pub received: u64,
    /// The publisher's `reliable` data channel, once open.
    pub reliable: Option<RTCDataChannelId>,
    /// The subscriber's receiver of the publisher's video, once it opened.
    pub receiver: Option<RTCRtpReceiverId>,
    /// The SSRC the subscriber receives the publisher's video on (its down-track's).
    pub remote_ssrc: u32,
    /// A `participantLeft` this client was told about.
    pub saw_leave: Option<String>,
}

impl Peer {
    fn new(member: MemberKey, target: Target, address: SocketAddr) -> Result<Self, SetupError> {
        Ok(Peer {
            member,
            target,
            address,
            pc: client_pc(address)?,
            connected: false,
            received: 0,
            reliable: None,
            receiver: None,
            remote_ssrc: 0,
            saw_leave: None,
        })
    }

    /// Reads everything the connection has for the application. True if there was anything.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.pc.poll_event() {
            any = true;
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.connected = state == RTCPeerConnectionState::Connected;
                }
                RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                    let label = self.pc.data_channel(id).map(|dc| dc.label().to_owned());
                    if label.as_deref() == Some(RELIABLE) {
                        self.reliable = Some(id);
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.receiver = Some(init.receiver_id);
                    self.remote_ssrc = init.ssrc;
                }
                _ => {}
            }
        }
        while let Some(message) = self.pc.poll_read() {
            any = true;
            if let RTCMessage::RtpPacket(..) = message.message {
                self.received += 1;
            }
        }
        any
    }

    /// Acts on a signaling message from the room; returns the reply to send, if any.
    fn on_message(&mut self, message: ServerMessage) -> Option<SessionCommand> {
        let now = Instant::now();
        match message {
            ServerMessage::Answer { target, sdp } if target == self.target => {
                if let Ok(answer) = RTCSessionDescription::answer(sdp) {
                    let _ = self.pc.set_remote_description(now, answer);
                }
                None
            }
            ServerMessage::Offer { target, sdp } if target == self.target => {
                let offer = RTCSessionDescription::offer(sdp).ok()?;
                self.pc.set_remote_description(now, offer).ok()?;
                let answer = self.pc.create_answer(None).ok()?;
                self.pc.set_local_description(now, answer.clone()).ok()?;
                Some(SessionCommand::SubscriberAnswer(answer.sdp))
            }
            ServerMessage::Candidate {
                target,
                candidate: Some(candidate),
            } if target == self.target => {
                // Our candidates are in the SDP too; a repeated one is refused, harmlessly.
                let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    ..Default::default()
                });
                None
            }
            ServerMessage::ParticipantLeft { identity, .. } => {
                self.saw_leave = Some(identity);
                None
            }
            _ => None,
        }
    }
}

/// The room's ICE credentials on the publisher's publisher connection, and the client's ufrag.
pub(crate) struct IceCredentials {
    pub room_ufrag: String,
    pub room_pwd: String,
    pub client_ufrag: String,
}

/// A room with a publisher (video and a `reliable` data channel) and a subscriber receiving the
/// video, both connected.
pub(crate) struct Call {
    pub room: MemoryRoom,
    pub publisher: Peer,
    pub subscriber: Peer,
    pub source: Vp8Source,
    pub sender: RTCRtpSenderId,
    pub ice: IceCredentials,
}

impl Call {
    /// Joins both participants and runs the call until the subscriber receives video and the
    /// publisher's data channel is open.
    pub fn connect() -> Result<Call, SetupError> {
        let room_address = SocketAddr::from(([127, 0, 0, 1], 7882));
        let config = SfuConfig {
            max_participants: 4,
            ..SfuConfig::default()
        };
        let id = RoomId::new("fuzz").map_err(|e| e.to_string())?;
        let mut room = MemoryRoom::new(id, room_address, config);
        let publisher = room
            .join("publisher", Grants::default())
            .map_err(|e| e.to_string())?;
        let subscriber_grants = Grants {
            can_publish: false,
            ..Grants::default()
        };
        let subscriber = room
            .join("subscriber", subscriber_grants)
            .map_err(|e| e.to_string())?;
        let mut publisher = Peer::new(
            publisher,
            Target::Publisher,
            SocketAddr::from(([127, 0, 0, 2], 20000)),
        )?;
        let subscriber = Peer::new(
            subscriber,
            Target::Subscriber,
            SocketAddr::from(([127, 0, 0, 2], 20001)),
        )?;
        let source = Vp8Source::new(PUBLISHER_SSRC);
        let sender = publisher
            .pc
            .add_track(video_track(PUBLISHER_SSRC))
            .map_err(|e| format!("add track: {e}"))?;
        publisher
            .pc
            .create_data_channel(RELIABLE, None)
            .map_err(|e| format!("data channel: {e}"))?;
        let offer = publisher
            .pc
            .create_offer(None)
            .map_err(|e| format!("offer: {e}"))?;
        publisher
            .pc
            .set_local_description(Instant::now(), offer.clone())
            .map_err(|e| format!("local offer: {e}"))?;
        room.command(
            publisher.member,
            SessionCommand::PublisherOffer {
                sdp: offer.sdp,
                sources: Default::default(),
            },
        );
        let mut call = Call {
            room,
            publisher,
            subscriber,
            source,
            sender,
            ice: IceCredentials {
                room_ufrag: String::new(),
                room_pwd: String::new(),
                client_ufrag: String::new(),
            },
        };
        call.come_up()?;
        call.ice = call.credentials()?;
        Ok(call)
    }

    fn come_up(&mut self) -> Result<(), SetupError> {
        let start = Instant::now();
        let mut last_keyframe: Option<Instant> = None;
        loop {
            let (p, s) = (&self.publisher, &self.subscriber);
            if p.connected && p.reliable.is_some() && s.connected && s.received > 0 {
                break;
            }
            if start.elapsed() > SETUP_LIMIT {
                return Err(format!(
                    "the call did not come up in {SETUP_LIMIT:?}: publisher connected {}, data \
                     channel {}, subscriber connected {}, packets received {}",
                    p.connected,
                    p.reliable.is_some(),
                    s.connected,
                    s.received
                ));
            }
            if p.connected && last_keyframe.is_none_or(|t| t.elapsed() >= Duration::from_millis(20))
            {
                last_keyframe = Some(Instant::now());
                let packet = self.source.keyframe();
                self.write_rtp(packet)
                    .map_err(|e| format!("write_rtp: {e}"))?;
            }
            if !self.pump() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.settle();
        Ok(())
    }

    fn credentials(&self) -> Result<IceCredentials, SetupError> {
        let remote = self
            .publisher
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or("the publisher has no answer")?;
        let local = self
            .publisher
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or("the publisher has no offer")?;
        Ok(IceCredentials {
            room_ufrag: sdp_attribute(&remote, "ice-ufrag").ok_or("no ice-ufrag in the answer")?,
            room_pwd: sdp_attribute(&remote, "ice-pwd").ok_or("no ice-pwd in the answer")?,
            client_ufrag: sdp_attribute(&local, "ice-ufrag").ok_or("no ice-ufrag in the offer")?,
        })
    }

    /// Sends an RTP packet on the publisher's video sender (interceptors, SRTP).
    pub fn write_rtp(&mut self, packet: rtc::rtp::Packet) -> Result<(), rtc::shared::error::Error> {
        match self.publisher.pc.rtp_sender(self.sender) {
            Some(mut sender) => sender.write_rtp(Instant::now(), packet),
            None => Ok(()),
        }
    }

    /// Hands a datagram to the room as coming from `peer`'s address, on its connection.
    pub fn deliver(&mut self, subscriber: bool, data: &[u8]) {
        let peer = if subscriber {
            &self.subscriber
        } else {
            &self.publisher
        };
        let (member, target, from) = (peer.member, peer.target, peer.address);
        self.room
            .datagram(member, target, from, BytesMut::from(data), Instant::now());
    }

    /// Why the call is no longer whole, if it is not: a client disconnected, or was told that
    /// the other one left.
    pub fn broken(&self) -> Option<String> {
        for peer in [&self.publisher, &self.subscriber] {
            if !peer.connected {
                return Some(format!(
                    "the {:?} client is no longer connected",
                    peer.target
                ));
            }
            if let Some(identity) = &peer.saw_leave {
                return Some(format!("{identity} left the room"));
            }
        }
        None
    }

    /// Carries datagrams and messages until nothing moves (timers that are due included).
    pub fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            if !self.pump() {
                break;
            }
        }
    }

    /// One round of carrying datagrams and messages both ways, and of due timers. True if
    /// anything moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        let now = Instant::now();
        for peer in [&mut self.publisher, &mut self.subscriber] {
            while let Some(out) = peer.pc.poll_write() {
                moved = true;
                self.room.datagram(
                    peer.member,
                    peer.target,
                    out.transport.local_addr,
                    out.message,
                    now,
                );
            }
        }
        for sent in self.room.take_sent() {
            moved = true;
            let peer = if sent.to == self.publisher.address {
                &mut self.publisher
            } else if sent.to == self.subscriber.address {
                &mut self.subscriber
            } else {
                continue; // a candidate named by an input: nobody there
            };
            let _ = peer.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: sent.to,
                    peer_addr: sent.from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&sent.data[..]),
            });
        }
        for peer in [&mut self.publisher, &mut self.subscriber] {
            moved |= peer.drain();
            for message in self.room.messages(peer.member) {
                moved = true;
                if let Some(reply) = peer.on_message(message) {
                    self.room.command(peer.member, reply);
                }
            }
        }
        let now = Instant::now();
        for peer in [&mut self.publisher, &mut self.subscriber] {
            if peer.pc.poll_timeout().is_some_and(|t| t <= now) {
                moved = true;
                let _ = peer.pc.handle_timeout(now);
            }
        }
        if self.room.next_deadline() <= now {
            moved = true;
            self.room.timers(now);
        }
        moved
    }
}
