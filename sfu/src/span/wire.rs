//! What nodes say to each other about a room they both serve part of: the frames carried over
//! a node link. Every frame starts with its kind and the room's name; then
//! - `Control`: a JSON [`Control`] message (who is here, which tracks exist, which layers a node
//!   needs, keyframe requests, goodbye);
//! - `Media`: the track id, the simulcast layer, and the publisher's RTP packet as the origin
//!   node received it (header extensions included, so the audio level travels with it);
//! - `Data`: a data-channel message as the origin node delivers it (its header names the real
//!   sender), and whether it goes on the reliable channel.
//!
//! Decoding never panics and never trusts a length it has not checked. Nothing here does I/O.

use bytes::{BufMut, Bytes, BytesMut};
use protocol::{Layer, LeaveReason, TrackInfo};
use serde::{Deserialize, Serialize};

const CONTROL: u8 = 1;
const MEDIA: u8 = 2;
const DATA: u8 = 3;

/// A control message between two nodes of one room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Control {
    /// "I serve a part of this room": the receiver adds the sender as a peer of the room and
    /// sends it its participants and tracks (and, with `reply`, a hello of its own).
    /// `participants` are the ids of every participant the sender serves now: the receiver
    /// forgets any other it holds from the sender (a `left` the link lost).
    Hello {
        reply: bool,
        #[serde(default)]
        participants: Vec<String>,
    },
    /// A participant of the sender's part.
    Joined {
        id: String,
        identity: String,
        name: String,
    },
    Left {
        id: String,
        reason: LeaveReason,
    },
    /// A track a participant of the sender's part publishes (again when it changed: a new
    /// simulcast layer).
    Published {
        owner: String,
        track: TrackInfo,
        codec: Codec,
        /// The publisher's id of the RFC 6464 audio level extension in the packets.
        audio_level_id: Option<u8>,
        /// The SSRC of each layer that arrives (by [`Layer::index`]).
        ssrcs: [Option<u32>; 3],
    },
    Unpublished {
        track: String,
    },
    Muted {
        track: String,
        muted: bool,
    },
    /// The layers of the receiver's track the sender's subscribers need (none: stop sending).
    Want {
        track: String,
        layers: [bool; 3],
    },
    /// The sender's subscribers need a keyframe on these layers.
    Keyframe {
        track: String,
        layers: [bool; 3],
    },
    /// The sender no longer serves this room.
    Bye,
    /// An admin closed the room: every node closes its part.
    Close,
}

/// A track's codec, as the subscriber side needs it to negotiate down-tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Codec {
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
    /// RTCP feedback (type, parameter).
    pub feedback: Vec<(String, String)>,
}

impl Codec {
    pub fn from_rtc(codec: &rtc::rtp_transceiver::rtp_sender::RTCRtpCodec) -> Self {
        Codec {
            mime_type: codec.mime_type.clone(),
            clock_rate: codec.clock_rate,
            channels: codec.channels,
            fmtp: codec.sdp_fmtp_line.clone(),
            feedback: codec
                .rtcp_feedback
                .iter()
                .map(|f| (f.typ.clone(), f.parameter.clone()))
                .collect(),
        }
    }

    pub fn to_rtc(&self) -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
            mime_type: self.mime_type.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
            sdp_fmtp_line: self.fmtp.clone(),
            rtcp_feedback: self
                .feedback
                .iter()
                .map(
                    |(typ, parameter)| rtc::rtp_transceiver::rtp_sender::RTCPFeedback {
                        typ: typ.clone(),
                        parameter: parameter.clone(),
                    },
                )
                .collect(),
        }
    }
}

/// One decoded frame (borrowing the frame's bytes).
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    Control(Control),
    Media {
        track: &'a str,
        layer: Layer,
        rtp: Bytes,
    },
    Data {
        reliable: bool,
        message: Bytes,
    },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum WireError {
    #[error("the frame is cut short")]
    Short,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("the room name is not UTF-8")]
    Room,
    #[error("bad control message: {0}")]
    Control(String),
    #[error("bad track id or layer")]
    Media,
}

fn start(kind: u8, room: &str, capacity: usize) -> BytesMut {
    let room = &room.as_bytes()[..room.len().min(255)];
    let mut out = BytesMut::with_capacity(2 + room.len() + capacity);
    out.put_u8(kind);
    out.put_u8(room.len() as u8);
    out.put_slice(room);
    out
}

pub(crate) fn control(room: &str, message: &Control) -> Bytes {
    let json = serde_json::to_vec(message).unwrap_or_default();
    let mut out = start(CONTROL, room, json.len());
    out.put_slice(&json);
    out.freeze()
}

#[cfg(test)]
pub(crate) fn media(room: &str, track: &str, layer: Layer, rtp: &[u8]) -> Bytes {
    media_with(room, track, layer, rtp.len(), |buf| {
        buf.copy_from_slice(rtp);
        true
    })
}

