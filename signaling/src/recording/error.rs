//! Why a recording request failed ([`RecordingError`]), with messages for the operator.
//! Plain data: it imports nothing from its siblings and knows nothing of HTTP. It never does I/O or
//! logs: it only names what went wrong.

/// Why a recording request failed. The messages are meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("room {room:?} is already being recorded (recording {id}); stop it first")]
    InProgress { room: String, id: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("room {0:?} has no recording in progress")]
    NoRecording(String),
    #[error("there is no recording {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Storage(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}
