//! Admin requests (`Sfu::admin`), answered inside the room task like every other input: the
//! room's summary and detail, closing the room, removing a participant, an admin's mute, changed
//! grants, and a message from the server over the data relay. It never waits: an answer is built
//! from the room's state as it is.

use std::time::Instant;

use protocol::admin::{
    ParticipantDetail, RoomDetail, RoomSettings, RoomSummary, TrackDetail, rfc3339,
};
use protocol::{CloseReason, LeaveReason, ServerMessage};
use rtc::peer_connection::RTCPeerConnection;
use tracing::info;

use super::Room;
use crate::admin::{AdminCommand, AdminError, AdminReply};
use crate::ids::TrackId;
use crate::participant::kind_index;

impl Room {
    pub(super) fn on_admin(
        &mut self,
        command: AdminCommand,
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        match command {
            AdminCommand::Snapshot => Ok(AdminReply::Room(Box::new(self.detail(now)))),
            AdminCommand::Close => {
                info!(room = %self.id, "room closed by an admin");
                self.span_broadcast(&crate::span::wire::Control::Close);
                self.close_all(LeaveReason::RoomClosed, CloseReason::RoomClosed);
                self.closed_by_admin = true;
                Ok(AdminReply::Done)
            }
            AdminCommand::Remove { identity } => {
                let key = self.key_of(&identity)?;
                info!(room = %self.id, %identity, "participant removed by an admin");
                self.remove(key, LeaveReason::Removed, Some(CloseReason::Removed));
                Ok(AdminReply::Done)
            }
            AdminCommand::MuteTrack {
                identity,
                track,
                muted,
            } => self.admin_mute(&identity, &track, muted, now),
            AdminCommand::UpdateGrants { identity, grants } => {
                self.admin_grants(&identity, grants, now)
            }
            AdminCommand::SendData { topic, payload, to } => {
                for identity in &to {
                    self.key_of(identity)?;
                }
                self.data_relay()
                    .send_from_server(&topic, &payload, &to, now)
                    .map(AdminReply::Delivered)
                    .map_err(AdminError::Invalid)
            }
        }
    }

    fn key_of(&self, identity: &str) -> Result<u64, AdminError> {
        self.participants
            .iter()
            .find(|(_, p)| p.identity == identity)
            .map(|(k, _)| *k)
            .ok_or_else(|| AdminError::NoSuchParticipant {
                room: self.id.to_string(),
                identity: identity.to_owned(),
            })
    }

    pub(super) fn summary(&self) -> RoomSummary {
        let visible = self.participants.values().filter(|p| !p.grants.hidden);
        let publishers = visible.clone().filter(|p| !p.published.is_empty()).count();
        let (bitrate_in, bitrate_out) = self.router.bitrates();
        RoomSummary {
            name: self.id.to_string(),
            participant_count: visible.count(),
            publisher_count: publishers,
            created_at: rfc3339(self.created_at),
            age_seconds: crate::clock::unix_now().saturating_sub(self.created_at),
            bitrate_in,
            bitrate_out,
            settings: RoomSettings {
                max_participants: self.config.max_participants,
                empty_timeout_seconds: self.config.empty_room_timeout.as_secs(),
                codecs: self.config.video_codecs.clone(),
            },
            recording_state: None,
            node: None,
            nodes: Vec::new(),
        }
    }

    fn detail(&mut self, now: Instant) -> RoomDetail {
        let mut keys: Vec<u64> = self.participants.keys().copied().collect();
        keys.sort_by_key(|k| self.participants.get(k).map(|p| p.joined_at));
        let participants = keys
            .into_iter()
            .filter_map(|key| self.participant_detail(key, now))
            .collect();
        RoomDetail {
            summary: self.summary(),
            participants,
            recording: None,
            speakers: self.speaker_ids(),
        }
    }

    fn participant_detail(&mut self, key: u64, now: Instant) -> Option<ParticipantDetail> {
        let rtt_ms = {
            let p = self.participants.get_mut(&key)?;
            selected_pair_rtt(p.publisher.pc(), now)
        };
        let p = self.participants.get(&key)?;
        let candidate_type = p.candidate_type();
        let mut tracks: Vec<TrackDetail> = p
            .published
            .values()
            .filter_map(|t| self.router.get(t))
            .map(|pb| pb.detail())
            .collect();
        tracks.sort_by_key(|t| kind_index(t.kind));
        let mut subscriptions: Vec<String> = self
            .router
            .subscribed(key)
            .iter()
            .map(|t| t.to_string())
            .collect();
        subscriptions.sort();
        let state = if p.doomed.is_some() {
            "disconnected"
        } else if p.publisher.connected {
            "connected"
        } else {
            "connecting"
        };
        Some(ParticipantDetail {
            id: p.id.to_string(),
            identity: p.identity.clone(),
            name: p.name.clone(),
            joined_at: rfc3339(p.joined_at),
            state: state.into(),
            candidate_type,
            rtt_ms,
            grants: p.grants.clone(),
            tracks,
            subscriptions,
            node: None,
        })
    }

