//! The bandwidth estimate of one receiver's downlink, from the transport-wide congestion control
//! feedback its browser sends about our packets: GCC's delay-trend and loss signals (the parts
//! `rtc` ships), with a rate control made for an SFU. It plugs into the engine as its
//! `BandwidthEstimator` (no pacer) and publishes its estimate through an atomic the room reads;
//! it never sends, never blocks, and takes time from the feedback it is given.
//!
//! Why not `rtc`'s own `Gcc`: an SFU forwards whole layers, so it sends far less than the link
//! could carry most of the time, and learns the link's ceiling only by trying the next layer.
//! `Gcc` grows its target by 8 % a second whatever is sent (so an idle receiver's estimate means
//! nothing), and after its first back-off it only adds 12 kbit/s at a time (a receiver whose link
//! recovered would take minutes to get full quality back). Here the estimate is bounded by what
//! the receiver actually takes (twice its received rate plus 500 kbit/s), falls at once to 85 %
//! of the received rate on overuse (a growing queueing delay), and climbs 8 % a second right
//! after a back-off, then 30 % a second once the link has been calm for 3 s (6 s, then 8 s when
//! back-offs keep coming: a link that keeps proving thin is tried less often): so a link that
//! recovers is used again within about 10 s, one layer upgrade (a real probe) at a time.
//!
//! Loss does not lower the estimate: the transport-wide feedback Chromium sends through `rtc`
//! 0.21 reports 5-25 % of packets missing on a loopback link that loses none (measured: a
//! loss-based back-off kept every receiver of a three-person call paused), and random loss is
//! what NACK repairs, not a sign of a full link. A link that is too thin shows it first as a
//! growing queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, LossController, OveruseDetector, PacketReport,
    RateCalculator, SlopeEstimator, Usage,
};

/// Where a new receiver's estimate starts: room for a few low layers and one higher one.
pub(crate) const INITIAL_BPS: f64 = 1_000_000.0;
const MIN_BPS: f64 = 80_000.0;
const MAX_BPS: f64 = 20_000_000.0;
/// How often the estimate may grow.
const INCREASE_INTERVAL: Duration = Duration::from_millis(200);
/// Growth per second just after a back-off, and once the link has been calm long enough.
const CAREFUL_GROWTH: f64 = 1.08;
const CALM_GROWTH: f64 = 1.30;
/// How long the link must stay calm before the estimate climbs fast: 3 s, doubled by each
/// back-off that follows the previous one within `REPEAT_WINDOW` (a link that keeps proving too
/// thin is probed less and less often), up to 8 s.
const CALM: Duration = Duration::from_secs(3);
const MAX_CALM: Duration = Duration::from_secs(8);
const REPEAT_WINDOW: Duration = Duration::from_secs(20);
const EPISODE: Duration = Duration::from_secs(2);
/// Back-offs at most this often (one round of evidence each).
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);

/// A receiver's downlink estimate in bits per second, shared between its estimator (inside the
/// engine) and the room.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedEstimate(Arc<AtomicU64>);

impl SharedEstimate {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, bps: f64) {
        self.0.store(bps as u64, Ordering::Relaxed);
    }
}

/// The estimator the engine feeds with transport-wide feedback reports.
pub(crate) struct DownlinkEstimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    received: RateCalculator,
    loss: LossController,
    estimate: f64,
    last_increase: Option<Instant>,
    last_decrease: Option<Instant>,
    calm_needed: Duration,
    out: SharedEstimate,
}

impl DownlinkEstimator {
    /// An estimator publishing into `out`.
    pub fn new(out: SharedEstimate) -> Self {
        out.set(INITIAL_BPS);
        DownlinkEstimator {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            received: RateCalculator::default(),
            loss: LossController::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            estimate: INITIAL_BPS,
            last_increase: None,
            last_decrease: None,
            calm_needed: CALM,
            out,
        }
    }

    fn decrease_to(&mut self, now: Instant, bps: f64) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_INTERVAL)
        {
            return;
        }
        if bps < self.estimate {
            self.estimate = bps.clamp(MIN_BPS, MAX_BPS);
            // Back-offs less than `EPISODE` apart are one congestion episode.
            let since = self.last_decrease.map(|t| now.saturating_duration_since(t));
            self.calm_needed = match since {
                Some(s) if s < EPISODE => self.calm_needed,
                Some(s) if s < REPEAT_WINDOW => (self.calm_needed * 2).min(MAX_CALM),
                _ => CALM,
            };
            self.last_decrease = Some(now);
        }
    }

    fn increase(&mut self, now: Instant, received: Option<f64>) {
        let elapsed = match self.last_increase {
            Some(t) => now.saturating_duration_since(t),
            None => INCREASE_INTERVAL,
        };
        if elapsed < INCREASE_INTERVAL {
            return;
        }
        self.last_increase = Some(now);
        let calm = self
            .last_decrease
            .is_none_or(|t| now.saturating_duration_since(t) >= self.calm_needed);
        let growth = if calm { CALM_GROWTH } else { CAREFUL_GROWTH };
        let grown = self.estimate * growth.powf(elapsed.as_secs_f64().min(1.0));
        // What the receiver takes bounds what we may believe about its link.
        let ceiling = received.map_or(MAX_BPS, |r| 2.0 * r + 500_000.0);
        if grown > self.estimate {
            self.estimate = grown
                .min(ceiling.max(self.estimate))
                .clamp(MIN_BPS, MAX_BPS);
        }
    }
}

