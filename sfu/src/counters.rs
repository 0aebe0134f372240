//! The media plane's running totals for `/metrics`: packets and bytes in and out, drops,
//! keyframe requests, NACKs, and how many participants and tracks there are.
//!
//! Rooms count into a plain `LocalCounts` on the per-packet path (no atomics, no sharing)
//! and add it to the shared [`MediaCounters`] on their timer, at least once a second.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Totals since start, shared by every room.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Packets a subscription did not forward (waiting for a keyframe, stale or duplicate).
    pub packets_dropped: AtomicU64,
    /// NACK (generic negative acknowledgement) packets received from subscribers.
    pub nacks_received: AtomicU64,
    /// Retransmissions subscribers asked for that were not sent (asked again too soon, resent
    /// six times already, or over the receiver's retransmission budget).
    pub retransmissions_refused: AtomicU64,
    /// Padding-only packets sent to probe receivers' downlinks.
    pub padding_packets_sent: AtomicU64,
    /// PLI and FIR received from subscribers.
    pub keyframe_requests_received: AtomicU64,
    /// PLIs sent to publishers.
    pub keyframe_requests_sent: AtomicU64,
    /// Participants in all rooms now.
    pub participants: AtomicI64,
    /// Published tracks now.
    pub tracks: AtomicI64,
    /// Local tracks sent to other nodes now (one per track and node that needs it).
    pub link_tracks_out: AtomicI64,
    /// Times a local track started going to another node.
    pub link_tracks_opened: AtomicU64,
    /// Remote tracks this node receives over node links now.
    pub link_tracks_in: AtomicI64,
    /// Media and data frames sent to and received from other nodes.
    pub link_packets_out: AtomicU64,
    pub link_bytes_out: AtomicU64,
    pub link_packets_in: AtomicU64,
    pub link_bytes_in: AtomicU64,
    /// Frames not sent because a node link was down or its queue full.
    pub link_frames_dropped: AtomicU64,
}

/// A room's counts since its last flush.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LocalCounts {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_dropped: u64,
    pub padding_packets_sent: u64,
    pub keyframe_requests_received: u64,
    pub keyframe_requests_sent: u64,
}

impl LocalCounts {
    /// Adds these counts to the shared totals and starts again from zero.
    pub(crate) fn flush_into(&mut self, totals: &MediaCounters) {
        let add = |counter: &AtomicU64, value: u64| {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        };
        add(&totals.packets_in, self.packets_in);
        add(&totals.bytes_in, self.bytes_in);
        add(&totals.packets_out, self.packets_out);
        add(&totals.bytes_out, self.bytes_out);
        add(&totals.packets_dropped, self.packets_dropped);
        add(&totals.padding_packets_sent, self.padding_packets_sent);
        add(
            &totals.keyframe_requests_received,
            self.keyframe_requests_received,
        );
        add(&totals.keyframe_requests_sent, self.keyframe_requests_sent);
        *self = LocalCounts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushing_adds_and_resets() {
        let totals = MediaCounters::default();
        let mut local = LocalCounts {
            packets_in: 3,
            bytes_in: 300,
            ..LocalCounts::default()
        };
        local.flush_into(&totals);
        local.packets_in = 2;
        local.flush_into(&totals);
        assert_eq!(totals.packets_in.load(Ordering::Relaxed), 5);
        assert_eq!(totals.bytes_in.load(Ordering::Relaxed), 300);
        assert_eq!(local.packets_in, 0);
    }
}
