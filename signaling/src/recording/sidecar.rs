//! Talking to one running sidecar: where it reaches this server, its JSON status lines on
//! stdout, the tail of its stderr, and the reason its exit gives. It never changes a
//! recording's state (the supervisor does).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};
use tracing::{debug, info};

/// Lines of the sidecar's stderr kept for failure reasons.
pub(crate) const STDERR_TAIL: usize = 20;
/// Longest status or stderr line read from the sidecar.
const MAX_LINE: usize = 16 * 1024;

/// One status line of the sidecar's stdout.
#[derive(Debug, Deserialize)]
pub(super) struct StatusLine {
    pub(super) state: String,
    #[serde(default)]
    pub(super) reason: Option<String>,
}

/// Parses the sidecar's stdout: one JSON object per line.
pub(super) async fn read_status(
    stdout: tokio::process::ChildStdout,
    id: String,
    status: mpsc::Sender<StatusLine>,
) {
    let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => match serde_json::from_str::<StatusLine>(&line) {
                Ok(parsed) => {
                    if status.send(parsed).await.is_err() {
                        return;
                    }
                }
                Err(_) => debug!(recording = %id, line, "recorder stdout"),
            },
            Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => {
                debug!(recording = %id, "recorder stdout: an over-long line was skipped");
            }
            Err(tokio_util::codec::LinesCodecError::Io(_)) => return,
        }
    }
}

/// Forwards the sidecar's stderr to the log and keeps its last lines.
pub(crate) async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    id: String,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => continue,
            Err(tokio_util::codec::LinesCodecError::Io(_)) => return,
        };
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        info!(recording = %id, "recorder: {line}");
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// "recorder was killed by signal 9", "recorder exited with code 3: <its last stderr line>".
pub(crate) fn exit_reason(status: ExitStatus, last_stderr: Option<&str>) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("recorder was killed by signal {signal}");
        }
    }
    let code = status
        .code()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into());
    match last_stderr {
        Some(line) => format!("recorder exited with code {code}: {line}"),
        None => format!("recorder exited with code {code}"),
    }
}

/// Where the sidecar reaches this server: the bound address, with loopback for a wildcard.
pub(super) fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_reached_over_loopback() {
        assert_eq!(
            server_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_url("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
        assert_eq!(
            server_url("192.0.2.1:80".parse().unwrap()),
            "http://192.0.2.1:80"
        );
    }

    #[test]
    fn exit_reasons_name_the_signal_or_the_code_and_last_line() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            exit_reason(ExitStatus::from_raw(9), None),
            "recorder was killed by signal 9"
        );
        assert_eq!(
            exit_reason(ExitStatus::from_raw(3 << 8), Some("ffmpeg: boom")),
            "recorder exited with code 3: ffmpeg: boom"
        );
    }
}
