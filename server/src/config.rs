//! The server's one configuration tree: built-in defaults, then an optional TOML file, then
//! environment variables (`SWITCHYARD_*`), then command-line flags. Validated once at start-up
//! with a message that names the setting and says what is allowed. It never binds a socket or
//! writes a file: it only reads the config file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

/// Default log filter: our own info lines, and only errors from the chatty WebRTC internals.
pub const DEFAULT_LOG: &str = "info,rtc_dtls=error,rtc_ice=error,rtc_sctp=warn,rtc=warn";

/// Command-line flags; each can also be set through the environment variable it names.
/// Without a subcommand the binary runs the server; with one it is the admin CLI
/// (the `cli` module).
#[derive(Debug, Parser, Default)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: WebRTC group calls through a selective forwarding unit.\n\
             Starts signaling, the SFU and the web demo with embedded defaults.",
    after_help = "Settings apply in this order: defaults, the --config file, SWITCHYARD_* \
                  environment variables, flags. See switchyard.sample.toml.\n\
                  Without a command, starts the server. The commands mint tokens and manage \
                  a running server (`switchyard rooms list`); `switchyard help COMMAND` \
                  explains each."
)]
pub struct Cli {
    /// Admin command; none: run the server.
    #[command(subcommand)]
    pub command: Option<crate::cli::args::Command>,
    /// TOML configuration file.
    #[arg(long, short, env = "SWITCHYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port for HTTP (web demo, WebSocket signaling, API).
    #[arg(long, env = "SWITCHYARD_HTTP_BIND")]
    pub http_bind: Option<SocketAddr>,
    /// The single UDP port for WebRTC media.
    #[arg(long, env = "SWITCHYARD_RTC_PORT")]
    pub rtc_port: Option<u16>,
    /// IP address announced in ICE candidates (a server behind NAT needs its public IP).
    #[arg(long, env = "SWITCHYARD_ANNOUNCE_IP")]
    pub announce_ip: Option<IpAddr>,
    /// API key that issues access tokens.
    #[arg(long, env = "SWITCHYARD_API_KEY")]
    pub api_key: Option<String>,
    /// API secret that signs access tokens (at least 32 characters). Unset: dev mode.
    #[arg(long, env = "SWITCHYARD_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    /// Seconds a room stays open after its last participant left.
    #[arg(long, env = "SWITCHYARD_EMPTY_ROOM_TIMEOUT")]
    pub empty_room_timeout: Option<u64>,
    /// Most participants in one room.
    #[arg(long, env = "SWITCHYARD_MAX_PARTICIPANTS")]
    pub max_participants: Option<usize>,
    /// Receivers of one track from which each of its packets is written to them on all cores
    /// at once (a big room's fan-out shared over threads) [default: 128].
    #[arg(long, value_name = "N", env = "SWITCHYARD_PARALLEL_FANOUT")]
    pub parallel_fanout: Option<usize>,
    /// On SIGTERM, seconds calls go on without new joins before the server stops (Ctrl-C
    /// stops at once).
    #[arg(long, env = "SWITCHYARD_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Largest signaling message in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Log filter, for example `info` or `switchyard_sfu=debug,info`.
    #[arg(long, env = "SWITCHYARD_LOG")]
    pub log: Option<String>,
    /// UDP and TCP port of the bundled TURN relay (0: any free port).
    #[arg(long, env = "SWITCHYARD_TURN_PORT")]
    pub turn_port: Option<u16>,
    /// Host name or IP that clients use to reach the TURN relay (default: the host they
    /// used for HTTP).
    #[arg(long, env = "SWITCHYARD_TURN_HOST")]
    pub turn_host: Option<String>,
    /// Open rooms only through the admin API (`POST /api/rooms`, `switchyard rooms create`):
    /// a join (WebSocket, WHIP or WHEP) to any other room is refused.
    #[arg(long, env = "SWITCHYARD_NO_AUTO_CREATE_ROOMS")]
    pub no_auto_create_rooms: bool,
    /// Run without the bundled TURN relay.
    #[arg(long, env = "SWITCHYARD_NO_TURN")]
    pub no_turn: bool,
    /// Folder for HLS recordings (one sub-folder per recording).
    #[arg(long, env = "SWITCHYARD_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// The `switchyard-recorder` sidecar binary (default: next to this one, or in PATH).
    #[arg(long, env = "SWITCHYARD_RECORDER")]
    pub recorder: Option<PathBuf>,
    /// Dev mode (no API secret) open to the network: listen on every interface (or
    /// --http-bind) and hand tokens, admin ones included, to anyone who can reach the port.
    #[arg(long, env = "SWITCHYARD_INSECURE_DEV")]
    pub insecure_dev: bool,
    /// A reverse proxy (IP or CIDR) whose X-Forwarded-For names the client; repeat or
    /// separate with commas.
    #[arg(
        long = "trusted-proxy",
        env = "SWITCHYARD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    #[command(flatten)]
    pub tls: crate::tls::settings::TlsArgs,
    #[command(flatten)]
    pub cluster: crate::cluster_settings::ClusterArgs,
}

