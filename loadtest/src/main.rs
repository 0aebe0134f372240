//! `loadtest`: runs one load scenario against a Switchyard (or Janus) server and reports what
//! the simulated participants saw and what the server spent. It never signals the process named by
//! `--server-pid`: it only reads its usage from `/proc`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use loadtest::run::run;
use loadtest::scenario::{Credentials, Scenario, Target};
use loadtest::tiles::parse_tiles;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Server {
    Switchyard,
    Janus,
}

#[derive(Parser, Debug)]
#[command(about = "Simulated participants that load a Switchyard (or Janus) server")]
struct Args {
    /// Server URL: Switchyard's HTTP address, or Janus's HTTP API (http://127.0.0.1:8088/janus).
    /// Several Switchyard nodes of one cluster (repeat, or separate with commas): participants
    /// join at each in turn, and joins are redirected to their room's node.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    url: Vec<String>,
    /// Which kind of server `--url` is.
    #[arg(long, value_enum, default_value = "switchyard")]
    server: Server,
    /// API key to mint join tokens with (omit for a dev-mode server).
    #[arg(long, env = "SWITCHYARD_API_KEY", requires = "api_secret")]
    api_key: Option<String>,
    /// API secret to mint join tokens with.
    #[arg(
        long,
        env = "SWITCHYARD_API_SECRET",
        hide_env_values = true,
        requires = "api_key"
    )]
    api_secret: Option<String>,
    /// Use this join token for everyone instead of minting (for checking a token).
    #[arg(long, conflicts_with_all = ["api_key", "api_secret"])]
    token: Option<String>,
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    rooms: u32,
    /// Rooms are named PREFIX-0, PREFIX-1, ... (several runs against one server at once need
    /// different prefixes, or their participants meet in the same rooms).
    #[arg(long, default_value = "load")]
    room_prefix: String,
    /// Publishers per room (they also receive everyone else); 0 for idle participants who
    /// publish nothing (what a connected, idle participant costs the server).
    #[arg(long, default_value_t = 2)]
    publishers: u32,
    /// Receive-only participants per room.
    #[arg(long, default_value_t = 0)]
    subscribers: u32,
    /// Publish audio only.
    #[arg(long)]
    audio_only: bool,
    /// Video bitrate, kbit/s (a 640x360 clip is encoded at this rate) [default: 500].
    #[arg(long)]
    video_kbps: Option<u32>,
    /// Publish video as three simulcast layers, rids q, h, f: 320x180 at 150, 640x360 at 500
    /// and 1280x720 at 1500 kbit/s (what the web demo asks of Chromium), instead of one stream.
    #[arg(long)]
    simulcast: bool,
    /// Receivers' video tile sizes, WIDTHxHEIGHT, comma-separated (like
    /// 320x180,640x360,1280x720): receivers take them in turn and send them as `trackSettings`
    /// for every video track they get. Without it they send none.
    #[arg(long)]
    tiles: Option<String>,
    /// Measured seconds, after everyone has joined.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Participants joining per second.
    #[arg(long, default_value_t = 10.0)]
    ramp: f64,
    /// The server's process id, for its CPU time and memory (from /proc); several,
    /// comma-separated, for a cluster's nodes: their CPU times and peak memory add up.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw latency and bitrate over time to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Where the encoded clip is cached.
    #[arg(long, default_value = "target/loadtest-cache")]
    cache: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "warn,rtc=error,rtc_dtls=error,rtc_ice=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.simulcast && args.video_kbps.is_some() {
        eprintln!("loadtest: --simulcast sends its own layer bitrates: drop --video-kbps");
        return ExitCode::FAILURE;
    }
    let tiles = match args.tiles.as_deref().map(parse_tiles).transpose() {
        Ok(tiles) => tiles.unwrap_or_default(),
        Err(error) => {
            eprintln!("loadtest: {error}");
            return ExitCode::FAILURE;
        }
    };
    let target = match args.server {
        Server::Switchyard => Target::Switchyard {
            urls: args.url.clone(),
            credentials: match (args.token, args.api_key, args.api_secret) {
                (Some(token), _, _) => Credentials::Fixed(token),
                (None, Some(api_key), Some(api_secret)) => Credentials::Keys {
                    api_key,
                    api_secret,
                },
                _ => Credentials::DevTokens,
            },
        },
        Server::Janus => Target::Janus {
            url: args.url.first().cloned().unwrap_or_default(),
        },
    };
    let scenario = Scenario {
        target,
        rooms: args.rooms,
        room_prefix: args.room_prefix,
        publishers: args.publishers,
        subscribers: args.subscribers,
        video: !args.audio_only,
        video_kbps: args.video_kbps.unwrap_or(500),
        simulcast: args.simulcast,
        tiles,
        duration: Duration::from_secs(args.duration),
        ramp_per_second: args.ramp,
        server_pids: args.server_pid,
        status_line: std::io::stderr().is_terminal()
            || std::env::var_os("LOADTEST_STATUS").is_some(),
    };
    let report = match run(scenario, &args.cache).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("loadtest: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.plot
        && let Err(e) = std::fs::write(path, report.svg())
    {
        eprintln!("loadtest: cannot write the plot to {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("loadtest: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    ExitCode::SUCCESS
}
