//! What one run is asked to do ([`Scenario`]): the server it targets, with how to get tokens,
//! and the room sizes, media (simulcast or not), receivers' tiles, duration and ramp. Plain data: never runs anything.

use std::time::Duration;

use crate::tiles::TileSize;

/// Which server the participants talk to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Switchyard server (`http://host:port`), or several nodes of one cluster (each
    /// participant joins at the next in turn), with how to get join tokens.
    Switchyard {
        urls: Vec<String>,
        credentials: Credentials,
    },
    /// A Janus server's HTTP API (`http://host:8088/janus`), reached through a local bridge
    /// that speaks our signaling protocol.
    Janus { url: String },
}

#[derive(Debug, Clone)]
pub enum Credentials {
    /// Mint tokens locally with the server's API key and secret.
    Keys { api_key: String, api_secret: String },
    /// Ask a dev-mode server for tokens (`/api/dev-token`).
    DevTokens,
    /// One token for everyone (tests of refusal; a real server refuses duplicate identities).
    Fixed(String),
}

/// A scenario, as the command line describes it.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub target: Target,
    pub rooms: u32,
    /// Rooms are named `{room_prefix}-{i}`.
    pub room_prefix: String,
    pub publishers: u32,
    pub subscribers: u32,
    pub video: bool,
    /// Single-layer video bitrate (unused with simulcast).
    pub video_kbps: u32,
    /// Publish video as three simulcast layers (`q`, `h`, `f`).
    pub simulcast: bool,
    /// Receivers' tile sizes, taken in turn and reported as `trackSettings` (empty: none sent).
    pub tiles: Vec<TileSize>,
    pub duration: Duration,
    /// Participants joining per second.
    pub ramp_per_second: f64,
    /// The server's processes (a cluster's nodes), for their CPU time and memory.
    pub server_pids: Vec<u32>,
    /// Draw the live status line.
    pub status_line: bool,
}

impl Scenario {
    pub fn participants(&self) -> u32 {
        self.rooms * (self.publishers + self.subscribers)
    }
}
