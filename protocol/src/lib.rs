//! The wire contract of Switchyard's signaling WebSocket (`docs/signaling.md`), as serde types.
//!
//! Shared by the server (`signaling`) and the Rust clients (`client`, the load test, the
//! recorder) so that both ends parse exactly the same JSON. This crate holds data only: no I/O,
//! no validation beyond what serde does.

pub mod admin;
pub mod broadcast;
pub mod data;

use serde::{Deserialize, Serialize};

/// Which of a participant's two peer connections a message is about.
///
/// The client offers on `publisher` (its own tracks); the server offers on `subscriber`
/// (everyone else's tracks). Each side only ever answers on the other one, so offers never cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    Publisher,
    Subscriber,
}

/// Media kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrackKind {
    Audio,
    Video,
}

impl std::fmt::Display for TrackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
        })
    }
}

/// An ICE candidate as the browser's `RTCIceCandidateInit` serialises it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// What a track carries: the camera and microphone, or a shared screen and its sound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrackSource {
    #[default]
    Camera,
    Microphone,
    Screen,
    ScreenAudio,
}

impl TrackSource {
    /// The source a track of `kind` has when the client names none.
    pub fn default_for(kind: TrackKind) -> TrackSource {
        match kind {
            TrackKind::Audio => TrackSource::Microphone,
            TrackKind::Video => TrackSource::Camera,
        }
    }

    /// The kind of track this source sends.
    pub fn kind(self) -> TrackKind {
        match self {
            TrackSource::Camera | TrackSource::Screen => TrackKind::Video,
            TrackSource::Microphone | TrackSource::ScreenAudio => TrackKind::Audio,
        }
    }
}

/// One simulcast layer of a video track, by its RTP stream id (`rid`): quarter, half and full
/// resolution. A track sent without simulcast has one layer, `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Q,
    H,
    F,
}

impl Layer {
    /// Every layer, lowest first.
    pub const ALL: [Layer; 3] = [Layer::Q, Layer::H, Layer::F];

    /// The layer a `rid` names (`q`, `h`, `f`; also `0`, `1`, `2` and LiveKit's `l`, `m`).
    pub fn from_rid(rid: &str) -> Option<Layer> {
        match rid {
            "q" | "0" | "l" => Some(Layer::Q),
            "h" | "1" | "m" => Some(Layer::H),
            "f" | "2" => Some(Layer::F),
            _ => None,
        }
    }

    /// 0 for `q`, 1 for `h`, 2 for `f`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The rid the web client gives this layer.
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Q => "q",
            Layer::H => "h",
            Layer::F => "f",
        }
    }
}

/// One published track as other participants see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    pub id: String,
    pub kind: TrackKind,
    pub codec: String,
    pub muted: bool,
    /// Camera, microphone, screen or screen audio.
    #[serde(default)]
    pub source: TrackSource,
    /// The simulcast layers the publisher sends, lowest first (empty: one layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
}

/// How a receiver shows one remote video track (`trackSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackSettings {
    pub track_id: String,
    /// False for a tile that is hidden, off-screen or in a background tab: nothing is sent.
    #[serde(default = "yes")]
    pub visible: bool,
    /// The tile's size in device pixels (0: unknown); no layer larger than needed is sent.
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// The highest layer wanted, whatever the size (a quality choice, or a test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_layer: Option<Layer>,
}

fn yes() -> bool {
    true
}

/// One participant's voice in `speakersChanged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Speaker {
    pub participant_id: String,
    /// Smoothed loudness, 0 (silence) to 1 (full scale).
    pub level: f32,
}

/// The layer chosen for one of a receiver's tracks in `downlinkChanged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackLayer {
    pub track_id: String,
    /// `None`: paused (hidden tile, or no room in the estimate).
    pub layer: Option<Layer>,
}

/// One participant as other participants see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    pub id: String,
    pub identity: String,
    pub name: String,
    pub tracks: Vec<TrackInfo>,
}

