//! A room's tracks: publishing one (one per source per participant: camera, microphone, screen,
//! screen audio; a new one replaces the old), adding the simulcast layers of one as they arrive,
//! unpublishing, subscribing a participant to one, and handing each publisher packet to
//! the router's fan-out. Events and messages about tracks go out from here. It never rewrites a
//! packet itself: subscriptions do.

use std::sync::atomic::Ordering;
use std::time::Instant;

use protocol::{Layer, ServerMessage, TrackKind, TrackSource};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use tracing::{debug, info, warn};

use super::Room;
use crate::ids::TrackId;
use crate::participant::kind_index;
use crate::publication::{Publication, PublicationParams};

impl Room {
    /// The per-packet path: one publisher packet to every subscription of its track.
    pub(super) fn forward(
        &mut self,
        publisher: u64,
        rtc_track_id: &str,
        packet: rtc::rtp::Packet,
        now: Instant,
    ) {
        let Some(track) = self
            .participants
            .get(&publisher)
            .and_then(|p| p.published.get(rtc_track_id))
            .cloned()
        else {
            return;
        };
        if self.span.active() {
            self.tap(&track, &packet);
        }
        self.forward_track(track, packet, now);
    }

    /// One packet of `track` (a local publisher's or one from another node) to every local
    /// subscription of it.
    pub(super) fn forward_track(&mut self, track: TrackId, packet: rtc::rtp::Packet, now: Instant) {
        let wiring = crate::router::Wiring {
            participants: &mut self.participants,
            outgoing: &mut self.outgoing,
            counts: &mut self.counts,
        };
        let wanted = self.router.forward(
            &track,
            packet,
            now,
            wiring,
            &mut self.speakers,
            self.config.parallel_fanout,
        );
        if wanted != [false; 3] {
            self.request_layer_keyframes(&track, wanted, now);
        }
    }

