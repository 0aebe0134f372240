//! A published track (mediasoup's Producer): its kind, source and codec, the simulcast layers it
//! arrives on (one SSRC each; a track without simulcast has one layer, `f`), mute and admin
//! hold, receive statistics and the keyframe-request throttle per layer, and the subscriptions
//! it feeds. It never writes to a connection itself: the router does, with the participants in
//! hand.

use std::time::{Duration, Instant};

use protocol::admin::TrackDetail;
use protocol::{Layer, TrackInfo, TrackKind, TrackSource};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

use crate::ids::TrackId;
use crate::keyframe::VideoCodec;
use crate::stats::{ReceiveStats, SendRate};
use crate::subscription::Subscription;

/// One simulcast layer as it arrives from the publisher.
pub(crate) struct LayerIn {
    pub ssrc: u32,
    pub received: ReceiveStats,
    last_keyframe_request: Option<Instant>,
}

/// A published track.
pub(crate) struct Publication {
    pub id: TrackId,
    /// The publishing participant's key.
    pub owner: u64,
    /// The publishing participant's id, as every node knows it.
    pub owner_id: String,
    /// The node it comes from when another node serves its publisher (its packets arrive
    /// over the link); `None` for a local publisher's track.
    pub origin: Option<std::sync::Arc<str>>,
    /// The other nodes that need it, and which layers (a local track only).
    pub taps: Vec<Tap>,
    /// The layers last asked of the origin node (a remote track only).
    pub link_wanted: Option<[bool; 3]>,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// The browser's id of the track (the msid's track id), which `subscribedLayers` names.
    pub client_track_id: String,
    pub codec: RTCRtpCodec,
    pub video_codec: VideoCodec,
    /// Its receiver on the publisher's connection (`None`: a remote track).
    pub receiver_id: Option<RTCRtpReceiverId>,
    /// Sent with rids (simulcast): its layers are chosen per receiver.
    pub simulcast: bool,
    /// Indexed by [`Layer::index`]; `None` for a layer that has not arrived (yet).
    pub layers: [Option<LayerIn>; 3],
    pub muted: bool,
    /// The negotiated id of the RFC 6464 audio level extension (audio only).
    pub audio_level_id: Option<u8>,
    /// Muted by an admin: its packets are not forwarded until an admin unmutes it.
    pub held_by_admin: bool,
    /// Who receives it.
    pub subscriptions: Vec<Subscription>,
    /// The layers last announced to the publisher as needed (`subscribedLayers`).
    pub announced_layers: Option<[bool; 3]>,
    /// When some receiver last needed each layer.
    pub layer_needed_at: [Option<Instant>; 3],
    pub forwarded: SendRate,
}

/// Another node that needs a local track: the layers it asked for.
pub(crate) struct Tap {
    pub node: std::sync::Arc<str>,
    pub layers: [bool; 3],
}

/// What a new publication is.
pub(crate) struct PublicationParams {
    pub id: TrackId,
    pub owner: u64,
    pub owner_id: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub client_track_id: String,
    pub codec: RTCRtpCodec,
    pub receiver_id: Option<RTCRtpReceiverId>,
    /// The first layer's SSRC, and its rid (`None` without simulcast).
    pub ssrc: u32,
    pub rid: Option<Layer>,
    pub muted: bool,
    pub audio_level_id: Option<u8>,
}

impl Publication {
    pub fn new(params: PublicationParams, now: Instant) -> Self {
        let mut publication = Publication {
            id: params.id,
            owner: params.owner,
            owner_id: params.owner_id,
            origin: None,
            taps: Vec::new(),
            link_wanted: None,
            kind: params.kind,
            source: params.source,
            client_track_id: params.client_track_id,
            video_codec: VideoCodec::from_mime(&params.codec.mime_type),
            codec: params.codec,
            receiver_id: params.receiver_id,
            simulcast: params.rid.is_some(),
            layers: [None, None, None],
            muted: params.muted,
            audio_level_id: params.audio_level_id,
            held_by_admin: false,
            subscriptions: Vec::new(),
            announced_layers: None,
            layer_needed_at: [None; 3],
            forwarded: SendRate::new(now),
        };
        publication.add_layer(params.rid.unwrap_or(Layer::F), params.ssrc, now);
        publication
    }

    /// Another simulcast layer arrived (its first packet).
    pub fn add_layer(&mut self, layer: Layer, ssrc: u32, now: Instant) {
        self.layers[layer.index()] = Some(LayerIn {
            ssrc,
            received: ReceiveStats::new(self.codec.clock_rate, now),
            last_keyframe_request: None,
        });
    }

