//! The admin commands' arguments as clap parses them: [`Command`] and its flags. Definitions
//! only: it imports nothing from its siblings and runs nothing. It never checks a URL or a
//! credential: the commands that use them do.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the API commands look for the server unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Longest lifetime `switchyard token` mints (a year).
pub const MAX_TTL_SECS: u64 = 366 * 86_400;

/// The admin commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint an access token with the configured API key and secret; prints only the token.
    #[command(after_help = "Examples:\n  \
        switchyard token --admin\n  \
        switchyard token --identity alice --room demo --name Alice --ttl 600")]
    Token(TokenArgs),
    /// List, inspect, create and close rooms on a running server.
    #[command(after_help = API_HELP)]
    Rooms {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[command(subcommand)]
        action: RoomsCommand,
    },
    /// Remove participants and mute their tracks on a running server.
    #[command(after_help = API_HELP)]
    Participants {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[command(subcommand)]
        action: ParticipantsCommand,
    },
}

const API_HELP: &str = "Without --token, an admin token is minted for the call from the \
                        configured api_key/api_secret (--config, SWITCHYARD_API_KEY/\
                        SWITCHYARD_API_SECRET, --api-key/--api-secret).\n\
                        Against HTTPS: an https --url is checked against the public web roots \
                        plus --ca, or without --ca the server's self-signed certificate \
                        (switchyard-tls/self-signed.pem, or in --tls-dir) when that file is on \
                        this machine; an http --url that redirects to https on the same host \
                        is followed.";

/// Where the API key and secret come from: these flags, else the same flags given before the
/// command (which also read `SWITCHYARD_CONFIG`, `SWITCHYARD_API_KEY` and
/// `SWITCHYARD_API_SECRET`), over the `[auth]` section of the config file.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// TOML configuration file to read api_key and api_secret from (its auth section) [env: SWITCHYARD_CONFIG].
    #[arg(long, short, global = true, display_order = 110)]
    pub config: Option<PathBuf>,
    /// API key [env: SWITCHYARD_API_KEY].
    #[arg(long, global = true, display_order = 111)]
    pub api_key: Option<String>,
    /// API secret [env: SWITCHYARD_API_SECRET].
    #[arg(long, global = true, display_order = 112)]
    pub api_secret: Option<String>,
}

/// `switchyard token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// An admin token (the roomAdmin grant) for the REST API: every room, or only --room.
    #[arg(long)]
    pub admin: bool,
    /// Participant identity [default with --admin: admin].
    #[arg(long, required_unless_present = "admin")]
    pub identity: Option<String>,
    /// Room the token admits to (with --admin: the only room it administers).
    #[arg(long, required_unless_present = "admin")]
    pub room: Option<String>,
    /// Display name [default: the identity].
    #[arg(long)]
    pub name: Option<String>,
    /// Without the canPublish grant.
    #[arg(long)]
    pub no_publish: bool,
    /// Without the canSubscribe grant.
    #[arg(long)]
    pub no_subscribe: bool,
    /// Hidden from the other participants (recorders, bots).
    #[arg(long)]
    pub hidden: bool,
    /// A recording sidecar's token (`switchyard-recorder --token`): hidden, subscribes only.
    #[arg(long, conflicts_with = "admin")]
    pub recorder: bool,
    /// Lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TTL_SECS))]
    pub ttl: u64,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// How the API commands reach the server; accepted before or after the action.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The running server's address, http:// or https:// (a redirect from http to https on
    /// the same host is followed).
    #[arg(long, env = "SWITCHYARD_URL", default_value = DEFAULT_URL, global = true,
          display_order = 100)]
    pub url: String,
    /// PEM certificate to trust besides the public web roots: the server's own (self-signed)
    /// or its private CA's [default: the self-signed certificate in --tls-dir, if there].
    #[arg(
        long,
        env = "SWITCHYARD_CA",
        value_name = "FILE",
        global = true,
        display_order = 103
    )]
    pub ca: Option<PathBuf>,
    /// The server's TLS folder, whose self-signed.pem is trusted when there is no --ca
    /// [env: SWITCHYARD_TLS_DIR] [default: switchyard-tls].
    #[arg(long, value_name = "DIR", global = true, display_order = 104)]
    pub tls_dir: Option<PathBuf>,
    /// Admin token [default: one minted from the configured api_key/api_secret].
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN",
        hide_env_values = true,
        global = true,
        display_order = 101
    )]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true, display_order = 102)]
    pub json: bool,
}

/// `switchyard rooms ...`.
#[derive(Debug, Subcommand)]
pub enum RoomsCommand {
    /// List the open rooms.
    List,
    /// One room in detail: participants, their connections and tracks.
    Show {
        /// Room name.
        room: String,
    },
    /// Create a room with settings (defaults: the server's).
    Create {
        /// Room name: 1 to 64 of A-Z a-z 0-9 . _ -
        room: String,
        /// Most participants in the room (1 to 1000).
        #[arg(long, value_name = "N")]
        max_participants: Option<usize>,
        /// Seconds the room stays open after its last participant left.
        #[arg(long, value_name = "SECS")]
        empty_timeout: Option<u64>,
        /// Video codec publishers may send; repeat or separate with commas [default: any].
        #[arg(long, value_delimiter = ',', value_parser = ["vp8", "vp9", "h264"],
              ignore_case = true)]
        codec: Vec<String>,
    },
    /// Close a room: everyone in it is told and disconnected.
    Close {
        /// Room name.
        room: String,
    },
}

/// `switchyard participants ...`.
#[derive(Debug, Subcommand)]
pub enum ParticipantsCommand {
    /// Disconnect a participant from a room.
    Remove {
        /// Room name.
        room: String,
        /// The participant's identity.
        identity: String,
    },
    /// Mute a participant's published track (or unmute it with --unmute).
    Mute {
        /// Room name.
        room: String,
        /// The participant's identity.
        identity: String,
        /// Track id (`TR_...`, as `rooms show` lists them).
        track: String,
        /// Unmute instead.
        #[arg(long)]
        unmute: bool,
    },
}
