//! `switchyard-turn`: the TURN relay on its own, for general use (it relays to public
//! addresses and refuses private and special-purpose ones unless `--allow` names them).
//! `switchyard` runs the same relay bundled, where it reaches only the SFU. `switchyard-turn mint`
//! never starts the relay: it prints a credential and exits.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use turn_server::{AllowRule, PeerPolicy, RestSecret, TlsConfig, TurnConfig, TurnServer};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-turn",
    version,
    about = "Switchyard's TURN relay (RFC 8656)"
)]
struct Args {
    /// The TURN REST API shared secret (also read from SWITCHYARD_TURN_SECRET).
    #[arg(long, env = "SWITCHYARD_TURN_SECRET", hide_env_values = true)]
    secret: String,
    #[command(subcommand)]
    command: Option<Command>,
    /// UDP and TCP listening address.
    #[arg(long, default_value = "0.0.0.0:3478")]
    listen: SocketAddr,
    /// The address relayed sockets use; peers must be able to reach it.
    #[arg(long, default_value = "127.0.0.1")]
    relay_ip: IpAddr,
    /// Lowest relay port.
    #[arg(long, default_value_t = 49152)]
    min_port: u16,
    /// Highest relay port.
    #[arg(long, default_value_t = 65535)]
    max_port: u16,
    /// Credential realm.
    #[arg(long, default_value = "switchyard")]
    realm: String,
    /// Peers to allow despite the deny list: `ip:port`, `ip` or `cidr` (repeatable).
    #[arg(long = "allow", value_name = "RULE")]
    allow: Vec<AllowRule>,
    /// Reach only what `--allow` names, not the public internet.
    #[arg(long)]
    allow_list_only: bool,
    /// PEM certificate chain: enables TLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS listening address.
    #[arg(long, default_value = "0.0.0.0:5349")]
    tls_listen: SocketAddr,
    /// Allocations one identity may hold.
    #[arg(long, default_value_t = 12)]
    max_allocations_per_user: usize,
    /// Allocations in total.
    #[arg(long, default_value_t = 10_000)]
    max_allocations: usize,
    /// Bytes per second per allocation and direction (0: unlimited).
    #[arg(long, default_value_t = 4_000_000)]
    bandwidth: u64,
    /// Worker threads: 1 runs everything on one thread (least CPU per packet), 0 uses one
    /// per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a REST credential (username and password) for an identity.
    Mint {
        /// Who the credential is for.
        identity: String,
        /// Lifetime in seconds (at most 86400).
        #[arg(long, default_value_t = 300)]
        ttl: u64,
    },
}

fn main() {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let result = runtime
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(args)));
    if let Err(error) = result {
        eprintln!("switchyard-turn: {error:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let secret = RestSecret::new(args.secret.as_bytes());
    if let Some(Command::Mint { identity, ttl }) = args.command {
        let credential = secret.mint(&identity, Duration::from_secs(ttl));
        println!("username: {}", credential.username);
        println!("password: {}", credential.password);
        return Ok(());
    }
    if args.secret.len() < 16 {
        bail!("the secret is too short: use at least 16 characters");
    }
    let policy = if args.allow_list_only {
        PeerPolicy::allow_list_only(args.allow)
    } else {
        PeerPolicy::public(args.allow)
    };
    let mut config = TurnConfig::new(secret, policy);
    config.listen = args.listen;
    config.relay_ip = args.relay_ip;
    config.relay_ports = (args.min_port, args.max_port);
    config.realm = args.realm;
    config.max_allocations_per_user = args.max_allocations_per_user;
    config.max_allocations = args.max_allocations;
    config.max_bandwidth_per_allocation = args.bandwidth;
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(certificate), Some(private_key)) => Some(TlsConfig {
            listen: args.tls_listen,
            certificate,
            private_key,
        }),
        _ => None,
    };
    let cancel = CancellationToken::new();
    let server = TurnServer::start(config, cancel.clone())
        .await
        .context("starting the relay")?;
    println!(
        "switchyard-turn is up: UDP {}, TCP {}{}",
        server.udp_addr(),
        server.tcp_addr(),
        server
            .tls_addr()
            .map(|a| format!(", TLS {a}"))
            .unwrap_or_default()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    cancel.cancel();
    let stats = server.stats();
    println!(
        "switchyard-turn stopped: {} packets to peers, {} to clients",
        stats.packets_to_peers, stats.packets_to_clients
    );
    Ok(())
}
