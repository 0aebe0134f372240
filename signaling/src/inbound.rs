//! What a client sends, read: one WebSocket frame parsed into a client message or a precise
//! error, and a joined client's message turned into the command for its room's session (or the
//! reply it gets at once). Pure functions over the frame and the message: it never sends, never
//! waits and never touches the socket or the room.

use axum::extract::ws::Message;
use protocol::{ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use sfu::SessionCommand;
use tracing::debug;

/// The message types clients may send, for telling `unknown_type` from `invalid_message`.
const CLIENT_TYPES: &[&str] = &[
    "join",
    "resume",
    "restartIce",
    "offer",
    "answer",
    "candidate",
    "mute",
    "trackSettings",
    "leave",
    "ping",
];

/// Close code a client sends when it drops this connection to resume on a new one.
pub(crate) const CLOSE_COMING_BACK: u16 = 4000;

/// A failure that ends the connection: the error to send and the close code.
pub(crate) struct Fatal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl Fatal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Fatal {
            code,
            message: message.into(),
        }
    }
}

pub(crate) enum Incoming {
    Message(ClientMessage),
    /// A recoverable mistake: tell the client and keep going.
    Mistake(ErrorCode, String),
    Fatal(Fatal),
    /// The connection ended: `clean` for a goodbye (a close frame), not for a connection that
    /// broke or a client that said it is coming back (close code 4000).
    Closed {
        clean: bool,
    },
    /// Control frames (ping/pong) that only prove the client is alive.
    Alive,
}

/// Parses one frame into a client message or a precise error.
pub(crate) fn parse_frame(
    frame: Option<Result<Message, axum::Error>>,
    max_size: usize,
) -> Incoming {
    let text = match frame {
        None => return Incoming::Closed { clean: false },
        Some(Err(e)) => {
            let message = e.to_string();
            if message.contains("too long")
                || message.contains("too big")
                || message.contains("Space limit")
            {
                return Incoming::Fatal(Fatal::new(
                    ErrorCode::MessageTooLarge,
                    format!("messages are limited to {max_size} bytes"),
                ));
            }
            debug!(error = %message, "websocket read failed");
            return Incoming::Closed { clean: false };
        }
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Binary(_))) => {
            return Incoming::Mistake(
                ErrorCode::BadJson,
                "binary frames are not part of the protocol; send JSON text".into(),
            );
        }
        // A goodbye, unless the client says it is coming back (`resume`).
        Some(Ok(Message::Close(frame))) => {
            let coming_back = frame.is_some_and(|f| f.code == CLOSE_COMING_BACK);
            return Incoming::Closed {
                clean: !coming_back,
            };
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Incoming::Alive,
    };
    let value: serde_json::Value = match serde_json::from_str(text.as_str()) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Mistake(
                ErrorCode::BadJson,
                format!("the message is not valid JSON: {e}"),
            );
        }
    };
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Incoming::Mistake(
            ErrorCode::InvalidMessage,
            "every message needs a string \"type\" field".into(),
        );
    };
    if !CLIENT_TYPES.contains(&kind) {
        let kind: String = kind.chars().take(40).collect();
        return Incoming::Mistake(
            ErrorCode::UnknownType,
            format!("unknown message type {kind:?}; see docs/signaling.md for the list"),
        );
    }
    let kind = kind.to_owned();
    match serde_json::from_value::<ClientMessage>(value) {
        Ok(m) => Incoming::Message(m),
        Err(e) => Incoming::Mistake(
            ErrorCode::InvalidMessage,
            format!("the {kind:?} message has wrong or missing fields: {e}"),
        ),
    }
}

impl Fatal {
    pub(crate) fn code_str(&self) -> &'static str {
        match self.code {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::WrongRoom => "wrong_room",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::Internal => "internal",
            _ => "error",
        }
    }
}

/// What to do with a joined client's message.
pub(crate) enum Action {
    /// Pass it to the room.
    Room(SessionCommand),
    /// Answer the client at once; the room need not hear of it.
    Reply(ServerMessage),
    /// End the session.
    Leave(LeaveReason),
}

/// What a joined client's message asks of its room, or the reply it gets at once instead.
pub(crate) fn action(message: ClientMessage) -> Action {
    use protocol::Target;
    let command = match message {
        ClientMessage::Join { .. } => {
            return Action::Reply(ServerMessage::Error {
                code: ErrorCode::AlreadyJoined,
                message: "this connection has already joined a room".into(),
            });
        }
        ClientMessage::Ping { ts } => {
            return Action::Reply(ServerMessage::Pong { ts });
        }
        ClientMessage::Leave => {
            return Action::Leave(LeaveReason::Left);
        }
        ClientMessage::Offer {
            target: Target::Publisher,
            sdp,
            sources,
        } => SessionCommand::PublisherOffer { sdp, sources },
        ClientMessage::Answer {
            target: Target::Subscriber,
            sdp,
        } => SessionCommand::SubscriberAnswer(sdp),
        ClientMessage::Offer { .. } | ClientMessage::Answer { .. } => {
            return Action::Reply(ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                message: "offers go on the publisher connection and answers on the \
                              subscriber connection"
                    .into(),
            });
        }
        ClientMessage::Candidate { target, candidate } => {
            SessionCommand::Candidate(target, candidate)
        }
        ClientMessage::Mute { kind, muted } => SessionCommand::Mute(kind, muted),
        ClientMessage::TrackSettings(settings) => SessionCommand::TrackSettings(settings),
        ClientMessage::RestartIce {
            target: Target::Subscriber,
        } => SessionCommand::RestartIce,
        ClientMessage::RestartIce {
            target: Target::Publisher,
        } => {
            return Action::Reply(ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                message: "the publisher connection restarts ICE with the client's own offer \
                          (restartIce() or createOffer({iceRestart: true})); restartIce is for \
                          the subscriber connection"
                    .into(),
            });
        }
        ClientMessage::Resume { .. } => {
            return Action::Reply(ServerMessage::Error {
                code: ErrorCode::AlreadyJoined,
                message: "this connection already holds a session; resume on a new connection"
                    .into(),
            });
        }
    };
    Action::Room(command)
}