/// The file's shape (every field optional; unknown fields are an error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub log: Option<String>,
    pub http: HttpSection,
    pub rtc: RtcSection,
    pub auth: AuthSection,
    pub room: RoomSection,
    pub turn: TurnSection,
    pub webhooks: WebhookSection,
    pub recording: RecordingSection,
    pub tls: crate::tls::settings::TlsSection,
    pub cluster: crate::cluster_settings::ClusterSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSection {
    pub dir: Option<PathBuf>,
    pub recorder: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSection {
    pub urls: Vec<String>,
    pub secret: Option<String>,
    pub stats: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSection {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub host: Option<String>,
    pub relay_ip: Option<IpAddr>,
    pub min_port: Option<u16>,
    pub max_port: Option<u16>,
    pub secret: Option<String>,
    pub realm: Option<String>,
    pub credential_lifetime_secs: Option<u64>,
    pub allow_peers: Option<Vec<String>>,
    pub max_allocations_per_user: Option<usize>,
    pub max_allocations: Option<usize>,
    pub max_bandwidth: Option<u64>,
    pub tls_port: Option<u16>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub bind: Option<SocketAddr>,
    pub https_bind: Option<SocketAddr>,
    pub max_message_size: Option<usize>,
    pub max_auth_failures: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub message_rate: Option<u32>,
    pub message_burst: Option<u32>,
    pub ip_request_rate: Option<u32>,
    pub ip_request_burst: Option<u32>,
    pub ip_message_rate: Option<u32>,
    pub ip_message_burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtcSection {
    pub port: Option<u16>,
    pub announce_ip: Option<IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomSection {
    pub empty_timeout_secs: Option<u64>,
    pub max_participants: Option<usize>,
    pub parallel_fanout: Option<usize>,
    pub resume_window_secs: Option<u64>,
    pub drain_secs: Option<u64>,
    pub auto_create_rooms: Option<bool>,
}

/// The resolved, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: String,
    pub http_bind: SocketAddr,
    pub max_message_size: usize,
    /// Failed admin authentications from one address per minute before 429.
    pub max_auth_failures: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: signaling::client_ip::TrustedProxies,
    /// How fast one signaling connection may send messages.
    pub message_limits: signaling::rate_limit::MessageLimits,
    /// How fast one client address may make requests and send messages.
    pub ip_limits: signaling::ip_limits::IpLimits,
    /// Dev mode open to other machines (`--insecure-dev`); without it dev mode listens on
    /// 127.0.0.1 and hands tokens to this machine only.
    pub insecure_dev: bool,
    pub rtc_port: u16,
    pub announce_ip: Option<IpAddr>,
    /// `None`: dev mode (a key and secret are generated at start-up).
    pub credentials: Option<(String, String)>,
    pub empty_room_timeout: Duration,
    pub max_participants: usize,
    /// Receivers of one track from which its packets are written on all cores at once.
    pub parallel_fanout: usize,
    /// Whether a join opens a room that is not open yet; `false`: only the admin API does.
    pub auto_create_rooms: bool,
    /// How long a participant whose WebSocket dropped keeps its place for `resume`.
    pub resume_window: Duration,
    /// On SIGTERM: how long calls go on (without new joins) before the server stops.
    pub drain_time: Duration,
    /// `None`: no bundled TURN relay.
    pub turn: Option<TurnSettings>,
    /// Where room events are POSTed (none: no webhooks).
    pub webhooks: Option<signaling::webhooks::WebhookConfig>,
    /// Whether webhooks get the periodic `stats` events too.
    pub webhook_stats: bool,
    /// Folder for HLS recordings, one sub-folder per recording (default `recordings`,
    /// relative to the working directory).
    pub recordings_dir: PathBuf,
    /// The `switchyard-recorder` sidecar. `None`: next to this executable, in the folder
    /// above it, then in `PATH`.
    pub recorder: Option<PathBuf>,
    /// HTTPS (`None`: plain HTTP only). With it, plain HTTP redirects to HTTPS.
    pub tls: Option<crate::tls::settings::TlsSettings>,
    /// The cluster on Redis (`None`: a single server).
    pub cluster: Option<crate::cluster_settings::ClusterSettings>,
}

/// The bundled TURN relay's settings.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    pub port: u16,
    pub host: Option<String>,
    pub relay_ip: Option<IpAddr>,
    pub relay_ports: (u16, u16),
    /// `None`: generated at start-up (only this process mints credentials).
    pub secret: Option<String>,
    pub realm: String,
    pub credential_lifetime: Duration,
    /// Peers reachable besides the SFU itself (`ip:port`, `ip` or `cidr`).
    pub allow_peers: Vec<turn_server::AllowRule>,
    pub max_allocations_per_user: usize,
    pub max_allocations: usize,
    pub max_bandwidth: u64,
    pub tls: Option<(u16, PathBuf, PathBuf)>,
}

impl Config {
    /// Resolves flags and environment (already merged by clap) over the file over defaults.
    pub fn load(cli: Cli) -> anyhow::Result<Config> {
        let file = read_file(cli.config.as_deref())?;
        let turn = turn_settings(&cli, file.turn)?;
        let cluster = crate::cluster_settings::resolve(&cli.cluster, file.cluster)?;
        let webhook_urls = file.webhooks.urls;
        let webhook_secret = file.webhooks.secret;
        let credentials = resolve_credentials(
            cli.api_key.or(file.auth.api_key),
            cli.api_secret.or(file.auth.api_secret),
        )?;
        let http_bind = listen_addr(
            "http_bind",
            cli.http_bind.or(file.http.bind),
            8080,
            credentials.is_some(),
            cli.insecure_dev,
        )?;
        let tls = match crate::tls::settings::resolve(&cli.tls, file.tls, file.http.https_bind)? {
            Some((source, dir)) => Some(crate::tls::settings::TlsSettings {
                source,
                dir,
                https_bind: listen_addr(
                    "https_bind",
                    cli.tls.https_bind.or(file.http.https_bind),
                    8443,
                    credentials.is_some(),
                    cli.insecure_dev,
                )?,
            }),
            None => None,
        };
        let proxies = if cli.trusted_proxies.is_empty() {
            file.http.trusted_proxies.unwrap_or_default()
        } else {
            cli.trusted_proxies
        };
        let trusted_proxies = signaling::client_ip::TrustedProxies::parse(&proxies)
            .map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))?;
        let mut config = Config {
            log: cli.log.or(file.log).unwrap_or_else(|| DEFAULT_LOG.into()),
            http_bind,
            trusted_proxies,
            message_limits: {
                let defaults = signaling::rate_limit::MessageLimits::default();
                signaling::rate_limit::MessageLimits {
                    burst: file.http.message_burst.unwrap_or(defaults.burst),
                    per_second: file.http.message_rate.unwrap_or(defaults.per_second),
                    ..defaults
                }
            },
            ip_limits: {
                let defaults = signaling::ip_limits::IpLimits::default();
                signaling::ip_limits::IpLimits {
                    request_rate: file.http.ip_request_rate.unwrap_or(defaults.request_rate),
                    request_burst: file.http.ip_request_burst.unwrap_or(defaults.request_burst),
                    message_rate: file.http.ip_message_rate.unwrap_or(defaults.message_rate),
                    message_burst: file.http.ip_message_burst.unwrap_or(defaults.message_burst),
                }
            },
            insecure_dev: cli.insecure_dev,
            max_message_size: cli
                .max_message_size
                .or(file.http.max_message_size)
                .unwrap_or(1024 * 1024),
            max_auth_failures: file.http.max_auth_failures.unwrap_or(10),
            rtc_port: cli.rtc_port.or(file.rtc.port).unwrap_or(7882),
            announce_ip: cli.announce_ip.or(file.rtc.announce_ip),
            credentials,
            empty_room_timeout: Duration::from_secs(
                cli.empty_room_timeout
                    .or(file.room.empty_timeout_secs)
                    .unwrap_or(20),
            ),
            max_participants: cli
                .max_participants
                .or(file.room.max_participants)
                .unwrap_or(50),
            parallel_fanout: cli
                .parallel_fanout
                .or(file.room.parallel_fanout)
                .unwrap_or(sfu::DEFAULT_PARALLEL_FANOUT),
            auto_create_rooms: !cli.no_auto_create_rooms
                && file.room.auto_create_rooms.unwrap_or(true),
            resume_window: file
                .room
                .resume_window_secs
                .map(Duration::from_secs)
                .unwrap_or(signaling::resume::DEFAULT_RESUME_WINDOW),
            drain_time: Duration::from_secs(cli.drain_secs.or(file.room.drain_secs).unwrap_or(30)),
            turn,
            webhooks: None,
            webhook_stats: file.webhooks.stats.unwrap_or(false),
            recordings_dir: cli
                .recordings_dir
                .or(file.recording.dir)
                .unwrap_or_else(|| PathBuf::from("recordings")),
            recorder: cli.recorder.or(file.recording.recorder),
            tls,
            cluster,
        };
        if !webhook_urls.is_empty() {
            for url in &webhook_urls {
                if !url.starts_with("http://") {
                    bail!(
                        "webhooks.urls: {url:?} must be an http:// URL (https is not supported yet)"
                    );
                }
            }
            let secret = webhook_secret
                .or_else(|| config.credentials.as_ref().map(|(_, s)| s.clone()))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "webhooks.urls is set but there is no secret to sign with: set \
                         webhooks.secret or auth.api_secret"
                    )
                })?;
            config.webhooks = Some(signaling::webhooks::WebhookConfig {
                urls: webhook_urls,
                secret,
                node: config.cluster.as_ref().map(|c| c.node_id.clone()),
            });
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1024..=16 * 1024 * 1024).contains(&self.max_message_size) {
            bail!(
                "max_message_size must be between 1024 and 16777216 bytes, got {}",
                self.max_message_size
            );
        }
        if self.message_limits.per_second == 0 || self.message_limits.burst < 10 {
            bail!(
                "http.message_rate must be at least 1 and http.message_burst at least 10 (an \
                 offer costs 10), got {} and {}",
                self.message_limits.per_second,
                self.message_limits.burst
            );
        }
        let ip = &self.ip_limits;
        if ip.request_rate > 0 && ip.request_burst == 0 {
            bail!(
                "http.ip_request_burst must be at least 1 (or set ip_request_rate = 0 for no limit)"
            );
        }
        if ip.message_rate > 0 && ip.message_burst < 10 {
            bail!(
                "http.ip_message_burst must be at least 10 (an offer costs 10), got {} (or set \
                 ip_message_rate = 0 for no limit)",
                ip.message_burst
            );
        }
        if !(1..=1000).contains(&self.max_participants) {
            bail!(
                "max_participants must be between 1 and 1000, got {}",
                self.max_participants
            );
        }
        if self.parallel_fanout == 0 {
            bail!("parallel_fanout must be at least 1 (receivers of one track)");
        }
        if self.empty_room_timeout > Duration::from_secs(86400) {
            bail!("empty_room_timeout must be at most 86400 seconds");
        }
        if let Some(turn) = &self.turn {
            if turn.credential_lifetime.is_zero()
                || turn.credential_lifetime > turn_server::credentials::MAX_CREDENTIAL_LIFETIME
            {
                bail!("turn.credential_lifetime_secs must be between 1 and 86400");
            }
            if turn.relay_ports.0 == 0 || turn.relay_ports.0 > turn.relay_ports.1 {
                bail!(
                    "turn.min_port must be at least 1 and at most turn.max_port, got {}-{}",
                    turn.relay_ports.0,
                    turn.relay_ports.1
                );
            }
            if turn.secret.as_ref().is_some_and(|s| s.len() < 16) {
                bail!("turn.secret must be at least 16 characters");
            }
            if turn.max_allocations_per_user == 0 || turn.max_allocations == 0 {
                bail!("turn.max_allocations_per_user and turn.max_allocations must be at least 1");
            }
        }
        if self.recordings_dir.as_os_str().is_empty() {
            bail!("recording.dir must not be empty");
        }
        if self
            .recorder
            .as_ref()
            .is_some_and(|r| r.as_os_str().is_empty())
        {
            bail!(
                "recording.recorder must not be empty: remove it to find switchyard-recorder next to switchyard"
            );
        }
        if let Some(ip) = self.announce_ip
            && (ip.is_unspecified() || ip.is_multicast() || ip.is_ipv6())
        {
            bail!("announce_ip must be a unicast IPv4 address clients can reach, got {ip}");
        }
        Ok(())
    }
}

