//! What Janus says about a handle outside of the answers to our requests ([`JanusEvent`]),
//! and the queue a handle's events wait in ([`HandleEvents`]); never reads them from Janus.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::error::JanusError;

/// Events kept for a handle whose [`HandleEvents`] is not read; later ones are dropped.
pub(super) const HANDLE_EVENT_QUEUE: usize = 256;

/// An ICE candidate as sent to Janus: the `candidate:` line (with or without `a=`), its
/// `sdpMid` and its m-line index.
pub type Candidate = (String, String, u16);

/// Something Janus said about a handle outside of an answer to one of our requests.
#[derive(Debug, Clone, PartialEq)]
pub enum JanusEvent {
    /// ICE and DTLS are up: media can flow.
    WebrtcUp,
    /// Janus started (`receiving: true`) or stopped receiving a medium.
    Media {
        kind: String,
        mid: Option<String>,
        receiving: bool,
    },
    /// Janus saw losses or NACKs (`uplink`: on what it receives).
    SlowLink {
        kind: String,
        mid: Option<String>,
        uplink: bool,
        lost: u64,
    },
    /// The PeerConnection closed.
    Hangup { reason: String },
    /// The handle was detached.
    Detached,
    /// A candidate of Janus (only with full trickle; `None`: gathering completed).
    Trickle { candidate: Option<Candidate> },
    /// A VideoRoom event nobody was waiting for (publishers joining or leaving, errors...).
    Plugin { data: Value, jsep: Option<Value> },
}

/// The events of one handle, in the order Janus sent them.
#[derive(Debug)]
pub struct HandleEvents {
    pub(super) session: u64,
    pub(super) handle: u64,
    pub(super) receiver: mpsc::Receiver<JanusEvent>,
}

impl HandleEvents {
    /// The next event, waiting up to `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<JanusEvent, JanusError> {
        let what = || format!("an event on Janus handle {}", self.handle);
        match tokio::time::timeout(timeout, self.receiver.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(JanusError::SessionGone {
                session: self.session,
                reason: format!(
                    "no more events for handle {} (detached or session closed)",
                    self.handle
                ),
            }),
            Err(_) => Err(JanusError::Timeout {
                what: what(),
                after: timeout,
            }),
        }
    }

    /// Waits up to `timeout` for `webrtcup`, skipping other events; a `hangup` first fails.
    pub async fn wait_webrtcup(&mut self, timeout: Duration) -> Result<(), JanusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(JanusEvent::WebrtcUp) => return Ok(()),
                Ok(JanusEvent::Hangup { reason }) => {
                    return Err(JanusError::Hangup {
                        handle: self.handle,
                        reason,
                    });
                }
                Ok(_) => {}
                Err(JanusError::Timeout { .. }) => {
                    return Err(JanusError::Timeout {
                        what: format!("webrtcup on Janus handle {}", self.handle),
                        after: timeout,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Events already received, without waiting.
    pub fn try_next(&mut self) -> Option<JanusEvent> {
        self.receiver.try_recv().ok()
    }
}
