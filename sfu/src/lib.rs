//! Switchyard's selective forwarding unit: the media plane.
//!
//! Rooms own their participants, each with two server-side peer connections (webrtc-rs `rtc`,
//! sans-IO): a *publisher* connection the browser offers on, and a *subscriber* connection the
//! server offers on whenever tracks come and go. Every room is one task that owns all of its
//! state (no locks on the media path); RTP read from a publisher is rewritten per subscription by
//! a [`Forwarder`] and written to each subscriber without being decoded.
//!
//! All peer connections share one UDP port (`socket.rs`). The signaling layer talks to rooms only
//! through [`Sfu::join`] and the returned [`Session`]; it never touches a media socket.
//!
//! The parts, each in the file named after it (see `docs/architecture.md`): [`Sfu`] (`sfu.rs`,
//! the registry of rooms), `room/` (the task loop and what it dispatches to), `participant.rs`,
//! `transport.rs` (a participant's peer connection), `negotiator.rs` (offer/answer),
//! `publication.rs`, `subscription.rs`, `router.rs` (fan-out and feedback routing),
//! `data_relay.rs`, and the leaf `io.rs` (datagrams, routes, outgoing batches).
//!
//! What this crate must never do: decode media, block or take a lock per packet, or panic on
//! anything a network peer sends. This file only declares modules and re-exports.

pub mod admin;
mod allocator;
mod clock;
mod config;
pub mod counters;
mod data_channels;
mod data_relay;
mod downlink;
mod downlink_estimator;
mod error;
pub mod events;
mod fanout;
mod feedback;
pub mod forwarder;
/// Entry points for the fuzz targets and the corpus replay test (not a stable API).
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod io;
pub mod keyframe;
pub mod layer_switch;
pub mod link_inbox;
pub mod links;
#[doc(hidden)]
pub mod memory;
mod negotiator;
mod participant;
mod peer;
mod prober;
mod publication;
mod queue_delay;
mod read_hook;
mod retransmission_budget;
mod room;
mod router;
pub mod rtp_munger;
mod session;
mod sfu;
mod socket;
mod span;
mod speakers;
mod stats;
mod subscription;
mod thinning;
mod tile;
mod transport;
mod upgrade_backoff;
pub mod vp8_munger;

pub use admin::{AdminCommand, AdminError, AdminReply};
pub use config::{DEFAULT_PARALLEL_FANOUT, SfuConfig};
pub use data_channels::{LOSSY, RELIABLE};
pub use error::{JoinError, SfuError};
pub use forwarder::{Decision, Forwarder};
pub use ids::{InvalidRoomId, ParticipantId, RoomId, TrackId};
pub use negotiator::{OfferError, OfferMedia, inspect_offer};
pub use session::{JoinParams, Session, SessionCommand, SessionEvent, SessionHandle};
pub use sfu::Sfu;
