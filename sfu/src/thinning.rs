//! Temporal thinning of one receiver's lowest simulcast layers: when even the lowest layer of
//! every visible video does not fit in its estimate, how many VP8 temporal layers of them it gets
//! (15 or 7.5 of 30 frames a second) rather than losing tiles. Down at once, keeping 15 % of the
//! estimate for retransmissions and probes; up one step at a time, into 75 % of the held
//! estimate, less often after a step up that did not hold. Pure decisions: no I/O, no clock of
//! its own.

use std::time::{Duration, Instant};

use crate::allocator::VideoDemand;
use crate::upgrade_backoff::UpgradeBackoff;

/// The share of a layer's rate left with temporal layers 0 and 1 (15 of 30 frames a second), and
/// with layer 0 alone (7.5), for VP8 sent as L1T3 (libwebrtc gives TL0 40 % and TL1 20 %).
const TWO_TEMPORAL_LAYERS: f64 = 0.6;
const ONE_TEMPORAL_LAYER: f64 = 0.35;
/// What a lowest layer whose rate is not measured yet counts as.
const DEFAULT_LOWEST: u64 = 150_000;
/// Share of the estimate the thinned layers may use before thinning more, and share of the held
/// estimate a step up must fit in. A link thin enough to need thinning is one where the resends
/// after a loss and the prober's padding need room beside the media.
const KEEP: f64 = 0.85;
const UPGRADE: f64 = 0.75;
/// Least time between two changes before a step up (a thinned receiver has just been through
/// congestion: its queue takes seconds to drain), doubled after each failed step, up to 12 s.
const STEP_INTERVAL: Duration = Duration::from_secs(3);
const MAX_STEP_INTERVAL: Duration = Duration::from_secs(12);
/// After a step up that failed (undone within 3 s), the next waits until the held estimate is
/// this much above the one the failed step was taken at, or `RETRY_AFTER`: each try at a level
/// the link cannot carry is a burst of loss for the receiver.
const CLEARLY_MORE: f64 = 1.3;
const RETRY_AFTER: Duration = Duration::from_secs(20);
const FAILED_WITHIN: Duration = Duration::from_secs(3);

/// Temporal layers forwarded of the lowest layers: 0 (7.5 fps), 1 (15 fps), 2 (all).
const ALL: u8 = 2;

/// One receiver's thinning state.
#[derive(Debug)]
pub(crate) struct Thinning {
    level: u8,
    backoff: UpgradeBackoff,
    /// The last step up: when, and the held estimate it was taken at.
    last_up: Option<(Instant, u64)>,
    /// A step up that failed: when, and the held estimate it was taken at.
    failed: Option<(Instant, u64)>,
}

impl Default for Thinning {
    fn default() -> Self {
        Thinning {
            level: ALL,
            backoff: UpgradeBackoff::new(STEP_INTERVAL, MAX_STEP_INTERVAL),
            last_up: None,
            failed: None,
        }
    }
}

fn share(level: u8) -> f64 {
    match level {
        0 => ONE_TEMPORAL_LAYER,
        1 => TWO_TEMPORAL_LAYERS,
        _ => 1.0,
    }
}

impl Thinning {
    /// Whether a step up may be tried again after a failed one.
    fn retry_due(&self, held: u64, now: Instant) -> bool {
        self.failed.is_none_or(|(at, bps)| {
            held as f64 >= bps as f64 * CLEARLY_MORE
                || now.saturating_duration_since(at) >= RETRY_AFTER
        })
    }

