//! The bandwidth estimate of one receiver's downlink, from the transport-wide congestion control
//! feedback its browser sends about our packets: GCC's delay-trend and loss signals (the parts
//! `rtc` ships), with a rate control made for an SFU. It plugs into the engine as its
//! `BandwidthEstimator` (no pacer) and publishes its estimate through an atomic the room reads;
//! it never sends, never blocks, and takes time from the feedback it is given.
//!
//! Why not `rtc`'s own `Gcc`: an SFU forwards whole layers, so it sends far less than the link
//! could carry most of the time, and learns the link's ceiling only by trying the next layer. `Gcc`
//! grows its target by 8 % a second whatever is sent (so an idle receiver's estimate means
//! nothing), and after its first back-off it only adds 12 kbit/s at a time (a receiver whose link
//! recovered would take minutes to get full quality back). Here the estimate is bounded by what the
//! receiver actually takes (three times its received rate plus 1 Mbit/s: room for the next layer
//! up, not for an imagined gigabit), falls at once to 85 % of the received rate on overuse (a
//! growing queueing delay), or on heavy loss to 85 % of what arrived over the last half second (the
//! last second still counts the faster link of before a drop), and climbs 8 % a second right after
//! a back-off, then 50 % a second once the link has been calm for 3 s (6 s when back-offs keep
//! coming). After a back-off, though, it climbs no higher than the back-off's rate or what the
//! receiver is seen taking, whichever is more, for 30 s after the latest one, unless the link
//! proves better first: the receiver takes 1.4 times the back-off's rate (at most 300 kbit/s more)
//! without overuse, over a second measured after the back-off. The room's prober pads the
//! receiver's video to make it take that much (`prober.rs`). So a link that proved thin is not
//! handed a layer it cannot carry on a guess (each such try was a burst of loss and a freeze), and
//! a link that recovers is found by a probe within seconds.
//!
//! Loss lowers the estimate only when it is heavy and sustained: more than 20 % of at least 20
//! packets over half a second (a full queue that drops what does not fit shows a steady delay,
//! not a growing one, so only its losses tell). Light loss is what NACK repairs, and the
//! feedback on a busy machine (starved browsers) reports bursts of 5-25 % loss on a loopback
//! link that drops nothing: GCC's 10 % threshold kept every receiver of a three-person call
//! paused there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::queue_delay::QueueDelay;
use rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, LossController, OveruseDetector, PacketReport,
    SlopeEstimator, Usage,
};

