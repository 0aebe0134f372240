//! HLS recordings of rooms, made by the `switchyard-recorder` sidecar: its supervisor, each
//! recording's folder and `recording.json`, and the `/recordings` file route.
//! This file only declares the parts and re-exports their public items; it holds no logic.

mod config;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod ids;
mod locate;
pub(crate) mod sidecar;
mod store;
pub(crate) mod supervisor;

pub use config::{RECORDER_BINARY, RecordingConfig, SHUTDOWN_TIMEOUT, STOP_TIMEOUT, TOKEN_ENV};
pub use error::RecordingError;
pub use ids::is_safe_segment;
pub use store::STATE_FILE;
pub use supervisor::Recordings;
