//! The per-subscription RTP rewriter: forwards one publication (a single stream, or the layers
//! of a simulcast one) to one subscriber as one continuous stream of sequence numbers,
//! timestamps and VP8 picture ids. A plain struct: no I/O, no clock of its own, no allocation
//! per packet; it never decodes media and never panics on what a publisher sends.

use std::time::Instant;

use crate::keyframe::VideoCodec;
use crate::layer_switch::{LayerAction, LayerSelector};
use crate::rtp_munger::{Arrival, RtpMunger};
use crate::vp8_munger::{Vp8Descriptor, Vp8Drop, Vp8Munger, Vp8Rewrite};

/// What to do with one packet ([`Forwarder::forward`], the single-stream API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it with these header values.
    Forward {
        sequence_number: u16,
        timestamp: u32,
    },
    /// Drop it: it predates the start of this subscription.
    Drop,
    /// Drop it, and ask the publisher for a keyframe: video cannot start before one.
    DropNeedKeyframe,
}

/// What to do with one packet ([`Forwarder::forward_layer`], the simulcast API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerDecision {
    /// Send it with these header values; when `vp8` is set, apply it to a copy of the payload
    /// ([`Vp8Rewrite::apply`]); when `None` the payload goes out as it came.
    Forward {
        sequence_number: u16,
        timestamp: u32,
        vp8: Option<Vp8Rewrite>,
    },
    /// Drop it, for this reason.
    Drop(DropReason),
    /// Drop it; a keyframe is needed on `layer`: send (throttled) a PLI to that layer's SSRC.
    NeedKeyframe { layer: u8 },
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The subscriber's target is `None`.
    Paused,
    /// A layer other than the one being forwarded, with no switch pending.
    OtherLayer,
    /// Padding only; later packets close its gap.
    Padding,
    /// A VP8 temporal layer above the one forwarded; later packets close its gap.
    TemporalLayer,
    /// Predates the current run or the bounded history, or repeats a packet already dropped.
    Stale,
}

/// How to build a [`Forwarder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderParams {
    /// `None` for audio. Video waits for keyframes; VP8 also gets its descriptor rewritten.
    pub codec: Option<VideoCodec>,
    /// The first output sequence number and timestamp (random in production, so a subscriber
    /// cannot infer the publisher's values).
    pub first_seq: u16,
    pub first_ts: u32,
    /// RTP clock rate in Hz (90,000 for video), to turn elapsed time into timestamp ticks.
    pub clock_rate: u32,
    /// The layer to forward from the start; `None` starts paused.
    pub target_layer: Option<u8>,
}

/// One packet of a (possibly simulcast) publication, as the caller identified it.
#[derive(Debug, Clone, Copy)]
pub struct LayerPacket<'a> {
    /// Simulcast layer index, 0 = lowest; 0 for a single-layer publication.
    pub layer: u8,
    /// The layer's SSRC (a new SSRC on the same layer is a restarted source).
    pub ssrc: u32,
    pub sequence_number: u16,
    pub timestamp: u32,
    /// The packet begins a keyframe ([`VideoCodec::is_keyframe_start`]).
    pub keyframe_start: bool,
    /// The packet carries only padding: never forwarded.
    pub padding_only: bool,
    /// The RTP marker bit: for video, the last packet of a frame.
    pub marker: bool,
    /// The RTP payload; read for VP8 (temporal layer, picture ids), never written.
    pub payload: &'a [u8],
}

/// Rewrites one publication's packets for one subscriber.
///
/// It forwards only the current layer and switches to the target (or a layer between) at that
/// layer's first keyframe start ([`LayerSelector`]). Output sequence numbers have no gaps of our
/// making: at a switch the new layer continues at the next number, and dropped padding and
/// temporal-layer packets are absorbed by the offset ([`RtpMunger`]). At a switch the output
/// timestamp advances by the wall-clock time since the last forwarded packet (at least one
/// tick). VP8 picture ids, TL0PICIDX and KEYIDX continue likewise ([`Vp8Munger`]); H.264, VP9
/// (simulcast, not SVC) and audio get sequence numbers and timestamps only.
#[derive(Debug, Clone)]
pub struct Forwarder {
    layers: LayerSelector,
    rtp: RtpMunger,
    vp8: Option<Vp8Munger>,
    video: bool,
    /// The newest packet forwarded ended a frame: a packet of our own may follow it.
    frame_ended: bool,
}

impl Forwarder {
    /// A single-stream forwarder whose output starts at `first_seq` / `first_ts`. `video` makes
    /// it wait for a keyframe. Use with [`Self::forward`].
    pub fn new(video: bool, first_seq: u16, first_ts: u32) -> Self {
        Forwarder::with_params(ForwarderParams {
            codec: video.then_some(VideoCodec::Other),
            first_seq,
            first_ts,
            clock_rate: if video { 90_000 } else { 48_000 },
            target_layer: Some(0),
        })
    }

