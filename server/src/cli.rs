//! The admin CLI, in the manner of LiveKit's `lk`: subcommands of the `switchyard` binary.
//!
//! - `switchyard token` mints an access token locally with the API key and secret resolved as
//!   the server resolves them (`--config`, `SWITCHYARD_API_KEY`/`SWITCHYARD_API_SECRET`,
//!   `--api-key`/`--api-secret`) and prints only the token, so `$(switchyard token --admin)`
//!   works.
//! - `switchyard rooms ...` and `switchyard participants ...` call the admin REST API
//!   (`docs/admin-api.md`) of a running server at `--url` with a bearer admin token
//!   (`--token`, or one minted here for the call) and print tables, or with `--json` the
//!   server's JSON as it came.
//!
//! Every failure is one line on stderr (the server's own `error.message` for API errors) and
//! exit status 1.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use protocol::Grants;
use protocol::admin::{
    ApiError, CreateRoom, MuteTrack, RoomDetail, RoomList, RoomSettings, RoomSummary, TrackDetail,
};
use reqwest::{Method, Url};
use serde::Serialize;
use signaling::TokenAuthority;

use crate::config::{Cli, load_credentials};

/// Where the API commands look for the server unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Longest lifetime `switchyard token` mints (a year).
pub const MAX_TTL_SECS: u64 = 366 * 86_400;
/// Lifetime of the admin token minted for one API call.
const CALL_TOKEN_TTL_SECS: u64 = 300;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
                        SWITCHYARD_API_SECRET, --api-key/--api-secret).";

/// Where the API key and secret come from: these flags, else the same flags given before the
/// command (which also read `SWITCHYARD_CONFIG`, `SWITCHYARD_API_KEY` and
/// `SWITCHYARD_API_SECRET`), over the `[auth]` section of the config file.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// TOML configuration file to read [auth] api_key/api_secret from [env: SWITCHYARD_CONFIG].
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
    /// The running server's HTTP address.
    #[arg(long, env = "SWITCHYARD_URL", default_value = DEFAULT_URL, global = true,
          display_order = 100)]
    pub url: String,
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

/// Runs one admin command; failures are printed on stderr and give exit status 1.
pub async fn run(cli: &Cli, command: Command) -> ExitCode {
    match execute(cli, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: &Cli, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Token(args) => {
            let token = mint(&authority(cli, &args.credentials)?, &args)?;
            print(&format!("{token}\n"))
        }
        Command::Rooms {
            api,
            credentials,
            action,
        } => {
            let api = Api::new(&api, || authority(cli, &credentials))?;
            rooms(&api, action).await
        }
        Command::Participants {
            api,
            credentials,
            action,
        } => {
            let api = Api::new(&api, || authority(cli, &credentials))?;
            participants(&api, action).await
        }
    }
}

/// The token authority of the configured API key and secret, or why there is none.
fn authority(cli: &Cli, credentials: &CredentialArgs) -> anyhow::Result<TokenAuthority> {
    let resolved = load_credentials(
        credentials.config.as_deref().or(cli.config.as_deref()),
        credentials.api_key.clone().or_else(|| cli.api_key.clone()),
        credentials
            .api_secret
            .clone()
            .or_else(|| cli.api_secret.clone()),
    )
    .context("configuration error")?;
    match resolved {
        Some((key, secret)) => Ok(TokenAuthority::new(&key, &secret)),
        None => bail!(
            "no api_key/api_secret configured. A server without them (dev mode) makes up a \
             new key and secret every time it starts, so a token minted here would not be \
             accepted. Set api_key and api_secret for the server and for this command \
             (--api-key/--api-secret, SWITCHYARD_API_KEY/SWITCHYARD_API_SECRET, or [auth] in \
             the --config file), or, against a dev-mode server, fetch an admin token from its \
             GET /api/dev-admin-token and pass it with --token or SWITCHYARD_TOKEN"
        ),
    }
}

fn mint(authority: &TokenAuthority, args: &TokenArgs) -> anyhow::Result<String> {
    let identity = match (&args.identity, args.admin) {
        (Some(identity), _) => identity.clone(),
        (None, true) => "admin".to_owned(),
        (None, false) => bail!("--identity is required (or --admin for an admin token)"),
    };
    if identity.is_empty() || identity.chars().count() > 128 {
        bail!("--identity must be 1 to 128 characters");
    }
    let room = args.room.clone().unwrap_or_default();
    if !(args.admin && room.is_empty()) {
        sfu::RoomId::new(&room).map_err(|e| anyhow::anyhow!("--room: {e}"))?;
    }
    let name = args.name.clone().unwrap_or_else(|| identity.clone());
    let grants = Grants {
        can_publish: !args.no_publish,
        can_subscribe: !args.no_subscribe,
        can_publish_data: true,
        hidden: args.hidden || args.recorder,
        room_admin: args.admin,
        recorder: args.recorder,
    };
    Ok(authority.mint(&identity, &name, &room, grants, args.ttl))
}