    /// The layer a packet with this SSRC belongs to.
    pub fn layer_of(&self, ssrc: u32) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| {
            self.layers[l.index()]
                .as_ref()
                .is_some_and(|x| x.ssrc == ssrc)
        })
    }

    /// The layers that arrive, lowest first.
    pub fn present_layers(&self) -> impl Iterator<Item = Layer> + '_ {
        Layer::ALL
            .into_iter()
            .filter(|l| self.layers[l.index()].is_some())
    }

    /// Each layer's received bitrate over the last second (`None`: the layer does not arrive).
    pub fn layer_bitrates(&self) -> [Option<u64>; 3] {
        let rate = |i: usize| {
            self.layers[i]
                .as_ref()
                .map(|l| l.received.snapshot().bitrate)
        };
        [rate(0), rate(1), rate(2)]
    }

    /// Each layer's picture size, as its last keyframe announced it (VP8).
    pub fn layer_sizes(&self) -> [Option<(u32, u32)>; 3] {
        let size = |i: usize| {
            self.layers[i]
                .as_ref()
                .and_then(|l| l.received.snapshot().dimensions)
        };
        [size(0), size(1), size(2)]
    }

    /// The codec's short name (`opus`, `VP8`, ...).
    pub fn codec_name(&self) -> String {
        self.codec
            .mime_type
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The track as the signaling protocol describes it.
    pub fn info(&self) -> TrackInfo {
        TrackInfo {
            id: self.id.to_string(),
            kind: self.kind,
            codec: self.codec_name(),
            muted: self.muted,
            source: self.source,
            layers: if self.simulcast {
                self.present_layers().collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The track with its receive statistics (of its highest layer; bitrate over all of them),
    /// for the admin API.
    pub fn detail(&self) -> TrackDetail {
        let top = self.layers.iter().rev().flatten().next();
        let stats = top.map(|l| l.received.snapshot());
        let video = self.kind == TrackKind::Video;
        let bitrate = self.layer_bitrates().iter().flatten().sum();
        TrackDetail {
            id: self.id.to_string(),
            kind: self.kind,
            codec: self.codec_name(),
            muted: self.muted,
            width: stats.and_then(|s| s.dimensions).map(|d| d.0),
            height: stats.and_then(|s| s.dimensions).map(|d| d.1),
            fps: video.then(|| stats.map(|s| s.fps).unwrap_or_default()),
            bitrate,
            packets: self
                .layers
                .iter()
                .flatten()
                .map(|l| l.received.snapshot().packets)
                .sum(),
            packets_lost: stats.map(|s| s.lost).unwrap_or_default(),
            loss_rate: stats.map(|s| s.loss_rate).unwrap_or_default(),
            jitter_ms: stats.map(|s| s.jitter_ms).unwrap_or_default(),
        }
    }

    /// Accounts for one received packet: its layer, and whether it starts a video keyframe.
    /// `None` for a packet on an SSRC the publication does not know.
    pub fn on_packet(&mut self, packet: &rtc::rtp::Packet, now: Instant) -> Option<(Layer, bool)> {
        let layer = self.layer_of(packet.header.ssrc)?;
        let video = self.kind == TrackKind::Video;
        let keyframe = video && self.video_codec.is_keyframe_start(&packet.payload);
        let stats = &mut self.layers[layer.index()].as_mut()?.received;
        stats.on_packet(
            packet.header.sequence_number,
            packet.header.timestamp,
            video && packet.header.marker,
            packet.payload.len(),
            now,
        );
        if keyframe && let Some(size) = self.video_codec.dimensions(&packet.payload) {
            stats.set_dimensions(size);
        }
        Some((layer, keyframe))
    }

    /// Advances every layer's rate statistics.
    pub fn tick(&mut self, now: Instant) {
        for layer in self.layers.iter_mut().flatten() {
            layer.received.tick(now);
        }
        self.forwarded.tick(now);
    }

    /// Received bitrate over every layer.
    pub fn received_bitrate(&self) -> u64 {
        self.layer_bitrates().iter().flatten().sum()
    }

    /// The SSRC to send a keyframe request for `layer` to, if one may go now (video only, at
    /// most one per `interval` per layer); records it when it may.
    pub fn keyframe_request_due(
        &mut self,
        layer: Layer,
        now: Instant,
        interval: Duration,
    ) -> Option<u32> {
        if self.kind != TrackKind::Video {
            return None;
        }
        let l = self.layers[layer.index()].as_mut()?;
        if l.last_keyframe_request.is_some_and(|t| now < t + interval) {
            return None;
        }
        l.last_keyframe_request = Some(now);
        Some(l.ssrc)
    }

    /// Lets the next keyframe requests through at once (after a gap subscribers must recover
    /// from).
    pub fn reset_keyframe_throttle(&mut self) {
        for layer in self.layers.iter_mut().flatten() {
            layer.last_keyframe_request = None;
        }
    }

    /// Whether `subscriber` receives this track.
    pub fn feeds(&self, subscriber: u64) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.subscriber == subscriber)
    }
}
