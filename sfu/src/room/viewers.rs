//! WHEP viewers: a hidden participant whose client offers its subscriber connection once
//! (receive only) and gets the audio and video of one participant: the one it names, or else
//! the room's active speaker (the loudest now, else the latest one heard, else the first
//! participant who publishes video). The choice is made when the offer arrives and not changed
//! afterwards (the client cannot be offered new tracks: WHEP has no server offers). It never
//! publishes anything for the viewer and never offers to it.

use std::time::Instant;

use protocol::{ErrorCode, ServerMessage, Target, TrackKind, TrackSource};
use rtc::peer_connection::sdp::RTCSessionDescription;
use tracing::{debug, info};

use super::Room;
use super::signals::route;
use crate::ids::TrackId;
use crate::io::PcKey;

impl Room {
    /// Answers a viewer's offer with the chosen participant's tracks, or tells it why not.
    pub(super) fn on_viewer_offer(
        &mut self,
        key: u64,
        sdp: String,
        wanted: Option<String>,
        now: Instant,
    ) {
        let Some(p) = self.participants.get(&key) else {
            return;
        };
        let fresh = !p.viewer
            && p.grants.hidden
            && !p.grants.can_subscribe
            && p.published.is_empty()
            && self.router.subscribed(key).is_empty();
        if !fresh {
            self.refuse(
                key,
                ErrorCode::InvalidMessage,
                "only a new hidden participant that does not subscribe may become a viewer, once"
                    .into(),
            );
            return;
        }
        let source = match &wanted {
            Some(identity) => self.publisher_named(identity),
            None => self.featured_publisher(),
        };
        let Some(source) = source else {
            let message = match wanted {
                Some(identity) => format!(
                    "participant {identity:?} is not in room {} or publishes nothing; leave \
                     out `participant` to watch the active speaker",
                    self.id
                ),
                None => format!(
                    "nobody publishes audio or video in room {} yet; try again once someone does",
                    self.id
                ),
            };
            self.refuse(key, ErrorCode::UnknownParticipant, message);
            return;
        };
        let tracks = self.tracks_to_view(source);
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let applied = RTCSessionDescription::offer(sdp)
            .and_then(|offer| p.subscriber.pc().set_remote_description(now, offer));
        if let Err(e) = applied {
            self.refuse(
                key,
                ErrorCode::InvalidSdp,
                format!("the offer was refused: {e}"),
            );
            return;
        }
        p.viewer = true;
        p.grants.can_subscribe = true;
        // Each track takes the offer's first free section of its kind.
        for track in &tracks {
            self.subscribe(key, track);
        }
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let answer = p.subscriber.pc().create_answer(None).and_then(|answer| {
            p.subscriber
                .pc()
                .set_local_description(now, answer.clone())
                .map(|()| answer.sdp)
        });
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                self.refuse(
                    key,
                    ErrorCode::InvalidSdp,
                    format!("the offer cannot be answered: {e}"),
                );
                return;
            }
        };
        if let Some(ufrag) = p.subscriber.learn_local_ufrag(&answer) {
            self.sockets
                .register(&ufrag, route(&self.media_tx, key, true));
        }
        info!(room = %self.id, participant = %p.id, source, tracks = tracks.len(), "viewer answered");
        p.send(ServerMessage::Answer {
            target: Target::Subscriber,
            sdp: answer,
        });
        self.router.resolve_payload_types(p, key);
        self.service(
            PcKey {
                participant: key,
                subscriber: true,
            },
            now,
        );
    }

    /// Tells a would-be viewer why its offer was refused.
    fn refuse(&mut self, key: u64, code: ErrorCode, message: String) {
        if let Some(p) = self.participants.get_mut(&key) {
            debug!(participant = %p.id, ?code, %message, "viewer refused");
            p.send(ServerMessage::Error { code, message });
        }
    }

    /// The local, visible participant `identity`, if it publishes something.
    fn publisher_named(&self, identity: &str) -> Option<u64> {
        self.participants
            .iter()
            .find(|(_, p)| p.identity == identity && !p.grants.hidden)
            .map(|(k, _)| *k)
            .filter(|k| self.publishes(*k, None))
    }

    /// The active speaker: the loudest now, else the latest one heard (while it publishes),
    /// else the first participant to have joined of those publishing video.
    fn featured_publisher(&self) -> Option<u64> {
        let local = |k: &u64| self.participants.contains_key(k) && self.publishes(*k, None);
        self.speakers
            .current()
            .iter()
            .map(|(k, _)| *k)
            .find(local)
            .or(self.last_speaker.filter(local))
            .or_else(|| {
                self.participants
                    .iter()
                    .filter(|(k, p)| {
                        !p.grants.hidden && self.publishes(**k, Some(TrackKind::Video))
                    })
                    .map(|(k, _)| *k)
                    .min()
            })
    }

    /// Whether participant `key` publishes a track (of `kind`, if given) here.
    fn publishes(&self, key: u64, kind: Option<TrackKind>) -> bool {
        self.router.publications().any(|pb| {
            pb.owner == key && pb.origin.is_none() && kind.is_none_or(|kind| pb.kind == kind)
        })
    }

    /// What a viewer of `owner` receives: one audio and one video track, the microphone and
    /// the camera first.
    fn tracks_to_view(&self, owner: u64) -> Vec<TrackId> {
        [TrackKind::Audio, TrackKind::Video]
            .into_iter()
            .filter_map(|kind| {
                let own = self
                    .router
                    .publications()
                    .filter(|pb| pb.owner == owner && pb.origin.is_none() && pb.kind == kind);
                own.min_by_key(|pb| pb.source != TrackSource::default_for(kind))
                    .map(|pb| pb.id.clone())
            })
            .collect()
    }
}