/// Where a new receiver's estimate starts: room for a few low layers and one higher one.
pub(crate) const INITIAL_BPS: f64 = 1_000_000.0;
const MIN_BPS: f64 = 80_000.0;
const MAX_BPS: f64 = 20_000_000.0;
/// How often the estimate may grow.
const INCREASE_INTERVAL: Duration = Duration::from_millis(200);
/// Growth per second just after a back-off, and once the link has been calm long enough.
const CAREFUL_GROWTH: f64 = 1.08;
const CALM_GROWTH: f64 = 1.50;
/// How long the link must stay calm before the estimate climbs fast: 3 s, doubled by each
/// back-off that follows the previous one within `REPEAT_WINDOW` (a link that keeps proving too
/// thin is probed less and less often), up to 6 s.
const CALM: Duration = Duration::from_secs(3);
const MAX_CALM: Duration = Duration::from_secs(6);
const REPEAT_WINDOW: Duration = Duration::from_secs(20);
const EPISODE: Duration = Duration::from_secs(2);
/// Below this multiple of the rate of the last back-off, the estimate creeps up by
/// `CREEP_BPS` a second.
const NEAR_BACKOFF: f64 = 1.25;
const CREEP_BPS: f64 = 10_000.0;
/// How long a back-off's rate is remembered as the link's likely ceiling.
const BACKOFF_MEMORY: Duration = Duration::from_secs(30);
/// Back-offs at most this often: a queue takes a while to drain after one, and the losses and
/// delays reported meanwhile are the old queue's, not news.
const DECREASE_INTERVAL: Duration = Duration::from_secs(1);
/// A back-off to below this share of the estimate is taken even within `DECREASE_INTERVAL`.
const MUCH_LOWER: f64 = 0.75;
/// Loss over a window of at least `LOSS_WINDOW` and `LOSS_MIN_PACKETS` above `HEAVY_LOSS`
/// lowers the estimate.
const LOSS_WINDOW: Duration = Duration::from_millis(500);
const LOSS_MIN_PACKETS: usize = 20;
const HEAVY_LOSS: f64 = 0.20;
/// What a back-off keeps of the rate that arrived (GCC's beta), on overuse and on heavy loss
/// alike: a little under the link's rate, so that the queue that built up drains.
const BACKOFF_SHARE: f64 = 0.85;
/// What the received rate averages over (ten slots of 100 ms).
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Whole 100 ms slots of the received rate a back-off on heavy loss reads (with the current
/// one): a queue full enough to drop delivers at the link's rate, and the second before it still
/// counts the faster link of before a drop.
const RECENT_SLOTS: usize = 4;
/// What the link carries per packet besides the RTP packet the feedback reports: the SRTP
/// authentication tag (10), UDP (8) and IPv4 (20) headers. Small packets (padding probes) cost
/// the link far more than their RTP size.
const PER_PACKET_OVERHEAD: usize = 38;
/// The receiver taking this multiple of the back-off's rate (or `MAX_PROOF_STEP` more) without
/// overuse proves the link better than it was: the back-off is forgotten.
const PROOF: f64 = 1.4;
const MAX_PROOF_STEP: f64 = 300_000.0;

/// A receiver's downlink estimate in bits per second, shared between its estimator (inside the
/// engine) and the room, with what the room's prober needs: the rate the receiver must be seen
/// taking before the estimate may climb past its link's last back-off, and how many back-offs
/// there have been.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedEstimate(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    estimate: AtomicU64,
    verify: AtomicU64,
    received: AtomicU64,
    backoffs: AtomicU64,
    /// The packets of the latest feedback that were lost (high 32 bits) and reported (low), and
    /// the per mille lost on average.
    loss: AtomicU64,
    average_loss: AtomicU64,
    /// The standing queue at the latest feedback, in milliseconds.
    queue_ms: AtomicU64,
}

impl SharedEstimate {
    pub fn get(&self) -> u64 {
        self.0.estimate.load(Ordering::Relaxed)
    }

    /// The rate to prove (by sending that much, padding included) before the estimate may
    /// climb further; 0 when it may climb on its own.
    pub fn to_verify(&self) -> u64 {
        self.0.verify.load(Ordering::Relaxed)
    }

    /// What the receiver took over the last second, per-packet overhead included.
    pub fn received(&self) -> u64 {
        self.0.received.load(Ordering::Relaxed)
    }

    /// The packets the latest feedback reported lost, and how many it reported (the prober's
    /// first sign that its probe overshoots, before any back-off).
    pub fn recent_loss(&self) -> (u32, u32) {
        let packed = self.0.loss.load(Ordering::Relaxed);
        ((packed >> 32) as u32, packed as u32)
    }

    /// The share of packets lost on average (the loss a link shows without our probes).
    pub fn average_loss(&self) -> f64 {
        self.0.average_loss.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// The standing queue on the link at the latest feedback, in milliseconds (see
    /// [`crate::queue_delay`]): the prober's earliest sign that its probe overshoots.
    pub fn queue_ms(&self) -> u64 {
        self.0.queue_ms.load(Ordering::Relaxed)
    }

    /// Back-offs so far (the prober's sign that its probe overshot).
    pub fn backoffs(&self) -> u64 {
        self.0.backoffs.load(Ordering::Relaxed)
    }

    fn set(&self, bps: f64) {
        self.0.estimate.store(bps as u64, Ordering::Relaxed);
    }
}

/// Sets what an estimator would publish, for tests of its readers.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn lose(shared: &SharedEstimate, lost: u32, of: u32) {
        shared
            .0
            .loss
            .store((u64::from(lost) << 32) | u64::from(of), Ordering::Relaxed);
    }

    pub fn queue(shared: &SharedEstimate, ms: u64) {
        shared.0.queue_ms.store(ms, Ordering::Relaxed);
    }

    pub fn publish(shared: &SharedEstimate, verify: u64, received: u64, backoffs: u64) {
        shared.0.verify.store(verify, Ordering::Relaxed);
        shared.0.received.store(received, Ordering::Relaxed);
        shared.0.backoffs.store(backoffs, Ordering::Relaxed);
    }
}