/// An entry of the `iceServers` list handed to clients on join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// How a client takes its session back after its WebSocket drops (see `resume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeInfo {
    /// Send it in `resume` on a new connection.
    pub token: String,
    /// Seconds the session waits for that.
    pub window_secs: u64,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    Join {
        room: String,
        token: String,
    },
    Offer {
        target: Target,
        sdp: String,
        /// What each published track is, by the browser's track id (the msid's track id):
        /// `camera`, `microphone`, `screen`, `screenAudio`. Unnamed tracks are camera or
        /// microphone.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        sources: std::collections::BTreeMap<String, TrackSource>,
    },
    Answer {
        target: Target,
        sdp: String,
    },
    Candidate {
        target: Target,
        candidate: Option<IceCandidate>,
    },
    /// How this receiver shows a remote video track: its size and whether it is visible.
    TrackSettings(TrackSettings),
    Mute {
        kind: TrackKind,
        muted: bool,
    },
    Leave,
    Ping {
        #[serde(default)]
        ts: u64,
    },
    /// Instead of `join` on a new connection: take back the session whose WebSocket dropped,
    /// with the `resumeToken` its `joined` carried, within the resume window.
    Resume {
        token: String,
    },
    /// Ask the server to restart ICE on the `subscriber` connection (it sends a new offer).
    /// The publisher connection restarts with the client's own offer.
    RestartIce {
        target: Target,
    },
}

/// Why a participant left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It said `leave` or closed its WebSocket.
    Left,
    /// Its connection went silent (keepalive timeout, ICE failure).
    Disconnected,
    /// An admin removed it.
    Removed,
    /// The same identity joined again from another connection.
    Replaced,
    /// The room was closed.
    RoomClosed,
    /// The server is shutting down.
    ServerShutdown,
}

/// Why the server is closing this client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    ServerShutdown,
    /// The server is draining before a restart: it takes no new joins; try again shortly
    /// (another node, or this one once it is back).
    Draining,
    RoomClosed,
    Removed,
    Replaced,
    Disconnected,
    /// Reserved (a cluster: the room is served by another node now; join again the same way
    /// and you are sent there). Not sent by this release: a room found on two nodes links up.
    Moved,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    #[serde(rename_all = "camelCase")]
    Joined {
        room: String,
        you: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
        ice_servers: Vec<IceServer>,
        /// Lets a client whose WebSocket drops take its session back with `resume`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Box<ResumeInfo>>,
        /// In a cluster: the WebSocket URLs of every live node, where a client whose node
        /// went away joins again (any node places the room anew). Empty on a single server.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
    },
    /// The session was taken back: same participant, same tracks, no renegotiation. What the
    /// room said meanwhile follows.
    #[serde(rename_all = "camelCase")]
    Resumed {
        room: String,
        participant_id: String,
        /// Messages that were waiting for the client and follow this one.
        missed: usize,
    },
    Offer {
        target: Target,
        sdp: String,
    },
    Answer {
        target: Target,
        sdp: String,
    },
    Candidate {
        target: Target,
        candidate: Option<IceCandidate>,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    #[serde(rename_all = "camelCase")]
    ParticipantLeft {
        participant_id: String,
        identity: String,
        reason: LeaveReason,
    },
    #[serde(rename_all = "camelCase")]
    TrackPublished {
        participant_id: String,
        track: TrackInfo,
    },
    #[serde(rename_all = "camelCase")]
    TrackUnpublished {
        participant_id: String,
        track_id: String,
    },
    #[serde(rename_all = "camelCase")]
    TrackMuted {
        participant_id: String,
        track_id: String,
        muted: bool,
    },
    Pong {
        ts: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Closed {
        reason: CloseReason,
    },
    /// Who is speaking now, loudest first (empty: nobody). Sent when it changes.
    SpeakersChanged {
        speakers: Vec<Speaker>,
    },
    /// To a publisher: the simulcast layers of its track that some receiver needs. The others
    /// may be paused (the web client sets `active: false` on those encodings); an empty list
    /// means nobody watches the track.
    #[serde(rename_all = "camelCase")]
    SubscribedLayers {
        track_id: String,
        /// The browser's own id of the track (the msid's track id).
        client_track_id: String,
        layers: Vec<Layer>,
    },
    /// To a receiver: its downlink estimate and the layer chosen for each of its video tracks.
    /// Sent when a choice changes (at most twice a second).
    #[serde(rename_all = "camelCase")]
    DownlinkChanged {
        estimate_bps: u64,
        tracks: Vec<TrackLayer>,
    },
    /// The server is going away (a restart, a deploy): it takes no new joins, and this session
    /// ends with `closed` (`server_shutdown`) in `closesInSecs` seconds at the latest.
    #[serde(rename_all = "camelCase")]
    Draining {
        closes_in_secs: u64,
    },
    /// In a cluster: the room is served by another node. The client sends the same `join`
    /// (same token) to `url`, that node's WebSocket; this connection closes with 4010.
    #[serde(rename_all = "camelCase")]
    Redirect {
        url: String,
        node: String,
    },
    /// In a cluster: the live nodes changed since `joined` (or the last `nodes`); the same
    /// list as `joined.nodes`.
    Nodes {
        nodes: Vec<String>,
    },
}

/// Close code that follows `redirect`.
pub const CLOSE_REDIRECT: u16 = 4010;

/// Typed error codes (see `docs/signaling.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidMessage,
    InvalidSdp,
    InvalidCandidate,
    NotJoined,
    AlreadyJoined,
    PermissionDenied,
    Unauthorized,
    TokenExpired,
    WrongRoom,
    RoomFull,
    MessageTooLarge,
    /// The client sends faster than its budget allows; the message was dropped.
    RateLimited,
    /// `resume` came too late or with an unknown token: send `join` on this connection.
    ResumeFailed,
    /// `trackSettings` named a track this participant does not receive.
    UnknownTrack,
    /// A WHEP viewer asked for a participant who is not in the room or publishes nothing.
    UnknownParticipant,
    Internal,
}

