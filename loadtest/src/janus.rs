//! Janus VideoRoom signaling over Janus' plain HTTP REST API, for running the load tester's
//! scenario against Janus (Debian package `janus` 1.x, `janus.plugin.videoroom`) as well as
//! against Switchyard.
//!
//! A [`JanusSession`] is one Janus session (`POST /janus {"janus":"create"}`) with a control
//! handle attached to the VideoRoom plugin for room management. Two background tasks keep it
//! alive: a keepalive every 25 s, and a long poller (`GET /janus/{session}?maxev=10`) that
//! routes Janus' asynchronous events: the answer to an asynchronous plugin request (`join`,
//! `publish`, `start`: an `ack` now, then an `event` carrying the same transaction id) goes
//! to the call waiting for it, and everything else about a handle (`webrtcup`, `media`,
//! `slowlink`, `hangup`, unsolicited plugin events) to that handle's [`HandleEvents`].
//!
//! Publishing is attach + `join` as publisher + `publish` with the SDP offer, which returns
//! Janus' answer; subscribing is attach + `join` as subscriber with the multistream
//! `streams: [{feed}]` list of Janus 1.x, which returns Janus' offer, then [`JanusSession::start`]
//! with the answer. Janus sends its own ICE candidates inside its SDP (half trickle); ours
//! go through [`JanusSession::trickle`] unless they are already in the SDP.
//!
//! Every wait is bounded (10 s by default, see [`JanusSession::connect_with_timeout`]) and
//! every failure is a typed [`JanusError`]. `scripts/janus` starts a suitable Janus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long a request, or the asynchronous answer to one, may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the session is kept alive (Janus drops sessions silent for 60 s by default).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);
/// Janus answers a long poll within 30 s (with a keepalive when nothing happened).
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Long-poll failures in a row after which the session is taken as gone.
const LONG_POLL_MAX_FAILURES: u32 = 3;
/// Events kept for a handle whose [`HandleEvents`] is not read; later ones are dropped.
const HANDLE_EVENT_QUEUE: usize = 256;
const VIDEOROOM: &str = "janus.plugin.videoroom";
/// VideoRoom error codes (janus_videoroom.c).
const ERROR_ROOM_EXISTS: i64 = 427;

/// Janus signaling failures.
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// The HTTP request could not be made (connection refused, reset, bad URL...).
    #[error("cannot reach Janus at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Janus answered with an HTTP error status.
    #[error("Janus at {url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    /// Janus (the core or the VideoRoom plugin) refused a request.
    #[error("Janus refused {request}: error {code}: {reason}")]
    Janus {
        request: String,
        code: i64,
        reason: String,
    },
    /// An answer that does not follow the Janus API.
    #[error("unexpected answer from Janus to {request}: {detail}")]
    Protocol { request: String, detail: String },
    /// Janus hung up a handle's PeerConnection while we waited for it to come up.
    #[error("Janus hung up handle {handle}: {reason}")]
    Hangup { handle: u64, reason: String },
    /// Nothing came within the time allowed.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// The session's event long poll stopped (Janus gone, session timed out or destroyed).
    #[error("Janus session {session} is gone: {reason}")]
    SessionGone { session: u64, reason: String },
}

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
    session: u64,
    handle: u64,
    receiver: mpsc::Receiver<JanusEvent>,
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

/// A publisher in a room.
#[derive(Debug)]
pub struct JanusPublisher {
    /// Its handle, for [`JanusSession::trickle`] and [`JanusSession::detach`].
    pub handle: u64,
    /// Its participant id, which subscribers name as `feed`.
    pub feed: u64,
    /// Janus' SDP answer to the offer.
    pub answer_sdp: String,
    pub events: HandleEvents,
}

/// One stream of a subscription, as Janus described it when offering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedStream {
    /// The mid in the subscriber's SDP.
    pub mid: String,
    /// `audio`, `video` or `data`.
    pub kind: String,
    /// The publisher it comes from (none for data).
    pub feed: Option<u64>,
    /// The mid in the publisher's SDP.
    pub feed_mid: Option<String>,
}

/// A subscription to one or more feeds, on its own handle.
#[derive(Debug)]
pub struct JanusSubscriber {
    pub handle: u64,
    /// Janus' SDP offer: answer it, then call [`JanusSession::start`].
    pub offer_sdp: String,
    pub streams: Vec<SubscribedStream>,
    pub events: HandleEvents,
}

