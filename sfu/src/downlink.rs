//! One receiver's downlink as the SFU manages it: its bandwidth estimate (written by the
//! estimator inside its subscriber connection), the allocator that shares it among its video
//! subscriptions, the prober that pads its video to prove a thin link recovered, and what it
//! was last told (`downlinkChanged`). Plain
//! state; the room drives it on its timer. It never sends anything itself.

use std::time::{Duration, Instant};

use protocol::{Layer, TrackLayer};

use crate::allocator::{Allocator, AllocatorParams};
use crate::downlink_estimator::{INITIAL_BPS, SharedEstimate};
use crate::prober::Prober;
use crate::thinning::Thinning;

/// `downlinkChanged` at most this often per receiver.
const REPORT_INTERVAL: Duration = Duration::from_millis(500);
/// The estimate moving by more than this share is worth a report on its own.
const REPORT_ESTIMATE_CHANGE: f64 = 0.2;

pub(crate) struct Downlink {
    pub estimate: SharedEstimate,
    /// Keyed by our SSRC towards the receiver (unique per subscription).
    pub allocator: Allocator<u32>,
    /// Temporal layers of the lowest simulcast layers, when even those do not fit.
    pub thinning: Thinning,
    /// Pads the receiver's video to prove its link after a back-off.
    pub prober: Prober,
    /// When to ask for fresh keyframes of the lowest layers it receives: a while after a
    /// congestion made it thin them (see `room/allocation.rs`).
    pub refresh_keyframes_at: Option<Instant>,
    reported: Vec<TrackLayer>,
    reported_estimate: u64,
    reported_at: Option<Instant>,
}

impl Downlink {
    pub fn new(now: Instant) -> Self {
        Downlink {
            estimate: SharedEstimate::default(),
            allocator: Allocator::new(
                AllocatorParams {
                    initial_estimate_bps: INITIAL_BPS as u64,
                    ..AllocatorParams::default()
                },
                now,
            ),
            thinning: Thinning::default(),
            prober: Prober::default(),
            refresh_keyframes_at: None,
            reported: Vec::new(),
            reported_estimate: 0,
            reported_at: None,
        }
    }

    /// The `downlinkChanged` to send, when the layers or (much) the estimate changed since the
    /// last one and the last one is old enough.
    pub fn report(
        &mut self,
        estimate_bps: u64,
        mut tracks: Vec<TrackLayer>,
        now: Instant,
    ) -> Option<protocol::ServerMessage> {
        if self
            .reported_at
            .is_some_and(|t| now.saturating_duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        tracks.sort_by(|a, b| a.track_id.cmp(&b.track_id));
        let moved = (estimate_bps as f64 - self.reported_estimate as f64).abs()
            > self.reported_estimate as f64 * REPORT_ESTIMATE_CHANGE;
        if tracks == self.reported && !moved {
            return None;
        }
        self.reported = tracks.clone();
        self.reported_estimate = estimate_bps;
        self.reported_at = Some(now);
        Some(protocol::ServerMessage::DownlinkChanged {
            estimate_bps,
            tracks,
        })
    }
}

/// The layer a track gets, as `downlinkChanged` names it.
pub(crate) fn track_layer(track_id: String, layer: Option<Layer>) -> TrackLayer {
    TrackLayer { track_id, layer }
}
