//! The admin REST API's bodies (`docs/admin-api.md`): what a room reports about itself and
//! what an admin may send. Shared by the server and by clients of the API (the CLI, tests). Data
//! and formatting only: it never does I/O and never reads the clock (callers pass the time).

use serde::{Deserialize, Serialize};

use crate::{Grants, TrackKind};

/// A room's settings, given when it is created through the API (defaults otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSettings {
    pub max_participants: usize,
    pub empty_timeout_seconds: u64,
    /// Video codecs publishers may send (`vp8`, `vp9`, `h264`); empty: any.
    #[serde(default)]
    pub codecs: Vec<String>,
}

/// `POST /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoom {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub name: String,
    /// Visible participants (hidden ones, such as recorders, are not counted).
    pub participant_count: usize,
    /// Participants with at least one published track.
    pub publisher_count: usize,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub age_seconds: u64,
    /// Bits per second received from publishers over the last second.
    pub bitrate_in: u64,
    /// Bits per second forwarded to subscribers over the last second.
    pub bitrate_out: u64,
    pub settings: RoomSettings,
    /// The state of the room's current or most recent recording; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_state: Option<RecordingState>,
    /// In a cluster: the id of the node that serves the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// In a cluster, a room larger than one node: every node serving a part of it (`node`
    /// owns it); empty when one node serves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// `GET /api/rooms/{room}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomDetail {
    #[serde(flatten)]
    pub summary: RoomSummary,
    pub participants: Vec<ParticipantDetail>,
    /// The room's current or most recent recording.
    #[serde(default)]
    pub recording: Option<RecordingInfo>,
    /// The participants speaking now (ids), loudest first.
    #[serde(default)]
    pub speakers: Vec<String>,
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// The sidecar was started and is joining the room.
    Starting,
    /// The sidecar is in the room and the playlist is being written.
    Active,
    /// Asked to stop; the sidecar is finishing the playlist.
    Stopping,
    /// The playlist is finished (`EXT-X-ENDLIST`).
    Complete,
    /// The recording ended abnormally; `reason` says why.
    Failed,
}

impl RecordingState {
    /// Starting, active or stopping: the sidecar may still be running.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            RecordingState::Starting | RecordingState::Active | RecordingState::Stopping
        )
    }

    /// The name used in JSON (`starting`, `active`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Starting => "starting",
            RecordingState::Active => "active",
            RecordingState::Stopping => "stopping",
            RecordingState::Complete => "complete",
            RecordingState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RecordingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recording of a room as HLS (`POST /api/rooms/{room}/recording`, `GET /api/recordings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// Random and unguessable: it is also the capability in the playlist's URL.
    pub id: String,
    pub room: String,
    pub state: RecordingState,
    /// Why it failed (`failed` only).
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC; set once complete or failed.
    #[serde(default)]
    pub stopped_at: Option<String>,
    /// Relative URL of the HLS playlist: `/recordings/{id}/playlist.m3u8`.
    pub playlist_url: String,
}

/// `POST /api/rooms/{room}/broadcast`'s body (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StartBroadcast {
    /// Anyone may watch without a token; otherwise viewers need a join token for the room.
    pub public: bool,
    pub layout: BroadcastLayout,
}

/// What the broadcast's picture shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BroadcastLayout {
    /// Everyone in a grid.
    #[default]
    Grid,
    /// The active speaker fills the picture; the others in a row of thumbnails.
    Speaker,
}

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BroadcastState {
    Starting,
    Live,
    Stopping,
    Ended,
    Failed,
}

/// A room's broadcast (`POST`, `GET`, `DELETE /api/rooms/{room}/broadcast`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastInfo {
    /// Random; part of every media URL of this broadcast.
    pub id: String,
    pub room: String,
    pub state: BroadcastState,
    pub public: bool,
    pub layout: BroadcastLayout,
    /// Why it failed (`failed` only).
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(default)]
    pub stopped_at: Option<String>,
    /// The watch page: `/watch/{room}`.
    pub watch_url: String,
    /// The multivariant playlist: `/watch/{room}/live.m3u8`.
    pub playlist_url: String,
    /// Once ended: CPU time of the sidecar and its ffmpeg processes, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Once ended: their largest resident memory together, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// `GET /api/recordings`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingList {
    pub recordings: Vec<RecordingInfo>,
}

/// One participant in a room's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantDetail {
    pub id: String,
    pub identity: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub joined_at: String,
    /// `connecting`, `connected` or `disconnected`: the publisher connection's state.
    pub state: String,
    /// `host`, `srflx`, `prflx` or `relay`: the client's side of the selected pair.
    pub candidate_type: Option<String>,
    pub rtt_ms: Option<f64>,
    pub grants: Grants,
    pub tracks: Vec<TrackDetail>,
    /// Ids of the tracks it receives.
    pub subscriptions: Vec<String>,
    /// In a cluster, a room larger than one node: the node serving this participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One published track in a room's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackDetail {
    pub id: String,
    pub kind: TrackKind,
    pub codec: String,
    pub muted: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    /// Bits per second received over the last second.
    pub bitrate: u64,
    pub packets: u64,
    pub packets_lost: u64,
    /// Lost over expected, 0 to 1, since the track started.
    pub loss_rate: f64,
    pub jitter_ms: f64,
}

/// `POST /api/rooms/{room}/participants/{identity}/tracks/{track}/mute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteTrack {
    pub muted: bool,
}

/// `PATCH /api/rooms/{room}/participants/{identity}/permissions`: the grants to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePermissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
}

