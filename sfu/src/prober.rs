//! Upward probing of one receiver's downlink with padding. After a back-off the estimator
//! believes in more bandwidth only once the receiver has taken it
//! ([`SharedEstimate::to_verify`]); while the receiver gets less than its tiles want, the prober
//! pads its video up to that rate for a few seconds. If the link carries it the back-off is
//! forgotten and the allocator climbs again; if it does not (the link's standing queue grows or
//! it loses packets, or the estimator backs off), the padding stops at once and the next probe
//! waits longer. A failed probe costs the receiver padding, not a layer switch that its link
//! cannot carry. Pure decisions: it never sends (the room writes the padding packets it asks
//! for) and has no clock of its own.

use std::time::{Duration, Instant};

use crate::downlink_estimator::SharedEstimate;

/// What one padding-only packet costs the link as the estimator counts it: a 24-byte RTP packet
/// (header, transport-wide sequence number, 4 bytes of padding) and 38 bytes of SRTP, UDP and
/// IP overhead.
pub(crate) const PADDING_PACKET_BYTES: f64 = 62.0;
/// Padding climbs from nothing to its full rate over `RAMP` (a link that cannot carry it shows
/// a little loss or a growing delay before it drops much), and a probe ends after `LENGTH`
/// whatever happens.
const RAMP: Duration = Duration::from_secs(2);
const LENGTH: Duration = Duration::from_secs(4);
/// Loss in one feedback report this much above the link's usual loss (as it was when the probe
/// started) ends a probe at once: the link is full. (Padding is small: a queue limited in
/// packets fills with it before the delay grows much.)
/// (It takes two lost packets, and the usual loss counts at most `MAX_USUAL_LOSS`: the average
/// includes the congestion that caused the back-off.)
const LOSS_ABORT: f64 = 0.03;
const MAX_USUAL_LOSS: f64 = 0.05;
/// A standing queue this much longer than when the probe started ends it at once, before the
/// loss: a buffer counted in packets fills with small padding while the media packets among
/// them already wait longer (at 250 kbit/s a full 20-packet queue of this mix holds about
/// 150 ms).
const DELAY_ABORT_MS: u64 = 50;
/// Feedback in the first moments of a probe reports packets sent before it: not its doing.
const BLIND: Duration = Duration::from_millis(200);
/// The probe aims this much above the rate to prove: the received rate is a one-second window.
const MARGIN: f64 = 1.1;
/// At most this much padding (about 1,200 small packets a second).
const MAX_PADDING_BPS: f64 = 600_000.0;
/// Bytes of padding sent at once at most (one timer tick's worth, however late the tick).
const MAX_BURST_BYTES: f64 = 1_500.0;
/// Wait after any back-off before probing (its queue drains), and between probes: 3 s, doubled
/// after each probe that failed, up to 8 s; a link that recovers is still found within 15 s.
const SETTLE: Duration = Duration::from_secs(3);
const MAX_INTERVAL: Duration = Duration::from_secs(8);

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The link carried it: the estimate may climb.
    Proven,
    /// The estimator backed off during the probe.
    Overshot,
    /// Neither within `LENGTH` (too little could be sent).
    TimedOut,
}

#[derive(Debug)]
struct Probe {
    started: Instant,
    padding_bps: f64,
    usual_loss: f64,
    usual_queue_ms: u64,
}

/// One receiver's prober.
#[derive(Debug)]
pub(crate) struct Prober {
    probe: Option<Probe>,
    /// No probe starts before this.
    not_before: Option<Instant>,
    interval: Duration,
    backoffs_seen: u64,
    /// Padding bytes due and not yet sent, and when they were last counted.
    credit: f64,
    last_tick: Option<Instant>,
}

impl Default for Prober {
    fn default() -> Self {
        Prober {
            probe: None,
            not_before: None,
            interval: SETTLE,
            backoffs_seen: 0,
            credit: 0.0,
            last_tick: None,
        }
    }
}

