//! One publication delivered to one participant (mediasoup's Consumer, a down-track): the
//! sender on the subscriber's connection, our SSRC and the payload type the subscriber
//! negotiated, how the subscriber shows it (its tile), and the [`Forwarder`] that picks the
//! simulcast layer and rewrites sequence numbers, timestamps and VP8 picture ids. The layer to
//! forward is set by the receiver's allocator. It never decodes media and never reads the clock:
//! `now` is passed in.

use std::time::Instant;

use protocol::{Layer, TrackKind};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tracing::debug;

use crate::forwarder::{Forwarder, ForwarderParams, LayerDecision, LayerPacket};
use crate::ids::TrackId;
use crate::keyframe::VideoCodec;
use crate::tile::Tile;

/// One subscription: a publication delivered to one participant.
pub(crate) struct Subscription {
    /// The receiving participant's key.
    pub subscriber: u64,
    pub sender_id: RTCRtpSenderId,
    /// Our SSRC towards the subscriber.
    pub ssrc: u32,
    /// Payload type the subscriber negotiated for the publication's codec; `None` until the
    /// answer to an offer that carried this subscription arrives (or when the subscriber cannot
    /// receive that codec). Until then the browser would drop the packets, keyframe included.
    pub payload_type: Option<u8>,
    pub forwarder: Forwarder,
    /// How the subscriber shows the track.
    pub tile: Tile,
}

/// What became of one packet for one subscription.
pub(crate) enum Forwarded {
    /// Written to the subscriber's connection; `first` for the first packet of the stream.
    Sent { first: bool },
    /// The subscription cannot carry packets yet (no payload type negotiated).
    NotReady,
    /// Dropped by the forwarder.
    Dropped,
    /// Dropped while waiting for a keyframe on this layer: the publisher should be asked for one.
    NeedKeyframe(Layer),
}

/// The track a new subscription carries.
pub(crate) struct Source<'a> {
    /// The publisher's participant id (the stream id the subscriber sees).
    pub owner_id: String,
    pub track: &'a TrackId,
    pub kind: TrackKind,
    pub codec: &'a RTCRtpCodec,
    pub video_codec: VideoCodec,
    /// The layer to start on (the lowest the publisher sends); the allocator takes it from there.
    pub first_layer: Layer,
}

