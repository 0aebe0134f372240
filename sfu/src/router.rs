//! The router (mediasoup's Router): every publication of a room, which subscriptions each one
//! feeds, and the way back from a subscriber's feedback to the publication it is about (a map
//! keyed by subscriber and SSRC, not a scan). The fan-out of one publisher packet to every
//! subscription is here: the per-packet path. It allocates nothing per subscriber beyond the
//! packet clone the engine takes, takes no lock, and never blocks; a big fan-out is shared over
//! the cores by `fanout`.

use std::collections::HashMap;

use protocol::Layer;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpSenderId;
use tracing::{debug, warn};

use crate::counters::LocalCounts;
use crate::fanout::{self, Tally};
use crate::ids::TrackId;
use crate::io::Outgoing;
use crate::participant::Participant;
use crate::publication::Publication;
use crate::speakers::Speakers;
use crate::subscription::{Source, Subscription};

/// The participants of a room, by key.
pub(crate) type Participants = HashMap<u64, Participant>;

/// What the router needs of the room for one operation: its participants, the batch of
/// datagrams being built and the room's counters.
pub(crate) struct Wiring<'a> {
    pub participants: &'a mut Participants,
    pub outgoing: &'a mut Outgoing,
    pub counts: &'a mut LocalCounts,
}

#[derive(Default)]
pub(crate) struct Router {
    publications: HashMap<TrackId, Publication>,
    /// (subscriber, our SSRC towards it) → the publication that subscription carries.
    by_subscriber_ssrc: HashMap<(u64, u32), TrackId>,
}

impl Router {
    pub fn get(&self, track: &TrackId) -> Option<&Publication> {
        self.publications.get(track)
    }

    pub fn get_mut(&mut self, track: &TrackId) -> Option<&mut Publication> {
        self.publications.get_mut(track)
    }

    /// The id of the track named `track` (as a frame from another node names it).
    pub fn id_of(&self, track: &str) -> Option<TrackId> {
        self.publications
            .get_key_value(track)
            .map(|(k, _)| k.clone())
    }

