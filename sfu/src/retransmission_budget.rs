//! The retransmissions a receiver may ask of us: its NACKs are trimmed before the engine's NACK
//! responder answers them, so that a packet is resent at most ten times, never again within
//! 100 ms of the last time (a request repeated that soon is for what is already on its way),
//! then 200 ms, then 400 ms (a resend lost in a full queue is tried again once it may have
//! drained, not every round trip), and resends take at most a quarter of its estimated
//! downlink while its link is losing much (the latest feedback reports more than 10 % lost),
//! and up to 60 % of it once it is not (what the congestion left missing is repaired at once,
//! before the receiver gives up and asks for a keyframe). Without this, a receiver whose link just turned
//! thin asks for everything the full queue dropped, and the resends keep the queue full: seconds
//! of loss instead of one. It reads NACKs only, never touches media, and never blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

use crate::counters::MediaCounters;
use crate::downlink_estimator::SharedEstimate;
use crate::read_hook::ReadHook;

/// Share of the receiver's estimate resends may take while its link loses more than
/// `LOSING` of the packets of the latest feedback, and once it does not; the least rate they
/// get.
const CONGESTED_SHARE: f64 = 0.25;
const CLEAR_SHARE: f64 = 0.6;
const LOSING: f64 = 0.1;
const MIN_RATE_BPS: f64 = 64_000.0;
/// What the bucket may hold: this long at its rate, and at least a few packets.
const BURST: Duration = Duration::from_millis(250);
const MIN_BURST_PACKETS: f64 = 4.0;
/// A resend is charged as a packet of this size (the NACK does not say how big it is).
const PACKET_BITS: f64 = 1_000.0 * 8.0;
/// How often one packet is resent at most, and how long before the same packet again: the hold
/// doubles with each resend up to `MAX_HOLD`. On a lossy link a resend is lost as often as the
/// original: two tries leave one packet in 400 unrepaired at 5 % loss (a freeze until the next
/// keyframe). On a link that just turned thin every resend of the first second may be lost in
/// the full queue; with the hold growing, the last tries come after it drained (about 3 s).
const MAX_RESENDS: u8 = 10;
const REPEAT_HOLD: Duration = Duration::from_millis(100);
const MAX_HOLD: Duration = Duration::from_millis(400);
/// Sequence numbers remembered per stream (as the responder's buffer: older ones are gone).
const HISTORY: usize = 1024;
/// The estimate assumed until the first one arrives.
const INITIAL_ESTIMATE_BPS: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy)]
struct Resent {
    seq: u16,
    at: Instant,
    count: u8,
}

/// The decisions, apart from the engine's plumbing.
#[derive(Debug)]
pub(crate) struct NackBudget {
    estimate_bps: f64,
    losing: bool,
    rate_bps: f64,
    budget_bits: f64,
    last_refill: Option<Instant>,
    streams: HashMap<u32, Vec<Option<Resent>>>,
}

impl NackBudget {
    pub fn new() -> Self {
        let mut budget = NackBudget {
            estimate_bps: INITIAL_ESTIMATE_BPS,
            losing: false,
            rate_bps: 0.0,
            budget_bits: 0.0,
            last_refill: None,
            streams: HashMap::new(),
        };
        budget.set_estimate(INITIAL_ESTIMATE_BPS);
        budget.budget_bits = budget.burst_bits();
        budget
    }

    /// The receiver's downlink estimate changed.
    pub fn set_estimate(&mut self, estimate_bps: f64) {
        self.estimate_bps = estimate_bps;
        self.update_rate();
    }

    /// Whether the receiver's link is losing much now.
    pub fn set_losing(&mut self, losing: bool) {
        if losing != self.losing {
            self.losing = losing;
            self.update_rate();
        }
    }

    fn update_rate(&mut self) {
        let share = if self.losing {
            CONGESTED_SHARE
        } else {
            CLEAR_SHARE
        };
        self.rate_bps = (self.estimate_bps * share).max(MIN_RATE_BPS);
        self.budget_bits = self.budget_bits.min(self.burst_bits());
    }

    fn burst_bits(&self) -> f64 {
        (self.rate_bps * BURST.as_secs_f64()).max(MIN_BURST_PACKETS * PACKET_BITS)
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last_refill {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.budget_bits = (self.budget_bits + elapsed * self.rate_bps).min(self.burst_bits());
        }
        self.last_refill = Some(now);
    }

    /// Whether packet `seq` of `ssrc` may be resent at `now`; records it when it may.
    pub fn allow(&mut self, ssrc: u32, seq: u16, now: Instant) -> bool {
        self.refill(now);
        let slots = self
            .streams
            .entry(ssrc)
            .or_insert_with(|| vec![None; HISTORY]);
        let slot = &mut slots[seq as usize % HISTORY];
        let previous = slot.filter(|r| r.seq == seq);
        let hold =
            |count: u8| (REPEAT_HOLD * (1u32 << count.saturating_sub(1).min(8))).min(MAX_HOLD);
        if let Some(r) = previous
            && (r.count >= MAX_RESENDS || now.saturating_duration_since(r.at) < hold(r.count))
        {
            return false;
        }
        if self.budget_bits < PACKET_BITS {
            return false;
        }
        self.budget_bits -= PACKET_BITS;
        *slot = Some(Resent {
            seq,
            at: now,
            count: previous.map_or(1, |r| r.count + 1),
        });
        true
    }

