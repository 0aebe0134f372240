//! The Switchyard server: composes signaling, the SFU and the web demo into one service.
//!
//! [`start`] binds everything and returns a handle with the bound addresses (tests use it with
//! port 0); `main` is a thin shell over it that reads the configuration and turns Ctrl-C into
//! a graceful shutdown. With a subcommand the binary is the admin CLI instead ([`cli`]). The
//! bundled TURN relay it starts never reaches anything but the SFU's media addresses and
//! `allow_peers`.

pub mod banner;
pub mod cli;
pub mod cluster_settings;
pub mod config;
pub mod run;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use rand::distr::Alphanumeric;
use sfu::{Sfu, SfuConfig};
use signaling::{AppState, SignalingConfig, TokenAuthority};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use turn_server::{AllowRule, PeerPolicy, RestSecret, TlsConfig, TurnConfig, TurnServer};

pub use config::{Cli, Config};

/// A running server.
pub struct Server {
    /// The HTTP address actually bound. With HTTPS on, it redirects there (and answers ACME
    /// challenges).
    pub http_addr: SocketAddr,
    /// The HTTPS address actually bound, when a certificate is configured.
    pub https_addr: Option<SocketAddr>,
    /// Self-signed HTTPS: the certificate's SHA-256 fingerprint (`AA:BB:...`).
    pub tls_fingerprint: Option<String>,
    /// HTTPS settings, when on.
    pub tls: Option<tls::settings::TlsSettings>,
    certificate: Option<Arc<tls::resolver::SwappableCert>>,
    /// The media addresses announced in ICE candidates.
    pub media_addrs: Vec<SocketAddr>,
    /// Present in dev mode: the generated API key and secret.
    pub dev_credentials: Option<(String, String)>,
    /// Dev mode opened to the network on purpose (`--insecure-dev`).
    pub insecure_dev: bool,
    /// Signs tokens with this server's key and secret.
    pub tokens: TokenAuthority,
    /// The bundled TURN relay, unless disabled.
    pub turn: Option<TurnServer>,
    cancel: CancellationToken,
    /// The plain-HTTP listener, and with HTTPS on the HTTPS one and a loopback-only plain
    /// listener for the recorder sidecar.
    http: Vec<JoinHandle<std::io::Result<()>>>,
    sfu: Sfu,
    recordings: signaling::recording::Recordings,
    broadcasts: signaling::broadcast::Broadcasts,
    drain: signaling::drain::Drain,
    /// Counts open WebSockets: shutdown waits until each has said its last word.
    metrics: Arc<signaling::metrics::Metrics>,
    /// On SIGTERM: how long calls go on without new joins (`drain`).
    pub drain_time: Duration,
    /// This node's part in a cluster, if any.
    pub cluster: Option<signaling::cluster_link::ClusterLink>,
    /// The cluster registry's task: it ends once the node has deregistered.
    registry: Option<JoinHandle<()>>,
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Binds the HTTP and media ports and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let cancel = CancellationToken::new();
    // A cluster's Redis is checked first: a node that cannot join its cluster does not start.
    let cluster = match &config.cluster {
        Some(settings) => Some(
            cluster::Cluster::connect(
                cluster::ClusterConfig {
                    redis_url: settings.redis.clone(),
                    prefix: settings.prefix.clone(),
                    node_id: settings.node_id.clone(),
                    // Set below once the HTTP port is bound, unless configured.
                    url: settings.node_url.clone().unwrap_or_default(),
                    policy: settings.policy,
                },
                cancel.clone(),
            )
            .await
            .context("cannot join the cluster")?,
        ),
        None => None,
    };
    let (credentials, dev_credentials) = match config.credentials.clone() {
        Some(c) => (c, None),
        None => {
            let mut c = (format!("APIdev{}", random_string(10)), random_string(40));
            // Every node of a dev cluster signs with the same secret, so a token from one
            // node admits to a room on another.
            if let Some(cluster) = &cluster {
                c = cluster
                    .shared_dev_credentials(c)
                    .await
                    .context("cannot share dev credentials through Redis")?;
            }
            (c.clone(), Some(c))
        }
    };
    let tokens = TokenAuthority::new(&credentials.0, &credentials.1);
    let sfu = Sfu::start(
        SfuConfig {
            rtc_port: config.rtc_port,
            announce_ip: config.announce_ip,
            empty_room_timeout: config.empty_room_timeout,
            max_participants: config.max_participants,
            parallel_fanout: config.parallel_fanout,
            auto_create_rooms: config.auto_create_rooms,
            room_participants_per_node: config
                .cluster
                .as_ref()
                .and_then(|c| c.room_participants_per_node),
            ..SfuConfig::default()
        },
        cancel.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot start the media plane on UDP port {}",
            config.rtc_port
        )
    })?;
    let media_addrs = sfu.media_addresses();
    let (turn, turn_offer) = match &config.turn {
        Some(settings) => {
            let (turn, offer) = start_turn(settings, &media_addrs, config.announce_ip, &cancel)
                .await
                .context(
                    "cannot start the bundled TURN relay (another TURN server on the port? \
                     set --turn-port or [turn] port, or --no-turn)",
                )?;
            (Some(turn), Some(offer))
        }
        None => (None, None),
    };
    let https = match &config.tls {
        Some(settings) => Some(tls::prepare(settings, config.announce_ip, &cancel).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.http_bind)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_bind))?;
    let http_addr = listener.local_addr()?;
    // With HTTPS, plain HTTP only redirects; the recorder sidecar (plain ws://) gets a port of
    // its own on loopback.
    let internal = match https {
        Some(_) => Some(
            tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .await
                .context("cannot listen on 127.0.0.1 for the recorder")?,
        ),
        None => None,
    };
    let recordings = signaling::recording::Recordings::start(
        signaling::recording::RecordingConfig {
            dir: config.recordings_dir.clone(),
            recorder: config.recorder.clone(),
        },
        match &internal {
            Some(internal) => internal.local_addr()?,
            None => http_addr,
        },
        tokens.clone(),
        sfu.clone(),
        cancel.clone(),
    );
    let broadcasts =
        signaling::broadcast::Broadcasts::start(recordings.clone(), sfu.clone(), cancel.clone());
    let drain = signaling::drain::Drain::default();
    let metrics: Arc<signaling::metrics::Metrics> = Arc::default();
    let (cluster_link, registry) = match cluster {
        Some(mut cluster) => {
            if cluster.url().is_empty() {
                let scheme = if https.is_some() { "https" } else { "http" };
                let port = https
                    .as_ref()
                    .map_or(http_addr.port(), |h| h.listener.addr().port());
                let host = config
                    .announce_ip
                    .or_else(|| (!http_addr.ip().is_unspecified()).then(|| http_addr.ip()))
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
                // Other machines cannot reach a node at 127.0.0.1: a cluster on a Redis
                // elsewhere needs the node's real address.
                if host.is_loopback()
                    && !cluster_settings::is_local_redis(&cluster.config().redis_url)
                {
                    anyhow::bail!(
                        "this node would tell the cluster to reach it at {host}, but Redis is on \
                         another machine: set --node-url (or [cluster] node_url) to the URL \
                         browsers and other nodes reach this node at, or --announce-ip"
                    );
                }
                let host = match host {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                };
                cluster.set_url(format!("{scheme}://{host}:{port}"));
            }
            let (link, registry) = signaling::cluster_link::ClusterLink::start(
                cluster,
                sfu.clone(),
                recordings.clone(),
                drain.clone(),
            );
            (Some(link), Some(registry))
        }
        None => (None, None),
    };
    let state = AppState {
        config: Arc::new(SignalingConfig {
            max_message_size: config.max_message_size,
            dev_mode: dev_credentials.is_some(),
            dev_open_to_network: config.insecure_dev,
            trusted_proxies: config.trusted_proxies.clone(),
            message_limits: config.message_limits,
            ip_limits: config.ip_limits,
            turn: turn_offer,
            ..SignalingConfig::default()
        }),
        sfu: sfu.clone(),
        tokens: tokens.clone(),
        cancel: cancel.clone(),
        auth_failures: Arc::new(signaling::api::AuthFailures::new(config.max_auth_failures)),
        metrics: Arc::clone(&metrics),
        turn: turn.clone(),
        recordings: recordings.clone(),
        broadcasts: broadcasts.clone(),
        parking: signaling::resume::Parking::new(config.resume_window),
        drain: drain.clone(),
        cluster: cluster_link.clone(),
    };
    if state.cluster.is_some() {
        tokio::spawn(signaling::spanning::keep_linked(state.clone()));
    }
    tokio::spawn(signaling::api::publish_stats(
        sfu.clone(),
        cluster_link.as_ref().map(|link| link.stats_wish()),
        cancel.clone(),
    ));
    if let Some(webhooks) = config.webhooks.clone() {
        tokio::spawn(signaling::webhooks::run(
            sfu.events().clone(),
            webhooks,
            config.webhook_stats,
            cancel.clone(),
        ));
    }
    let app = signaling::app(state);
    let https_addr = https.as_ref().map(|h| h.listener.addr());
    let certificate = https.as_ref().map(|h| h.certificate.clone());
    let tls_fingerprint = https
        .as_ref()
        .and_then(|h| h.self_signed_fingerprint.clone());
    let mut http = Vec::new();
    match https {
        None => {
            // Small WebSocket messages (signaling, node links) go out at once.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            http.push(serve(listener, app, &cancel));
        }
        Some(tls::Https {
            listener: tls_listener,
            challenges,
            renewal,
            ..
        }) => {
            let port = https_addr.map_or(443, |a| a.port());
            let redirect = tls::redirect::router(port, challenges);
            http.push(serve(listener, redirect, &cancel));
            if let Some(internal) = internal {
                http.push(serve(internal, app.clone(), &cancel));
            }
            let tapped = axum::serve::ListenerExt::tap_io(tls_listener, |_| {});
            http.push(serve(tapped, app, &cancel));
            if let Some(renewal) = renewal {
                tokio::spawn(renewal);
            }
        }
    }
    Ok(Server {
        http_addr,
        https_addr,
        tls_fingerprint,
        tls: config.tls.clone(),
        certificate,
        media_addrs,
        dev_credentials,
        insecure_dev: config.insecure_dev,
        tokens,
        turn,
        cancel,
        http,
        sfu,
        recordings,
        broadcasts,
        drain,
        drain_time: config.drain_time,
        metrics,
        cluster: cluster_link,
        registry,
    })
}

