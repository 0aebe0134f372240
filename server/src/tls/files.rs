//! Certificate files the operator manages (`--tls-cert`, `--tls-key`): read at start, then
//! read again when either file changes (polled) or on SIGHUP. A broken new file keeps the old
//! certificate and logs what is wrong. It never writes the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::error::TlsError;
use super::pem::{LoadedCert, load_files};
use super::resolver::SwappableCert;

/// How often the files' modification times are looked at.
pub const POLL: Duration = Duration::from_secs(2);

const WHAT: (&str, &str) = ("--tls-cert", "--tls-key");

/// What identifies one version of the two files: modification times and sizes.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
}

/// Reads the files once (a start-up error stops the server), then keeps `resolver` up to date
/// with them until `cancel`.
pub fn start(
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<SwappableCert>,
    cancel: CancellationToken,
) -> Result<LoadedCert, TlsError> {
    let mut seen = stamp(&cert, &key);
    let loaded = load_files(&cert, &key, WHAT)?;
    resolver.install(loaded.clone());
    // Listening before returning: a SIGHUP from now on reloads (and never ends the process).
    let mut hangup = hangup_signals();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {
                    let now = stamp(&cert, &key);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "the files changed"
                }
                Some(()) = next_hangup(&mut hangup) => "SIGHUP",
            };
            reload(&cert, &key, &resolver, why);
        }
    });
    Ok(loaded)
}

fn reload(cert: &Path, key: &Path, resolver: &SwappableCert, why: &str) {
    match load_files(cert, key, WHAT) {
        Ok(loaded) => {
            tracing::info!(
                fingerprint = %loaded.fingerprint,
                "HTTPS certificate reloaded from {} ({why}); it covers {}",
                cert.display(),
                loaded.names.join(", ")
            );
            resolver.install(loaded);
        }
        Err(e) => {
            tracing::error!("HTTPS certificate not reloaded ({why}), the previous one stays: {e}");
            resolver.set_problem(Some(e.to_string()));
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signals() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); certificate files are still polled");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangup {}

/// The next SIGHUP; never, where there are none.
async fn next_hangup(hangup: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(signals) = hangup {
        return signals.recv().await;
    }
    let _ = hangup;
    std::future::pending().await
}
