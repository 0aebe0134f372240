//! A participant's membership of a room as its signaling connection holds it: who joins, the
//! commands it sends the room, the events the room sends back. Never touches media: these are
//! messages between the signaling layer and a room task.

use protocol::{CloseReason, Grants, IceCandidate, IceServer, LeaveReason, ServerMessage};
use protocol::{Target, TrackKind, TrackSettings, TrackSource};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

use crate::ids::{ParticipantId, RoomId};

/// Who is joining, as the signaling layer verified it from the access token.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    /// Handed back to the client in `joined` (TURN servers and credentials).
    pub ice_servers: Vec<IceServer>,
}

/// What a participant's connection asks of its room.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// The client's offer on its publisher connection, with what each of its tracks is (by
    /// the browser's track id).
    PublisherOffer {
        sdp: String,
        sources: BTreeMap<String, TrackSource>,
    },
    /// How the client shows one remote video track.
    TrackSettings(TrackSettings),
    /// The client's answer to our offer on its subscriber connection.
    SubscriberAnswer(String),
    /// A trickled ICE candidate (`None`: end of candidates).
    Candidate(Target, Option<IceCandidate>),
    /// The client muted or unmuted its track of this kind.
    Mute(TrackKind, bool),
    /// Restart ICE on the subscriber connection: offer again with new ICE credentials.
    RestartIce,
    /// The participant is gone.
    Leave(LeaveReason),
    /// A WHEP viewer's offer (receive only): the room answers it on the viewer's subscriber
    /// connection with the tracks of `participant` (an identity), or of the room's active
    /// speaker when `None`. Only a participant that joined hidden and without `canSubscribe`
    /// may send it, once; the answer comes back as `answer` (target `subscriber`), a refusal
    /// as `error` (`unknown_participant`, `invalid_sdp` or `invalid_message`).
    ViewerOffer {
        sdp: String,
        participant: Option<String>,
    },
}

/// What a room tells one participant's connection.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// A protocol message to pass on to the client.
    Message(ServerMessage),
    /// The room ended this session; the connection should say why and close.
    Closed(CloseReason),
}

/// One participant's membership of a room, held by its signaling connection.
pub struct Session {
    pub participant_id: ParticipantId,
    pub room: RoomId,
    pub events: mpsc::Receiver<SessionEvent>,
    pub handle: SessionHandle,
}

/// A command on its way to a room, tagged with the participant it comes from.
pub(crate) struct SignalCommand {
    pub participant: u64,
    pub command: SessionCommand,
}

/// Sends a participant's commands to its room. Dropping it removes the participant (as
/// `disconnected`) unless it already left.
pub struct SessionHandle {
    key: u64,
    signals: mpsc::Sender<SignalCommand>,
    left: bool,
}

impl SessionHandle {
    /// The handle for participant `key` of the room listening on `signals`.
    pub(crate) fn new(key: u64, signals: mpsc::Sender<SignalCommand>) -> Self {
        SessionHandle {
            key,
            signals,
            left: false,
        }
    }

    /// Queues a command for the room, waiting while the room is busy (back-pressure on the
    /// client's WebSocket). Returns false when the room is gone.
    pub async fn send(&mut self, command: SessionCommand) -> bool {
        if matches!(command, SessionCommand::Leave(_)) {
            self.left = true;
        }
        self.signals
            .send(SignalCommand {
                participant: self.key,
                command,
            })
            .await
            .is_ok()
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        if !self.left {
            let _ = self.signals.try_send(SignalCommand {
                participant: self.key,
                command: SessionCommand::Leave(LeaveReason::Disconnected),
            });
        }
    }
}
