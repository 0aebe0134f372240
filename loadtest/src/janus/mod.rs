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
//!
//! This file only declares the submodules and re-exports their public items: no logic here.

mod api;
mod background;
mod error;
mod events;
mod router;
mod session;
mod videoroom;

pub use api::DEFAULT_TIMEOUT;
pub use error::JanusError;
pub use events::{Candidate, HandleEvents, JanusEvent};
pub use session::JanusSession;
pub use videoroom::{JanusPublisher, JanusSubscriber, SubscribedStream};
