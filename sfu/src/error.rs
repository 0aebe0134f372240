//! Why the media plane failed to start, and why a join was refused. Plain error types: they
//! say what went wrong, never how the caller should recover.

use crate::ids::RoomId;

/// Failures of the media plane itself.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("WebRTC engine: {0}")]
    Engine(String),
}

/// Why a join was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JoinError {
    #[error("room {room} is full ({max} participants)")]
    RoomFull { room: RoomId, max: usize },
    /// In a cluster: this node serves as many of the room's participants as it may; the room
    /// spans to another node.
    #[error("this node serves {limit} participants of room {room} already")]
    NodeFull { room: RoomId, limit: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Recorders join only rooms that are open; they never open one.
    #[error("room {0} is not open; a recorder joins only an open room")]
    NoSuchRoom(RoomId),
    /// Rooms are not created by joins on this server, and this one was never created.
    #[error("room {0} does not exist; an admin creates it first (POST /api/rooms)")]
    NotCreated(RoomId),
    #[error("could not set up the peer connections: {0}")]
    Engine(String),
}
