//! The typed failures of Janus signaling ([`JanusError`]) and the builder of its `Protocol`
//! variant; never talks to Janus itself.

use std::time::Duration;

use serde_json::Value;

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

pub(super) fn protocol(request: &str, what: &str, answer: &Value) -> JanusError {
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