/// What the receiver took: bytes acknowledged per 100 ms slot over the last second (`rtc`'s
/// rate calculator divides by the span of one feedback's packets, which on a burst reads
/// hundreds of megabits). Fixed slots: nothing allocated per report.
#[derive(Debug, Default)]
struct ReceivedRate {
    slots: [u64; 10],
    /// The slot `slots[current]` counts, in 100 ms since `epoch`.
    current_slot: u64,
    current: usize,
    epoch: Option<Instant>,
}

impl ReceivedRate {
    fn slot_of(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        (now.saturating_duration_since(epoch).as_millis() / 100) as u64
    }

    fn advance(&mut self, now: Instant) {
        let slot = self.slot_of(now);
        let steps = slot.saturating_sub(self.current_slot).min(10);
        for _ in 0..steps {
            self.current = (self.current + 1) % self.slots.len();
            self.slots[self.current] = 0;
        }
        self.current_slot = self.current_slot.max(slot);
    }

    fn add(&mut self, now: Instant, bytes: usize) {
        self.advance(now);
        self.slots[self.current] += bytes as u64;
    }

    /// Bits per second over the last second; `None` during the first half second.
    fn bps(&mut self, now: Instant) -> Option<f64> {
        self.advance(now);
        (self.current_slot >= 5).then(|| {
            let span = (self.current_slot + 1).min(10) as f64 / 10.0;
            self.slots.iter().sum::<u64>() as f64 * 8.0 / span
        })
    }

    /// Bits per second over the latest `RECENT_SLOTS` whole slots and the current one as far as
    /// it went: what arrived since a link turned thin, without the second before it.
    fn recent_bps(&mut self, now: Instant) -> Option<f64> {
        self.advance(now);
        let epoch = self.epoch?;
        let into_slot = now.saturating_duration_since(epoch).as_millis() as u64 % 100;
        (self.current_slot >= RECENT_SLOTS as u64).then(|| {
            let n = self.slots.len();
            let bytes: u64 = (0..=RECENT_SLOTS)
                .map(|back| self.slots[(self.current + n - back) % n])
                .sum();
            let span = (RECENT_SLOTS as u64 * 100 + into_slot.max(1)) as f64 / 1_000.0;
            bytes as f64 * 8.0 / span
        })
    }
}

/// The estimator the engine feeds with transport-wide feedback reports.
pub(crate) struct DownlinkEstimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    received: ReceivedRate,
    queue: QueueDelay,
    loss: LossController,
    estimate: f64,
    last_increase: Option<Instant>,
    last_decrease: Option<Instant>,
    calm_needed: Duration,
    /// What the link delivered when the estimate last backed off: near it, the estimate creeps
    /// up instead of climbing (each overshoot there is a burst of loss or delay for the
    /// receiver).
    /// The latest back-off's rate and when it was, for `BACKOFF_MEMORY`.
    backoff_rate: Option<(f64, Instant)>,
    /// Packets reported (and of them lost) since `window_start`.
    window: (Option<Instant>, usize, usize),
    out: SharedEstimate,
}

