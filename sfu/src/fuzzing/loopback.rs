//! A publisher over real UDP on 127.0.0.1, for the signaling fuzz targets: it joins a room of a
//! running [`Sfu`], connects an `rtc` client through the room's media socket and sends a VP8
//! keyframe every 200 ms, so the room has a track and every other participant gets a subscriber
//! offer to answer. Its socket is bound to 127.0.0.1 and only ever answers the room.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::{Grants, ServerMessage, Target};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::client::{SetupError, Vp8Source, client_pc, video_track};
use crate::ids::RoomId;
use crate::session::{JoinParams, Session, SessionCommand, SessionEvent};
use crate::sfu::Sfu;

const SSRC: u32 = 0x5eed_0002;
const KEYFRAME_EVERY: Duration = Duration::from_millis(200);

/// The running publisher; dropping it stops the client (and so removes the participant).
pub struct LoopbackPublisher {
    cancel: CancellationToken,
}

impl Drop for LoopbackPublisher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Client {
    socket: UdpSocket,
    local: SocketAddr,
    pc: RTCPeerConnection,
    sender: RTCRtpSenderId,
    source: Vp8Source,
    session: Session,
    connected: bool,
}

/// Joins `room` as `identity` and starts publishing video over 127.0.0.1. Returns once the
/// offer is on its way; the track appears in the room when the first packet arrives.
pub async fn start(
    sfu: &Sfu,
    room: RoomId,
    identity: &str,
) -> Result<LoopbackPublisher, SetupError> {
    let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut session = sfu
        .join(
            room,
            JoinParams {
                identity: identity.to_owned(),
                name: identity.to_owned(),
                grants: Grants {
                    can_subscribe: false,
                    ..Grants::default()
                },
                ice_servers: Vec::new(),
            },
        )
        .await
        .map_err(|e| format!("join: {e}"))?;
    let mut pc = client_pc(local)?;
    let sender = pc
        .add_track(video_track(SSRC))
        .map_err(|e| format!("add track: {e}"))?;
    let offer = pc.create_offer(None).map_err(|e| format!("offer: {e}"))?;
    pc.set_local_description(Instant::now(), offer.clone())
        .map_err(|e| format!("local offer: {e}"))?;
    if !session
        .handle
        .send(SessionCommand::PublisherOffer {
            sdp: offer.sdp,
            sources: Default::default(),
        })
        .await
    {
        return Err("the room closed".into());
    }
    let cancel = CancellationToken::new();
    let client = Client {
        socket,
        local,
        pc,
        sender,
        source: Vp8Source::new(SSRC),
        session,
        connected: false,
    };
    tokio::spawn(client.run(cancel.clone()));
    Ok(LoopbackPublisher { cancel })
}

impl Client {
    async fn run(mut self, cancel: CancellationToken) {
        let mut buf = vec![0u8; 2048];
        let mut next_keyframe = Instant::now();
        loop {
            self.flush().await;
            let now = Instant::now();
            let mut wake = now + KEYFRAME_EVERY;
            if self.connected {
                if now >= next_keyframe {
                    next_keyframe = now + KEYFRAME_EVERY;
                    let packet = self.source.keyframe();
                    if let Some(mut sender) = self.pc.rtp_sender(self.sender) {
                        let _ = sender.write_rtp(now, packet);
                    }
                    continue;
                }
                wake = wake.min(next_keyframe);
            }
            if let Some(timeout) = self.pc.poll_timeout() {
                wake = wake.min(timeout);
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                event = self.session.events.recv() => match event {
                    Some(SessionEvent::Message(message)) => self.on_message(message),
                    Some(SessionEvent::Closed(_)) | None => break,
                },
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        let _ = self.pc.handle_read(TaggedBytesMut {
                            now: Instant::now(),
                            transport: TransportContext {
                                local_addr: self.local,
                                peer_addr: from,
                                ecn: None,
                                transport_protocol: TransportProtocol::UDP,
                            },
                            message: BytesMut::from(&buf[..n]),
                        });
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let _ = self.pc.handle_timeout(Instant::now());
                }
            }
        }
        let _ = self.pc.close();
        self.flush().await;
    }

    /// Sends what the connection wrote and reads what it has for the application.
    async fn flush(&mut self) {
        while let Some(out) = self.pc.poll_write() {
            let _ = self
                .socket
                .send_to(&out.message, out.transport.peer_addr)
                .await;
        }
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                self.connected = state == RTCPeerConnectionState::Connected;
            }
        }
        while self.pc.poll_read().is_some() {}
    }

    fn on_message(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Answer {
                target: Target::Publisher,
                sdp,
            } => {
                if let Ok(answer) = RTCSessionDescription::answer(sdp) {
                    let _ = self.pc.set_remote_description(Instant::now(), answer);
                }
            }
            ServerMessage::Candidate {
                target: Target::Publisher,
                candidate: Some(candidate),
            } => {
                let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    ..Default::default()
                });
            }
            _ => {}
        }
    }
}
