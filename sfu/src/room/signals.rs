//! What a participant's signaling connection asks of its room: its publisher offer, its answer
//! to our subscriber offer, trickled candidates, mute (told to the others coalesced, last state
//! wins), leave; and our subscriber offers. The SDP work is the negotiator's; this part applies
//! its outcome and tells the client. It never reads datagrams.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use protocol::{ErrorCode, IceCandidate, ServerMessage, Target, TrackKind, TrackSource};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use tracing::{debug, warn};

use super::Room;
use crate::ids::TrackId;
use crate::io::{PcKey, RoomInput, Route};
use crate::negotiator::{AnswerError, answer_publisher_offer, offers_to_send_media};
use crate::participant::kind_index;
use crate::session::SessionCommand;
use crate::transport::CandidateOutcome;

/// How often state changes that wait for a slow receiver are tried again in a quiet room.
const STATE_FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// How long a subscriber connection may stay down before we restart its ICE ourselves.
const STUCK_AFTER: Duration = Duration::from_secs(10);

impl Room {
    pub(crate) fn on_signal(&mut self, key: u64, command: SessionCommand) {
        let now = Instant::now();
        match command {
            SessionCommand::PublisherOffer { sdp, sources } => {
                self.on_publisher_offer(key, sdp, sources, now)
            }
            SessionCommand::TrackSettings(settings) => self.on_track_settings(key, settings, now),
            SessionCommand::SubscriberAnswer(sdp) => self.on_subscriber_answer(key, sdp, now),
            SessionCommand::Candidate(target, candidate) => {
                self.on_candidate(key, target, candidate, now)
            }
            SessionCommand::Mute(kind, muted) => self.on_mute(key, kind, muted),
            // The client saw its network change: offer with new ICE credentials on both sides.
            SessionCommand::RestartIce => self.restart_subscriber_ice(key, now),
            SessionCommand::Leave(reason) => self.remove(key, reason, None),
            SessionCommand::ViewerOffer { sdp, participant } => {
                self.on_viewer_offer(key, sdp, participant, now)
            }
        }
    }

