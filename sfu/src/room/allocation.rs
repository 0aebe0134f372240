//! A room's choice of what each receiver gets: receivers' tile settings, the allocation of each
//! receiver's estimated downlink to simulcast layers (on the room's timer and when a tile
//! changes), the layers each publisher must keep sending
//! (`subscribedLayers`), and who is speaking (`speakersChanged`). It decides and tells; it never
//! rewrites a packet itself (subscriptions do).

use std::time::{Duration, Instant};

use protocol::{ErrorCode, Layer, ServerMessage, Speaker, TrackKind, TrackSettings};
use tracing::debug;

use super::Room;
use crate::allocator::{Priority, VideoDemand, needed_layers};
use crate::downlink::track_layer;
use crate::ids::TrackId;
use crate::tile::Tile;

/// What an audio down-track is assumed to take until its rate is measured (Opus at speech rates
/// with RTP headers, as the transport-wide feedback counts it: about 30 kbit/s from Chromium).
const AUDIO_BPS: u64 = 30_000;
/// A layer nobody has needed for this long is paused at the publisher.
const PAUSE_UNNEEDED_AFTER: Duration = Duration::from_secs(5);
/// How long after a congestion made a receiver thin its lowest layers it gets fresh keyframes
/// of them. The congestion lost packets of frames its decoder still waits for; their resends
/// may have been lost too, and the browser asks for a keyframe itself only after about 3 s of
/// nothing decodable. A second later the queue has mostly drained, and a keyframe restarts the
/// picture at once. (Sooner, or "once the latest feedback shows little loss", measured worse:
/// the keyframe went into the full queue and was lost as well.)
const REFRESH_AFTER_THINNING: Duration = Duration::from_secs(1);

/// A simulcast publication's layers as the allocator sees them: the measured rate of each layer
/// that arrives, and 0 (unmeasured) for one that does not arrive because we paused it at the
/// publisher before its first packet: without that, nobody could ever ask for it again.
fn offered_layers(publication: &crate::publication::Publication) -> [Option<u64>; 3] {
    let mut rates = publication.layer_bitrates();
    if let Some(announced) = publication.announced_layers
        && publication.simulcast
    {
        for (rate, on) in rates.iter_mut().zip(announced) {
            if rate.is_none() && !on {
                *rate = Some(0);
            }
        }
    }
    rates
}

impl Room {
    /// A receiver described one of its video tiles.
    pub(super) fn on_track_settings(&mut self, key: u64, settings: TrackSettings, now: Instant) {
        let subscription = self.router.publications_mut().find_map(|p| {
            (p.id.as_str() == settings.track_id)
                .then(|| p.subscriptions.iter_mut().find(|s| s.subscriber == key))
                .flatten()
        });
        let Some(subscription) = subscription else {
            if let Some(p) = self.participants.get_mut(&key) {
                p.send(ServerMessage::Error {
                    code: ErrorCode::UnknownTrack,
                    message: format!(
                        "trackSettings: you do not receive a track {:?}; use a trackId from \
                         trackPublished",
                        settings.track_id
                    ),
                });
            }
            return;
        };
        let tile = Tile::from(&settings);
        debug!(track = %settings.track_id, ?tile, "track settings");
        if subscription.tile == tile {
            return;
        }
        subscription.tile = tile;
        self.allocate_receiver(key, now);
        self.announce_layers(now);
    }

    /// Decides who is speaking and tells everyone when that changed.
    pub(super) fn decide_speakers(&mut self, now: Instant) {
        let Some(list) = self.speakers.tick(now) else {
            return;
        };
        if let Some((loudest, _)) = list.first() {
            self.last_speaker = Some(*loudest);
        }
        let speakers: Vec<Speaker> = list
            .iter()
            .filter_map(|(key, level)| {
                Some(Speaker {
                    participant_id: self.participant_id_of(*key)?,
                    level: *level,
                })
            })
            .collect();
        debug!(room = %self.id, ?speakers, "speakers changed");
        let message = ServerMessage::SpeakersChanged { speakers };
        for p in self.participants.values_mut() {
            p.send(message.clone());
        }
    }

    /// The participant ids of the current speakers, loudest first (for the admin API).
    pub(super) fn speaker_ids(&self) -> Vec<String> {
        self.speakers
            .current()
            .iter()
            .filter_map(|(key, _)| self.participant_id_of(*key))
            .collect()
    }

    /// Forgets a participant who left in the speaker detection.
    pub(super) fn forget_speaker(&mut self, key: u64) {
        self.speakers.remove(key);
        if self.last_speaker == Some(key) {
            self.last_speaker = None;
        }
    }

    /// Every receiver's layers, from its latest estimate; then what publishers must send.
    pub(super) fn allocate_layers(&mut self, now: Instant) {
        let receivers: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for key in receivers {
            self.allocate_receiver(key, now);
        }
        self.announce_layers(now);
    }