/// Where the long poller sends what it reads.
#[derive(Default)]
struct Router {
    /// Transaction id → whoever waits for the asynchronous answer.
    pending: HashMap<String, oneshot::Sender<Value>>,
    /// Handle id → its events.
    handles: HashMap<u64, mpsc::Sender<JanusEvent>>,
    /// Why the long poll stopped, once it has.
    closed: Option<String>,
}

struct Shared {
    http: reqwest::Client,
    base_url: String,
    session: u64,
    timeout: Duration,
    router: Mutex<Router>,
    next_transaction: AtomicU64,
}

/// A Janus session with a VideoRoom control handle; see the module documentation.
pub struct JanusSession {
    shared: Arc<Shared>,
    control: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for JanusSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JanusSession")
            .field("base_url", &self.shared.base_url)
            .field("session", &self.shared.session)
            .field("control", &self.control)
            .finish()
    }
}

impl Drop for JanusSession {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl JanusSession {
    /// Creates a session on the Janus at `base_url` (e.g. `http://127.0.0.1:8088/janus`),
    /// attaches the control handle and starts the keepalive and the event long poll.
    pub async fn connect(base_url: &str) -> Result<JanusSession, JanusError> {
        Self::connect_with_timeout(base_url, DEFAULT_TIMEOUT).await
    }

    /// [`JanusSession::connect`], with `timeout` for every later request and wait.
    pub async fn connect_with_timeout(
        base_url: &str,
        timeout: Duration,
    ) -> Result<JanusSession, JanusError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let http =
            reqwest::Client::builder()
                .build()
                .map_err(|source| JanusError::Unreachable {
                    url: base_url.clone(),
                    source,
                })?;
        let transaction = "create".to_owned();
        let answer = post(
            &http,
            &base_url,
            json!({"janus": "create", "transaction": transaction}),
            "create session",
            timeout,
        )
        .await?;
        let session = success_id(&answer, "create session")?;
        let shared = Arc::new(Shared {
            http,
            base_url,
            session,
            timeout,
            router: Mutex::new(Router::default()),
            next_transaction: AtomicU64::new(1),
        });
        let tasks = vec![
            tokio::spawn(long_poll(Arc::clone(&shared))),
            tokio::spawn(keepalive(Arc::clone(&shared))),
        ];
        let mut janus = JanusSession {
            shared,
            control: 0,
            tasks,
        };
        match janus.attach().await {
            Ok((control, _)) => {
                janus.control = control;
                tracing::debug!(session, control, "Janus session created");
                Ok(janus)
            }
            Err(e) => {
                janus.close().await;
                Err(e)
            }
        }
    }

    /// The Janus session id.
    pub fn id(&self) -> u64 {
        self.shared.session
    }