impl DownlinkEstimator {
    /// An estimator publishing into `out`.
    pub fn new(out: SharedEstimate) -> Self {
        out.set(INITIAL_BPS);
        DownlinkEstimator {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            received: ReceivedRate::default(),
            queue: QueueDelay::default(),
            loss: LossController::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            estimate: INITIAL_BPS,
            last_increase: None,
            last_decrease: None,
            calm_needed: CALM,
            backoff_rate: None,
            window: (None, 0, 0),
            out,
        }
    }

    /// Lowers the estimate to `bps`. `heavy_loss`: the reading is what a dropping queue
    /// delivered over the latest loss window, the link's rate, taken at each window.
    fn decrease_to(&mut self, now: Instant, bps: f64, heavy_loss: bool) {
        // A reading far below the estimate is news (the link got thinner still, or the first
        // back-off after a sudden drop counted arrivals from before it), not the old queue's
        // echo; so is what a queue that keeps dropping delivers.
        let news = heavy_loss || bps < MUCH_LOWER * self.estimate;
        if !news
            && self
                .last_decrease
                .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_INTERVAL)
        {
            return;
        }
        if bps < self.estimate {
            self.estimate = bps.clamp(MIN_BPS, MAX_BPS);
            // The latest back-off's rate (the first of a sudden drop still counts arrivals from
            // before it), remembered until `BACKOFF_MEMORY` after it or until the link proves
            // better.
            self.backoff_rate = Some((self.estimate, now));
            self.out.0.backoffs.fetch_add(1, Ordering::Relaxed);
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

    /// The rate of the remembered back-off, if any.
    fn remembered_backoff(&self, now: Instant) -> Option<f64> {
        self.backoff_rate
            .filter(|(_, at)| now.saturating_duration_since(*at) < BACKOFF_MEMORY)
            .map(|(b, _)| b)
    }

    /// What the receiver must take to prove its link better than the remembered back-off.
    fn proof_rate(backoff: f64) -> f64 {
        (PROOF * backoff).min(backoff + MAX_PROOF_STEP)
    }

    /// Forgets the back-off once the receiver takes its proof rate calmly; publishes what is
    /// left to prove and what it takes.
    fn check_proof(&mut self, now: Instant, received: Option<f64>, calm: bool) {
        // The received rate's window must hold nothing from before the back-off (right after a
        // sudden drop it still counts the faster link's arrivals: no proof at all).
        let measured_after = self
            .backoff_rate
            .is_some_and(|(_, at)| now.saturating_duration_since(at) >= RATE_WINDOW);
        if let (Some(b), Some(r)) = (self.remembered_backoff(now), received)
            && measured_after
            && calm
            && r >= Self::proof_rate(b)
        {
            tracing::debug!(
                backoff = b,
                received = r,
                "the link proved better; back-off forgotten"
            );
            self.backoff_rate = None;
        }
        let verify = self.remembered_backoff(now).map_or(0.0, Self::proof_rate);
        self.out.0.verify.store(verify as u64, Ordering::Relaxed);
        self.out
            .0
            .received
            .store(received.unwrap_or(0.0) as u64, Ordering::Relaxed);
    }

    /// The loss over the window that just closed, when it was heavy.
    fn heavy_loss(&mut self, now: Instant, lost: usize, total: usize) -> Option<f64> {
        let (start, seen, missing) = &mut self.window;
        let begun = *start.get_or_insert(now);
        *seen += total;
        *missing += lost;
        if now.saturating_duration_since(begun) < LOSS_WINDOW {
            return None;
        }
        let (seen, missing) = (*seen, *missing);
        self.window = (Some(now), 0, 0);
        let loss = missing as f64 / seen.max(1) as f64;
        (seen >= LOSS_MIN_PACKETS && loss > HEAVY_LOSS).then_some(loss)
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
        let seconds = elapsed.as_secs_f64().min(1.0);
        let backoff = self.remembered_backoff(now);
        let near_backoff = backoff.is_some_and(|b| self.estimate < b * NEAR_BACKOFF);
        let grown = if near_backoff {
            self.estimate + CREEP_BPS * seconds
        } else {
            let growth = if calm { CALM_GROWTH } else { CAREFUL_GROWTH };
            self.estimate * growth.powf(seconds)
        };
        // What the receiver takes bounds what we may believe about its link. After a back-off,
        // exactly: a link that proved thin is believed to carry more than the back-off's rate
        // only once it has (the prober pads the stream to show it).
        let ceiling = match (received, backoff) {
            (Some(r), Some(b)) => b.max(r),
            (Some(r), None) => 3.0 * r + 1_000_000.0,
            (None, _) => MAX_BPS,
        };
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
                self.received.add(now, report.size + PER_PACKET_OVERHEAD);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let received = self.received.bps(now);
        if let Some(queue) = self.queue.update(now, reports) {
            self.out.0.queue_ms.store(queue as u64, Ordering::Relaxed);
        }
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let packed = ((lost.min(u32::MAX as usize) as u64) << 32)
            | reports.len().min(u32::MAX as usize) as u64;
        self.out.0.loss.store(packed, Ordering::Relaxed);
        self.loss.update(now, lost, reports.len());
        self.out.0.average_loss.store(
            (self.loss.average_loss().unwrap_or(0.0) * 1000.0) as u64,
            Ordering::Relaxed,
        );
        let heavy_loss = self.heavy_loss(now, lost, reports.len());
        if let (Some(loss), Some(r)) = (heavy_loss, received) {
            let recent = self.received.recent_bps(now).unwrap_or(r);
            tracing::debug!(loss, received = r, recent, "heavy loss on a downlink");
            // A queue full enough to drop delivers at the link's rate: what was received lately
            // is what the link carries.
            self.decrease_to(now, BACKOFF_SHARE * r.min(recent), true);
        }
        match usage {
            Usage::Over => {
                if let Some(r) = received {
                    self.decrease_to(now, BACKOFF_SHARE * r, false);
                }
            }
            Usage::Normal if heavy_loss.is_none() => self.increase(now, received),
            Usage::Normal => {}
            Usage::Under => {}
        }
        self.check_proof(
            now,
            received,
            usage == Usage::Normal && heavy_loss.is_none(),
        );
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
        // Three times what is taken plus 1 Mbit/s, with the rate window's slack.
        assert!(after <= 4_200_000, "estimate ran away to {after}");
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
    fn the_received_rate_is_a_one_second_window() {
        let mut rate = ReceivedRate::default();
        let t0 = Instant::now();
        assert_eq!(rate.bps(t0), None);
        // 12,500 bytes every 100 ms: 1 Mbit/s, however bursty within the slot.
        for i in 0..30u64 {
            rate.add(t0 + Duration::from_millis(i * 100), 12_500);
        }
        let bps = rate.bps(t0 + Duration::from_millis(2_950)).unwrap();
        assert!((900_000.0..=1_100_000.0).contains(&bps), "{bps}");
        // A second of silence empties it.
        assert_eq!(rate.bps(t0 + Duration::from_millis(4_100)), Some(0.0));
    }

    #[test]
    fn the_recent_rate_forgets_what_came_before_a_drop() {
        let mut rate = ReceivedRate::default();
        let t0 = Instant::now();
        // A second at 1 Mbit/s, then half a second at 200 kbit/s (2,500 bytes per 100 ms).
        for i in 0..10u64 {
            rate.add(t0 + Duration::from_millis(i * 100), 12_500);
        }
        for i in 10..15u64 {
            rate.add(t0 + Duration::from_millis(i * 100 + 50), 2_500);
        }
        let now = t0 + Duration::from_millis(1_499);
        let recent = rate.recent_bps(now).unwrap();
        assert!((150_000.0..=260_000.0).contains(&recent), "{recent}");
        let second = rate.bps(now).unwrap();
        assert!(second > 500_000.0, "{second}");
    }

    #[test]
    fn a_link_that_keeps_proving_thin_is_probed_less_often() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        est.decrease_to(at(0.0), 300_000.0, false);
        assert_eq!(est.calm_needed, CALM);
        // More back-offs in the same episode change nothing.
        est.decrease_to(at(0.5), 250_000.0, false);
        assert_eq!(est.calm_needed, CALM);
        // A new episode soon after: twice as long, then capped.
        est.decrease_to(at(6.0), 200_000.0, false);
        assert_eq!(est.calm_needed, CALM * 2);
        est.decrease_to(at(14.0), 150_000.0, false);
        assert_eq!(est.calm_needed, MAX_CALM);
        est.decrease_to(at(24.0), 100_000.0, false);
        assert_eq!(est.calm_needed, MAX_CALM);
        // A long calm resets it.
        est.decrease_to(at(60.0), 90_000.0, false);
        assert_eq!(est.calm_needed, CALM);
    }

    #[test]
    fn a_full_queue_that_drops_most_packets_lowers_the_estimate() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        // Two of three packets dropped at a steady delay: a tail-dropping queue.
        let after = run(&mut est, epoch, 0, 3, 100, |_, i| {
            (i % 3 == 0).then_some(Duration::from_millis(300))
        });
        assert!(
            after < 500_000,
            "estimate {after} ignored a queue dropping 67 %"
        );
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
    fn after_a_back_off_a_recovered_link_is_used_again_within_twelve_seconds() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        let low = run(&mut est, epoch, 0, 3, 30, |round, i| {
            Some(Duration::from_millis(20 + (round * 3 + i) * 60))
        });
        assert!(low < 400_000, "thin link estimate {low}");
        // The link recovers; the receiver takes more as the estimate allows, and the prober
        // pads the stream up to what must be proven (modelled here by sending at the higher
        // of the two, in 1,200-byte packets).
        let mut at_ms = 3_000;
        let mut estimate = low;
        for _ in 0..12 {
            let sent = estimate.max(est.out.to_verify() * 11 / 10);
            let pps = (sent / 9_600).max(10);
            estimate = run(&mut est, epoch, at_ms, 1, pps, |_, _| {
                Some(Duration::from_millis(20))
            });
            at_ms += 1_000;
        }
        assert!(
            estimate > 2_500_000,
            "estimate only reached {estimate} in 12 s"
        );
    }