    /// One receiver's layers: shares its estimate among its video subscriptions and sets each
    /// one's target; asks for keyframes where a new layer must start.
    fn allocate_receiver(&mut self, key: u64, now: Instant) {
        let speaking: Vec<u64> = self.speakers.current().iter().map(|(k, _)| *k).collect();
        let mut demands: Vec<VideoDemand<u32>> = Vec::new();
        // Audio, and single-layer video: what cannot be made smaller is reserved first.
        let mut audio_bps = 0;
        let mut fixed: Vec<(u32, Option<Layer>)> = Vec::new();
        for publication in self.router.publications() {
            for s in publication
                .subscriptions
                .iter()
                .filter(|s| s.subscriber == key)
            {
                if publication.kind == TrackKind::Audio {
                    audio_bps += match publication.received_bitrate() {
                        0 => AUDIO_BPS,
                        measured => measured,
                    };
                    continue;
                }
                if !publication.simulcast {
                    // One layer: it flows while its tile is shown (pausing it would leave a
                    // black tile, and nothing smaller exists), and its rate is reserved.
                    let layer = s
                        .tile
                        .cap(publication.layer_sizes())
                        .and(publication.present_layers().next());
                    if layer.is_some() {
                        audio_bps += publication.received_bitrate();
                    }
                    fixed.push((s.ssrc, layer));
                    continue;
                }
                demands.push(VideoDemand {
                    key: s.ssrc,
                    priority: Priority::of(
                        publication.source,
                        speaking.contains(&publication.owner),
                    ),
                    bitrates: offered_layers(publication),
                    max_layer: s.tile.cap(publication.layer_sizes()),
                    current: s.current_layer(),
                });
            }
        }
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let estimate = p.downlink.estimate.get();
        p.downlink.allocator.on_estimate(estimate, now);
        let held = p.downlink.allocator.held_estimate_bps(now);
        let level_before = p.downlink.thinning.level();
        let temporal = p
            .downlink
            .thinning
            .apply(&mut demands, estimate, held, audio_bps, now);
        if p.downlink.thinning.level() < level_before {
            p.downlink.refresh_keyframes_at = Some(now + REFRESH_AFTER_THINNING);
        }
        let refresh = p.downlink.refresh_keyframes_at.is_some_and(|at| now >= at);
        if refresh {
            p.downlink.refresh_keyframes_at = None;
        }
        let mut allocation = p.downlink.allocator.allocate(audio_bps, &demands, now);
        allocation.targets.extend(fixed);
        tracing::trace!(participant = %p.id, estimate, ?demands, ?allocation, "allocation");
        let limited = allocation.deficient || temporal.is_some();
        if let Some(outcome) = p.downlink.prober.plan(now, &p.downlink.estimate, limited) {
            debug!(participant = %p.id, ?outcome, "downlink probe ended");
        }
        let mut keyframes: Vec<(TrackId, Layer)> = Vec::new();
        let mut report = Vec::with_capacity(allocation.targets.len());
        for (ssrc, target) in allocation.targets {
            let Some(track) = self.router.track_for_feedback(key, ssrc).cloned() else {
                continue;
            };
            let Some(s) = self.router.subscription_mut(key, ssrc) else {
                continue;
            };
            if s.target_layer() != target {
                let current = s.current_layer();
                debug!(%track, ?target, ?current, "layer target changed");
                if allocation.congested && target < current {
                    s.drop_to_layer(target);
                } else {
                    s.set_target_layer(target);
                }
            }
            // Fewer frames of the lowest layer when even that does not fit.
            let lowest = target == Some(Layer::Q);
            s.set_max_temporal_layer(if lowest { temporal } else { None });
            if let Some(wanted) = s.wanted_keyframe() {
                keyframes.push((track.clone(), wanted));
            } else if refresh && lowest && s.current_layer() == Some(Layer::Q) {
                debug!(%track, "fresh keyframe after congestion");
                keyframes.push((track.clone(), Layer::Q));
            }
            report.push(track_layer(track.to_string(), target));
        }
        if let Some(p) = self.participants.get_mut(&key)
            && let Some(message) =
                p.downlink
                    .report(p.downlink.allocator.estimate_bps(), report, now)
        {
            p.send(message);
        }
        for (track, layer) in keyframes {
            let mut mask = [false; 3];
            mask[layer.index()] = true;
            self.request_layer_keyframes(&track, mask, now);
        }
    }

    /// Tells each publisher which layers of its video tracks anyone receives, when that changed.
    /// A layer is turned on at once, and off only once nobody has needed it for
    /// `PAUSE_UNNEEDED_AFTER` (a receiver moving between layers, or a tile scrolled past, does
    /// not make the publisher's encoder stop and start again).
    pub(super) fn announce_layers(&mut self, now: Instant) {
        let mut messages: Vec<(u64, ServerMessage)> = Vec::new();
        for publication in self.router.publications_mut() {
            if publication.kind != TrackKind::Video {
                continue;
            }
            let mut wanted =
                needed_layers(publication.subscriptions.iter().map(|s| s.target_layer()));
            // What other nodes' subscribers need of a local track.
            for tap in &publication.taps {
                for (w, t) in wanted.iter_mut().zip(tap.layers) {
                    *w |= t;
                }
            }
            let mut needed = [false; 3];
            for (i, w) in wanted.into_iter().enumerate() {
                if w {
                    publication.layer_needed_at[i] = Some(now);
                }
                needed[i] = publication.layer_needed_at[i]
                    .is_some_and(|t| now.saturating_duration_since(t) < PAUSE_UNNEEDED_AFTER);
            }
            if publication.announced_layers == Some(needed) {
                continue;
            }
            publication.announced_layers = Some(needed);
            if publication.origin.is_some() {
                // A remote track: its node is asked (`want_remote_layers`).
                continue;
            }
            debug!(track = %publication.id, ?needed, "layers the publisher must send");
            messages.push((
                publication.owner,
                ServerMessage::SubscribedLayers {
                    track_id: publication.id.to_string(),
                    client_track_id: publication.client_track_id.clone(),
                    layers: Layer::ALL
                        .into_iter()
                        .filter(|l| needed[l.index()])
                        .collect(),
                },
            ));
        }
        for (owner, message) in messages {
            if let Some(p) = self.participants.get_mut(&owner) {
                p.send(message);
            }
        }
        if self.span.active() {
            self.want_remote_layers(now);
        }
    }
}
