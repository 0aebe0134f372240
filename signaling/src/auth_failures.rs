//! [`AuthFailures`]: failed admin authentications per address, so the API can tell an address
//! that fails too often to slow down. A leaf: it imports nothing from its siblings. It never reads
//! the clock: callers pass `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications from one address within `FAILURE_WINDOW` before 429, unless
/// configured otherwise.
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Remembers failed authentications per address.
#[derive(Debug)]
pub struct AuthFailures {
    max_failures: u32,
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_AUTH_FAILURES)
    }
}

impl AuthFailures {
    /// Slows an address down after `max_failures` failures within a minute.
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            by_address: Mutex::default(),
        }
    }

    /// Seconds to wait, if `address` has failed too often lately.
    pub(crate) fn retry_after(&self, address: IpAddr, now: Instant) -> Option<u64> {
        let map = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, count) = map.get(&address)?;
        let elapsed = now.duration_since(*since);
        (*count >= self.max_failures && elapsed < FAILURE_WINDOW)
            .then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    pub(crate) fn record(&self, address: IpAddr, now: Instant) {
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let entry = map.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}