/// Serves `app` on `listener` (with each connection's peer address) until `cancel`.
fn serve<L>(
    listener: L,
    app: axum::Router,
    cancel: &CancellationToken,
) -> JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let shutdown = cancel.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    })
}

/// Starts the relay in bundled mode: it reaches the SFU's media addresses (and whatever
/// `allow_peers` adds) and nothing else, not even other ports of this host.
async fn start_turn(
    settings: &config::TurnSettings,
    media_addrs: &[SocketAddr],
    announce_ip: Option<std::net::IpAddr>,
    cancel: &CancellationToken,
) -> anyhow::Result<(TurnServer, signaling::TurnOffer)> {
    let secret = RestSecret::new(
        settings
            .secret
            .clone()
            .unwrap_or_else(|| random_string(40))
            .into_bytes(),
    );
    let mut allow: Vec<AllowRule> = media_addrs.iter().map(|a| AllowRule::Exact(*a)).collect();
    allow.extend(settings.allow_peers.iter().cloned());
    let relay_ip = settings
        .relay_ip
        .or(announce_ip)
        .or_else(|| media_addrs.first().map(|a| a.ip()))
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let mut turn = TurnConfig::new(secret.clone(), PeerPolicy::allow_list_only(allow));
    turn.listen = SocketAddr::from(([0, 0, 0, 0], settings.port));
    turn.relay_ip = relay_ip;
    // Behind 1:1 NAT the advertised address is not on this host: bind every interface.
    if std::net::UdpSocket::bind((relay_ip, 0)).is_err() {
        turn.relay_bind_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    }
    turn.relay_ports = settings.relay_ports;
    turn.realm = settings.realm.clone();
    turn.max_allocations_per_user = settings.max_allocations_per_user;
    turn.max_allocations = settings.max_allocations;
    turn.max_bandwidth_per_allocation = settings.max_bandwidth;
    turn.tls = settings
        .tls
        .as_ref()
        .map(|(port, certificate, private_key)| TlsConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], *port)),
            certificate: certificate.clone(),
            private_key: private_key.clone(),
        });
    let server = TurnServer::start(turn, cancel.clone()).await?;
    let offer = signaling::TurnOffer {
        secret,
        credential_lifetime: settings.credential_lifetime,
        host: settings.host.clone(),
        port: server.udp_addr().port(),
        tls_port: server.tls_addr().map(|a| a.port()),
    };
    Ok((server, offer))
}