impl ErrorCode {
    /// The WebSocket close code that follows this error, or `None` when the connection stays
    /// open.
    pub fn close_code(self) -> Option<u16> {
        match self {
            ErrorCode::Unauthorized | ErrorCode::TokenExpired => Some(4001),
            ErrorCode::WrongRoom | ErrorCode::RoomFull => Some(4003),
            ErrorCode::MessageTooLarge => Some(1009),
            ErrorCode::Internal => Some(1011),
            _ => None,
        }
    }
}

/// What a token allows its bearer to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grants {
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    pub hidden: bool,
    pub room_admin: bool,
    /// A recording sidecar: hidden, subscribes only, may never publish media or data.
    pub recorder: bool,
}

impl Grants {
    /// The grants the SFU applies: a recorder is hidden and cannot publish, whatever else its
    /// token says.
    pub fn effective(mut self) -> Grants {
        if self.recorder {
            self.hidden = true;
            self.can_publish = false;
            self.can_publish_data = false;
        }
        self
    }
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            hidden: false,
            room_admin: false,
            recorder: false,
        }
    }
}

/// The claims of a Switchyard access token (a JWT signed with HS256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The API key that signed the token.
    pub iss: String,
    /// The participant's identity, unique within a room.
    pub sub: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The room the token admits to; empty for admin-only tokens.
    #[serde(default)]
    pub room: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub grants: Grants,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_parses_from_documented_json() {
        let msg: ClientMessage =
            serde_json::from_str(r#"{"type":"join","room":"demo","token":"t"}"#).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Join {
                room: "demo".into(),
                token: "t".into()
            }
        );
    }

    #[test]
    fn candidate_uses_browser_field_names() {
        let msg: ClientMessage = serde_json::from_str(
            r#"{"type":"candidate","target":"subscriber","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}}"#,
        )
        .unwrap();
        let ClientMessage::Candidate { target, candidate } = msg else {
            panic!("wrong variant")
        };
        assert_eq!(target, Target::Subscriber);
        let c = candidate.unwrap();
        assert_eq!(c.sdp_m_line_index, Some(0));
        assert_eq!(c.username_fragment.as_deref(), Some("u"));
    }

    #[test]
    fn server_messages_use_camel_case_tags() {
        let json = serde_json::to_string(&ServerMessage::ParticipantLeft {
            participant_id: "PA_1".into(),
            identity: "bob".into(),
            reason: LeaveReason::Left,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"type":"participantLeft","participantId":"PA_1","identity":"bob","reason":"left"}"#
        );
        let json = serde_json::to_string(&ServerMessage::Error {
            code: ErrorCode::BadJson,
            message: "m".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"type":"error","code":"bad_json","message":"m"}"#);
    }

    #[test]
    fn recorder_grant_defaults_off_and_hides_without_publishing() {
        let grants: Grants = serde_json::from_str(r#"{"canPublish":true}"#).unwrap();
        assert!(!grants.recorder);
        let grants: Grants =
            serde_json::from_str(r#"{"recorder":true,"canPublish":true,"canPublishData":true}"#)
                .unwrap();
        let effective = grants.effective();
        assert!(effective.recorder && effective.hidden && effective.can_subscribe);
        assert!(!effective.can_publish && !effective.can_publish_data);
    }

    #[test]
    fn fatal_errors_carry_close_codes() {
        assert_eq!(ErrorCode::Unauthorized.close_code(), Some(4001));
        assert_eq!(ErrorCode::WrongRoom.close_code(), Some(4003));
        assert_eq!(ErrorCode::MessageTooLarge.close_code(), Some(1009));
        assert_eq!(ErrorCode::BadJson.close_code(), None);
    }
}