    /// Temporal layers forwarded of the lowest layers now: 0 (7.5 fps), 1 (15 fps), 2 (all).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Decides the level for `demands` (their full rates) given the estimate, the held estimate
    /// (the lowest of the last second) and what audio and single-layer video reserve; scales the
    /// lowest layer's rate of each demand to match and returns the highest temporal layer to
    /// forward of lowest layers (`None`: all of them).
    pub fn apply(
        &mut self,
        demands: &mut [VideoDemand<u32>],
        estimate: u64,
        held: u64,
        reserved: u64,
        now: Instant,
    ) -> Option<u8> {
        let lowest = |d: &VideoDemand<u32>| {
            d.bitrates
                .iter()
                .flatten()
                .next()
                .map(|&r| if r == 0 { DEFAULT_LOWEST } else { r })
        };
        let total: u64 = demands
            .iter()
            .filter(|d| d.max_layer.is_some())
            .filter_map(lowest)
            .sum();
        let highest_fitting = |budget: f64| {
            let budget = (budget - reserved as f64).max(0.0);
            (0..=ALL)
                .rev()
                .find(|&l| total as f64 * share(l) <= budget)
                .unwrap_or(0)
        };
        let keep = highest_fitting(estimate as f64 * KEEP);
        if keep < self.level {
            tracing::debug!(
                from = self.level,
                to = keep,
                estimate,
                total,
                "fewer frames"
            );
            self.level = keep;
            self.backoff.downgraded(now);
            if let Some((at, bps)) = self.last_up.take()
                && now.saturating_duration_since(at) < FAILED_WITHIN
            {
                self.failed = Some((now, bps));
            }
        } else if self.level < ALL
            && highest_fitting(held as f64 * UPGRADE) > self.level
            && self.backoff.allowed(now)
            && self.retry_due(held, now)
        {
            tracing::debug!(from = self.level, estimate, held, total, "more frames");
            self.level += 1;
            self.backoff.upgraded(now);
            self.last_up = Some((now, held));
            self.failed = None;
        }
        if self.level == ALL {
            return None;
        }
        for d in demands.iter_mut() {
            if let Some(rate) = d.bitrates.iter_mut().flatten().next() {
                let full = if *rate == 0 { DEFAULT_LOWEST } else { *rate };
                *rate = ((full as f64 * share(self.level)) as u64).max(1);
            }
        }
        Some(self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::Priority;
    use protocol::Layer;

    fn demand(key: u32, q: u64, visible: bool) -> VideoDemand<u32> {
        VideoDemand {
            key,
            priority: Priority::OtherCamera,
            bitrates: [Some(q), Some(400_000), Some(1_200_000)],
            max_layer: visible.then_some(Layer::F),
            current: Some(Layer::Q),
        }
    }

    fn two(q: u64) -> [VideoDemand<u32>; 2] {
        [demand(1, q, true), demand(2, q, true)]
    }

    #[test]
    fn the_lowest_layers_lose_frames_only_when_they_do_not_fit() {
        let now = Instant::now();
        // Two cameras at 100 kbit/s and 100 kbit/s of audio.
        let mut roomy = two(100_000);
        let mut t = Thinning::default();
        assert_eq!(
            t.apply(&mut roomy, 1_000_000, 1_000_000, 100_000, now),
            None
        );
        assert_eq!(roomy[0].bitrates[0], Some(100_000));
        // 270 kbit/s: 129 kbit/s left for video (85 % of it, less audio), 120 needed at 15 fps.
        let mut thin = two(100_000);
        assert_eq!(t.apply(&mut thin, 270_000, 270_000, 100_000, now), Some(1));
        assert_eq!(thin[0].bitrates[0], Some(60_000));
        assert_eq!(
            thin[1].bitrates[1],
            Some(400_000),
            "higher layers keep theirs"
        );
        // 180 kbit/s: only 7.5 fps fits.
        let mut thinner = two(100_000);
        assert_eq!(
            t.apply(&mut thinner, 180_000, 180_000, 100_000, now),
            Some(0)
        );
        assert_eq!(thinner[0].bitrates[0], Some(35_000));
        // A hidden tile costs nothing; an unmeasured layer counts with 150 kbit/s.
        let mut t = Thinning::default();
        let mut hidden = [demand(1, 100_000, true), demand(2, 0, false)];
        assert_eq!(t.apply(&mut hidden, 250_000, 250_000, 100_000, now), None);
        let mut fresh = [demand(1, 0, true)];
        assert_eq!(t.apply(&mut fresh, 250_000, 250_000, 100_000, now), Some(1));
    }

    #[test]
    fn frames_come_back_one_step_at_a_time_and_a_failed_step_waits_longer() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut t = Thinning::default();
        // Thin: 7.5 fps.
        assert_eq!(
            t.apply(&mut two(100_000), 180_000, 180_000, 100_000, at(0.0)),
            Some(0)
        );
        // The link recovers at once: one step per 3 s, not all at once.
        let big = 1_000_000;
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(0.5)),
            Some(0)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(3.0)),
            Some(1)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(5.0)),
            Some(1)
        );
        assert_eq!(t.apply(&mut two(100_000), big, big, 100_000, at(6.0)), None);
        // A step up undone a second later: the next one waits 6 s, and then for an estimate
        // clearly above the one the failed step was taken at, or 20 s.
        assert_eq!(
            t.apply(&mut two(100_000), 270_000, 270_000, 100_000, at(7.0)),
            Some(1)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(12.5)),
            Some(1)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(13.0)),
            Some(1)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(26.0)),
            Some(1)
        );
        assert_eq!(
            t.apply(&mut two(100_000), big, big, 100_000, at(27.0)),
            None
        );
        let mut again = Thinning::default();
        again.apply(&mut two(100_000), 270_000, 270_000, 100_000, at(0.0));
        again.apply(&mut two(100_000), big, big, 100_000, at(3.0));
        assert_eq!(
            again.apply(&mut two(100_000), 270_000, 270_000, 100_000, at(4.0)),
            Some(1)
        );
        let more = big * 14 / 10;
        assert_eq!(
            again.apply(&mut two(100_000), more, more, 100_000, at(9.0)),
            Some(1)
        );
        assert_eq!(
            again.apply(&mut two(100_000), more, more, 100_000, at(10.0)),
            None
        );
        // A step up must fit in 75 % of the held estimate, not 85 %.
        let mut t = Thinning::default();
        assert_eq!(
            t.apply(&mut two(100_000), 180_000, 180_000, 100_000, at(0.0)),
            Some(0)
        );
        assert_eq!(
            t.apply(&mut two(100_000), 280_000, 280_000, 100_000, at(5.0)),
            Some(0)
        );
    }
}