impl Server {
    /// Tells every participant the server is going away, closes rooms, sockets and the HTTP
    /// listener, and waits (at most `grace`) for connections to finish.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        self.cancel.cancel();
        let drained = async {
            // Recorders get a few seconds to finish their playlists.
            self.recordings.closed().await;
            self.broadcasts.closed().await;
            self.sfu.closed().await;
            for listener in self.http {
                listener
                    .await
                    .map_err(|e| anyhow::anyhow!("HTTP server task failed: {e}"))?
                    .context("HTTP server failed")?;
            }
            if let Some(registry) = self.registry {
                let _ = registry.await;
            }
            // WebSockets live on after the listeners: let each pass on its `closed` and close
            // before the process goes, or a client could see the connection cut without a word.
            while self
                .metrics
                .websocket_connections
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(grace, drained).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("connections did not close within {grace:?}; exiting anyway");
                Ok(())
            }
        }
    }

    /// HTTPS: the SHA-256 fingerprint of the certificate being served (none yet: an ACME
    /// server waiting for its first one).
    pub fn https_fingerprint(&self) -> Option<String> {
        let current = self.certificate.as_ref()?.current()?;
        Some(current.fingerprint)
    }

    /// HTTPS: why the last certificate reload or ACME attempt failed (the served certificate
    /// stays); `None` once one succeeds.
    pub fn https_problem(&self) -> Option<String> {
        self.certificate.as_ref()?.problem()
    }

    /// Starts draining: new joins are refused with `closed` (`draining`), every participant is
    /// told the server goes away within `drain_time`, and calls go on. Resolves at that time;
    /// [`Server::shutdown`] then closes everything.
    pub async fn drain(&self) {
        self.drain.start(self.drain_time);
        tokio::time::sleep(self.drain_time).await;
    }

    /// The most bytes ever seen queued at the SFU for one recipient's data channel.
    pub fn data_queue_peak(&self) -> usize {
        self.sfu.data_queue_peak()
    }

    /// HLS recordings: where they are written, and their states.
    pub fn recordings(&self) -> &signaling::recording::Recordings {
        &self.recordings
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.sfu.room_count()
    }

    /// A token for the given identity and room, signed by this server.
    pub fn token(&self, identity: &str, room: &str, grants: protocol::Grants) -> String {
        self.tokens.mint(identity, identity, room, grants, 3600)
    }
}