    /// Forgets a stream that ended.
    pub fn forget(&mut self, ssrc: u32) {
        self.streams.remove(&ssrc);
    }
}

/// The interceptor's hook: between the pacer and the NACK responder on the read leg, where the
/// congestion controller's estimate rides on the feedback packets that move it.
pub(crate) struct RetransmissionBudget {
    budget: NackBudget,
    counters: Arc<MediaCounters>,
    /// The receiver's estimator's view: whether its link loses much now.
    link: SharedEstimate,
}

impl RetransmissionBudget {
    /// The hook (made an interceptor by [`crate::read_hook::ReadSide`]), counting refusals into `counters`,
    /// reading the receiver's loss from `link`.
    pub(crate) fn new(counters: Arc<MediaCounters>, link: SharedEstimate) -> Self {
        RetransmissionBudget {
            budget: NackBudget::new(),
            counters,
            link,
        }
    }

    /// The NACK with only the packets that may be resent; `None` when none may.
    fn trim(&mut self, nack: &TransportLayerNack, now: Instant) -> Option<TransportLayerNack> {
        let asked = nack.nacks.iter().flat_map(|p| p.packet_list());
        let mut allowed = Vec::new();
        let mut refused = 0u64;
        for seq in asked {
            if self.budget.allow(nack.media_ssrc, seq, now) {
                allowed.push(seq);
            } else {
                refused += 1;
            }
        }
        if refused > 0 {
            self.counters
                .retransmissions_refused
                .fetch_add(refused, Ordering::Relaxed);
        }
        (!allowed.is_empty()).then(|| TransportLayerNack {
            sender_ssrc: nack.sender_ssrc,
            media_ssrc: nack.media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(&allowed),
        })
    }
}

impl ReadHook for RetransmissionBudget {
    fn on_read(&mut self, mut msg: TaggedPacket) -> Option<TaggedPacket> {
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.budget.set_estimate(*bits_per_second);
        }
        let has_nack = matches!(&msg.message.packet, Packet::Rtcp(packets)
            if packets.iter().any(|p| p.as_any().is::<TransportLayerNack>()));
        if has_nack && let Packet::Rtcp(packets) = &mut msg.message.packet {
            let now = msg.now;
            let (lost, reported) = self.link.recent_loss();
            self.budget
                .set_losing(lost >= 2 && f64::from(lost) > LOSING * f64::from(reported));
            let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
            for packet in std::mem::take(packets) {
                match packet.as_any().downcast_ref::<TransportLayerNack>() {
                    Some(nack) => {
                        if let Some(trimmed) = self.trim(nack, now) {
                            kept.push(Box::new(trimmed));
                        }
                    }
                    None => kept.push(packet),
                }
            }
            if kept.is_empty() {
                // Nothing left to deliver.
                return None;
            }
            *packets = kept;
        }
        Some(msg)
    }

    fn forget_local(&mut self, ssrc: u32) {
        self.budget.forget(ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_resent_at_most_ten_times_and_not_again_within_a_growing_hold() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut b = NackBudget::new();
        assert!(b.allow(1, 100, at(0)));
        assert!(!b.allow(1, 100, at(50)), "asked again too soon");
        // Holds of 100, 200, 400, 400, ... ms.
        let mut last = 0;
        for hold in [100, 200, 400, 400, 400, 400, 400, 400, 400] {
            assert!(
                !b.allow(1, 100, at(last + hold - 10)),
                "within the hold of {hold} ms"
            );
            last += hold;
            assert!(b.allow(1, 100, at(last)), "after the hold of {hold} ms");
        }
        assert!(
            !b.allow(1, 100, at(last + 1_000)),
            "resent ten times already"
        );
        // Another stream, or another packet, is its own.
        assert!(b.allow(2, 100, at(900)));
        assert!(b.allow(1, 101, at(900)));
        // A sequence number that wrapped around to the same slot is a new packet.
        assert!(b.allow(1, 100 + HISTORY as u16, at(1_000)));
    }

    #[test]
    fn resends_take_a_quarter_of_the_estimate_while_losing_and_more_once_clear() {
        let t0 = Instant::now();
        let asked_over_two_seconds = |b: &mut NackBudget| {
            // 100 packets asked for each 100 ms over 2 s.
            (0..1_000u16)
                .filter(|&i| b.allow(7, i, t0 + Duration::from_millis(u64::from(i / 50) * 100)))
                .count()
        };
        // 200 kbit/s while losing: 64 kbit/s for resends (the floor), 8 packets a second.
        let mut b = NackBudget::new();
        b.set_losing(true);
        b.set_estimate(200_000.0);
        let allowed = asked_over_two_seconds(&mut b);
        // The first burst (4 packets) plus 2 s at 8 packets a second.
        assert!((16..=22).contains(&allowed), "{allowed} resends allowed");
        // Clear: 120 kbit/s, 15 a second.
        let mut b = NackBudget::new();
        b.set_estimate(200_000.0);
        let allowed = asked_over_two_seconds(&mut b);
        assert!((30..=38).contains(&allowed), "{allowed} resends allowed");
        // A roomy link while losing: 2 Mbit/s gives 500 kbit/s, about 62 a second.
        let mut b = NackBudget::new();
        b.set_losing(true);
        b.set_estimate(2_000_000.0);
        let allowed = (0..1_000u16)
            .filter(|&i| b.allow(7, i, t0 + Duration::from_millis(u64::from(i))))
            .count();
        assert!((60..=90).contains(&allowed), "{allowed} resends allowed");
    }
}
