//! The state a session shares with its background tasks: the HTTP client, the transaction
//! counter, and the router that hands each long-polled event to the request waiting for it or
//! to its handle's queue. Never starts tasks nor attaches handles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::api::{post, str_field};
use super::error::{JanusError, protocol};
use super::events::JanusEvent;

/// Where the long poller sends what it reads.
#[derive(Default)]
pub(super) struct Router {
    /// Transaction id → whoever waits for the asynchronous answer.
    pub(super) pending: HashMap<String, oneshot::Sender<Value>>,
    /// Handle id → its events.
    pub(super) handles: HashMap<u64, mpsc::Sender<JanusEvent>>,
    /// Why the long poll stopped, once it has.
    pub(super) closed: Option<String>,
}

/// What a session shares with its background tasks.
pub(super) struct Shared {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    pub(super) session: u64,
    pub(super) timeout: Duration,
    pub(super) router: Mutex<Router>,
    pub(super) next_transaction: AtomicU64,
}

impl Shared {
    pub(super) fn session_url(&self) -> String {
        format!("{}/{}", self.base_url, self.session)
    }

    pub(super) fn handle_url(&self, handle: u64) -> String {
        format!("{}/{}/{}", self.base_url, self.session, handle)
    }

    pub(super) fn transaction(&self) -> String {
        format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn router(&self) -> MutexGuard<'_, Router> {
        // A poisoned router only means a panic elsewhere; its maps are still consistent.
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gone(&self, reason: &str) -> JanusError {
        JanusError::SessionGone {
            session: self.session,
            reason: reason.to_owned(),
        }
    }

    /// Sends a VideoRoom request on `handle` and returns the plugin's data and JSEP, whether
    /// Janus answers at once (`success`) or later through the long poll (`ack`, then an
    /// `event` with our transaction). A VideoRoom `error_code` is a [`JanusError::Janus`].
    pub(super) async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
        request: &str,
    ) -> Result<(Value, Option<Value>), JanusError> {
        let transaction = self.transaction();
        let (sender, receiver) = oneshot::channel();
        {
            let mut router = self.router();
            if let Some(reason) = &router.closed {
                return Err(self.gone(reason));
            }
            router.pending.insert(transaction.clone(), sender);
        }
        // Whatever happens next, the transaction is forgotten when this returns.
        let _pending = Pending {
            shared: self,
            transaction: &transaction,
        };
        let mut message = json!({"janus": "message", "transaction": transaction, "body": body});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let answer = post(
            &self.http,
            &self.handle_url(handle),
            message,
            request,
            self.timeout,
        )
        .await?;
        let event = match answer.get("janus").and_then(Value::as_str) {
            Some("success") => answer,
            Some("ack") => match tokio::time::timeout(self.timeout, receiver).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => {
                    let reason = self.router().closed.clone().unwrap_or_default();
                    return Err(self.gone(&reason));
                }
                Err(_) => {
                    return Err(JanusError::Timeout {
                        what: format!("Janus' answer to {request} on handle {handle}"),
                        after: self.timeout,
                    });
                }
            },
            _ => return Err(protocol(request, "neither success nor ack", &answer)),
        };
        let data = event
            .pointer("/plugindata/data")
            .cloned()
            .ok_or_else(|| protocol(request, "no plugindata", &event))?;
        if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
            return Err(JanusError::Janus {
                request: request.to_owned(),
                code,
                reason: data
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok((data, event.get("jsep").cloned()))
    }

    /// Routes one event read by the long poll.
    pub(super) fn dispatch(&self, event: Value) {
        let kind = event.get("janus").and_then(Value::as_str).unwrap_or("");
        let handle = event.get("sender").and_then(Value::as_u64);
        let routed = match kind {
            "keepalive" => return,
            "timeout" => {
                self.close("Janus timed the session out");
                return;
            }
            "event" => {
                let transaction = event.get("transaction").and_then(Value::as_str);
                let waiter = transaction.and_then(|t| self.router().pending.remove(t));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(event);
                        return;
                    }
                    None => JanusEvent::Plugin {
                        data: event
                            .pointer("/plugindata/data")
                            .cloned()
                            .unwrap_or_default(),
                        jsep: event.get("jsep").cloned(),
                    },
                }
            }
            "webrtcup" => JanusEvent::WebrtcUp,
            "media" => JanusEvent::Media {
                kind: str_field(&event, "type"),
                mid: event.get("mid").and_then(Value::as_str).map(str::to_owned),
                receiving: event.get("receiving").and_then(Value::as_bool) == Some(true),
            },
            "slowlink" => JanusEvent::SlowLink {
                kind: str_field(&event, "media"),
                mid: event.get("mid").and_then(Value::as_str).map(str::to_owned),
                uplink: event.get("uplink").and_then(Value::as_bool) == Some(true),
                lost: event.get("lost").and_then(Value::as_u64).unwrap_or(0),
            },
            "hangup" => JanusEvent::Hangup {
                reason: str_field(&event, "reason"),
            },
            "detached" => JanusEvent::Detached,
            "trickle" => {
                let candidate = event.get("candidate");
                let completed = candidate
                    .and_then(|c| c.get("completed"))
                    .and_then(Value::as_bool)
                    == Some(true);
                JanusEvent::Trickle {
                    candidate: candidate.filter(|_| !completed).map(|c| {
                        (
                            str_field(c, "candidate"),
                            str_field(c, "sdpMid"),
                            c.get("sdpMLineIndex")
                                .and_then(Value::as_u64)
                                .and_then(|i| u16::try_from(i).ok())
                                .unwrap_or(0),
                        )
                    }),
                }
            }
            _ => {
                tracing::debug!(%event, "unexpected Janus event");
                return;
            }
        };
        let Some(handle) = handle else {
            tracing::debug!(%event, "Janus event without a sender handle");
            return;
        };
        let mut router = self.router();
        let Some(queue) = router.handles.get(&handle) else {
            return;
        };
        match queue.try_send(routed) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                tracing::debug!(
                    handle,
                    ?event,
                    "Janus handle event queue full: event dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                router.handles.remove(&handle);
            }
        }
    }

    /// Marks the session gone: waiters fail at once, event queues end.
    pub(super) fn close(&self, reason: &str) {
        tracing::debug!(session = self.session, reason, "Janus session gone");
        let mut router = self.router();
        router.closed.get_or_insert_with(|| reason.to_owned());
        router.pending.clear();
        router.handles.clear();
    }
}