    #[test]
    fn arrivals_from_before_a_back_off_prove_nothing() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        // A second at 1 Mbit/s, calmly: then a back-off to 200 kbit/s. The next calm report
        // still sees the fast second in the received rate, which is not a proof.
        run(&mut est, epoch, 0, 1, 100, |_, _| {
            Some(Duration::from_millis(20))
        });
        let at = epoch + Duration::from_millis(1_000);
        est.decrease_to(at, 200_000.0, true);
        run(&mut est, epoch, 1_000, 1, 20, |_, _| {
            Some(Duration::from_millis(20))
        });
        assert!(
            est.out.to_verify() > 0,
            "the back-off was forgotten at once"
        );
    }

    #[test]
    fn after_a_back_off_the_estimate_climbs_only_as_far_as_the_receiver_is_seen_taking() {
        let mut est = DownlinkEstimator::new(SharedEstimate::default());
        let epoch = Instant::now();
        est.decrease_to(epoch, 200_000.0, false);
        assert_eq!(est.out.backoffs(), 1);
        // 20 packets a second of 1,200 bytes: about 200 kbit/s taken, calmly, for 20 s.
        let after = run(&mut est, epoch, 0, 20, 20, |_, _| {
            Some(Duration::from_millis(20))
        });
        assert!(
            after <= 260_000,
            "estimate {after} ran past what was proven"
        );
        let proof = est.out.to_verify();
        assert!(proof >= 270_000, "nothing left to prove ({proof})");
        // Taking the proof rate (padding included) forgets the back-off: free to climb again.
        let after = run(&mut est, epoch, 20_000, 2, proof / 9_000, |_, _| {
            Some(Duration::from_millis(20))
        });
        assert_eq!(est.out.to_verify(), 0);
        assert!(
            after > 300_000,
            "estimate {after} stayed down after the proof"
        );
    }
}