    /// Creates a room (not permanent, Opus and VP8, no joining notifications); fine if it
    /// already exists.
    pub async fn create_room(
        &self,
        room: u64,
        max_publishers: u32,
        bitrate_bps: u32,
    ) -> Result<(), JanusError> {
        let body = json!({
            "request": "create",
            "room": room,
            "permanent": false,
            "description": format!("loadtest {room}"),
            "publishers": max_publishers,
            "bitrate": bitrate_bps,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": false,
        });
        match self
            .shared
            .message(self.control, body, None, "create room")
            .await
        {
            Ok((data, _)) => expect_field(&data, "videoroom", "created", "create room"),
            Err(JanusError::Janus { code, .. }) if code == ERROR_ROOM_EXISTS => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Destroys a room, kicking out its participants.
    pub async fn destroy_room(&self, room: u64) -> Result<(), JanusError> {
        let body = json!({"request": "destroy", "room": room});
        let (data, _) = self
            .shared
            .message(self.control, body, None, "destroy room")
            .await?;
        expect_field(&data, "videoroom", "destroyed", "destroy room")
    }

    /// Publishes in `room`: a new handle joins as publisher `display`, then publishes with
    /// `offer_sdp`. On failure the handle is detached again.
    pub async fn publish(
        &self,
        room: u64,
        display: &str,
        offer_sdp: &str,
    ) -> Result<JanusPublisher, JanusError> {
        let (handle, events) = self.attach().await?;
        let result = async {
            let join = json!({
                "request": "join",
                "ptype": "publisher",
                "room": room,
                "display": display,
            });
            let (data, _) = self
                .shared
                .message(handle, join, None, "join as publisher")
                .await?;
            expect_field(&data, "videoroom", "joined", "join as publisher")?;
            let feed = data
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| protocol("join as publisher", "no participant id", &data))?;
            let jsep = json!({"type": "offer", "sdp": offer_sdp});
            let (data, jsep) = self
                .shared
                .message(handle, json!({"request": "publish"}), Some(jsep), "publish")
                .await?;
            expect_field(&data, "configured", "ok", "publish")?;
            let answer_sdp = jsep_sdp(jsep.as_ref(), "answer", "publish")?;
            Ok((feed, answer_sdp))
        }
        .await;
        match result {
            Ok((feed, answer_sdp)) => Ok(JanusPublisher {
                handle,
                feed,
                answer_sdp,
                events,
            }),
            Err(e) => {
                let _ = self.detach(handle).await;
                Err(e)
            }
        }
    }

    /// Subscribes to every stream of `feeds` in `room` on a new handle, and returns Janus'
    /// offer. On failure the handle is detached again.
    pub async fn subscribe(&self, room: u64, feeds: &[u64]) -> Result<JanusSubscriber, JanusError> {
        let (handle, events) = self.attach().await?;
        let result = async {
            let streams: Vec<Value> = feeds.iter().map(|feed| json!({"feed": feed})).collect();
            let join = json!({
                "request": "join",
                "ptype": "subscriber",
                "room": room,
                "streams": streams,
            });
            let (data, jsep) = self
                .shared
                .message(handle, join, None, "join as subscriber")
                .await?;
            expect_field(&data, "videoroom", "attached", "join as subscriber")?;
            let offer_sdp = jsep_sdp(jsep.as_ref(), "offer", "join as subscriber")?;
            let streams = data
                .get("streams")
                .and_then(Value::as_array)
                .map(|streams| streams.iter().filter_map(subscribed_stream).collect())
                .unwrap_or_default();
            Ok((offer_sdp, streams))
        }
        .await;
        match result {
            Ok((offer_sdp, streams)) => Ok(JanusSubscriber {
                handle,
                offer_sdp,
                streams,
                events,
            }),
            Err(e) => {
                let _ = self.detach(handle).await;
                Err(e)
            }
        }
    }

    /// Answers a subscription's offer: Janus starts ICE, DTLS and then forwarding.
    pub async fn start(
        &self,
        subscriber: &JanusSubscriber,
        answer_sdp: &str,
    ) -> Result<(), JanusError> {
        let jsep = json!({"type": "answer", "sdp": answer_sdp});
        let (data, _) = self
            .shared
            .message(
                subscriber.handle,
                json!({"request": "start"}),
                Some(jsep),
                "start subscription",
            )
            .await?;
        expect_field(&data, "started", "ok", "start subscription")
    }

    /// Sends one of our ICE candidates for `handle`, or `None` once we have sent them all.
    pub async fn trickle(
        &self,
        handle: u64,
        candidate: Option<Candidate>,
    ) -> Result<(), JanusError> {
        let candidate = match candidate {
            Some((line, mid, index)) => {
                let line = line.trim().trim_start_matches("a=");
                let line = if line.starts_with("candidate:") {
                    line.to_owned()
                } else {
                    format!("candidate:{line}")
                };
                json!({"candidate": line, "sdpMid": mid, "sdpMLineIndex": index})
            }
            None => json!({"completed": true}),
        };
        let url = self.shared.handle_url(handle);
        let transaction = self.shared.transaction();
        let answer = post(
            &self.shared.http,
            &url,
            json!({"janus": "trickle", "transaction": transaction, "candidate": candidate}),
            "trickle",
            self.shared.timeout,
        )
        .await?;
        match answer.get("janus").and_then(Value::as_str) {
            Some("ack") | Some("success") => Ok(()),
            _ => Err(protocol("trickle", "neither ack nor success", &answer)),
        }
    }

    /// The ids of the participants of `room` that publish (with WebRTC up).
    pub async fn publishers(&self, room: u64) -> Result<Vec<u64>, JanusError> {
        let body = json!({"request": "listparticipants", "room": room});
        let (data, _) = self
            .shared
            .message(self.control, body, None, "list participants")
            .await?;
        expect_field(&data, "videoroom", "participants", "list participants")?;
        let participants = data
            .get("participants")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("list participants", "no participants list", &data))?;
        Ok(participants
            .iter()
            .filter(|p| p.get("publisher").and_then(Value::as_bool) == Some(true))
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect())
    }

