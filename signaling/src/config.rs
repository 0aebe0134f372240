//! Settings of the signaling layer ([`SignalingConfig`]) and how clients reach the bundled
//! TURN relay ([`TurnOffer`]). Plain settings. It never reads files or the environment: the
//! server fills these settings in.

use std::time::Duration;

use protocol::IceServer;

use crate::client_ip::TrustedProxies;
use crate::ip_limits::IpLimits;
use crate::rate_limit::MessageLimits;

/// Settings of the signaling layer.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// Largest WebSocket message accepted.
    pub max_message_size: usize,
    /// A joined client that sends nothing for this long is removed.
    pub keepalive_timeout: Duration,
    /// When true, `GET /api/dev-token` mints tokens (no secret was configured).
    pub dev_mode: bool,
    /// In dev mode, whether the dev token endpoints answer other machines too
    /// (`--insecure-dev`); otherwise they answer loopback clients only.
    pub dev_open_to_network: bool,
    /// Proxies whose `X-Forwarded-For` names the client for the admin API's lockout.
    pub trusted_proxies: TrustedProxies,
    /// How fast one signaling connection may send messages.
    pub message_limits: MessageLimits,
    /// How fast one client address may make requests and send messages (over all of its
    /// connections).
    pub ip_limits: IpLimits,
    /// ICE servers handed to clients on join (besides the bundled TURN relay's).
    pub ice_servers: Vec<IceServer>,
    /// The bundled TURN relay: each joining client gets its own short-lived credential.
    pub turn: Option<TurnOffer>,
}

/// How clients reach the bundled TURN relay, and the secret its credentials are minted with.
#[derive(Debug, Clone)]
pub struct TurnOffer {
    /// The TURN REST API secret shared with the relay.
    pub secret: turn_server::RestSecret,
    /// How long a minted credential admits new allocations (at most 24 h).
    pub credential_lifetime: Duration,
    /// Host name or IP clients use for the relay; `None`: the host the client used for HTTP.
    pub host: Option<String>,
    /// UDP and TCP port.
    pub port: u16,
    /// TLS port, when the relay has a certificate.
    pub tls_port: Option<u16>,
}

impl TurnOffer {
    /// The ICE server entry for `identity`, with URLs on `host` (an IPv6 literal in brackets).
    pub fn ice_server(&self, identity: &str, request_host: Option<&str>) -> IceServer {
        let host = self
            .host
            .clone()
            .or_else(|| request_host.map(host_without_port))
            .unwrap_or_else(|| "127.0.0.1".into());
        let credential = self.secret.mint(identity, self.credential_lifetime);
        let mut urls = vec![
            format!("turn:{host}:{}?transport=udp", self.port),
            format!("turn:{host}:{}?transport=tcp", self.port),
        ];
        if let Some(tls_port) = self.tls_port {
            urls.push(format!("turns:{host}:{tls_port}?transport=tcp"));
        }
        IceServer {
            urls,
            username: Some(credential.username),
            credential: Some(credential.password),
        }
    }
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]`. `localhost` becomes
/// `127.0.0.1`, because browsers may resolve it to `::1` and the relay listens on IPv4.
fn host_without_port(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_once(']')
            .map(|(h, _)| format!("{h}]"))
            .unwrap_or_else(|| host.to_owned())
    } else {
        host.split(':').next().unwrap_or(host).to_owned()
    };
    if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1".into()
    } else {
        host
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        SignalingConfig {
            max_message_size: 1024 * 1024,
            keepalive_timeout: Duration::from_secs(15),
            dev_mode: false,
            dev_open_to_network: false,
            trusted_proxies: TrustedProxies::default(),
            message_limits: MessageLimits::default(),
            ip_limits: IpLimits::default(),
            ice_servers: Vec::new(),
            turn: None,
        }
    }
}
