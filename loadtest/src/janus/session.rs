//! A Janus session ([`JanusSession`]): create, attach handles, trickle, detach and destroy.
//! The VideoRoom requests live in `videoroom.rs`; this file never speaks the plugin's API.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::api::{DEFAULT_TIMEOUT, VIDEOROOM, expect_success, post, success_id};
use super::background::{keepalive, long_poll};
use super::error::{JanusError, protocol};
use super::events::{Candidate, HANDLE_EVENT_QUEUE, HandleEvents};
use super::router::{Router, Shared};

/// A Janus session with a VideoRoom control handle; see the module documentation.
pub struct JanusSession {
    pub(super) shared: Arc<Shared>,
    pub(super) control: u64,
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
    pub(super) async fn attach(&self) -> Result<(u64, HandleEvents), JanusError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