    /// Detaches a publisher's or subscriber's handle (which hangs up its PeerConnection and
    /// leaves the room).
    pub async fn detach(&self, handle: u64) -> Result<(), JanusError> {
        let transaction = self.shared.transaction();
        let answer = post(
            &self.shared.http,
            &self.shared.handle_url(handle),
            json!({"janus": "detach", "transaction": transaction}),
            "detach",
            self.shared.timeout,
        )
        .await;
        self.shared.router().handles.remove(&handle);
        expect_success(&answer?, "detach")
    }

    /// Destroys the session (and so every handle of it) and stops the background tasks.
    pub async fn close(self) {
        let transaction = self.shared.transaction();
        let answer = post(
            &self.shared.http,
            &self.shared.session_url(),
            json!({"janus": "destroy", "transaction": transaction}),
            "destroy session",
            self.shared.timeout,
        )
        .await;
        if let Err(e) = answer.and_then(|a| expect_success(&a, "destroy session")) {
            tracing::debug!(session = self.shared.session, error = %e, "Janus session not destroyed");
        }
        // Drop aborts the tasks.
    }

    /// Attaches a new VideoRoom handle, with its event queue.
    async fn attach(&self) -> Result<(u64, HandleEvents), JanusError> {
        let transaction = self.shared.transaction();
        let answer = post(
            &self.shared.http,
            &self.shared.session_url(),
            json!({"janus": "attach", "plugin": VIDEOROOM, "transaction": transaction}),
            "attach",
            self.shared.timeout,
        )
        .await?;
        let handle = success_id(&answer, "attach")?;
        let (sender, receiver) = mpsc::channel(HANDLE_EVENT_QUEUE);
        self.shared.router().handles.insert(handle, sender);
        Ok((
            handle,
            HandleEvents {
                session: self.shared.session,
                handle,
                receiver,
            },
        ))
    }
}

impl Shared {
    fn session_url(&self) -> String {
        format!("{}/{}", self.base_url, self.session)
    }