    /// A forwarder for a (possibly simulcast) publication. Use with [`Self::forward_layer`].
    pub fn with_params(params: ForwarderParams) -> Self {
        Forwarder {
            layers: LayerSelector::new(params.codec.is_some(), params.target_layer),
            rtp: RtpMunger::new(params.first_seq, params.first_ts, params.clock_rate),
            vp8: (params.codec == Some(VideoCodec::Vp8)).then(Vp8Munger::new),
            video: params.codec.is_some(),
            frame_ended: false,
        }
    }

    /// True once the first packet has been forwarded.
    pub fn started(&self) -> bool {
        self.rtp.started()
    }

    /// Sets the layer to forward (from the allocator); `None` pauses at once.
    pub fn set_target_layer(&mut self, target: Option<u8>) {
        self.layers.set_target(target);
    }

    /// Lowers the target and stops the current layer at once when above it (congestion).
    pub fn drop_to_layer(&mut self, target: Option<u8>) {
        self.layers.drop_to(target);
    }

    pub fn target_layer(&self) -> Option<u8> {
        self.layers.target()
    }

    /// The layer being forwarded; `None` before the first keyframe or while paused.
    pub fn current_layer(&self) -> Option<u8> {
        self.layers.current()
    }

    /// The layer a keyframe is wanted on (the target, while video is not yet forwarding it).
    pub fn wanted_keyframe(&self) -> Option<u8> {
        self.layers.wanted_keyframe()
    }

    /// Caps the VP8 temporal layers forwarded (`None` = all); other codecs ignore it.
    pub fn set_max_temporal_layer(&mut self, max: Option<u8>) {
        if let Some(vp8) = self.vp8.as_mut() {
            vp8.set_max_temporal_layer(max);
        }
    }

    /// Decides the fate of one packet from `ssrc` with the publisher's `seq` and `ts`, for a
    /// single-layer publication. `keyframe_start` is whether the packet begins a keyframe
    /// (ignored for audio). A packet from a new `ssrc` restarts the stream at its keyframe.
    pub fn forward(&mut self, ssrc: u32, seq: u16, ts: u32, keyframe_start: bool) -> Decision {
        let packet = LayerPacket {
            layer: 0,
            ssrc,
            sequence_number: seq,
            timestamp: ts,
            keyframe_start,
            padding_only: false,
            marker: false,
            payload: &[],
        };
        match self.decide(&packet, None) {
            LayerDecision::Forward {
                sequence_number,
                timestamp,
                ..
            } => Decision::Forward {
                sequence_number,
                timestamp,
            },
            LayerDecision::Drop(_) => Decision::Drop,
            LayerDecision::NeedKeyframe { .. } => Decision::DropNeedKeyframe,
        }
    }

    /// The sequence number and timestamp for a padding-only packet of our own (a bandwidth
    /// probe), placed between two frames of the video being forwarded; `None` when that is not
    /// possible now (audio, paused, waiting for a keyframe, or in the middle of a frame).
    pub fn padding(&mut self) -> Option<(u16, u32)> {
        if !self.video || !self.frame_ended || self.layers.current().is_none() {
            return None;
        }
        self.rtp.insert()
    }

    /// Decides the fate of one packet of any layer, received at `now`.
    pub fn forward_layer(&mut self, packet: &LayerPacket<'_>, now: Instant) -> LayerDecision {
        self.decide(packet, Some(now))
    }

    fn decide(&mut self, p: &LayerPacket<'_>, now: Option<Instant>) -> LayerDecision {
        let action = self
            .layers
            .select(p.layer, p.ssrc, p.keyframe_start, p.padding_only);
        match action {
            LayerAction::Forward => {}
            LayerAction::Switch => {
                self.frame_ended = false;
                self.rtp.start_run(p.sequence_number, p.timestamp, now);
                if let Some(vp8) = self.vp8.as_mut() {
                    vp8.start_run();
                }
            }
            LayerAction::Paused => return LayerDecision::Drop(DropReason::Paused),
            LayerAction::OtherLayer => return LayerDecision::Drop(DropReason::OtherLayer),
            LayerAction::NeedKeyframe(layer) => return LayerDecision::NeedKeyframe { layer },
        }
        let Some(seen) = self.rtp.classify(p.sequence_number) else {
            return LayerDecision::Drop(DropReason::Stale);
        };
        if p.padding_only {
            self.rtp.drop_packet(seen.ext);
            return LayerDecision::Drop(DropReason::Padding);
        }
        let mut vp8 = None;
        // A payload that is not a valid VP8 descriptor goes out untouched.
        if let Some(munger) = self.vp8.as_mut()
            && let Ok(d) = Vp8Descriptor::parse(p.payload)
        {
            match munger.munge(&d, seen.arrival == Arrival::AfterGap) {
                Ok(rewrite) => vp8 = rewrite.changes(&d).then_some(rewrite),
                Err(Vp8Drop::TemporalLayer) => {
                    self.rtp.drop_packet(seen.ext);
                    return LayerDecision::Drop(DropReason::TemporalLayer);
                }
                Err(Vp8Drop::TooOld) => return LayerDecision::Drop(DropReason::Stale),
            }
        }
        match self.rtp.map(seen.ext, p.timestamp, now) {
            Some((sequence_number, timestamp)) => {
                if seen.arrival != Arrival::Late {
                    self.frame_ended = p.marker;
                }
                LayerDecision::Forward {
                    sequence_number,
                    timestamp,
                    vp8,
                }
            }
            None => LayerDecision::Drop(DropReason::Stale),
        }
    }
}

