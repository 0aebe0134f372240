//! Driving a room's peer connections: a datagram is fed to the connection it belongs to, due
//! timeouts are handled, and then everything the connection produced is drained: datagrams into
//! the outgoing batch, state changes, candidates, data channels, received RTP and RTCP, each
//! handed to the part it concerns. It never sends on a socket and never decodes media.

use std::time::Instant;

use protocol::{IceCandidate, LeaveReason, ServerMessage, Target};
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use tracing::debug;

use super::Room;
use crate::ids::TrackId;
use crate::io::{Datagram, PcKey};

impl Room {
    pub(super) fn on_datagram(&mut self, d: Datagram) {
        // A participant on its way out (its engine may have panicked earlier in this turn)
        // gets no more input.
        let Some(p) = self
            .participants
            .get_mut(&d.pc.participant)
            .filter(|p| p.doomed.is_none())
        else {
            return;
        };
        let pc = d.pc;
        if let Err(e) = p.transport(pc.subscriber).feed(d) {
            debug!(error = %e, "peer connection rejected a datagram");
        }
        self.service(pc, Instant::now());
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        self.counts.flush_into(&self.totals);
        self.flush_link_counts();
        self.router.tick(now);
        let due: Vec<PcKey> = self
            .participants
            .iter()
            .flat_map(|(k, p)| {
                [(false, p.publisher.deadline), (true, p.subscriber.deadline)]
                    .into_iter()
                    .filter(|(_, d)| d.is_some_and(|d| d <= now))
                    .map(|(subscriber, _)| PcKey {
                        participant: *k,
                        subscriber,
                    })
            })
            .collect();
        for pc in due {
            self.guarded(pc.participant, |room| {
                if let Some(p) = room.participants.get_mut(&pc.participant)
                    && let Err(e) = p.transport(pc.subscriber).pc().handle_timeout(now)
                {
                    debug!(error = %e, "peer connection timeout handling failed");
                }
                room.service(pc, now);
            });
        }
        // Subscriber offers that went unanswered too long are rolled back and made again.
        let expired: Vec<u64> = self
            .participants
            .iter_mut()
            .filter_map(|(k, p)| p.negotiator.expire(p.subscriber.pc(), now).then_some(*k))
            .collect();
        for key in expired {
            debug!(
                participant = key,
                "subscriber offer unanswered; offering again"
            );
            self.negotiate_subscriber(key);
        }
    }

    /// Drains everything a peer connection produced: datagrams, events, RTP/RTCP.
    pub(super) fn service(&mut self, pc: PcKey, now: Instant) {
        loop {
            let Some(p) = self.participants.get_mut(&pc.participant) else {
                return;
            };
            let data_paused = p.data.paused;
            let transport = p.transport(pc.subscriber);
            transport.flush(&mut self.outgoing);
            if let Some(event) = transport.pc().poll_event() {
                self.on_pc_event(pc, event, now);
                continue;
            }
            // A sender held back for a slow recipient keeps its data messages unread (media
            // still flows): SCTP's window then slows it down at the source.
            let message = if data_paused {
                transport.pc().poll_media_read()
            } else {
                transport.pc().poll_read()
            };
            if let Some(message) = message {
                self.on_pc_message(pc, message);
                continue;
            }
            transport.reschedule();
            return;
        }
    }

