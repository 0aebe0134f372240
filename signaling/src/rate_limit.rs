//! A signaling connection's message budget: a token bucket that each client message draws on by
//! its cost (an offer costs more than a ping), on top of its address's shared budget
//! (`ip_limits`), and the verdict when the client outruns either: refuse the message, or, when it
//! keeps going, disconnect it. Plain arithmetic over the `now` the caller passes in (the shared
//! budget keeps its own clock): it never sleeps and never sends anything.

use std::time::{Duration, Instant};

use protocol::ClientMessage;

use crate::ip_limits::IpShare;

/// How fast one connection may send signaling messages.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// Cost units a client may spend at once (a ping costs 1).
    pub burst: u32,
    /// Cost units restored per second.
    pub per_second: u32,
    /// Messages refused within [`STRIKE_WINDOW`] before the connection is closed.
    pub refusals_before_disconnect: u32,
}

impl Default for MessageLimits {
    fn default() -> Self {
        MessageLimits {
            burst: 200,
            per_second: 50,
            refusals_before_disconnect: 100,
        }
    }
}

/// The window over which refused messages count towards a disconnect.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);

/// What a client message costs: what it makes the server do, and tell others.
pub fn cost(message: &ClientMessage) -> u32 {
    match message {
        ClientMessage::Ping { .. } | ClientMessage::Leave | ClientMessage::Candidate { .. } => 1,
        // A tile resized or scrolled away: the receiver's allocation is redone.
        ClientMessage::TrackSettings(_) => 2,
        // An ICE restart renegotiates; resuming looks up a parked session.
        ClientMessage::RestartIce { .. } | ClientMessage::Resume { .. } => 10,
        // Every change is told to every other participant.
        ClientMessage::Mute { .. } => 5,
        // Negotiation runs the WebRTC engine.
        ClientMessage::Join { .. } | ClientMessage::Offer { .. } | ClientMessage::Answer { .. } => {
            10
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse it; `first` for the first refusal of a window (tell the client once).
    Refuse {
        first: bool,
    },
    /// The client keeps going: close the connection.
    Disconnect,
}

/// One connection's bucket.
#[derive(Debug)]
pub struct Budget {
    limits: MessageLimits,
    tokens: f64,
    last: Instant,
    window_start: Instant,
    refused: u32,
    /// The budget of the client's address, shared with its other connections.
    shared: IpShare,
}

impl Budget {
    pub fn new(limits: MessageLimits, now: Instant) -> Self {
        Budget {
            limits,
            tokens: f64::from(limits.burst),
            last: now,
            window_start: now,
            refused: 0,
            shared: IpShare::default(),
        }
    }

    /// This budget, drawing on its address's shared budget too: a message must fit in both.
    pub fn shared_with(self, shared: IpShare) -> Self {
        Budget { shared, ..self }
    }

    /// Charges `cost` at `now`.
    pub fn charge(&mut self, cost: u32, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.limits.per_second))
            .min(f64::from(self.limits.burst));
        // A message must fit in this connection's budget and then in its address's; one the
        // address refuses leaves this connection's tokens as they were.
        if self.tokens >= f64::from(cost) && self.shared.charge(cost) {
            self.tokens -= f64::from(cost);
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) >= STRIKE_WINDOW {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        if self.refused > self.limits.refusals_before_disconnect {
            Verdict::Disconnect
        } else {
            Verdict::Refuse {
                first: self.refused == 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MessageLimits = MessageLimits {
        burst: 20,
        per_second: 10,
        refusals_before_disconnect: 5,
    };

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMITS, t0);
        for _ in 0..20 {
            assert_eq!(b.charge(1, t0), Verdict::Allow);
        }
        assert_eq!(b.charge(1, t0), Verdict::Refuse { first: true });
        assert_eq!(b.charge(1, t0), Verdict::Refuse { first: false });
        // 10 units a second come back.
        let t1 = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            assert_eq!(b.charge(1, t1), Verdict::Allow);
        }
        assert!(matches!(b.charge(1, t1), Verdict::Refuse { .. }));
    }

    #[test]
    fn a_client_that_keeps_going_is_disconnected_and_a_calm_one_is_forgiven() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMITS, t0);
        assert_eq!(b.charge(20, t0), Verdict::Allow);
        for _ in 0..5 {
            assert!(matches!(b.charge(5, t0), Verdict::Refuse { .. }));
        }
        assert_eq!(b.charge(5, t0), Verdict::Disconnect);

        let mut calm = Budget::new(LIMITS, t0);
        assert_eq!(calm.charge(20, t0), Verdict::Allow);
        for _ in 0..5 {
            assert!(matches!(calm.charge(5, t0), Verdict::Refuse { .. }));
        }
        // A new window starts the count again.
        let later = t0 + STRIKE_WINDOW;
        assert_eq!(calm.charge(5, later), Verdict::Allow);
        assert_eq!(calm.charge(50, later), Verdict::Refuse { first: true });
    }

    #[test]
    fn connections_of_one_address_share_its_budget() {
        use std::sync::Arc;

        use crate::ip_limits::{IpLimiters, IpLimits};
        let limiters = Arc::new(IpLimiters::new(IpLimits {
            message_rate: 1,
            message_burst: 30,
            ..IpLimits::default()
        }));
        let address = Some("198.51.100.20".parse().unwrap());
        let t0 = Instant::now();
        let share = || IpShare::new(Arc::clone(&limiters), address);
        let mut first = Budget::new(LIMITS, t0).shared_with(share());
        let mut second = Budget::new(LIMITS, t0).shared_with(share());
        for _ in 0..20 {
            assert_eq!(first.charge(1, t0), Verdict::Allow);
        }
        // The second connection has its own 20, but the address only 10 more.
        for _ in 0..10 {
            assert_eq!(second.charge(1, t0), Verdict::Allow);
        }
        assert_eq!(second.charge(1, t0), Verdict::Refuse { first: true });
        // A refusal by the address counts towards the disconnect like any other.
        for _ in 0..4 {
            assert!(matches!(second.charge(1, t0), Verdict::Refuse { .. }));
        }
        assert_eq!(second.charge(1, t0), Verdict::Disconnect);
        // Another address is not touched.
        let mut elsewhere = Budget::new(LIMITS, t0).shared_with(IpShare::new(
            Arc::clone(&limiters),
            Some("198.51.100.21".parse().unwrap()),
        ));
        assert_eq!(elsewhere.charge(20, t0), Verdict::Allow);
    }

    #[test]
    fn offers_cost_more_than_pings() {
        let ping = ClientMessage::Ping { ts: 1 };
        let mute = ClientMessage::Mute {
            kind: protocol::TrackKind::Audio,
            muted: true,
        };
        assert!(cost(&mute) > cost(&ping));
        let offer = ClientMessage::Offer {
            sources: Default::default(),
            target: protocol::Target::Publisher,
            sdp: String::new(),
        };
        assert!(cost(&offer) > cost(&mute));
    }
}
