//! How long a receiver waits before its layers may be raised again: an upgrade that is undone
//! soon after (the link could not carry it: the try cost the receiver a burst of loss) doubles
//! the wait before the next try, up to a limit; an upgrade that holds resets it. A plain struct
//! with `now` passed in: no clock, no I/O.

use std::time::{Duration, Instant};

/// A downgrade this soon after an upgrade means the upgrade failed.
const FAILED_WITHIN: Duration = Duration::from_secs(3);
/// An upgrade not undone for this long held: the wait is back to its base.
const HELD_FOR: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub struct UpgradeBackoff {
    base: Duration,
    max: Duration,
    last_up: Option<Instant>,
    last_down: Option<Instant>,
    failures: u32,
}

impl UpgradeBackoff {
    /// Waits `base` after any change, doubled per failed upgrade in a row, at most `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        UpgradeBackoff {
            base,
            max,
            last_up: None,
            last_down: None,
            failures: 0,
        }
    }

    /// The layers were raised at `now`.
    pub fn upgraded(&mut self, now: Instant) {
        self.settle(now);
        self.last_up = Some(now);
    }

    /// The layers were lowered at `now`.
    pub fn downgraded(&mut self, now: Instant) {
        self.settle(now);
        let undid_an_upgrade = self.last_up.is_some_and(|up| {
            now.saturating_duration_since(up) < FAILED_WITHIN
                && self.last_down.is_none_or(|down| down <= up)
        });
        if undid_an_upgrade {
            self.failures = (self.failures + 1).min(8);
        }
        self.last_down = Some(now);
    }

    /// How long to wait after the last change now.
    pub fn wait(&self) -> Duration {
        self.base
            .saturating_mul(1 << self.failures.min(8))
            .min(self.max)
    }

    /// Whether an upgrade may happen at `now`.
    pub fn allowed(&mut self, now: Instant) -> bool {
        self.settle(now);
        let last = self.last_up.max(self.last_down);
        last.is_none_or(|t| now.saturating_duration_since(t) >= self.wait())
    }

    /// Forgets failures once the last upgrade has held.
    fn settle(&mut self, now: Instant) {
        if let Some(up) = self.last_up
            && self.last_down.is_none_or(|down| down <= up)
            && now.saturating_duration_since(up) >= HELD_FOR
        {
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_upgrades_double_the_wait_and_one_that_holds_resets_it() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut b = UpgradeBackoff::new(Duration::from_millis(1500), Duration::from_secs(6));
        assert!(b.allowed(at(0.0)));
        b.upgraded(at(0.0));
        assert!(!b.allowed(at(1.0)));
        b.downgraded(at(1.0));
        assert_eq!(b.wait(), Duration::from_secs(3));
        assert!(!b.allowed(at(3.5)));
        assert!(b.allowed(at(4.0)));
        b.upgraded(at(4.0));
        b.downgraded(at(5.0));
        assert_eq!(b.wait(), Duration::from_secs(6));
        b.upgraded(at(11.0));
        b.downgraded(at(12.0));
        assert_eq!(b.wait(), Duration::from_secs(6), "capped");
        // An upgrade that holds four seconds resets the wait.
        b.upgraded(at(18.0));
        assert!(b.allowed(at(22.0)));
        assert_eq!(b.wait(), Duration::from_millis(1500));
    }

    #[test]
    fn a_downgrade_long_after_an_upgrade_is_not_a_failure() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut b = UpgradeBackoff::new(Duration::from_millis(1500), Duration::from_secs(6));
        b.upgraded(at(0.0));
        b.downgraded(at(3.5));
        assert_eq!(b.wait(), Duration::from_millis(1500));
        // Two downgrades after one upgrade count once.
        b.upgraded(at(10.0));
        b.downgraded(at(11.0));
        b.downgraded(at(12.0));
        assert_eq!(b.wait(), Duration::from_secs(3));
    }
}
