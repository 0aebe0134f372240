//! Quotas and rate limits: allocations per user and in total, the bandwidth of one
//! allocation, and how many 401 challenges one source address may draw.
//!
//! Quotas are held by a [`QuotaTicket`] that releases itself when the allocation it belongs
//! to goes away, however that happens. Everything here is control plane except
//! [`TokenBucket`], which each relay path owns outright (no lock).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why an allocation was refused for quota (486 Allocation Quota Reached).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The identity holds its maximum number of allocations.
    #[error("{identity} already holds {limit} allocations")]
    PerUser {
        /// Whose quota.
        identity: String,
        /// The limit.
        limit: usize,
    },
    /// The relay holds its maximum number of allocations.
    #[error("the relay holds its maximum of {0} allocations")]
    Total(usize),
}

/// Allocation counts per identity and in total.
#[derive(Debug)]
pub struct Quotas {
    per_user: usize,
    total: usize,
    state: Mutex<QuotaState>,
}

#[derive(Debug, Default)]
struct QuotaState {
    total: usize,
    per_identity: HashMap<String, usize>,
}

impl Quotas {
    /// Limits: `per_user` allocations for one identity, `total` for the whole relay.
    pub fn new(per_user: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_user,
            total,
            state: Mutex::new(QuotaState::default()),
        })
    }

    /// Charges one allocation to `identity`.
    pub fn acquire(self: &Arc<Self>, identity: &str) -> Result<QuotaTicket, QuotaError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.total >= self.total {
            return Err(QuotaError::Total(self.total));
        }
        let held = state.per_identity.get(identity).copied().unwrap_or(0);
        if held >= self.per_user {
            return Err(QuotaError::PerUser {
                identity: identity.to_owned(),
                limit: self.per_user,
            });
        }
        state.total += 1;
        state.per_identity.insert(identity.to_owned(), held + 1);
        Ok(QuotaTicket {
            quotas: Arc::clone(self),
            identity: identity.to_owned(),
        })
    }

    /// Allocations held now.
    pub fn in_use(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One allocation's charge against the quotas; dropping it gives the charge back.
#[derive(Debug)]
pub struct QuotaTicket {
    quotas: Arc<Quotas>,
    identity: String,
}

impl Drop for QuotaTicket {
    fn drop(&mut self) {
        let mut state = self
            .quotas
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.total = state.total.saturating_sub(1);
        if let Some(held) = state.per_identity.get_mut(&self.identity) {
            *held -= 1;
            if *held == 0 {
                state.per_identity.remove(&self.identity);
            }
        }
    }
}

/// Limits unauthenticated replies per source address in fixed windows, with a bounded
/// table: when the table is full (a flood from many spoofed sources), addresses not yet in
/// it share one overflow budget of ten addresses' worth until the window ends, so real
/// newcomers still get through and the flood gets no more than that.
#[derive(Debug)]
pub struct ChallengeLimiter {
    per_window: u32,
    window: Duration,
    max_sources: usize,
    state: Mutex<ChallengeState>,
}

#[derive(Debug)]
struct ChallengeState {
    window_start: Instant,
    counts: HashMap<IpAddr, u32>,
    overflow: u32,
}

impl ChallengeLimiter {
    /// At most `per_window` challenges per address per `window`, tracking at most
    /// `max_sources` addresses at once.
    pub fn new(per_window: u32, window: Duration, max_sources: usize) -> Self {
        Self {
            per_window,
            window,
            max_sources,
            state: Mutex::new(ChallengeState {
                window_start: Instant::now(),
                counts: HashMap::new(),
                overflow: 0,
            }),
        }
    }

    /// Whether `source` may be sent another challenge now (and counts it if so).
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(state.window_start) >= self.window {
            state.window_start = now;
            state.counts.clear();
            state.overflow = 0;
        }
        let tracked = state.counts.len();
        match state.counts.get_mut(&source) {
            Some(count) if *count >= self.per_window => false,
            Some(count) => {
                *count += 1;
                true
            }
            None if tracked >= self.max_sources => {
                if state.overflow < self.per_window.saturating_mul(10) {
                    state.overflow += 1;
                    true
                } else {
                    false
                }
            }
            None => {
                state.counts.insert(source, 1);
                true
            }
        }
    }
}

/// A byte-rate limit with a one-second burst, owned by one relay path.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    bytes_per_second: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `bytes_per_second` (0 means unlimited).
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        Self {
            bytes_per_second,
            tokens: bytes_per_second,
            last: now,
        }
    }

    /// Takes `bytes` if the budget allows; `false` means drop the packet.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.bytes_per_second == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last);
        if elapsed >= Duration::from_millis(1) {
            let refill = (self.bytes_per_second as u128 * elapsed.as_micros() / 1_000_000) as u64;
            self.tokens = (self.tokens + refill).min(self.bytes_per_second);
            self.last = now;
        }
        match self.tokens.checked_sub(bytes as u64) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_charged_and_released() {
        let quotas = Quotas::new(2, 3);
        let a1 = quotas.acquire("a").unwrap();
        let _a2 = quotas.acquire("a").unwrap();
        assert!(matches!(
            quotas.acquire("a"),
            Err(QuotaError::PerUser { limit: 2, .. })
        ));
        let _b1 = quotas.acquire("b").unwrap();
        assert_eq!(quotas.acquire("c").unwrap_err(), QuotaError::Total(3));
        drop(a1);
        assert_eq!(quotas.in_use(), 2);
        let _a3 = quotas.acquire("a").unwrap();
    }

    #[test]
    fn challenges_are_limited_per_source_and_bounded() {
        let limiter = ChallengeLimiter::new(2, Duration::from_secs(10), 2);
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(limiter.allow(a, start));
        assert!(limiter.allow(a, start));
        assert!(!limiter.allow(a, start));
        assert!(limiter.allow(b, start));
        // The table is full: newcomers share an overflow budget of 10 x 2.
        let newcomers: Vec<IpAddr> = (10..40).map(|i| IpAddr::from([198, 51, 100, i])).collect();
        let admitted = newcomers
            .iter()
            .filter(|ip| limiter.allow(**ip, start))
            .count();
        assert_eq!(admitted, 20);
        assert!(!limiter.allow(c, start), "overflow budget spent");
        let later = start + Duration::from_secs(10);
        assert!(limiter.allow(a, later));
        assert!(limiter.allow(c, later));
    }

    #[test]
    fn bucket_limits_bytes_per_second() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert!(bucket.take(600, start));
        assert!(!bucket.take(600, start));
        assert!(bucket.take(400, start));
        assert!(bucket.take(500, start + Duration::from_millis(500)));
        assert!(!bucket.take(1, start + Duration::from_millis(500)));
        let mut unlimited = TokenBucket::new(0, start);
        assert!(unlimited.take(usize::MAX, start));
    }
}
