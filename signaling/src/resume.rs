//! Sessions whose WebSocket dropped, parked for the resume window: the participant stays in its
//! room with its tracks and subscriptions while a task keeps what the room says for it, until
//! the client comes back with its resume token (`resume`), the window ends, or the room lets it
//! go. It never reads or writes a WebSocket and never decides when a connection counts as
//! dropped: `ws` parks and claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{LeaveReason, ServerMessage};
use rand::Rng;
use rand::distr::Alphanumeric;
use sfu::{Session, SessionCommand, SessionEvent};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// How long a dropped session waits for its client by default.
pub const DEFAULT_RESUME_WINDOW: Duration = Duration::from_secs(30);

/// The most messages kept for a parked session; a room that says more meanwhile (a very busy
/// room, a long window) ends the session instead, and the client joins afresh.
pub const MAX_MISSED: usize = 2048;

/// A parked session handed back to its client, with what the room said meanwhile.
pub struct Resumed {
    pub session: Session,
    pub missed: Vec<ServerMessage>,
}

/// A claim on a parked session: where to hand it.
type Claim = oneshot::Sender<Resumed>;

/// A request to a live connection to give up its session; it parks the session, then says so.
type Takeover = oneshot::Sender<()>;

/// The parked sessions of this server by resume token, and the live connections that could be
/// asked to give theirs up.
pub struct Parking {
    window: Duration,
    slots: Mutex<HashMap<String, oneshot::Sender<Claim>>>,
    live: Mutex<HashMap<String, (u64, oneshot::Sender<Takeover>)>>,
    next_live: std::sync::atomic::AtomicU64,
}

/// A live connection's registration: [`Live::taken`] fires when a newer connection resumes its
/// session (the old one is half-open: the client saw it die before the server did).
pub struct Live {
    parking: Arc<Parking>,
    token: String,
    id: u64,
    taken: Option<oneshot::Receiver<Takeover>>,
}

impl Live {
    /// Waits until another connection claims this session; never returns otherwise.
    pub async fn taken(&mut self) -> Takeover {
        match self.taken.as_mut() {
            Some(rx) => match rx.await {
                Ok(ack) => {
                    self.taken = None;
                    ack
                }
                Err(_) => {
                    self.taken = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.parking.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.get(&self.token).is_some_and(|(id, _)| *id == self.id) {
            live.remove(&self.token);
        }
    }
}

impl Parking {
    /// A parking where sessions wait `window` for their client (zero: never park).
    pub fn new(window: Duration) -> Arc<Parking> {
        Arc::new(Parking {
            window,
            slots: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            next_live: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How long a dropped session waits.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A fresh resume token: 32 random letters and digits (about 190 bits).
    pub fn new_token() -> String {
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    }

    /// Sessions waiting for their client now.
    pub fn parked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Claim>>> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `session` in its room for the resume window. Without a window it leaves at once.
    pub async fn park(self: &Arc<Self>, token: String, mut session: Session) {
        if self.window.is_zero() {
            session
                .handle
                .send(SessionCommand::Leave(LeaveReason::Disconnected))
                .await;
            return;
        }
        let (slot, mut claims) = oneshot::channel::<Claim>();
        self.lock().insert(token.clone(), slot);
        info!(participant = %session.participant_id, window = ?self.window, "connection dropped; session parked for resume");
        let parking = Arc::clone(self);
        tokio::spawn(async move {
            let expiry = tokio::time::sleep(parking.window);
            tokio::pin!(expiry);
            let mut missed = Vec::new();
            let gone = loop {
                tokio::select! {
                    claim = &mut claims => {
                        if let Ok(reply) = claim {
                            // If the claimant vanished meanwhile, the session is dropped here and
                            // its handle tells the room the participant left.
                            let _ = reply.send(Resumed { session, missed });
                        }
                        return;
                    }
                    _ = &mut expiry => {
                        info!(participant = %session.participant_id, "resume window over; leaving");
                        break false;
                    }
                    event = session.events.recv() => match event {
                        Some(SessionEvent::Message(m)) => {
                            missed.push(m);
                            if missed.len() > MAX_MISSED {
                                warn!(participant = %session.participant_id, "too much to keep for a parked session; leaving");
                                break false;
                            }
                        }
                        // The room already let it go (replaced, removed, closed).
                        Some(SessionEvent::Closed(_)) | None => break true,
                    },
                }
            };
            parking.lock().remove(&token);
            if !gone {
                session
                    .handle
                    .send(SessionCommand::Leave(LeaveReason::Disconnected))
                    .await;
            }
        });
    }

    /// Registers the connection now serving the session of `token`.
    pub fn live(self: &Arc<Self>, token: &str) -> Live {
        let id = self
            .next_live
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_owned(), (id, tx));
        Live {
            parking: Arc::clone(self),
            token: token.to_owned(),
            id,
            taken: Some(rx),
        }
    }

    /// Takes the session of `token`: a parked one, or one a live connection still holds (that
    /// connection parks it first and is closed).
    pub async fn claim(&self, token: &str) -> Option<Resumed> {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
        if let Some((_, takeover)) = live {
            let (ack, parked) = oneshot::channel();
            if takeover.send(ack).is_ok() {
                // Bounded: the old connection parks at its next turn.
                let _ = tokio::time::timeout(Duration::from_secs(5), parked).await;
            }
        }
        let slot = self.lock().remove(token)?;
        let (reply, resumed) = oneshot::channel();
        slot.send(reply).ok()?;
        resumed.await.ok()
    }
}
