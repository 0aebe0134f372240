//! Who is in a room: joining (with the replacement of an earlier session of the same identity,
//! the room-full check, hidden participants and recorders), leaving, and reaping participants
//! marked for removal. It never touches media: a leaving participant's tracks are unpublished
//! through the tracks part, and its connections are closed.

use std::sync::atomic::Ordering;
use std::time::Instant;

use protocol::{CloseReason, LeaveReason, ParticipantInfo, ServerMessage};
use rtc::sansio::Protocol;
use tracing::info;

use super::Room;
use crate::error::JoinError;
use crate::ids::{ParticipantId, TrackId};

use crate::downlink_estimator::SharedEstimate;
use crate::participant::Participant;
use crate::peer::ServerPeer;
use crate::session::{JoinParams, Session, SessionEvent, SessionHandle};
use crate::transport::Transport;

impl Room {
    pub(crate) fn join(&mut self, key: u64, mut params: JoinParams) -> Result<Session, JoinError> {
        params.grants = params.grants.effective();
        // The same identity joining again replaces the old session (a reconnect).
        let previous: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.identity == params.identity)
            .map(|(k, _)| *k)
            .collect();
        let reconnected = !previous.is_empty();
        for old in previous {
            self.remove(old, LeaveReason::Replaced, Some(CloseReason::Replaced));
        }
        // The room's limit counts every node's participants; this node's own limit, its own.
        let here = self.visible_count();
        if !params.grants.hidden && here + self.span.remotes.len() >= self.config.max_participants {
            return Err(JoinError::RoomFull {
                room: self.id.clone(),
                max: self.config.max_participants,
            });
        }
        if let Some(limit) = self.config.room_participants_per_node
            && !params.grants.hidden
            && here >= limit
        {
            return Err(JoinError::NodeFull {
                room: self.id.clone(),
                limit,
            });
        }
        let now = Instant::now();
        let candidates: Vec<_> = self.sockets.announced().collect();
        let downlink = SharedEstimate::default();
        let new_transport = |estimate: Option<SharedEstimate>| -> Result<Transport, JoinError> {
            ServerPeer::new(
                now,
                &candidates,
                &self.config.video_codecs,
                &self.totals,
                estimate,
            )
            .map(Transport::new)
            .map_err(|e| JoinError::Engine(e.to_string()))
        };
        // Datagrams are routed to them once our first SDP names their ufrags (`route_sdp`).
        let publisher = new_transport(None)?;
        let subscriber = new_transport(Some(downlink.clone()))?;
        let id = ParticipantId::random();
        let (mut participant, events_rx) =
            Participant::new(id.clone(), &params, publisher, subscriber);
        participant.downlink.estimate = downlink;
        let hidden = participant.grants.hidden;
        let can_subscribe = participant.grants.can_subscribe;
        info!(room = %self.id, participant = %id, identity = %participant.identity, "participant joined");
        self.events.emit(
            if reconnected {
                "participant_reconnected"
            } else {
                "participant_joined"
            },
            self.id.as_str(),
            serde_json::json!({
                "identity": participant.identity,
                "participantId": id.to_string(),
                "name": participant.name,
                "hidden": participant.grants.hidden,
            }),
        );
        self.participants.insert(key, participant);
        self.totals.participants.fetch_add(1, Ordering::Relaxed);
        if self.occupied() {
            self.empty_since = None;
        }

        let you = self.participant_info(key).ok_or(JoinError::ShuttingDown)?;
        let mut others: Vec<ParticipantInfo> = self
            .participants
            .iter()
            .filter(|(k, p)| **k != key && !p.grants.hidden)
            .filter_map(|(k, _)| self.participant_info(*k))
            .collect();
        others.extend(self.remote_infos());
        if let Some(p) = self.participants.get_mut(&key) {
            p.send(ServerMessage::Joined {
                room: self.id.to_string(),
                you: you.clone(),
                participants: others,
                ice_servers: params.ice_servers,
                // Signaling adds these: resuming a dropped WebSocket is its business.
                resume: None,
                nodes: Vec::new(),
            });
        }
        if !hidden {
            self.span_broadcast(&crate::span::wire::Control::Joined {
                id: you.id.clone(),
                identity: you.identity.clone(),
                name: you.name.clone(),
            });
            self.broadcast(key, ServerMessage::ParticipantJoined { participant: you });
        }
        if can_subscribe {
            for track in self.router.track_ids() {
                self.subscribe(key, &track);
            }
            self.negotiate_subscriber(key);
        }
        Ok(Session {
            participant_id: id,
            room: self.id.clone(),
            events: events_rx,
            handle: SessionHandle::new(key, self.signal_tx.clone()),
        })
    }

    /// Removes a participant: its publications leave every subscriber, the others are told.
    pub(super) fn remove(&mut self, key: u64, reason: LeaveReason, close: Option<CloseReason>) {
        // Its tracks go first, while it is still a member: the others are told
        // `trackUnpublished` for each, then `participantLeft`.
        let Some(tracks) = self
            .participants
            .get(&key)
            .map(|p| p.published.values().cloned().collect::<Vec<TrackId>>())
        else {
            return;
        };
        for track in tracks {
            self.unpublish(&track);
        }
        let Some(mut p) = self.participants.remove(&key) else {
            return;
        };
        self.forget_speaker(key);
        self.totals.participants.fetch_sub(1, Ordering::Relaxed);
        info!(room = %self.id, participant = %p.id, ?reason, "participant left");
        if reason != LeaveReason::Replaced {
            self.events.emit(
                "participant_left",
                self.id.as_str(),
                serde_json::json!({
                    "identity": p.identity,
                    "participantId": p.id.to_string(),
                    "reason": reason,
                }),
            );
        }
        if let Some(close) = close {
            p.send_event(SessionEvent::Closed(close));
        }
        for transport in [&mut p.publisher, &mut p.subscriber] {
            for ufrag in transport.ufrags() {
                self.sockets.unregister(ufrag);
            }
            let _ = transport.pc().close();
            transport.flush(&mut self.outgoing);
        }
        self.router.unsubscribe_all(key);
        if !p.grants.hidden {
            self.span_broadcast(&crate::span::wire::Control::Left {
                id: p.id.to_string(),
                reason,
            });
            self.broadcast(
                key,
                ServerMessage::ParticipantLeft {
                    participant_id: p.id.to_string(),
                    identity: p.identity.clone(),
                    reason,
                },
            );
        }
        if !self.occupied() && self.empty_since.is_none() {
            self.empty_since = Some(Instant::now());
        }
    }

    /// Removes participants marked for removal during the last pass.
    pub(super) fn reap(&mut self) {
        let doomed: Vec<(u64, LeaveReason)> = self
            .participants
            .iter()
            .filter_map(|(k, p)| p.doomed.map(|r| (*k, r)))
            .collect();
        for (key, reason) in doomed {
            self.remove(key, reason, Some(CloseReason::Disconnected));
        }
    }
}
