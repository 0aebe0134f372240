//! Per-client-address limits: token buckets (`governor`) keyed by the client's IP as
//! `client_ip` finds it, one for HTTP requests (API, token endpoints, WebSocket upgrades) and one
//! for the cost of signaling messages summed over all of an address's connections, so that many
//! connections cannot dodge the per-connection budget. Arithmetic only: it never reads a request
//! or a socket, and an unknown address is never limited.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{InsufficientCapacity, Quota, RateLimiter};

/// How fast one client address may go. A rate of 0 turns that limit off.
///
/// Many people can share one address (a NAT, an office, a campus), so these are set far above
/// what one person does: the message budget is ten busy connections' worth of the
/// per-connection one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpLimits {
    /// HTTP requests to `/api/...` and `/ws` restored per second.
    pub request_rate: u32,
    /// HTTP requests one address may make at once.
    pub request_burst: u32,
    /// Signaling message cost units (a ping costs 1) restored per second, over all of the
    /// address's connections.
    pub message_rate: u32,
    /// Cost units one address may spend at once.
    pub message_burst: u32,
}

impl Default for IpLimits {
    fn default() -> Self {
        IpLimits {
            request_rate: 20,
            request_burst: 200,
            message_rate: 500,
            message_burst: 2000,
        }
    }
}

/// Checks between two sweeps of addresses whose buckets are full again (forgotten, as if new).
const SWEEP_EVERY: u64 = 4096;

/// One bucket per address.
struct Bucket<C: Clock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    checks: AtomicU64,
}

impl<C: Clock> Bucket<C> {
    /// `None` when `rate` is 0 (no limit).
    fn new(rate: u32, burst: u32, clock: C) -> Option<Self> {
        let rate = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Bucket {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
            checks: AtomicU64::new(0),
        })
    }

    /// Takes `cost` from `ip`'s bucket, or says how long until it could.
    fn take(&self, ip: IpAddr, cost: u32) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let Some(cost) = NonZeroU32::new(cost) else {
            return Ok(());
        };
        match self.limiter.check_key_n(&key(ip), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.limiter.clock().now())),
            // More than the whole burst: it never fits.
            Err(InsufficientCapacity(_)) => Err(Duration::from_secs(1)),
        }
    }
}

/// The bucket key of a client address: IPv4 as it is; IPv6 by its /64, which one subscriber
/// usually holds whole (so hopping between its addresses does not give more).
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The per-address buckets of one server.
pub struct IpLimiters<C: Clock = DefaultClock> {
    requests: Option<Bucket<C>>,
    messages: Option<Bucket<C>>,
}

impl IpLimiters<DefaultClock> {
    pub fn new(limits: IpLimits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> IpLimiters<C> {
    /// Buckets that read the time from `clock` (tests move a fake one by hand).
    pub fn with_clock(limits: IpLimits, clock: C) -> Self {
        IpLimiters {
            requests: Bucket::new(limits.request_rate, limits.request_burst, clock.clone()),
            messages: Bucket::new(limits.message_rate, limits.message_burst, clock),
        }
    }

    /// One HTTP request from `ip`: `Err` with how long to wait when it is over its limit.
    pub fn request(&self, ip: IpAddr) -> Result<(), Duration> {
        self.requests.as_ref().map_or(Ok(()), |b| b.take(ip, 1))
    }

    /// A signaling message costing `cost` from one of `ip`'s connections: whether it fits in
    /// the address's budget.
    pub fn message(&self, ip: IpAddr, cost: u32) -> bool {
        self.messages
            .as_ref()
            .is_none_or(|b| b.take(ip, cost).is_ok())
    }
}

/// One connection's claim on its address's message budget (none for an unknown address).
#[derive(Clone, Default)]
pub struct IpShare(Option<(Arc<IpLimiters>, IpAddr)>);

impl IpShare {
    pub fn new(limiters: Arc<IpLimiters>, ip: Option<IpAddr>) -> Self {
        IpShare(ip.map(|ip| (limiters, ip)))
    }

    /// Whether a message costing `cost` fits in the address's budget (and takes it if so).
    pub fn charge(&self, cost: u32) -> bool {
        self.0
            .as_ref()
            .is_none_or(|(limiters, ip)| limiters.message(*ip, cost))
    }
}

impl std::fmt::Debug for IpShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IpShare")
            .field(&self.0.as_ref().map(|(_, ip)| ip))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    const LIMITS: IpLimits = IpLimits {
        request_rate: 2,
        request_burst: 5,
        message_rate: 100,
        message_burst: 400,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn requests_burst_then_wait_and_each_address_has_its_own_bucket() {
        let clock = FakeRelativeClock::default();
        let limits = IpLimiters::with_clock(LIMITS, clock.clone());
        for _ in 0..5 {
            assert_eq!(limits.request(ip("203.0.113.7")), Ok(()));
        }
        let wait = limits.request(ip("203.0.113.7")).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another address is not affected.
        assert_eq!(limits.request(ip("203.0.113.8")), Ok(()));
        // Two a second come back.
        clock.advance(Duration::from_millis(500));
        assert_eq!(limits.request(ip("203.0.113.7")), Ok(()));
        assert!(limits.request(ip("203.0.113.7")).is_err());
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limits = IpLimiters::with_clock(LIMITS, FakeRelativeClock::default());
        for n in 0..5 {
            assert!(limits.request(ip(&format!("2001:db8:1:2::{n}"))).is_ok());
        }
        assert!(limits.request(ip("2001:db8:1:2:ffff::1")).is_err());
        assert!(limits.request(ip("2001:db8:1:3::1")).is_ok());
        for _ in 0..5 {
            assert!(limits.request(ip("::ffff:198.51.100.1")).is_ok());
        }
        assert!(limits.request(ip("198.51.100.1")).is_err());
    }

    #[test]
    fn message_cost_is_summed_over_an_address_connections() {
        let clock = FakeRelativeClock::default();
        let limiters = Arc::new(IpLimiters::with_clock(LIMITS, clock.clone()));
        // Not through IpShare (whose limiters use the real clock type): the same calls.
        let connections = 10;
        let mut allowed = 0;
        for _ in 0..100 {
            for _ in 0..connections {
                if limiters.message(ip("192.0.2.50"), 5) {
                    allowed += 5;
                }
            }
        }
        assert_eq!(
            allowed, 400,
            "the address's burst, however many connections"
        );
        clock.advance(Duration::from_secs(1));
        assert!(limiters.message(ip("192.0.2.50"), 100));
        assert!(!limiters.message(ip("192.0.2.50"), 1));
        assert!(limiters.message(ip("192.0.2.51"), 10));
        // More than a whole burst never fits.
        assert!(!limiters.message(ip("192.0.2.52"), 401));
    }

    #[test]
    fn a_rate_of_zero_turns_a_limit_off_and_an_unknown_address_is_not_limited() {
        let off = IpLimiters::new(IpLimits {
            request_rate: 0,
            message_rate: 0,
            ..LIMITS
        });
        for _ in 0..1000 {
            assert!(off.request(ip("203.0.113.1")).is_ok());
            assert!(off.message(ip("203.0.113.1"), 10));
        }
        let unknown = IpShare::new(Arc::new(IpLimiters::new(LIMITS)), None);
        assert!((0..1000).all(|_| unknown.charge(10)));
        let known = IpShare::new(Arc::new(IpLimiters::new(LIMITS)), Some(ip("203.0.113.1")));
        assert!(!(0..1000).all(|_| known.charge(10)));
    }
}