async fn rooms(api: &Api, action: RoomsCommand) -> anyhow::Result<()> {
    match action {
        RoomsCommand::List => {
            let text = api.call(Method::GET, &["rooms"], None::<&()>).await?;
            if api.json {
                return print_json(&text);
            }
            let list: RoomList = api.parse(&text)?;
            print(&rooms_table(&list.rooms))
        }
        RoomsCommand::Show { room } => {
            let text = api
                .call(Method::GET, &["rooms", &room], None::<&()>)
                .await?;
            if api.json {
                return print_json(&text);
            }
            let detail: RoomDetail = api.parse(&text)?;
            print(&room_detail(&detail))
        }
        RoomsCommand::Create {
            room,
            max_participants,
            empty_timeout,
            codec,
        } => {
            let body = CreateRoom {
                name: room,
                max_participants,
                empty_timeout_seconds: empty_timeout,
                codecs: codec.iter().map(|c| c.to_ascii_lowercase()).collect(),
            };
            let text = api.call(Method::POST, &["rooms"], Some(&body)).await?;
            if api.json {
                return print_json(&text);
            }
            let summary: RoomSummary = api.parse(&text)?;
            print(&format!(
                "Created room {}: {}.\n",
                clean(&summary.name),
                settings_text(&summary.settings)
            ))
        }
        RoomsCommand::Close { room } => {
            let text = api
                .call(Method::DELETE, &["rooms", &room], None::<&()>)
                .await?;
            if api.json {
                return print_json(&text);
            }
            print(&format!("Closed room {}.\n", clean(&room)))
        }
    }
}

async fn participants(api: &Api, action: ParticipantsCommand) -> anyhow::Result<()> {
    match action {
        ParticipantsCommand::Remove { room, identity } => {
            let path = ["rooms", &room, "participants", &identity];
            let text = api.call(Method::DELETE, &path, None::<&()>).await?;
            if api.json {
                return print_json(&text);
            }
            print(&format!(
                "Removed {} from room {}.\n",
                clean(&identity),
                clean(&room)
            ))
        }
        ParticipantsCommand::Mute {
            room,
            identity,
            track,
            unmute,
        } => {
            let path = [
                "rooms",
                &room,
                "participants",
                &identity,
                "tracks",
                &track,
                "mute",
            ];
            let body = MuteTrack { muted: !unmute };
            let text = api.call(Method::POST, &path, Some(&body)).await?;
            if api.json {
                return print_json(&text);
            }
            let detail: TrackDetail = api.parse(&text)?;
            print(&format!(
                "{} {} track {} of {} in room {}.\n",
                if detail.muted { "Muted" } else { "Unmuted" },
                detail.kind,
                clean(&detail.id),
                clean(&identity),
                clean(&room)
            ))
        }
    }
}

/// A client of one server's admin API.
struct Api {
    client: reqwest::Client,
    /// As the user gave it, for messages.
    shown: String,
    base: Url,
    token: String,
    json: bool,
}

impl Api {
    /// `authority` is asked only when there is no --token.
    fn new(
        args: &ApiArgs,
        authority: impl FnOnce() -> anyhow::Result<TokenAuthority>,
    ) -> anyhow::Result<Api> {
        let shown = args.url.trim().trim_end_matches('/').to_owned();
        let base = Url::parse(&shown).with_context(|| {
            format!(
                "--url {shown:?} is not a URL; give the server's address, such as {DEFAULT_URL}"
            )
        })?;
        match base.scheme() {
            "http" => {}
            "https" => bail!(
                "--url {shown}: this build speaks plain http only; use the server's http:// \
                 address (it serves http on http_bind)"
            ),
            other => bail!("--url {shown}: the scheme must be http, not {other:?}"),
        }
        let token = match &args.token {
            Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
            Some(_) => bail!("--token (or SWITCHYARD_TOKEN) is empty"),
            None => {
                let grants = Grants {
                    room_admin: true,
                    ..Grants::default()
                };
                authority()?.mint(
                    "cli-admin",
                    "Switchyard CLI",
                    "",
                    grants,
                    CALL_TOKEN_TTL_SECS,
                )
            }
        };
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("switchyard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api {
            client,
            shown,
            base,
            token,
            json: args.json,
        })
    }

    /// `/api/` and the segments, each percent-encoded, under the base URL's path.
    fn endpoint(&self, segments: &[&str]) -> anyhow::Result<Url> {
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            bail!("{bad:?} cannot be used as a name in a URL path");
        }
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--url {} cannot take a path", self.shown))?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        Ok(url)
    }

    /// Sends one request; the answer's body on success, the server's message otherwise.
    async fn call<B: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> anyhow::Result<String> {
        let mut request = self
            .client
            .request(method, self.endpoint(segments)?)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => bail!(
                "the Switchyard server at {} did not answer within {} s",
                self.shown,
                REQUEST_TIMEOUT.as_secs()
            ),
            Err(e) => bail!(
                "cannot reach the Switchyard server at {}: {}",
                self.shown,
                root_cause(&e)
            ),
        };
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            anyhow::anyhow!(
                "the answer from the Switchyard server at {} broke off: {}",
                self.shown,
                root_cause(&e)
            )
        })?;
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => bail!("{} ({status})", clean(&error.error.message)),
            Err(_) => bail!(
                "{} answered {status}, not as the Switchyard admin API does; is --url the \
                 server's HTTP address?",
                self.shown
            ),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, text: &str) -> anyhow::Result<T> {
        serde_json::from_str(text).with_context(|| {
            format!(
                "the answer from {} is not what this version of the CLI expects (--json \
                 prints it as it came)",
                self.shown
            )
        })
    }
}

