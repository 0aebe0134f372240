//! The server's one configuration tree: built-in defaults, then an optional TOML file, then
//! environment variables (`SWITCHYARD_*`), then command-line flags. Validated once at start-up
//! with a message that names the setting and says what is allowed.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

/// Default log filter: our own info lines, and only errors from the chatty WebRTC internals.
pub const DEFAULT_LOG: &str = "info,rtc_dtls=error,rtc_ice=error,rtc_sctp=warn,rtc=warn";

/// Command-line flags; each can also be set through the environment variable it names.
#[derive(Debug, Parser, Default)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: WebRTC group calls through a selective forwarding unit.\n\
             Starts signaling, the SFU and the web demo with embedded defaults.",
    after_help = "Settings apply in this order: defaults, the --config file, SWITCHYARD_* \
                  environment variables, flags. See switchyard.sample.toml."
)]
pub struct Cli {
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
    /// Largest signaling message in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Log filter, for example `info` or `switchyard_sfu=debug,info`.
    #[arg(long, env = "SWITCHYARD_LOG")]
    pub log: Option<String>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub bind: Option<SocketAddr>,
    pub max_message_size: Option<usize>,
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
}

/// The resolved, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: String,
    pub http_bind: SocketAddr,
    pub max_message_size: usize,
    pub rtc_port: u16,
    pub announce_ip: Option<IpAddr>,
    /// `None`: dev mode (a key and secret are generated at start-up).
    pub credentials: Option<(String, String)>,
    pub empty_room_timeout: Duration,
    pub max_participants: usize,
}

impl Config {
    /// Resolves flags and environment (already merged by clap) over the file over defaults.
    pub fn load(cli: Cli) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("the config file {} is invalid", path.display()))?
            }
            None => FileConfig::default(),
        };
        let config = Config {
            log: cli.log.or(file.log).unwrap_or_else(|| DEFAULT_LOG.into()),
            http_bind: cli
                .http_bind
                .or(file.http.bind)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            max_message_size: cli
                .max_message_size
                .or(file.http.max_message_size)
                .unwrap_or(1024 * 1024),
            rtc_port: cli.rtc_port.or(file.rtc.port).unwrap_or(7882),
            announce_ip: cli.announce_ip.or(file.rtc.announce_ip),
            credentials: match (
                cli.api_key.or(file.auth.api_key),
                cli.api_secret.or(file.auth.api_secret),
            ) {
                (Some(k), Some(s)) => Some((k, s)),
                (None, None) => None,
                (Some(_), None) => {
                    bail!("api_key is set but api_secret is not: set both, or neither for dev mode")
                }
                (None, Some(_)) => {
                    bail!("api_secret is set but api_key is not: set both, or neither for dev mode")
                }
            },
            empty_room_timeout: Duration::from_secs(
                cli.empty_room_timeout
                    .or(file.room.empty_timeout_secs)
                    .unwrap_or(20),
            ),
            max_participants: cli
                .max_participants
                .or(file.room.max_participants)
                .unwrap_or(50),
        };
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
        if !(1..=1000).contains(&self.max_participants) {
            bail!(
                "max_participants must be between 1 and 1000, got {}",
                self.max_participants
            );
        }
        if self.empty_room_timeout > Duration::from_secs(86400) {
            bail!("empty_room_timeout must be at most 86400 seconds");
        }
        if let Some((key, secret)) = &self.credentials {
            if key.is_empty() {
                bail!("api_key must not be empty");
            }
            if secret.len() < 32 {
                bail!("api_secret must be at least 32 characters (it signs HS256 tokens)");
            }
        }
        if let Some(ip) = self.announce_ip
            && (ip.is_unspecified() || ip.is_multicast() || ip.is_ipv6())
        {
            bail!("announce_ip must be a unicast IPv4 address clients can reach, got {ip}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(Cli::default()).unwrap();
        assert_eq!(c.http_bind.port(), 8080);
        assert_eq!(c.rtc_port, 7882);
        assert_eq!(c.max_message_size, 1024 * 1024);
        assert!(c.credentials.is_none());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("sy-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[rtc]\nport = 9000\n[room]\nmax_participants = 7\n").unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            rtc_port: Some(9100),
            ..Cli::default()
        };
        let c = Config::load(cli).unwrap();
        assert_eq!(c.rtc_port, 9100);
        assert_eq!(c.max_participants, 7);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::load(Cli {
            max_participants: Some(0),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_participants"));
        let err = Config::load(Cli {
            api_key: Some("k".into()),
            api_secret: Some("short".into()),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("32 characters"));
        let err = Config::load(Cli {
            api_key: Some("k".into()),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("api_secret"));
    }

    #[test]
    fn the_sample_config_parses() {
        let text = include_str!("../../switchyard.sample.toml");
        toml::from_str::<FileConfig>(text).unwrap();
    }

    #[test]
    fn unknown_fields_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("[rtc]\nprot = 1\n").is_err());
    }
}