/// `POST /api/rooms/{room}/data`: exactly one of `text` and `base64`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendData {
    #[serde(default)]
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Identities to deliver to; empty: everyone in the room.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintToken {
    pub identity: String,
    #[serde(default)]
    pub name: String,
    /// Empty: an admin-only token (with `roomAdmin`, for every room).
    #[serde(default)]
    pub room: String,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// The answer to `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedToken {
    pub token: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// Every error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ApiErrorBody,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
}

/// Formats Unix seconds as RFC 3339 in UTC (`2026-11-27T22:00:00Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rest = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_816_800), "2026-11-27T22:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn room_detail_flattens_the_summary() {
        let detail = RoomDetail {
            summary: RoomSummary {
                name: "demo".into(),
                participant_count: 0,
                publisher_count: 0,
                created_at: rfc3339(0),
                age_seconds: 1,
                bitrate_in: 0,
                bitrate_out: 0,
                settings: RoomSettings {
                    max_participants: 50,
                    empty_timeout_seconds: 20,
                    codecs: vec![],
                },
                recording_state: None,
                nodes: Vec::new(),
                node: None,
            },
            participants: vec![],
            recording: None,
            speakers: vec![],
        };
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["name"], "demo");
        assert_eq!(json["settings"]["maxParticipants"], 50);
        assert!(json.get("recordingState").is_none());
        assert!(json["recording"].is_null());
        let back: RoomDetail = serde_json::from_value(json).unwrap();
        assert_eq!(back, detail);
    }

    #[test]
    fn recording_info_uses_camel_case_and_snake_case_states() {
        let info = RecordingInfo {
            id: "abc".into(),
            room: "demo".into(),
            state: RecordingState::Complete,
            reason: None,
            started_at: rfc3339(0),
            stopped_at: Some(rfc3339(60)),
            playlist_url: "/recordings/abc/playlist.m3u8".into(),
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["state"], "complete");
        assert_eq!(json["startedAt"], "1970-01-01T00:00:00Z");
        assert_eq!(json["stoppedAt"], "1970-01-01T00:01:00Z");
        assert_eq!(json["playlistUrl"], "/recordings/abc/playlist.m3u8");
        let back: RecordingInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
        assert!(RecordingState::Stopping.is_running());
        assert!(!RecordingState::Failed.is_running());
    }
}