impl Prober {
    /// Whether padding is being sent.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    fn end(&mut self, now: Instant, outcome: Outcome) -> Option<Outcome> {
        self.probe = None;
        self.credit = 0.0;
        self.last_tick = None;
        self.interval = match outcome {
            Outcome::Proven => SETTLE,
            _ => (self.interval * 2).min(MAX_INTERVAL),
        };
        self.not_before = Some(now + self.interval);
        Some(outcome)
    }

    /// On each allocation: starts or ends a probe. `limited`: the receiver gets less than its
    /// tiles want for lack of bandwidth. Returns how a probe ended, when one did.
    pub fn plan(
        &mut self,
        now: Instant,
        estimate: &SharedEstimate,
        limited: bool,
    ) -> Option<Outcome> {
        let goal = estimate.to_verify() as f64;
        let backoffs = estimate.backoffs();
        if backoffs != self.backoffs_seen {
            self.backoffs_seen = backoffs;
            if self.probe.is_some() {
                return self.end(now, Outcome::Overshot);
            }
            let settled = now + SETTLE;
            self.not_before = Some(self.not_before.map_or(settled, |t| t.max(settled)));
        }
        if let Some(probe) = &self.probe {
            if goal == 0.0 {
                return self.end(now, Outcome::Proven);
            }
            if now.saturating_duration_since(probe.started) >= LENGTH {
                return self.end(now, Outcome::TimedOut);
            }
            if !limited {
                // Nothing more is wanted now (a tile was hidden): no point proving anything.
                self.probe = None;
            }
            return None;
        }
        let due = self.not_before.is_none_or(|t| now >= t);
        let padding_bps = (goal * MARGIN - estimate.received() as f64).min(MAX_PADDING_BPS);
        if goal > 0.0 && limited && due && padding_bps > 0.0 {
            tracing::debug!(goal, padding_bps, "probing the downlink with padding");
            self.probe = Some(Probe {
                started: now,
                padding_bps,
                usual_loss: estimate.average_loss().min(MAX_USUAL_LOSS),
                usual_queue_ms: estimate.queue_ms(),
            });
            self.credit = 0.0;
            self.last_tick = Some(now);
        }
        None
    }

    /// On each timer tick: how many padding packets to send now.
    pub fn due(&mut self, now: Instant, estimate: &SharedEstimate) -> usize {
        let (lost, reported) = estimate.recent_loss();
        let loss = f64::from(lost) / f64::from(reported.max(1));
        if let Some(probe) = &self.probe
            && now.saturating_duration_since(probe.started) >= BLIND
        {
            let queue_ms = estimate.queue_ms();
            let lossy = lost >= 2 && loss > probe.usual_loss + LOSS_ABORT;
            let queued = queue_ms > probe.usual_queue_ms + DELAY_ABORT_MS;
            if lossy || queued {
                tracing::debug!(lost, reported, queue_ms, "probe ended by loss or queue");
                self.end(now, Outcome::Overshot);
                return 0;
            }
        }
        let Some(probe) = &self.probe else {
            return 0;
        };
        let since = self
            .last_tick
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_tick = Some(now);
        let ramp = (now.saturating_duration_since(probe.started).as_secs_f64()
            / RAMP.as_secs_f64())
        .min(1.0);
        self.credit = (self.credit + probe.padding_bps * ramp * since.as_secs_f64() / 8.0)
            .min(MAX_BURST_BYTES);
        let packets = (self.credit / PADDING_PACKET_BYTES).floor();
        self.credit -= packets * PADDING_PACKET_BYTES;
        packets as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downlink_estimator::testing;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Ticks every 10 ms from `*at` to `until` (ms after `t0`); the padding bytes asked for.
    fn pad(
        prober: &mut Prober,
        shared: &SharedEstimate,
        t0: Instant,
        at: &mut u64,
        until: u64,
    ) -> f64 {
        let mut sent = 0;
        while *at < until {
            *at += 10;
            sent += prober.due(ms(t0, *at), shared);
        }
        sent as f64 * PADDING_PACKET_BYTES
    }

    /// Plans every 250 ms from `*at` until a probe starts.
    fn until_probing(prober: &mut Prober, shared: &SharedEstimate, t0: Instant, at: &mut u64) {
        while !prober.probing() {
            *at += 250;
            prober.plan(ms(t0, *at), shared, true);
        }
    }

    #[test]
    fn a_limited_receiver_after_a_back_off_gets_padding_ramping_up_to_the_proof_rate() {
        let shared = SharedEstimate::default();
        let mut prober = Prober::default();
        let t0 = Instant::now();
        // Free to climb: nothing to prove.
        testing::publish(&shared, 0, 200_000, 0);
        assert_eq!(prober.plan(t0, &shared, true), None);
        assert!(!prober.probing());
        // A back-off: nothing before it settles.
        testing::publish(&shared, 280_000, 200_000, 1);
        prober.plan(t0, &shared, true);
        assert!(!prober.probing());
        prober.plan(ms(t0, 2_000), &shared, true);
        assert!(!prober.probing(), "probing before the back-off settled");
        // Not limited: no probe either.
        prober.plan(ms(t0, 3_000), &shared, false);
        assert!(!prober.probing());
        prober.plan(ms(t0, 3_000), &shared, true);
        assert!(prober.probing());
        // 280 k * 1.1 - 200 k = 108 kbit/s of padding once ramped: 13,500 bytes a second.
        let mut at = 3_000;
        let ramped = pad(&mut prober, &shared, t0, &mut at, 5_000);
        assert!(
            (12_000.0..=15_000.0).contains(&ramped),
            "{ramped} bytes while ramping"
        );
        let full = pad(&mut prober, &shared, t0, &mut at, 6_000);
        assert!(
            (12_500.0..=14_000.0).contains(&full),
            "{full} bytes in the last second"
        );
        // Proven: padding stops.
        testing::publish(&shared, 0, 300_000, 1);
        assert_eq!(
            prober.plan(ms(t0, 6_000), &shared, true),
            Some(Outcome::Proven)
        );
        assert_eq!(prober.due(ms(t0, 6_010), &shared), 0);
    }

    #[test]
    fn a_probe_that_overshoots_stops_at_once_and_the_next_waits_longer() {
        let shared = SharedEstimate::default();
        let mut prober = Prober::default();
        let t0 = Instant::now();
        testing::publish(&shared, 280_000, 200_000, 0);
        prober.plan(t0, &shared, true);
        assert!(prober.probing());
        let mut intervals = Vec::new();
        let mut at = 0;
        for backoffs in 1..=4 {
            testing::publish(&shared, 280_000, 200_000, backoffs);
            assert_eq!(
                prober.plan(ms(t0, at), &shared, true),
                Some(Outcome::Overshot)
            );
            assert_eq!(prober.due(ms(t0, at + 10), &shared), 0);
            let started = at;
            until_probing(&mut prober, &shared, t0, &mut at);
            intervals.push(at - started);
        }
        assert_eq!(intervals, [6_000, 8_000, 8_000, 8_000]);
        // Loss in the feedback ends it before any back-off.
        at += 1_000;
        assert!(prober.due(ms(t0, at), &shared) > 0);
        testing::lose(&shared, 1, 20);
        assert!(
            prober.due(ms(t0, at + 5), &shared) < 2,
            "one lost packet is not a full link"
        );
        assert!(prober.probing());
        testing::lose(&shared, 2, 20);
        assert_eq!(prober.due(ms(t0, at + 10), &shared), 0);
        assert!(!prober.probing());
        testing::lose(&shared, 0, 20);
        // So does a standing queue that grew during the probe, before any loss.
        testing::queue(&shared, 10);
        until_probing(&mut prober, &shared, t0, &mut at);
        at += 1_000;
        testing::queue(&shared, 55);
        assert!(prober.due(ms(t0, at), &shared) > 0, "5 ms more is no queue");
        testing::queue(&shared, 70);
        assert_eq!(prober.due(ms(t0, at + 10), &shared), 0);
        assert!(!prober.probing());
        testing::queue(&shared, 0);
        // A probe that neither proves nor overshoots ends after `LENGTH`.
        until_probing(&mut prober, &shared, t0, &mut at);
        at += 4_000;
        assert_eq!(
            prober.plan(ms(t0, at), &shared, true),
            Some(Outcome::TimedOut)
        );
    }
}
