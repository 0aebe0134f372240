//! The per-subscription RTP rewriter: maps a publisher's sequence numbers and timestamps into
//! one continuous stream for one subscriber.
//!
//! A plain struct with no I/O and no clock. It decides, packet by packet, whether to forward and
//! with which sequence number and timestamp; the caller sets the subscriber's SSRC and payload
//! type. Video starts (and restarts after the publisher's source changes) only on a keyframe, so
//! a decoder never begins on a delta frame; the caller turns `DropNeedKeyframe` into a
//! (throttled) PLI to the publisher.

/// What to do with one packet.
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

#[derive(Debug, Clone, Copy)]
struct Anchor {
    source_ssrc: u32,
    /// The publisher's sequence numbers extended past 16 bits (wraps counted), so that a
    /// stream longer than 32,768 packets is not mistaken for one that went back in time.
    first_in_ext: i64,
    highest_in_ext: i64,
    seq_offset: u16,
    ts_offset: u32,
}

/// Rewrites one publication's packets for one subscriber.
#[derive(Debug, Clone)]
pub struct Forwarder {
    waits_for_keyframe: bool,
    anchor: Option<Anchor>,
    last_out_seq: u16,
    last_out_ts: u32,
}

impl Forwarder {
    /// A forwarder whose output starts at `first_seq` / `first_ts` (random in production, so a
    /// subscriber cannot infer the publisher's values). `video` makes it wait for a keyframe.
    pub fn new(video: bool, first_seq: u16, first_ts: u32) -> Self {
        Forwarder {
            waits_for_keyframe: video,
            anchor: None,
            last_out_seq: first_seq.wrapping_sub(1),
            last_out_ts: first_ts.wrapping_sub(1),
        }
    }

    /// True once the first packet has been forwarded.
    pub fn started(&self) -> bool {
        self.anchor.is_some()
    }

    /// Decides the fate of one packet from `ssrc` with the publisher's `seq` and `ts`.
    /// `keyframe_start` is whether the packet begins a keyframe (ignored for audio).
    pub fn forward(&mut self, ssrc: u32, seq: u16, ts: u32, keyframe_start: bool) -> Decision {
        let anchor = match self.anchor {
            Some(a) if a.source_ssrc == ssrc => a,
            _ => {
                // First packet, or the publisher's source changed: start a new run that
                // continues our output seamlessly.
                if self.waits_for_keyframe && !keyframe_start {
                    return Decision::DropNeedKeyframe;
                }
                let a = Anchor {
                    source_ssrc: ssrc,
                    first_in_ext: i64::from(seq),
                    highest_in_ext: i64::from(seq),
                    seq_offset: self.last_out_seq.wrapping_add(1).wrapping_sub(seq),
                    ts_offset: self.last_out_ts.wrapping_add(1).wrapping_sub(ts),
                };
                self.anchor = Some(a);
                a
            }
        };
        // Nearest to the highest so far: up to 32,767 ahead or 32,768 behind.
        let delta = i64::from(seq.wrapping_sub(anchor.highest_in_ext as u16) as i16);
        let ext = anchor.highest_in_ext + delta;
        if ext < anchor.first_in_ext {
            return Decision::Drop;
        }
        let out_seq = seq.wrapping_add(anchor.seq_offset);
        let out_ts = ts.wrapping_add(anchor.ts_offset);
        if delta > 0
            && let Some(a) = self.anchor.as_mut()
        {
            a.highest_in_ext = ext;
        }
        if (out_seq.wrapping_sub(self.last_out_seq) as i16) > 0 {
            self.last_out_seq = out_seq;
            self.last_out_ts = out_ts;
        }
        Decision::Forward {
            sequence_number: out_seq,
            timestamp: out_ts,
        }
    }
}

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
