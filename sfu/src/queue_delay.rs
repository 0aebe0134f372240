//! The standing queue on one receiver's downlink, read from transport-wide feedback: how much
//! longer the least-delayed packet of each report took than the quickest packet of the last
//! 5-10 s. A frame's burst delays only its own later packets; a queue that no longer empties
//! delays them all, so the least-delayed packet of a report shows it. On a link whose buffer is
//! counted in packets, small padding fills it before its loss begins, but the media packets
//! queued among the padding already wait longer: the prober's early sign that its probe
//! overshoots. Arithmetic on the reports only: no clock of its own, never blocks.

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// The quickest transit is the least of the current and the previous window of this length
/// (a route that changes is forgotten within two windows).
const BASE_WINDOW: Duration = Duration::from_secs(5);

/// One receiver's standing-queue reading.
#[derive(Debug)]
pub(crate) struct QueueDelay {
    /// Departures are counted from here (transit = arrival on the receiver's clock minus
    /// departure on ours: offset by a constant, which the base removes).
    epoch: Option<Instant>,
    window_start: Option<Instant>,
    current_min: f64,
    previous_min: f64,
}

impl Default for QueueDelay {
    fn default() -> Self {
        QueueDelay {
            epoch: None,
            window_start: None,
            current_min: f64::INFINITY,
            previous_min: f64::INFINITY,
        }
    }
}

impl QueueDelay {
    /// Reads one feedback's reports (received at `now`); the standing queue in milliseconds, or
    /// `None` when none of them arrived.
    pub fn update(&mut self, now: Instant, reports: &[PacketReport]) -> Option<f64> {
        let epoch = *self.epoch.get_or_insert(reports.first()?.departure);
        let least = reports
            .iter()
            .filter_map(|r| {
                let arrival = r.arrival?.as_secs_f64();
                let departure = r.departure.saturating_duration_since(epoch).as_secs_f64();
                Some((arrival - departure) * 1_000.0)
            })
            .fold(f64::INFINITY, f64::min);
        if !least.is_finite() {
            return None;
        }
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= BASE_WINDOW {
            self.previous_min = self.current_min;
            self.current_min = f64::INFINITY;
            self.window_start = Some(now);
        }
        self.current_min = self.current_min.min(least);
        Some(least - self.current_min.min(self.previous_min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// Ten packets 10 ms apart from `sent_ms`, each taking `transit(i)` ms to arrive (the
    /// receiver's clock 7 s ahead of ours), `None` for a lost one.
    fn report(
        t0: Instant,
        sent_ms: u64,
        transit: impl Fn(u64) -> Option<u64>,
    ) -> Vec<PacketReport> {
        (0..10)
            .map(|i| {
                let sent = sent_ms + i * 10;
                PacketReport {
                    ssrc: 1,
                    id: sent,
                    rtp_sequence_number: sent as u16,
                    is_twcc: true,
                    twcc_sequence_number: sent as u16,
                    size: 1_200,
                    arrived: transit(i).is_some(),
                    departure: t0 + Duration::from_millis(sent),
                    arrival: transit(i).map(|d| Duration::from_millis(7_000 + sent + d)),
                    ecn: Ecn::default(),
                }
            })
            .collect()
    }

    #[test]
    fn a_burst_is_not_a_queue_but_a_queue_that_never_empties_is() {
        let t0 = Instant::now();
        let mut delay = QueueDelay::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 20 ms of transit, the last packets of each burst waiting up to 90 ms more.
        for n in 0..10 {
            let q = delay.update(
                at(n * 100 + 120),
                &report(t0, n * 100, |i| Some(20 + i * 10)),
            );
            assert_eq!(q.map(f64::round), Some(0.0));
        }
        // Every packet waits 60 ms or more: a standing queue.
        let q = delay.update(at(1_120), &report(t0, 1_000, |i| Some(80 + i * 5)));
        assert_eq!(q.map(f64::round), Some(60.0));
        // Nothing arrived: no reading.
        assert_eq!(delay.update(at(1_220), &report(t0, 1_100, |_| None)), None);
        // Two windows later the old quickest transit is forgotten: 60 ms is the new base.
        for n in 12..120 {
            delay.update(at(n * 100 + 120), &report(t0, n * 100, |_| Some(80)));
        }
        let q = delay.update(at(12_120), &report(t0, 12_000, |_| Some(80)));
        assert_eq!(q.map(f64::round), Some(0.0));
    }
}
