//! `switchyard`: run the whole service (`cargo run --release`), or, with a subcommand, the
//! admin CLI (`switchyard rooms list`, `switchyard token --admin`, ...). A subcommand never starts
//! the server: it runs the admin command and exits.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use switchyard::{Cli, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(command) = cli.command.take() {
        return switchyard::cli::run(&cli, command).await;
    }
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let server = match switchyard::start(config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("switchyard: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((key, secret)) = &server.dev_credentials {
        println!("Dev mode: no API secret configured; generated for this run:");
        println!("  API key:    {key}");
        println!("  API secret: {secret}");
        println!("  GET /api/dev-token hands out tokens; set api_key/api_secret for production.");
        if server.insecure_dev {
            println!();
            println!(
                "  WARNING: --insecure-dev: anyone who can reach {} gets tokens,",
                server.http_addr
            );
            println!("  WARNING: admin tokens included, and can join, watch and run every room.");
            println!("  WARNING: set api_key and api_secret before letting other people in.");
            println!();
        } else {
            println!(
                "  Dev mode answers this machine only (HTTP on {}). To call another",
                server.http_addr
            );
            println!("  machine, set api_key/api_secret (see README), or start with");
            println!("  --insecure-dev --http-bind 0.0.0.0:8080 to open dev mode to the network.");
        }
    }
    let media: Vec<String> = server.media_addrs.iter().map(|a| a.to_string()).collect();
    println!(
        "Switchyard is up: open http://localhost:{}/ (media on UDP {})",
        server.http_addr.port(),
        media.join(", ")
    );
    if let Some(turn) = &server.turn {
        println!(
            "TURN relay on UDP and TCP port {}{}, reaching only the SFU",
            turn.udp_addr().port(),
            turn.tls_addr()
                .map(|a| format!(" and TLS port {}", a.port()))
                .unwrap_or_default()
        );
    }
    wait_for_stop_signal().await;
    println!("Shutting down: telling participants, closing rooms (Ctrl-C again to force)...");
    let forced = wait_for_stop_signal();
    tokio::select! {
        result = server.shutdown(Duration::from_secs(5)) => match result {
            Ok(()) => {
                println!("Switchyard stopped.");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchyard: shutdown: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = forced => {
            eprintln!("Forced exit.");
            ExitCode::from(130)
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn wait_for_stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::error!("cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
