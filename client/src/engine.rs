//! The client's background task ([`Engine`]): one loop over the WebSocket, the handle's
//! commands, both peer connections' sockets and timers, the keepalive and the published
//! media (with the SFU's keyframe requests and `subscribedLayers` passed to it). It never
//! hands anything back but [`ClientEvent`]s.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use protocol::{ClientMessage, IceCandidate, ServerMessage, Target, TrackKind};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::arrival::recv_stamped;
use crate::command::Command;
use crate::error::ClientError;
use crate::event::ClientEvent;
use crate::keyframe_requests::keyframe_requests;
use crate::media::MediaSource;
use crate::outgoing::{Outgoing, VideoEncodings};
use crate::peer::{Peer, read};

/// How often the client proves it is alive (the server drops a client silent for 15 s).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The state of one client's background task.
pub(crate) struct Engine {
    pub(crate) ws: Ws,
    pub(crate) publisher: Peer,
    pub(crate) subscriber: Peer,
    pub(crate) events: mpsc::UnboundedSender<ClientEvent>,
    pub(crate) media: Outgoing,
    pub(crate) reliable: Option<rtc::data_channel::RTCDataChannelId>,
    pub(crate) lossy: Option<rtc::data_channel::RTCDataChannelId>,
    pub(crate) data_paused: bool,
}

impl Engine {
    pub(crate) async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
            if let Some(due) = self.media.next_due()
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
                        // Read on until the server's close reply: dropping a socket with unread
                        // data resets the connection, and the reset can overtake the goodbye
                        // (the server would then keep the session for a resume).
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                            while let Some(Ok(_)) = self.ws.next().await {}
                        })
                        .await;
                        return;
                    }
                    Some(c) => self.on_command(c).await,
                },
                frame = self.ws.next() => {
                    if !self.on_frame(frame).await {
                        return;
                    }
                }
                r = recv_stamped(&self.publisher.socket, &mut self.publisher.buf) => {
                    if let Ok((n, peer, arrival)) = r {
                        read(&mut self.publisher, n, peer, arrival);
                    }
                }
                r = recv_stamped(&self.subscriber.socket, &mut self.subscriber.buf) => {
                    if let Ok((n, peer, arrival)) = r {
                        read(&mut self.subscriber, n, peer, arrival);
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
            sources: Default::default(),
        })
        .await;
        Ok(())
    }

    async fn start_publishing(
        &mut self,
        audio: Option<Box<dyn MediaSource>>,
        video: VideoEncodings,
    ) -> Result<(), ClientError> {
        self.media.add(&mut self.publisher.pc, audio, video)?;
        let offer = self.publisher.pc.create_offer(None)?;
        self.publisher
            .pc
            .set_local_description(Instant::now(), offer.clone())?;
        self.send_ws(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: offer.sdp,
            sources: Default::default(),
        })
        .await;
        Ok(())
    }

    /// Writes the media that is due on every published stream.
    fn send_media(&mut self, now: Instant) {
        if self.publisher.connected {
            self.media.send_due(&mut self.publisher.pc, now);
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
            ServerMessage::SubscribedLayers {
                client_track_id,
                layers,
                ..
            } => self.media.set_active_layers(client_track_id, layers),
            _ => {}
        }
        self.emit(ClientEvent::Message(message));
        true
    }

    async fn drain(&mut self, target: Target) {
        let events = self.events.clone();
        let data_paused = self.data_paused;
        let reliable_id = self.reliable;
        let media = &mut self.media;
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
                if let RTCMessage::RtcpPacket(_, packets) = &message {
                    for ssrc in keyframe_requests(packets) {
                        if let Some(layer) = media.keyframe_requested(ssrc) {
                            let _ = events.send(ClientEvent::KeyframeRequested { ssrc, layer });
                        }
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
