//! The allocator's probe scheduler: when a receiver lacks bandwidth and its estimate is steady, it
//! asks for padding at a rate that lets the estimator see more capacity than the media uses.
//! Plain state with no I/O and no clock of its own; it never sends anything itself.

use std::time::{Duration, Instant};

/// Tuning of a [`Prober`]; `Default` gives the values named on each field.
#[derive(Debug, Clone, PartialEq)]
pub struct ProberParams {
    /// No probe until this long after the last downgrade (2.5 s).
    pub stable_after: Duration,
    /// Least time between the starts of two probes (2 s) ...
    pub interval: Duration,
    /// ... growing by `backoff` (1.5x) after each failed probe, up to this (3 s).
    pub max_interval: Duration,
    pub backoff: f64,
    /// How long one probe lasts at most (500 ms).
    pub duration: Duration,
    /// The goal is this share of what the receiver's tiles want in all (1.2) ...
    pub goal_share: f64,
    /// ... but at most this multiple of the estimate (2.0).
    pub max_growth: f64,
    /// Padding below this is not worth a probe (20 kbps).
    pub min_padding_bps: u64,
    /// A probe succeeded when the estimate grew by this factor during it (1.1).
    pub success_growth: f64,
}

impl Default for ProberParams {
    fn default() -> Self {
        ProberParams {
            stable_after: Duration::from_millis(2500),
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(3),
            backoff: 1.5,
            duration: Duration::from_millis(500),
            goal_share: 1.2,
            max_growth: 2.0,
            min_padding_bps: 20_000,
            success_growth: 1.1,
        }
    }
}

/// "Send padding at `bps`, on top of the media, until `until`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    pub bps: u64,
    pub until: Instant,
    /// The estimate the probe aims at (media plus padding); it ends early when reached.
    pub goal_bps: u64,
}

/// What the prober is told about the receiver on each poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeInputs {
    /// Some visible subscription is below its cap for lack of bandwidth.
    pub deficient: bool,
    pub estimate_bps: u64,
    /// What is being sent now (forwarded layers and audio).
    pub sending_bps: u64,
    /// What would be sent if every tile got its cap (with audio).
    pub wanted_bps: u64,
    pub last_downgrade: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    request: ProbeRequest,
    start_estimate: u64,
    peak_estimate: u64,
}

/// Decides when to probe, at what rate, and backs off after probes that gained nothing.
#[derive(Debug)]
pub struct Prober {
    params: ProberParams,
    running: Option<Running>,
    last_start: Option<Instant>,
    interval: Duration,
}

impl Prober {
    /// A prober that has never probed.
    pub fn new(params: ProberParams) -> Self {
        Prober {
            interval: params.interval,
            params,
            running: None,
            last_start: None,
        }
    }

    /// The probe that should run now: the running one, or a new one when it is due.
    pub fn poll(&mut self, now: Instant, inputs: &ProbeInputs) -> Option<ProbeRequest> {
        if let Some(run) = self.running {
            if now < run.request.until {
                return Some(run.request);
            }
            let grown = scale(run.start_estimate, self.params.success_growth);
            self.finish(run.peak_estimate >= grown.max(run.start_estimate.saturating_add(1)));
        }
        let p = &self.params;
        let due = inputs.deficient
            && now.saturating_duration_since(inputs.last_downgrade) >= p.stable_after
            && self
                .last_start
                .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        if !due {
            return None;
        }
        let goal =
            scale(inputs.wanted_bps, p.goal_share).min(scale(inputs.estimate_bps, p.max_growth));
        let padding = goal.saturating_sub(inputs.sending_bps);
        if goal <= inputs.estimate_bps || padding < p.min_padding_bps {
            return None;
        }
        let until = now.checked_add(p.duration).unwrap_or(now);
        let request = ProbeRequest {
            bps: padding,
            until,
            goal_bps: goal,
        };
        self.last_start = Some(now);
        self.running = Some(Running {
            request,
            start_estimate: inputs.estimate_bps,
            peak_estimate: inputs.estimate_bps,
        });
        Some(request)
    }

    /// A new estimate: a probe ends as soon as it reaches its goal (then this returns true), and
    /// fails if the estimate dropped.
    pub fn on_estimate(&mut self, bps: u64, dropped: bool) -> bool {
        let Some(run) = self.running.as_mut() else {
            return false;
        };
        run.peak_estimate = run.peak_estimate.max(bps);
        let reached = bps >= run.request.goal_bps;
        if dropped || reached {
            self.finish(reached && !dropped);
        }
        reached && !dropped
    }

    /// Stops a running probe that congested the link (a downgrade followed): it counts as failed.
    pub fn abort(&mut self) {
        if self.running.is_some() {
            self.finish(false);
        }
    }

    /// Stops a running probe that is no longer needed (the receiver got what it wants).
    pub fn cancel(&mut self) {
        self.running = None;
        self.interval = self.params.interval;
    }

    fn finish(&mut self, success: bool) {
        self.running = None;
        self.interval = if success {
            self.params.interval
        } else {
            let longer = self.interval.as_secs_f64() * self.params.backoff.max(1.0);
            Duration::try_from_secs_f64(longer).map_or(self.params.max_interval, |d| {
                d.min(self.params.max_interval)
            })
        };
    }
}

/// `bps * share`, rounded down (saturating; a negative or NaN share gives 0).
fn scale(bps: u64, share: f64) -> u64 {
    (bps as f64 * share) as u64
}
