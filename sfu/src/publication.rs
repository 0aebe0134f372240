//! A published track (mediasoup's Producer): its kind and codec, the SSRC it arrives on, mute
//! and admin hold, receive statistics, the keyframe-request throttle, and the subscriptions it
//! feeds. It never writes to a connection itself: the router does, with the participants in hand.

use std::time::{Duration, Instant};

use protocol::admin::TrackDetail;
use protocol::{TrackInfo, TrackKind};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

use crate::ids::TrackId;
use crate::keyframe::VideoCodec;
use crate::stats::{ReceiveStats, SendRate};
use crate::subscription::Subscription;

/// A published track.
pub(crate) struct Publication {
    pub id: TrackId,
    /// The publishing participant's key.
    pub owner: u64,
    pub kind: TrackKind,
    pub codec: RTCRtpCodec,
    pub video_codec: VideoCodec,
    pub receiver_id: RTCRtpReceiverId,
    pub media_ssrc: u32,
    pub muted: bool,
    /// Muted by an admin: its packets are not forwarded until an admin unmutes it.
    pub held_by_admin: bool,
    /// Who receives it.
    pub subscriptions: Vec<Subscription>,
    last_keyframe_request: Option<Instant>,
    pub received: ReceiveStats,
    pub forwarded: SendRate,
}

/// What a new publication is.
pub(crate) struct PublicationParams {
    pub id: TrackId,
    pub owner: u64,
    pub kind: TrackKind,
    pub codec: RTCRtpCodec,
    pub receiver_id: RTCRtpReceiverId,
    pub media_ssrc: u32,
    pub muted: bool,
}

impl Publication {
    pub fn new(params: PublicationParams, now: Instant) -> Self {
        let clock_rate = params.codec.clock_rate;
        Publication {
            id: params.id,
            owner: params.owner,
            kind: params.kind,
            video_codec: VideoCodec::from_mime(&params.codec.mime_type),
            codec: params.codec,
            receiver_id: params.receiver_id,
            media_ssrc: params.media_ssrc,
            muted: params.muted,
            held_by_admin: false,
            subscriptions: Vec::new(),
            last_keyframe_request: None,
            received: ReceiveStats::new(clock_rate, now),
            forwarded: SendRate::new(now),
        }
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
        }
    }

    /// The track with its receive statistics, for the admin API.
    pub fn detail(&self) -> TrackDetail {
        let stats = self.received.snapshot();
        let video = self.kind == TrackKind::Video;
        TrackDetail {
            id: self.id.to_string(),
            kind: self.kind,
            codec: self.codec_name(),
            muted: self.muted,
            width: stats.dimensions.map(|d| d.0),
            height: stats.dimensions.map(|d| d.1),
            fps: video.then_some(stats.fps),
            bitrate: stats.bitrate,
            packets: stats.packets,
            packets_lost: stats.lost,
            loss_rate: stats.loss_rate,
            jitter_ms: stats.jitter_ms,
        }
    }

    /// Accounts for one received packet; true when it starts a video keyframe.
    pub fn on_packet(&mut self, packet: &rtc::rtp::Packet, now: Instant) -> bool {
        let video = self.kind == TrackKind::Video;
        let keyframe = video && self.video_codec.is_keyframe_start(&packet.payload);
        self.received.on_packet(
            packet.header.sequence_number,
            packet.header.timestamp,
            video && packet.header.marker,
            packet.payload.len(),
            now,
        );
        if keyframe && let Some(size) = self.video_codec.dimensions(&packet.payload) {
            self.received.set_dimensions(size);
        }
        keyframe
    }

    /// Whether a keyframe request may go to the publisher now (video only, at most one per
    /// `interval`); records it when it may.
    pub fn keyframe_request_due(&mut self, now: Instant, interval: Duration) -> bool {
        if self.kind != TrackKind::Video
            || self
                .last_keyframe_request
                .is_some_and(|t| now < t + interval)
        {
            return false;
        }
        self.last_keyframe_request = Some(now);
        true
    }

    /// Lets the next keyframe request through at once (after a gap subscribers must recover from).
    pub fn reset_keyframe_throttle(&mut self) {
        self.last_keyframe_request = None;
    }

    /// Whether `subscriber` receives this track.
    pub fn feeds(&self, subscriber: u64) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.subscriber == subscriber)
    }
}