    fn admin_mute(
        &mut self,
        identity: &str,
        track: &str,
        muted: bool,
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        let key = self.key_of(identity)?;
        let no_track = || AdminError::NoSuchTrack {
            identity: identity.to_owned(),
            track: track.to_owned(),
        };
        let track_id: TrackId = self
            .participants
            .get(&key)
            .and_then(|p| p.published.values().find(|t| t.as_str() == track).cloned())
            .ok_or_else(no_track)?;
        let publication = self.router.get_mut(&track_id).ok_or_else(no_track)?;
        let changed = publication.muted != muted || publication.held_by_admin != muted;
        publication.muted = muted;
        publication.held_by_admin = muted;
        let detail = publication.detail();
        if changed {
            info!(room = %self.id, %identity, track, muted, "track mute set by an admin");
            self.events.emit(
                "track_muted",
                self.id.as_str(),
                serde_json::json!({
                    "identity": identity,
                    "trackId": track_id.to_string(),
                    "muted": muted,
                    "byAdmin": true,
                }),
            );
            let participant_id = self
                .participants
                .get(&key)
                .map(|p| p.id.to_string())
                .unwrap_or_default();
            self.span_broadcast(&crate::span::wire::Control::Muted {
                track: track_id.to_string(),
                muted,
            });
            // Everyone, the publisher included, learns the new state.
            let message = ServerMessage::TrackMuted {
                participant_id,
                track_id: track_id.to_string(),
                muted,
            };
            for p in self.participants.values_mut() {
                p.send(message.clone());
            }
            if !muted {
                // Subscribers' decoders need a fresh keyframe after the gap.
                if let Some(publication) = self.router.get_mut(&track_id) {
                    publication.reset_keyframe_throttle();
                }
                self.request_keyframe(&track_id, now);
            }
        }
        Ok(AdminReply::Track(detail))
    }

    fn admin_grants(
        &mut self,
        identity: &str,
        grants: protocol::Grants,
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        let key = self.key_of(identity)?;
        let Some(p) = self.participants.get_mut(&key) else {
            return Err(AdminError::Unavailable);
        };
        // A recorder stays one (hidden, never publishing) whatever the new grants say.
        let grants = protocol::Grants {
            recorder: grants.recorder || p.grants.recorder,
            ..grants
        }
        .effective();
        let before = std::mem::replace(&mut p.grants, grants.clone());
        info!(room = %self.id, %identity, ?grants, "grants changed by an admin");
        if before.can_publish && !grants.can_publish {
            let tracks: Vec<TrackId> = p.published.values().cloned().collect();
            for track in tracks {
                self.unpublish(&track);
            }
        }
        if before.can_subscribe && !grants.can_subscribe {
            let gone = self.router.unsubscribe_all(key);
            if let Some(sub) = self.participants.get_mut(&key) {
                for sender in gone {
                    let _ = sub.subscriber.pc().remove_track(sender);
                }
            }
            self.negotiate_subscriber(key);
        }
        if !before.can_subscribe && grants.can_subscribe {
            let tracks: Vec<TrackId> = self
                .router
                .publications()
                .filter(|pb| pb.owner != key)
                .map(|pb| pb.id.clone())
                .collect();
            for track in tracks {
                self.subscribe(key, &track);
            }
            self.negotiate_subscriber(key);
        }
        self.participant_detail(key, now)
            .map(|d| AdminReply::Participant(Box::new(d)))
            .ok_or(AdminError::Unavailable)
    }
}

/// The round-trip time of a connection's selected ICE pair, in milliseconds.
fn selected_pair_rtt(pc: &mut RTCPeerConnection, now: Instant) -> Option<f64> {
    use rtc::statistics::StatsSelector;
    let report = pc.get_stats(now, StatsSelector::None);
    let selected_id = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.clone())
        .filter(|id| !id.is_empty());
    let pair = report.candidate_pairs().find(|pair| match &selected_id {
        Some(id) => pair.stats.id == *id,
        None => pair.nominated,
    });
    let pair = pair?;
    (pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1000.0)
}
