//! What an admin can ask of a room (through [`crate::Sfu::admin`]), and why a request can fail.
//! The answers are the API's own types from `protocol::admin`. Definitions only: it never does I/O
//! and never touches a room itself.

use protocol::Grants;
use protocol::admin::{ParticipantDetail, RoomDetail, TrackDetail};

/// A request to one room.
#[derive(Debug, Clone)]
pub enum AdminCommand {
    /// Everything about the room now.
    Snapshot,
    /// Tell everyone the room is closed, disconnect them, and close the room.
    Close,
    /// Remove one participant (it is told `removed`).
    Remove { identity: String },
    /// Mute or unmute one of a participant's published tracks.
    MuteTrack {
        identity: String,
        track: String,
        muted: bool,
    },
    /// Change a participant's grants; revoking `can_publish` unpublishes its tracks, revoking
    /// `can_subscribe` removes what it receives.
    UpdateGrants { identity: String, grants: Grants },
    /// Deliver a data message from the server on the reliable channel.
    SendData {
        topic: String,
        payload: Vec<u8>,
        /// Identities; empty: everyone.
        to: Vec<String>,
    },
}

/// A room's answer.
#[derive(Debug, Clone)]
pub enum AdminReply {
    Room(Box<RoomDetail>),
    Participant(Box<ParticipantDetail>),
    Track(TrackDetail),
    Done,
    /// How many participants a data message went to.
    Delivered(usize),
}

/// Why an admin request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("there is no room {0:?}")]
    NoSuchRoom(String),
    #[error("room {room:?} has no participant {identity:?}")]
    NoSuchParticipant { room: String, identity: String },
    #[error("{identity:?} has no published track {track:?}")]
    NoSuchTrack { identity: String, track: String },
    #[error("room {0:?} already exists")]
    RoomExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the room did not answer; try again")]
    Unavailable,
}
