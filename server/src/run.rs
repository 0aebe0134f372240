//! The `switchyard` executable's life: with a subcommand it is the admin CLI; without one it
//! loads the configuration, starts the service, prints the banner, and stops on Ctrl-C (at
//! once) or SIGTERM (after draining). `main.rs` and the test suite's node binary call [`run`].
//! It never parses flags itself: callers pass the parsed [`Cli`].

use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::{Cli, Config};

/// Runs what the command line asks for: the admin CLI with a subcommand, else the whole
/// service until Ctrl-C (at once) or SIGTERM (after draining).
pub async fn run(mut cli: Cli) -> ExitCode {
    if let Some(command) = cli.command.take() {
        return crate::cli::run(&cli, command).await;
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
    let server = match crate::start(config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("switchyard: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    crate::banner::print(&server);
    if wait_for_stop_signal().await == Stop::Terminate && !server.drain_time.is_zero() {
        crate::say!(
            "SIGTERM: draining for {} s: no new joins, calls go on until then (a second signal \
             stops at once)...",
            server.drain_time.as_secs()
        );
        tokio::select! {
            _ = server.drain() => {}
            _ = wait_for_stop_signal() => {}
        }
    }
    crate::say!("Shutting down: telling participants, closing rooms (Ctrl-C again to force)...");
    let forced = wait_for_stop_signal();
    tokio::select! {
        result = server.shutdown(Duration::from_secs(5)) => match result {
            Ok(()) => {
                crate::say!("Switchyard stopped.");
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

/// Which signal asked the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Ctrl-C: stop now.
    Interrupt,
    /// SIGTERM (a service manager, a deploy): drain first.
    Terminate,
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
async fn wait_for_stop_signal() -> Stop {
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
        _ = interrupt => Stop::Interrupt,
        _ = terminate => Stop::Terminate,
    }
}