/// The innermost error's message: "Connection refused (os error 111)" rather than the
/// layers of client wrapping around it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// The server's JSON as it came, on a line of its own (nothing for an empty answer).
fn print_json(text: &str) -> anyhow::Result<()> {
    let text = text.trim_end();
    if text.is_empty() {
        return Ok(());
    }
    print(&format!("{text}\n"))
}

/// Names come from participants: control characters (terminal escapes) are not printed.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn rooms_table(rooms: &[RoomSummary]) -> String {
    if rooms.is_empty() {
        return "No rooms are open.\n".into();
    }
    let rows = rooms
        .iter()
        .map(|r| {
            vec![
                clean(&r.name),
                r.participant_count.to_string(),
                r.publisher_count.to_string(),
                age(r.age_seconds),
                kbits(r.bitrate_in),
                kbits(r.bitrate_out),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            ("NAME", Align::Left),
            ("PARTICIPANTS", Align::Right),
            ("PUBLISHERS", Align::Right),
            ("AGE", Align::Right),
            ("IN kbit/s", Align::Right),
            ("OUT kbit/s", Align::Right),
        ],
        &rows,
    )
}

fn room_detail(detail: &RoomDetail) -> String {
    let r = &detail.summary;
    let mut out = format!(
        "Room {}: {} participant{}, {} publishing; open {} (since {})\n\
         Bitrate: {} kbit/s in, {} kbit/s out\n\
         Settings: {}\n\n",
        clean(&r.name),
        r.participant_count,
        if r.participant_count == 1 { "" } else { "s" },
        r.publisher_count,
        age(r.age_seconds),
        clean(&r.created_at),
        kbits(r.bitrate_in),
        kbits(r.bitrate_out),
        settings_text(&r.settings),
    );
    if detail.participants.is_empty() {
        out.push_str("No participants.\n");
        return out;
    }
    let people = detail
        .participants
        .iter()
        .map(|p| {
            let mut name = clean(&p.name);
            if p.grants.hidden {
                name.push_str(" (hidden)");
            }
            vec![
                clean(&p.identity),
                name,
                clean(&p.state),
                p.candidate_type.as_deref().map_or("-".into(), clean),
                p.rtt_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
                p.tracks.len().to_string(),
                p.subscriptions.len().to_string(),
            ]
        })
        .collect::<Vec<_>>();
    out.push_str(&table(
        &[
            ("IDENTITY", Align::Left),
            ("NAME", Align::Left),
            ("STATE", Align::Left),
            ("CANDIDATE", Align::Left),
            ("RTT", Align::Right),
            ("TRACKS", Align::Right),
            ("RECEIVING", Align::Right),
        ],
        &people,
    ));
    let tracks = detail
        .participants
        .iter()
        .flat_map(|p| p.tracks.iter().map(move |t| (p, t)))
        .map(|(p, t)| {
            vec![
                clean(&p.identity),
                clean(&t.id),
                t.kind.to_string(),
                clean(&t.codec),
                resolution(t),
                kbits(t.bitrate),
                format!("{:.1}%", t.loss_rate * 100.0),
                format!("{:.1} ms", t.jitter_ms),
                if t.muted { "yes" } else { "no" }.into(),
            ]
        })
        .collect::<Vec<_>>();
    if tracks.is_empty() {
        out.push_str("\nNo published tracks.\n");
    } else {
        out.push('\n');
        out.push_str(&table(
            &[
                ("PARTICIPANT", Align::Left),
                ("TRACK", Align::Left),
                ("KIND", Align::Left),
                ("CODEC", Align::Left),
                ("RESOLUTION", Align::Right),
                ("kbit/s", Align::Right),
                ("LOSS", Align::Right),
                ("JITTER", Align::Right),
                ("MUTED", Align::Left),
            ],
            &tracks,
        ));
    }
    out
}