/// Forgets a transaction when its request is over (answered, failed or cancelled).
struct Pending<'a> {
    shared: &'a Shared,
    transaction: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.router().pending.remove(self.transaction);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::janus::api::{DEFAULT_TIMEOUT, VIDEOROOM};

    fn shared() -> Shared {
        Shared {
            http: reqwest::Client::new(),
            base_url: "http://127.0.0.1:1/janus".to_owned(),
            session: 7,
            timeout: DEFAULT_TIMEOUT,
            router: Mutex::new(Router::default()),
            next_transaction: AtomicU64::new(1),
        }
    }

    #[tokio::test]
    async fn events_go_to_their_transaction_or_handle() {
        let shared = shared();
        let (sender, mut receiver) = oneshot::channel();
        shared.router().pending.insert("t1".to_owned(), sender);
        let (queue, mut events) = mpsc::channel(4);
        shared.router().handles.insert(5, queue);
        shared.dispatch(json!({"janus": "event", "transaction": "t1", "sender": 5,
            "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "joined"}}}));
        assert!(receiver.try_recv().is_ok());
        shared.dispatch(json!({"janus": "webrtcup", "sender": 5}));
        shared.dispatch(
            json!({"janus": "media", "sender": 5, "type": "video", "mid": "1",
            "receiving": true}),
        );
        shared.dispatch(json!({"janus": "event", "sender": 5,
            "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "event", "leaving": 3}}}));
        shared.dispatch(json!({"janus": "hangup", "sender": 6, "reason": "not ours"}));
        shared.dispatch(json!({"janus": "keepalive"}));
        shared.dispatch(json!("garbage"));
        assert_eq!(events.try_recv().ok(), Some(JanusEvent::WebrtcUp));
        assert_eq!(
            events.try_recv().ok(),
            Some(JanusEvent::Media {
                kind: "video".to_owned(),
                mid: Some("1".to_owned()),
                receiving: true
            })
        );
        assert!(matches!(
            events.try_recv(),
            Ok(JanusEvent::Plugin { jsep: None, .. })
        ));
        assert!(events.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_timed_out_session_fails_its_waiters() {
        let shared = shared();
        let (sender, receiver) = oneshot::channel();
        shared.router().pending.insert("t1".to_owned(), sender);
        shared.dispatch(json!({"janus": "timeout", "session_id": 7}));
        assert!(receiver.await.is_err());
        let error = shared
            .message(1, json!({"request": "start"}), None, "start")
            .await
            .unwrap_err();
        assert!(matches!(error, JanusError::SessionGone { session: 7, .. }));
    }
}
