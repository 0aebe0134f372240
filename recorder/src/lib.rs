//! Switchyard's recording and broadcast sidecar. It joins a room through the public signaling
//! protocol as a hidden participant (a token with the `recorder` grant), receives every track,
//! and writes an HLS recording: a grid of everyone's camera (H.264) and a mix of everyone's
//! microphone (AAC) in fMP4 segments under one folder; or, broadcasting, the room's
//! adaptive-bitrate ladder as fragmented MP4 parts for the server to serve ([`ladder`]).
//!
//! The recorder never encodes or decodes video itself: ffmpeg decodes each participant's
//! video ([`decoder`]) and encodes the composed canvas ([`encoder`]); libopus (the `opus`
//! crate) decodes the audio ([`audio`]). The main server never links a codec library: it only
//! starts this program.

pub mod audio;
pub mod compositor;
pub mod decoder;
pub mod encoder;
pub mod fmp4;
pub mod frames;
pub mod ladder;
pub mod session;

pub use session::{Destination, RecordError, Recording, RecordingOptions, find_program};