fn settings_text(s: &RoomSettings) -> String {
    let codecs = if s.codecs.is_empty() {
        "any".to_owned()
    } else {
        clean(&s.codecs.join(", "))
    };
    format!(
        "at most {} participants, closes {} s after the last one leaves, codecs: {codecs}",
        s.max_participants, s.empty_timeout_seconds
    )
}

/// `640x480@30`, `640x480`, or `-` when the bitstream has not told.
fn resolution(t: &TrackDetail) -> String {
    match (t.width, t.height, t.fps) {
        (Some(w), Some(h), Some(fps)) => format!("{w}x{h}@{fps:.0}"),
        (Some(w), Some(h), None) => format!("{w}x{h}"),
        _ => "-".into(),
    }
}

/// Bits per second as whole kbit/s.
fn kbits(bits_per_second: u64) -> String {
    (bits_per_second.saturating_add(500) / 1000).to_string()
}

/// `42s`, `5m 02s`, `3h 05m`, `2d 03h`.
fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

/// Columns padded to their widest cell, two spaces apart.
fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), cell)) in columns.iter().zip(row).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_bitrates_read_well() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(302), "5m 02s");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(age(2 * 86_400 + 3 * 3600), "2d 03h");
        assert_eq!(kbits(1_350_000), "1350");
        assert_eq!(kbits(499), "0");
        assert_eq!(kbits(u64::MAX), (u64::MAX / 1000).to_string());
    }

    #[test]
    fn tables_align_and_names_are_cleaned() {
        let text = table(
            &[("NAME", Align::Left), ("N", Align::Right)],
            &[
                vec!["demo".into(), "12".into()],
                vec![clean("a\u{1b}[2J"), "3".into()],
            ],
        );
        assert_eq!(text, "NAME    N\ndemo   12\na\u{fffd}[2J   3\n");
    }

    #[test]
    fn a_room_in_detail_lists_participants_and_tracks() {
        let detail: RoomDetail = serde_json::from_value(serde_json::json!({
            "name": "demo", "participantCount": 1, "publisherCount": 1,
            "createdAt": "2026-11-27T22:00:00Z", "ageSeconds": 3725,
            "bitrateIn": 1_350_000, "bitrateOut": 1_340_000,
            "settings": {"maxParticipants": 50, "emptyTimeoutSeconds": 20, "codecs": []},
            "participants": [{
                "id": "PA_x7k2", "identity": "alice", "name": "Alice",
                "joinedAt": "2026-11-27T22:00:01Z", "state": "connected",
                "candidateType": "relay", "rttMs": 0.44,
                "grants": {"canPublish": true, "canSubscribe": true, "canPublishData": true,
                           "hidden": false, "roomAdmin": false},
                "tracks": [
                    {"id": "TR_5d0c", "kind": "video", "codec": "VP8", "muted": false,
                     "width": 640, "height": 480, "fps": 30.0, "bitrate": 650_000,
                     "packets": 1234, "packetsLost": 12, "lossRate": 0.0097, "jitterMs": 3.12},
                    {"id": "TR_a1", "kind": "audio", "codec": "opus", "muted": true,
                     "width": null, "height": null, "fps": null, "bitrate": 32_000,
                     "packets": 99, "packetsLost": 0, "lossRate": 0.0, "jitterMs": 1.0}],
                "subscriptions": ["TR_99aa"]}]
        }))
        .unwrap();
        let text = room_detail(&detail);
        for expected in [
            "Room demo: 1 participant, 1 publishing; open 1h 02m",
            "Bitrate: 1350 kbit/s in, 1340 kbit/s out",
            "Settings: at most 50 participants",
            "alice     Alice  connected  relay      0.4 ms       2          1",
            "alice        TR_5d0c  video  VP8    640x480@30     650  1.0%  3.1 ms  no",
            "alice        TR_a1    audio  opus            -      32  0.0%  1.0 ms  yes",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }

    #[test]
    fn endpoints_encode_their_segments() {
        let api = Api {
            client: reqwest::Client::new(),
            shown: "http://h:1/base".into(),
            base: Url::parse("http://h:1/base/?q=1").unwrap(),
            token: String::new(),
            json: false,
        };
        assert_eq!(
            api.endpoint(&["rooms", "a b/c"]).unwrap().as_str(),
            "http://h:1/base/api/rooms/a%20b%2Fc"
        );
        assert!(api.endpoint(&["rooms", ".."]).is_err());
    }
}