    fn on_publisher_offer(
        &mut self,
        key: u64,
        sdp: String,
        sources: BTreeMap<String, TrackSource>,
        now: Instant,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        debug!(participant = %p.id, ?sources, "publisher offer");
        p.note_sources(sources);
        p.remember_candidates(&sdp);
        if !p.grants.can_publish && offers_to_send_media(&sdp) {
            p.send(ServerMessage::Error {
                code: ErrorCode::PermissionDenied,
                message: "your token does not grant canPublish: offer without audio or video \
                          tracks to send"
                    .into(),
            });
            return;
        }
        let sending = sending_tracks(&sdp);
        match answer_publisher_offer(p.publisher.pc(), sdp, now) {
            Ok(answer) => {
                // A first answer, or one to an ICE restart, brings a new ufrag to route by.
                if let Some(ufrag) = p.publisher.learn_local_ufrag(&answer) {
                    self.sockets
                        .register(&ufrag, route(&self.media_tx, key, false));
                }
                p.send(ServerMessage::Answer {
                    target: Target::Publisher,
                    sdp: answer,
                });
                p.trickle_candidates(Target::Publisher);
                p.publisher.add_held_candidates();
                // A track the client stopped sending (its m-line now inactive or rejected, as
                // after a screen share ends) is unpublished: the engine does not close it.
                let stopped: Vec<TrackId> = p
                    .published
                    .iter()
                    .filter(|(rtc_id, _)| stopped_in(&sending, rtc_id))
                    .map(|(_, t)| t.clone())
                    .collect();
                for track in stopped {
                    self.unpublish(&track);
                }
            }
            Err(e) => p.send(ServerMessage::Error {
                code: ErrorCode::InvalidSdp,
                message: format!("the publisher offer was refused: {e}"),
            }),
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: false,
            },
            now,
        );
    }

    fn on_subscriber_answer(&mut self, key: u64, sdp: String, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.remember_candidates(&sdp);
        let again = match p.negotiator.answer(p.subscriber.pc(), sdp, now) {
            Ok(again) => again,
            Err(e) => {
                p.send(ServerMessage::Error {
                    code: ErrorCode::InvalidSdp,
                    message: e.to_string(),
                });
                if let AnswerError::Refused(_) = e {
                    // The offer was rolled back: offer the current tracks again, so a bad
                    // answer never leaves the participant without its tracks.
                    self.negotiate_subscriber(key);
                }
                return;
            }
        };
        p.subscriber.add_held_candidates();
        self.router.resolve_payload_types(p, key);
        if again {
            self.negotiate_subscriber(key);
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: true,
            },
            now,
        );
    }

    fn on_candidate(
        &mut self,
        key: u64,
        target: Target,
        candidate: Option<IceCandidate>,
        now: Instant,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let Some(c) = candidate else {
            return; // End of candidates: nothing to do for a full ICE agent with host candidates.
        };
        if c.candidate.is_empty() {
            return;
        }
        p.remember_candidates(&c.candidate);
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        let subscriber = target == Target::Subscriber;
        match p.transport(subscriber).add_remote_candidate(init) {
            Ok(CandidateOutcome::Held) => return,
            Ok(CandidateOutcome::Added) => {}
            Err(e) => p.send(ServerMessage::Error {
                code: ErrorCode::InvalidCandidate,
                message: format!("the ICE candidate was refused: {e}"),
            }),
        }
        self.service(
            PcKey {
                participant: key,
                subscriber,
            },
            now,
        );
    }

    fn on_mute(&mut self, key: u64, kind: TrackKind, muted: bool) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.wanted_mute[kind_index(kind)] = muted;
        let participant_id = p.id.to_string();
        let identity = p.identity.clone();
        let Some(track) = self.router.find_owned(p, TrackSource::default_for(kind)) else {
            return;
        };
        if let Some(publication) = self.router.get_mut(&track) {
            if publication.muted == muted {
                return;
            }
            publication.muted = muted;
        }
        self.events.emit(
            "track_muted",
            self.id.as_str(),
            serde_json::json!({
                "identity": identity,
                "participantId": participant_id,
                "trackId": track.to_string(),
                "muted": muted,
                "byAdmin": false,
            }),
        );
        self.span_broadcast(&crate::span::wire::Control::Muted {
            track: track.to_string(),
            muted,
        });
        let message = ServerMessage::TrackMuted {
            participant_id,
            track_id: track.to_string(),
            muted,
        };
        // Coalesced per receiver: a participant toggling as fast as it can never fills anyone's
        // queue, and everyone ends up with its last state.
        for (other, p) in self.participants.iter_mut() {
            if *other != key {
                p.send_state(key, kind, message.clone());
            }
        }
    }

    /// Passes on the coalesced state changes that waited for their receivers to read earlier
    /// ones (after every turn of the room, and on a short timer while some wait).
    pub(super) fn flush_state_changes(&mut self) {
        for p in self.participants.values_mut() {
            if p.has_waiting_states() {
                p.flush_states();
            }
        }
    }

    /// When to pass on waiting state changes next, if some wait for their receivers.
    pub(super) fn state_flush_deadline(&self) -> Option<Instant> {
        self.participants
            .values()
            .any(|p| p.has_waiting_states())
            .then(|| Instant::now() + STATE_FLUSH_INTERVAL)
    }

    /// Restarts ICE on a subscriber connection: the next offer carries new credentials.
    fn restart_subscriber_ice(&mut self, key: u64, now: Instant) {
        if let Some(p) = self.participants.get_mut(&key) {
            debug!(participant = %p.id, "ICE restart on the subscriber connection");
            p.subscriber.pc().restart_ice();
            p.subscriber.restarted_at = Some(now);
        }
        self.negotiate_subscriber(key);
    }

    /// We are the controlling ICE agent of every subscriber connection, so retrying a path that
    /// went down is ours to do: a connection down for [`STUCK_AFTER`] (and not restarted within
    /// that time) is restarted from our side. Browsers may call the connection up while every
    /// check of ours failed during an outage, and then never ask again.
    pub(super) fn restart_stuck_subscribers(&mut self, now: Instant) {
        let stuck: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| {
                let t = &p.subscriber;
                !p.viewer
                    && !t.connected
                    && t.down_since.is_some_and(|at| now >= at + STUCK_AFTER)
                    && t.restarted_at.is_none_or(|at| now >= at + STUCK_AFTER)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in stuck {
            self.restart_subscriber_ice(key, now);
        }
    }

    /// Offers the subscriber connection's current tracks, or queues another round if an offer
    /// is already waiting for its answer.
    pub(super) fn negotiate_subscriber(&mut self, key: u64) {
        let now = Instant::now();
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        // A WHEP viewer's client made the only offer its connection ever gets.
        if p.viewer {
            return;
        }
        match p.negotiator.offer(p.subscriber.pc(), now) {
            Ok(Some(sdp)) => {
                debug!(participant = %p.id, %sdp, "subscriber offer");
                if let Some(ufrag) = p.subscriber.learn_local_ufrag(&sdp) {
                    self.sockets
                        .register(&ufrag, route(&self.media_tx, key, true));
                }
                p.send(ServerMessage::Offer {
                    target: Target::Subscriber,
                    sdp,
                });
                p.trickle_candidates(Target::Subscriber);
            }
            Ok(None) => return,
            Err(e) => warn!(participant = %p.id, error = %e, "could not create a subscriber offer"),
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: true,
            },
            now,
        );
    }
}

