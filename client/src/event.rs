//! What the client observed ([`ClientEvent`]), as handed to the user in order; never acts.

use bytes::Bytes;
use protocol::{ServerMessage, Target, TrackKind};

/// What the client observed.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A signaling message from the server.
    Message(ServerMessage),
    /// The server offered a track (stream id = publisher's participant id).
    TrackOpened {
        participant_id: String,
        track_id: String,
        kind: TrackKind,
        /// The track's negotiated codecs: RTP payload type and MIME type (`video/VP8`, ...);
        /// [`ClientEvent::Rtp::payload_type`] picks one.
        codecs: Vec<(u8, String)>,
    },
    /// One received RTP packet.
    Rtp {
        participant_id: String,
        kind: TrackKind,
        sequence_number: u16,
        timestamp: u32,
        ssrc: u32,
        /// The RTP payload type (its codec is in the track's [`ClientEvent::TrackOpened`]).
        payload_type: u8,
        /// The RTP marker bit (end of a video frame).
        marker: bool,
        payload_len: usize,
        /// The RTP payload, shared with the packet (no copy).
        payload: Bytes,
    },
    /// A peer connection changed state (`connected`, `failed`, ...).
    PeerState { target: Target, state: String },
    /// One of our data channels (`reliable` or `lossy`) is open.
    DataOpen { label: String },
    /// A data-channel message from the SFU: a delivered message or an error frame.
    Data {
        reliable: bool,
        header: serde_json::Value,
        payload: Vec<u8>,
    },
    /// The SFU asked for a keyframe on one of our published streams (a PLI or FIR for `ssrc`);
    /// its source was told. `layer` is the simulcast layer, `None` for a single-layer track.
    KeyframeRequested {
        ssrc: u32,
        layer: Option<protocol::Layer>,
    },
    /// Raw datagrams were put on the wire (see `Client::send_raw_datagrams`).
    RawDatagramsSent { count: usize },
    /// The WebSocket closed (close code if the server sent one).
    Closed { code: Option<u16>, reason: String },
}
