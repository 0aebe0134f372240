//! What the `Client` handle asks its background engine to do ([`Command`]); plain
//! data, never executed here.

use protocol::ClientMessage;

use crate::media::MediaSource;
use crate::outgoing::VideoEncodings;

/// One request from the client handle to its engine task.
pub(crate) enum Command {
    Send(ClientMessage),
    SendText(String),
    SendBinary(Vec<u8>),
    Publish {
        audio: Option<Box<dyn MediaSource>>,
        /// One source, or one per simulcast layer; empty for no video.
        video: VideoEncodings,
    },
    OpenData,
    SendData {
        reliable: bool,
        frame: Vec<u8>,
        text: bool,
    },
    PauseData(bool),
    RawDatagrams(Vec<Vec<u8>>),
    Disconnect,
}