    pub fn publications(&self) -> impl Iterator<Item = &Publication> + '_ {
        self.publications.values()
    }

    pub fn publications_mut(&mut self) -> impl Iterator<Item = &mut Publication> + '_ {
        self.publications.values_mut()
    }

    /// The subscription of `subscriber` on which we send with SSRC `ssrc`.
    pub fn subscription_mut(&mut self, subscriber: u64, ssrc: u32) -> Option<&mut Subscription> {
        let track = self.by_subscriber_ssrc.get(&(subscriber, ssrc))?;
        self.publications
            .get_mut(track)?
            .subscriptions
            .iter_mut()
            .find(|s| s.subscriber == subscriber && s.ssrc == ssrc)
    }

    pub fn track_ids(&self) -> Vec<TrackId> {
        self.publications.keys().cloned().collect()
    }

    pub fn insert(&mut self, publication: Publication) {
        self.publications
            .insert(publication.id.clone(), publication);
    }

    /// Takes a publication out, with its subscriptions.
    pub fn remove(&mut self, track: &TrackId) -> Option<Publication> {
        let publication = self.publications.remove(track)?;
        for s in &publication.subscriptions {
            self.by_subscriber_ssrc.remove(&(s.subscriber, s.ssrc));
        }
        Some(publication)
    }

    /// The tracks `subscriber` receives.
    pub fn subscribed(&self, subscriber: u64) -> Vec<TrackId> {
        self.publications
            .values()
            .filter(|p| p.feeds(subscriber))
            .map(|p| p.id.clone())
            .collect()
    }

    /// The publication a subscriber's feedback about our SSRC `ssrc` is about.
    pub fn track_for_feedback(&self, subscriber: u64, ssrc: u32) -> Option<&TrackId> {
        self.by_subscriber_ssrc.get(&(subscriber, ssrc))
    }

    /// Adds a subscription of `track` to `subscriber`'s connection (negotiated separately).
    pub fn subscribe(
        &mut self,
        track: &TrackId,
        subscriber: u64,
        participants: &mut Participants,
        video_codecs: &[String],
    ) {
        let Some(publication) = self.publications.get_mut(track) else {
            return;
        };
        if publication.owner == subscriber || publication.feeds(subscriber) {
            return;
        }
        let owner_id = publication.owner_id.clone();
        let Some(sub) = participants.get_mut(&subscriber) else {
            return;
        };
        let source = Source {
            owner_id,
            track: &publication.id,
            kind: publication.kind,
            codec: &publication.codec,
            video_codec: publication.video_codec,
            first_layer: publication.present_layers().next().unwrap_or(Layer::F),
        };
        match Subscription::create(subscriber, sub.subscriber.pc(), source, video_codecs) {
            Ok(subscription) => {
                self.by_subscriber_ssrc
                    .insert((subscriber, subscription.ssrc), track.clone());
                publication.subscriptions.push(subscription);
            }
            Err(e) => warn!(
                participant = %sub.id,
                codec = %publication.codec.mime_type,
                fmtp = %publication.codec.sdp_fmtp_line,
                error = %e,
                "could not add a down-track"
            ),
        }
    }

    /// Ends every subscription of `subscriber`; returns their senders on its connection.
    pub fn unsubscribe_all(&mut self, subscriber: u64) -> Vec<RTCRtpSenderId> {
        let mut senders = Vec::new();
        for publication in self.publications.values_mut() {
            publication.subscriptions.retain(|s| {
                if s.subscriber != subscriber {
                    return true;
                }
                senders.push(s.sender_id);
                self.by_subscriber_ssrc.remove(&(s.subscriber, s.ssrc));
                false
            });
        }
        senders
    }

    /// After an answer, finds the payload type each of this subscriber's subscriptions uses.
    pub fn resolve_payload_types(&mut self, subscriber: &mut Participant, key: u64) {
        for publication in self.publications.values_mut() {
            for s in publication
                .subscriptions
                .iter_mut()
                .filter(|s| s.subscriber == key)
            {
                let pt = s.resolve_payload_type(subscriber.subscriber.pc(), &publication.codec);
                debug!(participant = %subscriber.id, track = %publication.id, ?pt, ssrc = s.ssrc, "down-track payload type");
                if pt.is_none() {
                    warn!(
                        participant = %subscriber.id,
                        codec = %publication.codec.mime_type,
                        "subscriber cannot receive this codec; track not forwarded"
                    );
                }
            }
        }
    }

    /// The per-packet path: one publisher packet to every subscription of its track. Returns
    /// the layers some subscriber waits for a keyframe on (by [`Layer::index`]). From
    /// `parallel_fanout` subscriptions on, the packet is written to them on all cores.
    pub fn forward(
        &mut self,
        track: &TrackId,
        mut packet: rtc::rtp::Packet,
        now: Instant,
        room: Wiring<'_>,
        speakers: &mut Speakers,
        parallel_fanout: usize,
    ) -> [bool; 3] {
        let nothing = [false; 3];
        let Some(publication) = self.publications.get_mut(track) else {
            return nothing;
        };
        let Some((layer, keyframe)) = publication.on_packet(&packet, now) else {
            return nothing;
        };
        if let Some(id) = publication.audio_level_id
            && let Some((level, voice)) = audio_level(&packet, id)
            && !publication.muted
        {
            speakers.observe(publication.owner, level, voice, now);
        }
        if publication.held_by_admin {
            return nothing;
        }
        let payload_len = packet.payload.len();
        room.counts.packets_in += 1;
        room.counts.bytes_in += payload_len as u64;
        // Header extension ids are negotiated per connection; the publisher's mean nothing to
        // the subscriber, so they are not forwarded.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        // The padding that aligned the publisher's extensions too: left behind, it would corrupt
        // the extensions our side adds (transport-wide sequence numbers) into a header the
        // browser drops.
        packet.header.extensions_padding = 0;
        let shared = fanout::Packet {
            track,
            packet: &packet,
            layer,
            keyframe,
            now,
        };
        let tally = match fanout::forward(
            &shared,
            &mut publication.subscriptions,
            room.participants,
            parallel_fanout,
        ) {
            Some(tally) => tally,
            None => {
                let mut tally = Tally::default();
                for subscription in publication.subscriptions.iter_mut() {
                    if let Some(sub) = room.participants.get_mut(&subscription.subscriber)
                        && sub.subscriber.connected
                    {
                        fanout::forward_one(&shared, subscription, sub, &mut tally);
                    }
                }
                tally
            }
        };
        publication
            .forwarded
            .on_bytes(payload_len * tally.packets_out as usize);
        room.counts.packets_out += tally.packets_out;
        room.counts.bytes_out += tally.bytes_out;
        room.counts.packets_dropped += tally.packets_dropped;
        tally.need_keyframe
    }

    /// Sends a PLI to the publisher of `track` for each of `layers` (by [`Layer::index`]; all
    /// false: the layers its subscribers forward or wait for), at most once per `interval` per
    /// layer. For a remote track nothing is sent: the layers due are returned, for the room to
    /// ask the track's node.
    pub fn request_keyframe(
        &mut self,
        track: &TrackId,
        layers: [bool; 3],
        now: Instant,
        interval: Duration,
        room: Wiring<'_>,
    ) -> Option<[bool; 3]> {
        let publication = self.publications.get_mut(track)?;
        let mut wanted = layers;
        if wanted == [false; 3] {
            for s in &publication.subscriptions {
                if let Some(l) = s
                    .wanted_keyframe()
                    .or(s.current_layer())
                    .or(s.target_layer())
                {
                    wanted[l.index()] = true;
                }
            }
        }
        if wanted == [false; 3] {
            // Nobody forwards it yet: its top layer.
            if let Some(top) = publication.present_layers().last() {
                wanted[top.index()] = true;
            }
        }
        let mut due = [false; 3];
        let ssrcs: Vec<u32> = Layer::ALL
            .into_iter()
            .filter(|l| wanted[l.index()])
            .filter_map(|l| {
                let ssrc = publication.keyframe_request_due(l, now, interval)?;
                due[l.index()] = true;
                Some(ssrc)
            })
            .collect();
        if ssrcs.is_empty() {
            return None;
        }
        if publication.origin.is_some() {
            return Some(due);
        }
        room.counts.keyframe_requests_sent += ssrcs.len() as u64;
        debug!(track = %publication.id, ?ssrcs, "keyframe requested from the publisher");
        let p = room.participants.get_mut(&publication.owner)?;
        if let Some(receiver_id) = publication.receiver_id
            && let Some(mut receiver) = p.publisher.pc().rtp_receiver(receiver_id)
        {
            let plis: Vec<Box<dyn rtc::rtcp::Packet>> = ssrcs
                .into_iter()
                .map(|media_ssrc| {
                    Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    }) as Box<dyn rtc::rtcp::Packet>
                })
                .collect();
            if let Err(e) = receiver.write_rtcp(now, plis) {
                debug!(error = %e, "keyframe request failed");
            }
        }
        p.publisher.flush_and_reschedule(room.outgoing);
        None
    }

    /// Total bitrates in and out over every publication, bits per second.
    pub fn bitrates(&self) -> (u64, u64) {
        self.publications.values().fold((0, 0), |(i, o), p| {
            (i + p.received_bitrate(), o + p.forwarded.bitrate())
        })
    }

    /// Advances every publication's rate statistics.
    pub fn tick(&mut self, now: Instant) {
        for publication in self.publications.values_mut() {
            publication.tick(now);
        }
    }

    /// The publication `owner` publishes from `source`, if any.
    pub fn find_owned(
        &self,
        owner: &Participant,
        source: protocol::TrackSource,
    ) -> Option<TrackId> {
        owner
            .published
            .values()
            .find(|t| {
                self.publications
                    .get(*t)
                    .is_some_and(|p| p.source == source)
            })
            .cloned()
    }
}

/// The RFC 6464 audio level (0 loudest to 127 silence, in -dBov) and voice flag a packet carries
/// in extension `id`.
fn audio_level(packet: &rtc::rtp::Packet, id: u8) -> Option<(u8, bool)> {
    use rtc::shared::marshal::Unmarshal;
    let mut raw = packet.header.get_extension(id)?;
    let level =
        rtc::rtp::extension::audio_level_extension::AudioLevelExtension::unmarshal(&mut raw)
            .ok()?;
    Some((level.level, level.voice))
}