impl BandwidthEstimator for DownlinkEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage();
        for report in reports {
            if report.arrived {
                self.received.add(now, report.size);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let received = self.received.rate_bits_per_second(now);
        let lost = reports.iter().filter(|r| !r.arrived).count();
        self.loss.update(now, lost, reports.len());
        match usage {
            Usage::Over => {
                if let Some(r) = received {
                    self.decrease_to(now, 0.85 * r);
                }
            }
            Usage::Normal => self.increase(now, received),
            Usage::Under => {}
        }
        tracing::trace!(
            ?usage,
            loss = self.loss.average_loss(),
            received,
            reports = reports.len(),
            estimate = self.estimate,
            "downlink feedback"
        );
        self.out.set(self.estimate);
    }

    fn target_bitrate(&self) -> f64 {
        self.estimate
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.delay_based_bitrate = Some(self.estimate);
        stats.loss_based_bitrate = Some(self.loss.target());
        stats.packet_loss = self.loss.average_loss();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// Feedback for `count` packets of 1,200 bytes sent every `gap`, starting at `start`,
    /// each arriving `base` + `extra(i)` after it left (`None`: lost).
    fn batch(
        first_id: u64,
        start: Instant,
        epoch: Instant,
        gap: Duration,
        count: u64,
        arrival: impl Fn(u64) -> Option<Duration>,
    ) -> Vec<PacketReport> {
        (0..count)
            .map(|i| {
                let id = first_id + i;
                let departure = start + gap * i as u32;
                let arrival = arrival(i).map(|d| departure.saturating_duration_since(epoch) + d);
                PacketReport {
                    ssrc: 1,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size: 1200,
                    arrived: arrival.is_some(),
                    departure,
                    arrival,
                    ecn: Ecn::default(),
                }
            })
            .collect()
    }

    /// Runs `seconds` of 100 ms feedback rounds at `pps` packets per second.
    fn run(
        est: &mut DownlinkEstimator,
        epoch: Instant,
        from_ms: u64,
        seconds: u64,
        pps: u64,
        arrival: impl Fn(u64, u64) -> Option<Duration>,
    ) -> u64 {
        let per_round = pps / 10;
        let gap = Duration::from_millis(1000 / pps.max(1));
        for round in 0..seconds * 10 {
            let at = epoch + Duration::from_millis(from_ms + round * 100);
            let id = (from_ms / 100 + round) * per_round;
            let reports = batch(id, at, epoch, gap, per_round, |i| arrival(round, i));
            est.on_reports(at + Duration::from_millis(100), &reports);
        }
        est.out.get()
    }

    #[test]
    fn a_calm_link_lets_the_estimate_climb_but_not_past_what_is_taken() {
        let shared = SharedEstimate::default();
        let mut est = DownlinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        // 100 packets/s of 1,200 bytes: about 1 Mbit/s taken, steady 20 ms transit.
        let after = run(&mut est, epoch, 0, 10, 100, |_, _| {
            Some(Duration::from_millis(20))
        });
        assert!(after > 1_500_000, "estimate stayed at {after}");
        // Twice what is taken plus 500 kbit/s, with the rate window's slack.
        assert!(after <= 3_200_000, "estimate ran away to {after}");
        assert_eq!(shared.get(), after);
    }

    #[test]
    fn growing_delay_brings_the_estimate_down_to_what_arrives() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        // Each packet (10 ms apart) waits 20 ms longer than the one before: three times more
        // sent than the link carries, a queue building up.
        let after = run(&mut est, epoch, 0, 3, 100, |round, i| {
            Some(Duration::from_millis(20 + (round * 10 + i) * 20))
        });
        assert!(after < INITIAL_BPS as u64, "estimate {after} did not fall");
    }

    #[test]
    fn a_link_that_keeps_proving_thin_is_probed_less_often() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        est.decrease_to(at(0.0), 300_000.0);
        assert_eq!(est.calm_needed, CALM);
        // More back-offs in the same episode change nothing.
        est.decrease_to(at(0.5), 250_000.0);
        assert_eq!(est.calm_needed, CALM);
        // A new episode soon after: twice as long, then capped.
        est.decrease_to(at(6.0), 200_000.0);
        assert_eq!(est.calm_needed, CALM * 2);
        est.decrease_to(at(14.0), 150_000.0);
        assert_eq!(est.calm_needed, MAX_CALM);
        est.decrease_to(at(24.0), 100_000.0);
        assert_eq!(est.calm_needed, MAX_CALM);
        // A long calm resets it.
        est.decrease_to(at(60.0), 90_000.0);
        assert_eq!(est.calm_needed, CALM);
    }

    #[test]
    fn random_loss_alone_does_not_lower_the_estimate() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        // Every tenth packet lost, no queue: NACK's business, not the allocator's.
        let after = run(&mut est, epoch, 0, 3, 100, |_, i| {
            (i % 10 != 0).then_some(Duration::from_millis(20))
        });
        assert!(
            after >= INITIAL_BPS as u64,
            "estimate fell to {after} on random loss"
        );
    }

    #[test]
    fn after_a_back_off_a_recovered_link_is_used_again_within_ten_seconds() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        let low = run(&mut est, epoch, 0, 3, 30, |round, i| {
            Some(Duration::from_millis(20 + (round * 3 + i) * 60))
        });
        assert!(low < 400_000, "thin link estimate {low}");
        // The link recovers; the receiver takes more as the estimate allows (modelled here
        // by sending at the estimate's rate, in 1,200-byte packets).
        let mut at_ms = 3_000;
        let mut estimate = low;
        for _ in 0..10 {
            let pps = (estimate / 9_600).max(10);
            estimate = run(&mut est, epoch, at_ms, 1, pps, |_, _| {
                Some(Duration::from_millis(20))
            });
            at_ms += 1_000;
        }
        assert!(
            estimate > 2_500_000,
            "estimate only reached {estimate} in 10 s"
        );
    }
}