/// Where the socket sends datagrams for one of a participant's connections.
pub(super) fn route(
    room: &tokio::sync::mpsc::Sender<RoomInput>,
    participant: u64,
    subscriber: bool,
) -> Route {
    Route {
        room: room.clone(),
        pc: PcKey {
            participant,
            subscriber,
        },
    }
}

/// Which of the client's tracks (`a=msid` track ids) an offer still sends: `(sending, named)`,
/// the ids of sections that send (not rejected with port 0, and `sendrecv` or `sendonly`, the
/// default) and of every section that names one.
fn sending_tracks(
    sdp: &str,
) -> (
    std::collections::HashSet<String>,
    std::collections::HashSet<String>,
) {
    let mut sending = std::collections::HashSet::new();
    let mut named = std::collections::HashSet::new();
    let mut close = |section: Option<(bool, Option<&str>)>| {
        if let Some((send, Some(track))) = section {
            named.insert(track.to_owned());
            if send {
                sending.insert(track.to_owned());
            }
        }
    };
    let mut section: Option<(bool, Option<&str>)> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            close(section.take());
            let rejected = m.split_whitespace().nth(1) == Some("0");
            section = Some((!rejected, None));
        } else if let Some((send, track)) = section.as_mut() {
            match line {
                "a=inactive" | "a=recvonly" => *send = false,
                _ => {
                    if let Some(msid) = line.strip_prefix("a=msid:") {
                        *track = msid.split_whitespace().nth(1);
                    }
                }
            }
        }
    }
    close(section);
    (sending, named)
}

/// Whether a published track (by the client's id) stopped being sent in an offer: its section
/// turned inactive or was rejected, or it is gone from an offer that names its tracks.
fn stopped_in(
    offer: &(
        std::collections::HashSet<String>,
        std::collections::HashSet<String>,
    ),
    track: &str,
) -> bool {
    let (sending, named) = offer;
    !sending.contains(track) && (named.contains(track) || !sending.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{sending_tracks, stopped_in};

    #[test]
    fn only_sending_sections_count() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\na=msid:s mic\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:s cam\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\na=msid:s screen\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=msid:s old\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let offer = sending_tracks(sdp);
        let mut tracks: Vec<&String> = offer.0.iter().collect();
        tracks.sort_unstable();
        assert_eq!(tracks, ["cam", "mic"]);
        assert!(stopped_in(&offer, "screen") && stopped_in(&offer, "old"));
        assert!(stopped_in(&offer, "vanished") && !stopped_in(&offer, "cam"));
        // An offer that names no tracks stops none.
        let bare = sending_tracks("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
        assert!(!stopped_in(&bare, "cam"));
    }
}
