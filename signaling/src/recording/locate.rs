//! Finding the sidecar binary and `ffmpeg` before a recording starts, and saying what is
//! missing and how to fix it. It never starts a process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::recording::config::RECORDER_BINARY;
use crate::recording::error::RecordingError;

/// The sidecar to run, if it and `ffmpeg` can be found: the configured `recorder`, or else
/// the default places; `search_path` is where `PATH` look-ups go.
pub(super) fn check_available(
    recorder: Option<&Path>,
    search_path: Option<OsString>,
) -> Result<PathBuf, RecordingError> {
    let mut problems = Vec::new();
    let recorder = match recorder {
        Some(path) if is_executable(path) => Some(path.to_path_buf()),
        Some(path) => {
            problems.push(format!(
                "the recorder binary was not found at {}: build it with `cargo build \
                 --release -p switchyard-recorder` or set [recording] recorder",
                path.display()
            ));
            None
        }
        None => {
            let candidates = default_recorder_candidates(search_path.clone());
            let found = candidates.iter().find(|p| is_executable(p)).cloned();
            if found.is_none() {
                let places: Vec<String> =
                    candidates.iter().map(|p| p.display().to_string()).collect();
                problems.push(format!(
                    "the recorder binary was not found at {} or in PATH: build it with \
                     `cargo build --release -p switchyard-recorder` or set [recording] \
                     recorder",
                    places.join(", ")
                ));
            }
            found
        }
    };
    if find_in_path("ffmpeg", search_path).is_none() {
        problems.push(
            "ffmpeg is not installed: apt-get install ffmpeg (the recorder needs it in \
             PATH)"
                .to_owned(),
        );
    }
    match recorder {
        Some(recorder) if problems.is_empty() => Ok(recorder),
        _ => Err(RecordingError::Unavailable(problems.join("; "))),
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    if !metadata.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    true
}

fn find_in_path(name: &str, path: Option<OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Next to this executable, in the folder above it (`target/debug/deps/<test>` finds
/// `target/debug/switchyard-recorder`), then in `PATH`.
fn default_recorder_candidates(path: Option<OsString>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(RECORDER_BINARY));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(RECORDER_BINARY));
        }
    }
    if let Some(found) = find_in_path(RECORDER_BINARY, path) {
        candidates.push(found);
    }
    candidates
}
