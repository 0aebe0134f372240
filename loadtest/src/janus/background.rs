//! The two background tasks of a session: the event long poll, which hands what it reads to
//! the router, and the keepalive. Never sends requests of its own beyond those.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::api::post;
use super::router::Shared;

/// How often the session is kept alive (Janus drops sessions silent for 60 s by default).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);
/// Janus answers a long poll within 30 s (with a keepalive when nothing happened).
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Long-poll failures in a row after which the session is taken as gone.
const LONG_POLL_MAX_FAILURES: u32 = 3;

/// Reads events until the session is gone.
pub(super) async fn long_poll(shared: Arc<Shared>) {
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
pub(super) async fn keepalive(shared: Arc<Shared>) {
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
