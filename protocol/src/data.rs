//! Data-channel framing: how a message travels from one participant through the SFU to others.
//!
//! Every data-channel message is binary: a 2-byte big-endian header length, that many bytes of
//! JSON header, then the payload. Clients address messages with [`SendHeader`]; the SFU
//! delivers them with a [`DeliveredHeader`] it writes itself (so the sender cannot be forged),
//! and reports failures with an [`ErrorHeader`] frame and an empty payload.

use serde::{Deserialize, Serialize};

/// Largest header accepted.
pub const MAX_HEADER_LEN: usize = 4096;

/// The header a client puts on a message it sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendHeader {
    /// Identities to deliver to; empty means everyone else in the room.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Free-form label for the application (`chat`, `file`, ...), at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The header on a message the SFU delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredHeader {
    /// The sender's identity, stamped by the SFU.
    pub from: String,
    /// The sender's participant id.
    pub from_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Present when the message was addressed to chosen participants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// Why the SFU refused or could not deliver a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataErrorCode {
    /// The sender's token does not grant canPublishData.
    PermissionDenied,
    /// The header named a sender (`from`/`fromId`): only the SFU writes those.
    ForgedSender,
    /// `to` named someone who is not in the room (the others still get the message).
    UnknownRecipient,
    /// The message is larger than the SFU relays.
    TooLarge,
    /// The frame could not be parsed (length, JSON, or a text message).
    BadFrame,
    /// The recipient has no data channel of that kind open.
    RecipientUnavailable,
    /// The recipient is not reading fast enough: its queue at the SFU is full, so this message
    /// was not delivered to it. Both ends are told; the stream between them has a hole.
    RecipientOverflow,
}

/// The body of an error frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataError {
    pub code: DataErrorCode,
    pub message: String,
    /// The recipient concerned, for errors about one recipient (told to the sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The sender concerned (told to a recipient that missed a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The header of an error frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorHeader {
    pub error: DataError,
}

/// Why a frame could not be split into header and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooShort,
    HeaderTooLong(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooShort => f.write_str("the frame is shorter than its header length says"),
            FrameError::HeaderTooLong(n) => {
                write!(
                    f,
                    "the header is {n} bytes; at most {MAX_HEADER_LEN} are allowed"
                )
            }
        }
    }
}

/// Builds a frame from a header (serialised to JSON) and a payload.
pub fn encode_frame<H: Serialize>(header: &H, payload: &[u8]) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let json = serde_json::to_vec(header).unwrap_or_default();
    let mut frame = Vec::with_capacity(2 + json.len() + payload.len());
    frame.extend_from_slice(&(json.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    frame.extend_from_slice(&json);
    frame.extend_from_slice(payload);
    frame
}

/// Splits a frame into its JSON header bytes and its payload.
pub fn split_frame(frame: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let Some(len) = frame.get(..2) else {
        return Err(FrameError::TooShort);
    };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len > MAX_HEADER_LEN {
        return Err(FrameError::HeaderTooLong(len));
    }
    let header = frame.get(2..2 + len).ok_or(FrameError::TooShort)?;
    Ok((header, &frame[2 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let header = SendHeader {
            to: vec!["bob".into()],
            topic: Some("chat".into()),
        };
        let frame = encode_frame(&header, b"hello");
        let (h, p) = split_frame(&frame).unwrap();
        assert_eq!(serde_json::from_slice::<SendHeader>(h).unwrap(), header);
        assert_eq!(p, b"hello");
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert_eq!(split_frame(&[]), Err(FrameError::TooShort));
        assert_eq!(split_frame(&[0]), Err(FrameError::TooShort));
        assert_eq!(split_frame(&[0, 10, b'{']), Err(FrameError::TooShort));
        assert_eq!(
            split_frame(&[0xff, 0xff]),
            Err(FrameError::HeaderTooLong(65535))
        );
        let (h, p) = split_frame(&[0, 2, b'{', b'}']).unwrap();
        assert_eq!((h, p), (&b"{}"[..], &b""[..]));
    }

    #[test]
    fn unknown_header_fields_are_refused() {
        assert!(serde_json::from_slice::<SendHeader>(br#"{"to":[],"from":"x"}"#).is_err());
    }
}