#[cfg(test)]
#[path = "forwarder/simulcast_tests.rs"]
mod simulcast_tests;

#[cfg(test)]
mod tests {
    use super::Decision::*;
    use super::*;

    fn fwd(seq: u16, ts: u32) -> Decision {
        Forward {
            sequence_number: seq,
            timestamp: ts,
        }
    }

    #[test]
    fn audio_starts_at_once_and_maps_offsets() {
        let mut f = Forwarder::new(false, 1000, 5000);
        assert_eq!(f.forward(1, 40, 900, false), fwd(1000, 5000));
        assert_eq!(f.forward(1, 41, 1860, false), fwd(1001, 5960));
        assert_eq!(f.forward(1, 43, 3780, false), fwd(1003, 7880));
        // Late packet (reordered) keeps its place.
        assert_eq!(f.forward(1, 42, 2820, false), fwd(1002, 6920));
    }

    #[test]
    fn video_waits_for_a_keyframe() {
        let mut f = Forwarder::new(true, 1, 1);
        assert_eq!(f.forward(7, 10, 100, false), DropNeedKeyframe);
        assert_eq!(f.forward(7, 11, 100, false), DropNeedKeyframe);
        assert!(!f.started());
        assert_eq!(f.forward(7, 12, 200, true), fwd(1, 1));
        assert!(f.started());
        // A delta frame after the start flows.
        assert_eq!(f.forward(7, 13, 300, false), fwd(2, 101));
    }

    #[test]
    fn packets_older_than_the_start_are_dropped() {
        let mut f = Forwarder::new(true, 500, 0);
        assert_eq!(f.forward(7, 100, 1000, true), fwd(500, 0));
        assert_eq!(f.forward(7, 99, 900, false), Drop);
        assert_eq!(f.forward(7, 101, 1000, false), fwd(501, 0));
    }

    #[test]
    fn sequence_numbers_wrap_on_both_sides() {
        let mut f = Forwarder::new(false, 65534, u32::MAX - 1);
        assert_eq!(f.forward(1, 65535, 10, false), fwd(65534, u32::MAX - 1));
        assert_eq!(f.forward(1, 0, 20, false), fwd(65535, 8));
        assert_eq!(f.forward(1, 1, 30, false), fwd(0, 18));
        assert_eq!(f.forward(1, 2, 40, false), fwd(1, 28));
    }

    #[test]
    fn a_new_source_continues_the_output_without_a_gap() {
        let mut f = Forwarder::new(true, 10, 1000);
        assert_eq!(f.forward(1, 300, 9000, true), fwd(10, 1000));
        assert_eq!(f.forward(1, 301, 12000, false), fwd(11, 4000));
        // The publisher replaced its track: new SSRC, unrelated numbering.
        assert_eq!(f.forward(2, 7, 50, false), DropNeedKeyframe);
        assert_eq!(f.forward(2, 8, 80, true), fwd(12, 4001));
        assert_eq!(f.forward(2, 9, 3080, false), fwd(13, 7001));
        // Stragglers of the old source are not mixed into the new run.
        assert_eq!(f.forward(1, 302, 15000, false), DropNeedKeyframe);
    }

    #[test]
    fn a_long_stream_keeps_flowing_past_half_the_sequence_space() {
        // 32,768 packets after the first, the publisher's numbers are "behind" the first one
        // in 16-bit arithmetic; the stream must flow on through several wraps all the same.
        let mut f = Forwarder::new(false, 100, 0);
        for i in 0..200_000u32 {
            let seq = (60_000 + i) as u16;
            assert_eq!(
                f.forward(3, seq, i * 960, false),
                fwd((100 + i) as u16, i * 960),
                "packet {i}"
            );
        }
        // A late packet of a long stream keeps its place too.
        let mut f = Forwarder::new(false, 0, 0);
        for i in 0..40_000u32 {
            f.forward(3, (1000 + i) as u16, i, false);
        }
        assert_eq!(f.forward(3, 40_900, 39_900, false), fwd(39_900, 39_900));
    }

    #[test]
    fn retransmission_of_an_old_packet_maps_to_its_original_number() {
        let mut f = Forwarder::new(false, 0, 0);
        for i in 0..100u16 {
            f.forward(9, 1000 + i, u32::from(i) * 960, false);
        }
        assert_eq!(f.forward(9, 1050, 50 * 960, false), fwd(50, 50 * 960));
    }
}