impl Subscription {
    /// Adds a sender for `source` to the subscriber's connection (negotiated separately).
    pub fn create(
        subscriber: u64,
        pc: &mut RTCPeerConnection,
        source: Source<'_>,
        video_codecs: &[String],
    ) -> Result<Subscription, rtc::shared::error::Error> {
        let ssrc = rand::random::<u32>();
        let local = MediaStreamTrack::new(
            source.owner_id,
            source.track.to_string(),
            format!("{} {}", source.kind, source.track),
            match source.kind {
                TrackKind::Audio => RtpCodecKind::Audio,
                TrackKind::Video => RtpCodecKind::Video,
            },
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: source.codec.clone(),
                ..Default::default()
            }],
        );
        let sender_id = pc.add_track(local)?;
        let video = source.kind == TrackKind::Video;
        if video {
            offer_every_video_codec(pc, sender_id, source.codec, video_codecs);
        }
        let forwarder = Forwarder::with_params(ForwarderParams {
            codec: video.then_some(source.video_codec),
            first_seq: rand::random(),
            first_ts: rand::random(),
            clock_rate: source.codec.clock_rate,
            target_layer: Some(source.first_layer.index() as u8),
        });
        Ok(Subscription {
            subscriber,
            sender_id,
            ssrc,
            payload_type: None,
            forwarder,
            tile: Tile::default(),
        })
    }

    /// After an answer, finds the payload type the subscriber negotiated for `wanted`. `None`
    /// when it cannot receive that codec.
    pub fn resolve_payload_type(
        &mut self,
        pc: &mut RTCPeerConnection,
        wanted: &RTCRtpCodec,
    ) -> Option<u8> {
        let mut sender = pc.rtp_sender(self.sender_id)?;
        let codecs = &sender.get_parameters().rtp_parameters.codecs;
        let same_mime = |c: &&RTCRtpCodecParameters| {
            c.rtp_codec
                .mime_type
                .eq_ignore_ascii_case(&wanted.mime_type)
        };
        let found = codecs
            .iter()
            .filter(same_mime)
            .find(|c| c.rtp_codec.sdp_fmtp_line == wanted.sdp_fmtp_line)
            .or_else(|| codecs.iter().find(same_mime));
        self.payload_type = found.map(|c| c.payload_type);
        self.payload_type
    }

    /// The layer being forwarded (`None` while paused or waiting for the first keyframe).
    pub fn current_layer(&self) -> Option<Layer> {
        self.forwarder.current_layer().and_then(layer_at)
    }

    /// The layer the allocator chose (`None`: paused).
    pub fn target_layer(&self) -> Option<Layer> {
        self.forwarder.target_layer().and_then(layer_at)
    }

    /// Sets the layer to forward; it takes over at its next keyframe.
    pub fn set_target_layer(&mut self, layer: Option<Layer>) {
        self.forwarder
            .set_target_layer(layer.map(|l| l.index() as u8));
    }

    /// Lowers the layer to reach and stops forwarding a higher current one at once (the
    /// receiver's link is congested).
    pub fn drop_to_layer(&mut self, layer: Option<Layer>) {
        self.forwarder.drop_to_layer(layer.map(|l| l.index() as u8));
    }

    /// Caps the VP8 temporal layers forwarded (`None`: all of them).
    pub fn set_max_temporal_layer(&mut self, max: Option<u8>) {
        self.forwarder.set_max_temporal_layer(max);
    }

    /// The layer a keyframe is wanted on, if the forwarder waits for one.
    pub fn wanted_keyframe(&self) -> Option<Layer> {
        self.forwarder.wanted_keyframe().and_then(layer_at)
    }

    /// Rewrites one publisher packet of `layer` for this subscriber and writes it to the
    /// subscriber's connection. `packet`'s header extensions must already be stripped.
    pub fn forward(
        &mut self,
        packet: &rtc::rtp::Packet,
        layer: Layer,
        keyframe: bool,
        pc: &mut RTCPeerConnection,
        now: Instant,
    ) -> Forwarded {
        let Some(payload_type) = self.payload_type else {
            return Forwarded::NotReady;
        };
        let first = !self.forwarder.started();
        let header = &packet.header;
        let decision = self.forwarder.forward_layer(
            &LayerPacket {
                layer: layer.index() as u8,
                ssrc: header.ssrc,
                sequence_number: header.sequence_number,
                timestamp: header.timestamp,
                keyframe_start: keyframe,
                padding_only: packet.payload.is_empty(),
                marker: header.marker,
                payload: &packet.payload,
            },
            now,
        );
        match decision {
            LayerDecision::Forward {
                sequence_number,
                timestamp,
                vp8,
            } => {
                let mut out = packet.clone();
                out.header.ssrc = self.ssrc;
                out.header.payload_type = payload_type;
                out.header.sequence_number = sequence_number;
                out.header.timestamp = timestamp;
                if let Some(rewrite) = vp8 {
                    // The one copy of a payload the per-packet path makes, only when a layer
                    // switch moved the picture ids.
                    let mut payload = out.payload.to_vec();
                    if rewrite.apply(&mut payload).is_ok() {
                        out.payload = payload.into();
                    }
                }
                if let Some(mut sender) = pc.rtp_sender(self.sender_id)
                    && let Err(e) = sender.write_rtp(now, out)
                {
                    debug!(error = %e, "down-track write failed");
                }
                Forwarded::Sent { first }
            }
            LayerDecision::Drop(_) => Forwarded::Dropped,
            LayerDecision::NeedKeyframe { layer } => {
                Forwarded::NeedKeyframe(layer_at(layer).unwrap_or(Layer::F))
            }
        }
    }
    /// Writes one padding-only packet (a bandwidth probe: no media, and the subscriber's
    /// decoder skips it) into the stream between two frames. False when the stream has no room
    /// for one now (see [`Forwarder::padding`]) or is not negotiated yet.
    pub fn send_padding(&mut self, pc: &mut RTCPeerConnection, now: Instant) -> bool {
        let Some(payload_type) = self.payload_type else {
            return false;
        };
        let Some((sequence_number, timestamp)) = self.forwarder.padding() else {
            return false;
        };
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                padding: true,
                payload_type,
                sequence_number,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::new(),
        };
        match pc.rtp_sender(self.sender_id) {
            Some(mut sender) => match sender.write_rtp(now, packet) {
                Ok(()) => true,
                Err(e) => {
                    debug!(error = %e, "padding write failed");
                    false
                }
            },
            None => false,
        }
    }
}

/// Lists every video codec we support on a new video down-track's m-line, the publication's
/// own first. The engine fixes a connection's video codecs at its first negotiation, from the
/// first video m-line; offering only the first track's codec there would leave a subscriber
/// who first received VP8 unable ever to receive H.264 (and the reverse). Once the first
/// negotiation is done, the engine refuses codecs outside it: the m-line then carries the
/// track's codec alone, which was negotiated already.
fn offer_every_video_codec(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
    own: &RTCRtpCodec,
    allowed: &[String],
) {
    let mut codecs: Vec<_> = crate::peer::supported_codecs()
        .into_iter()
        .filter(|(codec, kind)| {
            *kind == RtpCodecKind::Video && crate::peer::codec_allowed(codec, *kind, allowed)
        })
        .map(|(codec, _)| codec)
        .collect();
    let is_own = |c: &RTCRtpCodecParameters| {
        c.rtp_codec.mime_type.eq_ignore_ascii_case(&own.mime_type)
            && c.rtp_codec.sdp_fmtp_line == own.sdp_fmtp_line
    };
    codecs.sort_by_key(|c| !is_own(c));
    if let Some(mut transceiver) = pc.rtp_transceiver(sender.into())
        && let Err(e) = transceiver.set_codec_preferences(codecs)
    {
        debug!(error = %e, "video codecs already negotiated; offering the track's own");
    }
}

/// The layer with this index (0 = `q`).
fn layer_at(index: u8) -> Option<Layer> {
    Layer::ALL.get(usize::from(index)).copied()
}