    pub(super) fn publish(
        &mut self,
        key: u64,
        rtc_track_id: String,
        receiver_id: RTCRtpReceiverId,
        ssrc: u32,
        rid: Option<String>,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if !p.grants.can_publish {
            return;
        }
        let layer = match rid.as_deref().map(Layer::from_rid) {
            None => None,
            Some(Some(layer)) => Some(layer),
            Some(None) => {
                warn!(participant = %p.id, ?rid, "simulcast layer with an unknown rid (use q, h, f); ignored");
                return;
            }
        };
        if let Some(track) = p.published.get(&rtc_track_id) {
            // Another simulcast layer of a track we know.
            if let (Some(layer), Some(publication)) = (layer, self.router.get_mut(track)) {
                debug!(track = %publication.id, ?layer, ssrc, "simulcast layer arrived");
                publication.add_layer(layer, ssrc, Instant::now());
                let info = publication.info();
                let owner = publication.owner;
                let participant_id = p.id.to_string();
                let track = track.clone();
                self.broadcast(
                    owner,
                    ServerMessage::TrackPublished {
                        participant_id,
                        track: info,
                    },
                );
                self.announce_track(&track);
            }
            return;
        }
        let Some(mut receiver) = p.publisher.pc().rtp_receiver(receiver_id) else {
            return;
        };
        let rtc_kind = receiver.track().kind();
        let codec = receiver.track().codec(ssrc).cloned().or_else(|| {
            receiver
                .get_parameters()
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.rtp_codec.clone())
        });
        let audio_level_id = receiver
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|h| h.uri == AUDIO_LEVEL_URI)
            .and_then(|h| u8::try_from(h.id).ok());
        let Some(codec) = codec else {
            warn!(participant = %p.id, "published track has no negotiated codec; ignored");
            return;
        };
        let kind = match rtc_kind {
            RtpCodecKind::Audio => TrackKind::Audio,
            RtpCodecKind::Video => TrackKind::Video,
            _ => return,
        };
        debug!(participant = %p.id, %rtc_track_id, sources = ?p.sources, "track opened");
        let source = p
            .sources
            .get(&rtc_track_id)
            .copied()
            .filter(|s| s.kind() == kind)
            .unwrap_or(TrackSource::default_for(kind));
        // One track per source per participant: a new one replaces the old.
        let replaced: Vec<(String, TrackId)> = p
            .published
            .iter()
            .filter(|(_, t)| self.router.get(t).is_some_and(|pb| pb.source == source))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect();
        for (rtc_id, _) in &replaced {
            p.published.remove(rtc_id);
        }
        let id = TrackId::random();
        p.published.insert(rtc_track_id.clone(), id.clone());
        let muted = matches!(source, TrackSource::Camera | TrackSource::Microphone)
            && p.wanted_mute[kind_index(kind)];
        let participant_id = p.id.to_string();
        info!(room = %self.id, participant = %participant_id, track = %id, %kind, ?source, ?layer, codec = %codec.mime_type, "track published");
        self.events.emit(
            "track_published",
            self.id.as_str(),
            serde_json::json!({
                "identity": p.identity,
                "participantId": participant_id,
                "trackId": id.to_string(),
                "kind": kind,
                "source": source,
                "codec": codec.mime_type.rsplit('/').next().unwrap_or_default(),
            }),
        );
        for (_, old) in replaced {
            self.unpublish(&old);
        }
        let publication = Publication::new(
            PublicationParams {
                id: id.clone(),
                owner: key,
                owner_id: participant_id.clone(),
                kind,
                source,
                client_track_id: rtc_track_id,
                codec,
                receiver_id: Some(receiver_id),
                ssrc,
                rid: layer,
                muted,
                audio_level_id,
            },
            Instant::now(),
        );
        let info = publication.info();
        self.router.insert(publication);
        self.totals.tracks.fetch_add(1, Ordering::Relaxed);
        self.broadcast(
            key,
            ServerMessage::TrackPublished {
                participant_id,
                track: info,
            },
        );
        let subscribers: Vec<u64> = self
            .participants
            .iter()
            .filter(|(k, p)| **k != key && p.grants.can_subscribe && !p.viewer)
            .map(|(k, _)| *k)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, &id);
            self.negotiate_subscriber(sub);
        }
        self.announce_track(&id);
    }

    pub(super) fn unpublish(&mut self, track: &TrackId) {
        let Some(publication) = self.router.remove(track) else {
            return;
        };
        let remote = publication.origin.is_some();
        if remote {
            if publication.link_wanted.is_some_and(|w| w != [false; 3]) {
                self.totals.link_tracks_in.fetch_sub(1, Ordering::Relaxed);
            }
        } else {
            self.totals.tracks.fetch_sub(1, Ordering::Relaxed);
            self.totals
                .link_tracks_out
                .fetch_sub(publication.taps.len() as i64, Ordering::Relaxed);
        }
        let owner = if remote {
            self.span.remotes.get_mut(&publication.owner).map(|r| {
                r.tracks.retain(|t| t != track);
                (r.id.to_string(), r.identity.clone())
            })
        } else {
            self.participants.get_mut(&publication.owner).map(|p| {
                p.published.retain(|_, t| t != track);
                (p.id.to_string(), p.identity.clone())
            })
        };
        let (owner_id, identity) = match &owner {
            Some((id, identity)) => (id.clone(), identity.clone()),
            None => (String::new(), String::new()),
        };
        if !remote {
            self.span_broadcast(&crate::span::wire::Control::Unpublished {
                track: track.to_string(),
            });
            // A remote track's node tells the event stream.
            self.events.emit(
                "track_unpublished",
                self.id.as_str(),
                serde_json::json!({
                    "identity": identity,
                    "participantId": owner_id,
                    "trackId": track.to_string(),
                }),
            );
        }
        for s in &publication.subscriptions {
            if let Some(sub) = self.participants.get_mut(&s.subscriber)
                && let Err(e) = sub.subscriber.pc().remove_track(s.sender_id)
            {
                debug!(error = %e, "removing a down-track failed");
            }
        }
        for s in &publication.subscriptions {
            self.negotiate_subscriber(s.subscriber);
        }
        if owner.is_some() {
            self.broadcast(
                publication.owner,
                ServerMessage::TrackUnpublished {
                    participant_id: owner_id,
                    track_id: track.to_string(),
                },
            );
        }
    }

    /// Adds a subscription of `track` to `subscriber`'s connection (negotiated separately).
    pub(super) fn subscribe(&mut self, subscriber: u64, track: &TrackId) {
        self.router.subscribe(
            track,
            subscriber,
            &mut self.participants,
            &self.config.video_codecs,
        );
    }
}
