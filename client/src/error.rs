//! The client's failures ([`ClientError`]); never produces them itself.

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the signaling server at {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("WebRTC engine: {0}")]
    Engine(#[from] rtc::shared::error::Error),
    #[error("bad simulcast publication: {0}")]
    Simulcast(&'static str),
    #[error("the client task has stopped")]
    Stopped,
}