    fn handle_url(&self, handle: u64) -> String {
        format!("{}/{}/{}", self.base_url, self.session, handle)
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed))
    }

    fn router(&self) -> MutexGuard<'_, Router> {
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
    async fn message(
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
    fn dispatch(&self, event: Value) {
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
    fn close(&self, reason: &str) {
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

/// Reads events until the session is gone.
async fn long_poll(shared: Arc<Shared>) {
    let url = format!("{}?maxev=10", shared.session_url());
    let mut failures = 0;
    loop {
        let request = shared.http.get(&url).timeout(LONG_POLL_TIMEOUT).send();
        let reason = match request.await {
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                shared.close("Janus no longer knows it (HTTP 404 on the long poll)");
                return;
            }
            Ok(response) if !response.status().is_success() => {
                format!("HTTP {}", response.status())
            }
            Ok(response) => match response.json::<Value>().await {
                Ok(Value::Array(events)) => {
                    failures = 0;
                    events.into_iter().for_each(|e| shared.dispatch(e));
                    continue;
                }
                Ok(event @ Value::Object(_)) => {
                    failures = 0;
                    shared.dispatch(event);
                    continue;
                }
                Ok(other) => format!("not an event: {other}"),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        failures += 1;
        tracing::debug!(session = shared.session, failures, %reason, "Janus long poll failed");
        if failures >= LONG_POLL_MAX_FAILURES {
            shared.close(&format!(
                "long poll failed {failures} times, last: {reason}"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Keeps the session alive until it is gone.
async fn keepalive(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(KEEPALIVE_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        if shared.router().closed.is_some() {
            return;
        }
        let transaction = shared.transaction();
        let body = json!({"janus": "keepalive", "transaction": transaction});
        match post(
            &shared.http,
            &shared.session_url(),
            body,
            "keepalive",
            shared.timeout,
        )
        .await
        {
            Ok(answer) if answer.get("janus").and_then(Value::as_str) == Some("ack") => {}
            Ok(answer) => {
                tracing::warn!(session = shared.session, %answer, "Janus refused a keepalive")
            }
            Err(e) => {
                tracing::warn!(session = shared.session, error = %e, "Janus keepalive failed")
            }
        }
    }
}

/// POSTs a Janus API request and returns its JSON answer; a Janus `error` answer is a
/// [`JanusError::Janus`].
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Value,
    request: &str,
    timeout: Duration,
) -> Result<Value, JanusError> {
    let exchange =
        async {
            let response = http.post(url).json(&body).send().await.map_err(|source| {
                JanusError::Unreachable {
                    url: url.to_owned(),
                    source,
                }
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(JanusError::Http {
                    url: url.to_owned(),
                    status: status.as_u16(),
                });
            }
            response
                .json::<Value>()
                .await
                .map_err(|e| JanusError::Protocol {
                    request: request.to_owned(),
                    detail: format!("unreadable answer: {e}"),
                })
        };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| JanusError::Timeout {
            what: format!("Janus' answer to {request} at {url}"),
            after: timeout,
        })??;
    if answer.get("janus").and_then(Value::as_str) == Some("error") {
        return Err(JanusError::Janus {
            request: request.to_owned(),
            code: answer
                .pointer("/error/code")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            reason: answer
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(answer)
}

fn protocol(request: &str, what: &str, answer: &Value) -> JanusError {
    let mut detail = format!("{what} in {answer}");
    if detail.len() > 500 {
        let mut end = 500;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    JanusError::Protocol {
        request: request.to_owned(),
        detail,
    }
}

fn expect_success(answer: &Value, request: &str) -> Result<(), JanusError> {
    match answer.get("janus").and_then(Value::as_str) {
        Some("success") => Ok(()),
        _ => Err(protocol(request, "no success", answer)),
    }
}

/// The `data.id` of a `success` answer (a new session or handle).
fn success_id(answer: &Value, request: &str) -> Result<u64, JanusError> {
    expect_success(answer, request)?;
    answer
        .pointer("/data/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| protocol(request, "no data.id", answer))
}

fn expect_field(data: &Value, field: &str, want: &str, request: &str) -> Result<(), JanusError> {
    match data.get(field).and_then(Value::as_str) {
        Some(value) if value == want => Ok(()),
        _ => Err(protocol(
            request,
            &format!("no \"{field}\": \"{want}\""),
            data,
        )),
    }
}

fn jsep_sdp(jsep: Option<&Value>, kind: &str, request: &str) -> Result<String, JanusError> {
    let jsep = jsep.ok_or_else(|| JanusError::Protocol {
        request: request.to_owned(),
        detail: format!("no jsep {kind}"),
    })?;
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(protocol(request, &format!("jsep is not an {kind}"), jsep));
    }
    jsep.get("sdp")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| protocol(request, "jsep without sdp", jsep))
}

fn str_field(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn subscribed_stream(stream: &Value) -> Option<SubscribedStream> {
    Some(SubscribedStream {
        mid: stream.get("mid")?.as_str()?.to_owned(),
        kind: str_field(stream, "type"),
        feed: stream.get("feed_id").and_then(Value::as_u64),
        feed_mid: stream
            .get("feed_mid")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The load tester drives many participants from spawned tasks.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn check(session: &JanusSession, subscriber: &JanusSubscriber, events: &mut HandleEvents) {
            send(&session.create_room(1, 1, 1));
            send(&session.destroy_room(1));
            send(&session.publish(1, "", ""));
            send(&session.subscribe(1, &[]));
            send(&session.start(subscriber, ""));
            send(&session.trickle(1, None));
            send(&session.publishers(1));
            send(&session.detach(1));
            send(&events.wait_webrtcup(DEFAULT_TIMEOUT));
            send(&JanusSession::connect(""));
        }
        let _ = check;
        fn sync<T: Send + Sync>() {}
        sync::<JanusSession>();
    }

    #[tokio::test]
    async fn an_unreachable_janus_is_a_precise_error() {
        // Port 1 on loopback: nothing listens there.
        let error = JanusSession::connect_with_timeout("http://127.0.0.1:1/janus", DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, JanusError::Unreachable { url, .. } if url == "http://127.0.0.1:1/janus"),
            "{error}"
        );
        let error = JanusSession::connect("not a url").await.unwrap_err();
        assert!(matches!(error, JanusError::Unreachable { .. }), "{error}");
    }
}