/// A media frame whose `size` bytes of RTP `write` puts in place (one allocation per frame);
/// empty when `write` fails.
pub(crate) fn media_with(
    room: &str,
    track: &str,
    layer: Layer,
    size: usize,
    write: impl FnOnce(&mut [u8]) -> bool,
) -> Bytes {
    let track = &track.as_bytes()[..track.len().min(255)];
    let mut out = start(MEDIA, room, 2 + track.len() + size);
    out.put_u8(track.len() as u8);
    out.put_slice(track);
    out.put_u8(layer.index() as u8);
    let at = out.len();
    out.resize(at + size, 0);
    if !write(&mut out[at..]) {
        return Bytes::new();
    }
    out.freeze()
}

pub(crate) fn data(room: &str, reliable: bool, message: &[u8]) -> Bytes {
    let mut out = start(DATA, room, 1 + message.len());
    out.put_u8(u8::from(reliable));
    out.put_slice(message);
    out.freeze()
}

/// Whether a frame carries media (which may be dropped when its room is busy; control and
/// data frames wait).
pub(crate) fn is_media(frame: &[u8]) -> bool {
    frame.first() == Some(&MEDIA)
}

/// Whether a frame is a greeting (answered with a goodbye when its room is not open here).
pub(crate) fn is_hello(frame: &Bytes) -> bool {
    matches!(decode(frame), Ok(Frame::Control(Control::Hello { .. })))
}

/// The room a frame is about (read before the frame is handed to that room).
pub(crate) fn room_of(frame: &[u8]) -> Result<&str, WireError> {
    let len = *frame.get(1).ok_or(WireError::Short)? as usize;
    let room = frame.get(2..2 + len).ok_or(WireError::Short)?;
    std::str::from_utf8(room).map_err(|_| WireError::Room)
}

/// Reads a frame.
pub(crate) fn decode(frame: &Bytes) -> Result<Frame<'_>, WireError> {
    let kind = *frame.first().ok_or(WireError::Short)?;
    let room_len = *frame.get(1).ok_or(WireError::Short)? as usize;
    let body = 2 + room_len;
    if frame.len() < body {
        return Err(WireError::Short);
    }
    match kind {
        CONTROL => serde_json::from_slice(&frame[body..])
            .map(Frame::Control)
            .map_err(|e| WireError::Control(e.to_string())),
        MEDIA => {
            let track_len = *frame.get(body).ok_or(WireError::Short)? as usize;
            let track = frame
                .get(body + 1..body + 1 + track_len)
                .ok_or(WireError::Short)?;
            let track = std::str::from_utf8(track).map_err(|_| WireError::Media)?;
            let layer = *frame.get(body + 1 + track_len).ok_or(WireError::Short)?;
            let layer = Layer::ALL
                .get(layer as usize)
                .copied()
                .ok_or(WireError::Media)?;
            Ok(Frame::Media {
                track,
                layer,
                rtp: frame.slice(body + 2 + track_len..),
            })
        }
        DATA => {
            let reliable = *frame.get(body).ok_or(WireError::Short)? != 0;
            Ok(Frame::Data {
                reliable,
                message: frame.slice(body + 1..),
            })
        }
        other => Err(WireError::Kind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let hello = control(
            "blue",
            &Control::Hello {
                reply: true,
                participants: Vec::new(),
            },
        );
        assert_eq!(room_of(&hello), Ok("blue"));
        assert!(matches!(
            decode(&hello),
            Ok(Frame::Control(Control::Hello { reply: true, .. }))
        ));
        let m = media("blue", "TR_abc", Layer::H, &[0x80, 96, 0, 1]);
        match decode(&m) {
            Ok(Frame::Media { track, layer, rtp }) => {
                assert_eq!((track, layer), ("TR_abc", Layer::H));
                assert_eq!(&rtp[..], &[0x80, 96, 0, 1]);
            }
            other => panic!("{other:?}"),
        }
        let d = data("blue", true, b"hi");
        assert!(
            matches!(decode(&d), Ok(Frame::Data { reliable: true, message }) if &message[..] == b"hi")
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frames = [
            control(
                "blue",
                &Control::Want {
                    track: "TR_x".into(),
                    layers: [true, false, true],
                },
            ),
            media("blue", "TR_abc", Layer::F, &[1, 2, 3]),
            data("blue", false, b"x"),
        ];
        for frame in frames {
            for cut in 0..frame.len() {
                let short = frame.slice(..cut);
                let _ = room_of(&short);
                let _ = decode(&short);
            }
        }
        assert_eq!(
            decode(&Bytes::from_static(&[9, 0])).err(),
            Some(WireError::Kind(9))
        );
        let bad_layer = Bytes::from_static(&[MEDIA, 0, 1, b'T', 7]);
        assert_eq!(decode(&bad_layer).err(), Some(WireError::Media));
    }
}
