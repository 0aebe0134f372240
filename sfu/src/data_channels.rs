//! A participant's data channels as the client opened them (`reliable` and `lossy`) and its
//! flow-control state as a sender and as a recipient. Plain state: the relay in
//! `data_relay.rs` decides what to do with it; this file never sends anything.

use std::time::Instant;

use rtc::data_channel::RTCDataChannelId;
use tracing::debug;

/// Labels of the two channels a client opens on its publisher connection.
pub const RELIABLE: &str = "reliable";
pub const LOSSY: &str = "lossy";

/// A participant's data channels, as the client opened them, and its flow-control state.
#[derive(Debug, Default)]
pub(crate) struct DataChannels {
    pub reliable: Option<RTCDataChannelId>,
    pub lossy: Option<RTCDataChannelId>,
    /// As a sender: held back (its messages are left unread, so SCTP slows it down) while a
    /// recipient catches up.
    pub paused: bool,
    /// As a recipient: above half its queue bound since this instant.
    pub congested_since: Option<Instant>,
    /// As a recipient: stayed congested past the grace period, so it no longer holds senders
    /// back; messages that do not fit its queue are not delivered.
    pub slow: bool,
    /// As a recipient: senders already told that a message to it was dropped in this episode.
    pub notified: Vec<u64>,
}

impl DataChannels {
    /// Records a channel the client opened; unknown labels are ignored.
    pub fn opened(&mut self, id: RTCDataChannelId, label: &str) {
        match label {
            RELIABLE => self.reliable = Some(id),
            LOSSY => self.lossy = Some(id),
            _ => debug!(label, "ignoring a data channel with an unknown label"),
        }
    }

    /// Whether `id` is the reliable channel (`Some(true)`), the lossy one, or neither.
    pub fn kind(&self, id: RTCDataChannelId) -> Option<bool> {
        if self.reliable == Some(id) {
            Some(true)
        } else if self.lossy == Some(id) {
            Some(false)
        } else {
            None
        }
    }

    pub fn get(&self, reliable: bool) -> Option<RTCDataChannelId> {
        if reliable { self.reliable } else { self.lossy }
    }
}