/// Where HTTP (`setting` `http_bind`) or HTTPS (`https_bind`) listens. With an API secret: the
/// configured address, or every interface on `default_port`. In dev mode (no secret) anyone who
/// reaches the port gets tokens, so it listens on 127.0.0.1 unless `--insecure-dev` says
/// otherwise, and refuses another address without it.
fn listen_addr(
    setting: &str,
    configured: Option<SocketAddr>,
    default_port: u16,
    has_secret: bool,
    insecure_dev: bool,
) -> anyhow::Result<SocketAddr> {
    if has_secret && insecure_dev {
        bail!(
            "--insecure-dev applies only in dev mode (no api_secret): remove it, or remove the \
             API key and secret"
        );
    }
    let everywhere = SocketAddr::from(([0, 0, 0, 0], default_port));
    let local = SocketAddr::from(([127, 0, 0, 1], default_port));
    match configured {
        None if has_secret || insecure_dev => Ok(everywhere),
        None => Ok(local),
        Some(addr) if has_secret || insecure_dev || addr.ip().is_loopback() => Ok(addr),
        Some(addr) => bail!(
            "{setting} {addr} would open dev mode (no API secret) to the network, where anyone \
             could mint tokens: set api_key and api_secret, or add --insecure-dev to do it anyway"
        ),
    }
}

