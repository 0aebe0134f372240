//! Graceful drain before a restart: once started, new joins are refused (`closed` with reason
//! `draining`), every open session is told when it will end (`draining`), and rooms keep
//! running until the server shuts down. It only holds the deadline and wakes those who wait on
//! it; it never closes a connection or a room itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Whether, and until when, this server is draining. Cloning is cheap.
#[derive(Clone)]
pub struct Drain {
    deadline: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            deadline: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl Drain {
    /// Starts draining: sessions end within `within`. A second call keeps the first deadline.
    pub fn start(&self, within: Duration) {
        self.deadline.send_if_modified(|deadline| {
            if deadline.is_some() {
                return false;
            }
            *deadline = Some(Instant::now() + within);
            true
        });
    }

    /// Whether new joins are refused.
    pub fn is_draining(&self) -> bool {
        self.deadline.borrow().is_some()
    }

    /// Time left until sessions end; `None` when not draining.
    pub fn closes_in(&self) -> Option<Duration> {
        self.deadline
            .borrow()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Resolves once draining has started (at once if it has).
    pub async fn started(&self) {
        let mut rx = self.deadline.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starting_wakes_waiters_and_keeps_the_first_deadline() {
        let drain = Drain::default();
        assert!(!drain.is_draining());
        assert_eq!(drain.closes_in(), None);
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.started().await }
        });
        drain.start(Duration::from_secs(30));
        waiter.await.expect("the waiter wakes");
        drain.start(Duration::from_secs(1));
        let left = drain.closes_in().expect("draining");
        assert!(
            left > Duration::from_secs(20),
            "the first deadline stays: {left:?}"
        );
        // Started already: returns at once.
        drain.started().await;
    }
}