    fn on_pc_event(&mut self, pc: PcKey, event: RTCPeerConnectionEvent, now: Instant) {
        let key = pc.participant;
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                debug!(participant = %p.id, subscriber = pc.subscriber, %state, "connection state");
                match state {
                    RTCPeerConnectionState::Connected => {
                        let transport = p.transport(pc.subscriber);
                        transport.connected = true;
                        transport.down_since = None;
                        if pc.subscriber {
                            // Video needs a keyframe to start; ask for one from every
                            // publisher this participant receives.
                            for t in self.router.subscribed(key) {
                                self.request_keyframe_for(key, &t, now);
                            }
                        } else {
                            // Up again after an ICE restart: what was lost meanwhile left its
                            // subscribers' decoders waiting for a keyframe; ask for one now.
                            let own: Vec<TrackId> = p.published.values().cloned().collect();
                            for t in own {
                                if let Some(publication) = self.router.get_mut(&t) {
                                    publication.reset_keyframe_throttle();
                                }
                                self.request_keyframe(&t, now);
                            }
                        }
                    }
                    // No path for `ICE_FAILED_TIMEOUT` (see peer.rs), through every ICE restart
                    // the client tried: its client has given up or is gone.
                    RTCPeerConnectionState::Failed => {
                        p.doomed.get_or_insert(LeaveReason::Disconnected);
                    }
                    RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Closed => {
                        let transport = p.transport(pc.subscriber);
                        transport.connected = false;
                        transport.down_since.get_or_insert(now);
                    }
                    _ => {}
                }
            }
            RTCPeerConnectionEvent::OnIceCandidateEvent(event) => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                if let Ok(init) = event.candidate.to_json() {
                    p.send(ServerMessage::Candidate {
                        target: if pc.subscriber {
                            Target::Subscriber
                        } else {
                            Target::Publisher
                        },
                        candidate: Some(IceCandidate {
                            candidate: init.candidate,
                            sdp_mid: init.sdp_mid,
                            sdp_m_line_index: init.sdp_mline_index,
                            username_fragment: init.username_fragment,
                        }),
                    });
                }
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id))
                if !pc.subscriber =>
            {
                if let Some(p) = self.participants.get_mut(&key) {
                    let label = p
                        .publisher
                        .pc()
                        .data_channel(id)
                        .map(|dc| dc.label().to_owned());
                    if let Some(label) = label {
                        p.data.opened(id, &label);
                    }
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) if !pc.subscriber => {
                self.publish(key, init.track_id, init.receiver_id, init.ssrc, init.rid);
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) if !pc.subscriber => {
                let track = self
                    .participants
                    .get_mut(&key)
                    .and_then(|p| p.published.remove(&track_id));
                if let Some(track) = track {
                    self.unpublish(&track);
                }
            }
            _ => {}
        }
    }

    fn on_pc_message(&mut self, pc: PcKey, message: TaggedRTCMessage) {
        let now = message.now;
        match message.message {
            RTCMessage::DataChannelMessage(channel, data) if !pc.subscriber => {
                if let Some(out) = self.data_relay().relay(pc.participant, channel, data, now) {
                    let frame = crate::span::wire::data(self.id.as_str(), out.reliable, &out.frame);
                    for node in out.nodes {
                        if self.span.send(&node, frame.clone()) {
                            self.span.counts.packets_out += 1;
                            self.span.counts.bytes_out += frame.len() as u64;
                        }
                    }
                }
            }
            RTCMessage::RtpPacket(track_id, packet) if !pc.subscriber => {
                self.forward(pc.participant, &track_id, packet, now);
            }
            RTCMessage::RtcpPacket(_, packets) if pc.subscriber => {
                // Feedback from a subscriber about our down-tracks: relay keyframe requests to
                // the publisher. NACKs are answered by the sender's interceptor. The engine
                // files a compound packet under its first SSRC only, so each request's own
                // media SSRC decides which down-track it is about.
                let mut wanted: Vec<u32> = Vec::new();
                for p in &packets {
                    if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                        wanted.push(pli.media_ssrc);
                    } else if let Some(fir) = p.as_any().downcast_ref::<FullIntraRequest>() {
                        wanted.extend(fir.fir.iter().map(|e| e.ssrc));
                        wanted.push(fir.media_ssrc);
                    }
                }
                for ssrc in wanted {
                    let track = self
                        .router
                        .track_for_feedback(pc.participant, ssrc)
                        .cloned();
                    if let Some(track) = track {
                        debug!(%track, "subscriber asked for a keyframe");
                        self.counts.keyframe_requests_received += 1;
                        self.request_keyframe_for(pc.participant, &track, Instant::now());
                    }
                }
            }
            _ => {}
        }
    }
}
