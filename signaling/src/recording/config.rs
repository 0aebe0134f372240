//! Where recordings go and which sidecar makes them ([`RecordingConfig`]), and the sidecar's
//! fixed names and timeouts. Plain settings: it imports nothing from its siblings. It never touches
//! the file system or starts the sidecar.

use std::path::PathBuf;
use std::time::Duration;

/// The sidecar's binary name.
pub const RECORDER_BINARY: &str = "switchyard-recorder";
/// The environment variable that hands the sidecar its join token (never argv: `ps` shows it).
pub const TOKEN_ENV: &str = "SWITCHYARD_RECORDER_TOKEN";
/// How long a stopped sidecar may take to finish its playlist before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long sidecars may take to finish when the server shuts down.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);

/// Where recordings go and which sidecar makes them.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// The folder holding one sub-folder per recording.
    pub dir: PathBuf,
    /// The sidecar binary; `None`: `switchyard-recorder` next to this executable, in the folder
    /// above it, or in `PATH`.
    pub recorder: Option<PathBuf>,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("recordings"),
            recorder: None,
        }
    }
}