/// The API key and secret alone, resolved as [`Config::load`] resolves them: the file at
/// `config`, overridden by `api_key` and `api_secret` (from the environment or flags), for
/// the admin CLI. `None`: dev mode.
pub fn load_credentials(
    config: Option<&Path>,
    api_key: Option<String>,
    api_secret: Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    let file = read_file(config)?;
    resolve_credentials(
        api_key.or(file.auth.api_key),
        api_secret.or(file.auth.api_secret),
    )
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str::<FileConfig>(&text)
        .with_context(|| format!("the config file {} is invalid", path.display()))
}

/// Both or neither; a key that is not empty and a secret long enough for HS256.
fn resolve_credentials(
    key: Option<String>,
    secret: Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    match (key, secret) {
        (Some(key), Some(secret)) => {
            if key.is_empty() {
                bail!("api_key must not be empty");
            }
            if secret.len() < 32 {
                bail!("api_secret must be at least 32 characters (it signs HS256 tokens)");
            }
            Ok(Some((key, secret)))
        }
        (None, None) => Ok(None),
        (Some(_), None) => {
            bail!("api_key is set but api_secret is not: set both, or neither for dev mode")
        }
        (None, Some(_)) => {
            bail!("api_secret is set but api_key is not: set both, or neither for dev mode")
        }
    }
}

fn turn_settings(cli: &Cli, file: TurnSection) -> anyhow::Result<Option<TurnSettings>> {
    if cli.no_turn || file.enabled == Some(false) {
        return Ok(None);
    }
    let allow_peers = file
        .allow_peers
        .unwrap_or_default()
        .iter()
        .map(|rule| {
            rule.parse::<turn_server::AllowRule>()
                .with_context(|| format!("turn.allow_peers has a bad entry {rule:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let tls = match (file.tls_cert, file.tls_key) {
        (Some(cert), Some(key)) => Some((file.tls_port.unwrap_or(5349), cert, key)),
        (None, None) => None,
        _ => bail!("turn.tls_cert and turn.tls_key go together: set both to enable TLS"),
    };
    Ok(Some(TurnSettings {
        port: cli.turn_port.or(file.port).unwrap_or(3478),
        host: cli.turn_host.clone().or(file.host),
        relay_ip: file.relay_ip,
        relay_ports: (
            file.min_port.unwrap_or(49152),
            file.max_port.unwrap_or(65535),
        ),
        secret: file.secret,
        realm: file.realm.unwrap_or_else(|| "switchyard".into()),
        credential_lifetime: Duration::from_secs(file.credential_lifetime_secs.unwrap_or(300)),
        allow_peers,
        max_allocations_per_user: file.max_allocations_per_user.unwrap_or(12),
        max_allocations: file.max_allocations.unwrap_or(10_000),
        max_bandwidth: file.max_bandwidth.unwrap_or(4_000_000),
        tls,
    }))
}

#[cfg(test)]
mod tests;
