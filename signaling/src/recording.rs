//! HLS recordings: a supervisor for the `switchyard-recorder` sidecar.
//!
//! Starting a recording mints a hidden, subscribe-only join token (the `recorder` grant) and
//! spawns the sidecar, which joins the room over the public signaling protocol and writes
//! `playlist.m3u8`, `init.mp4` and `seg_NNNNN.m4s` into `<dir>/<id>/`. The supervisor reads the
//! sidecar's JSON status lines on stdout, keeps the tail of its stderr for failure reasons,
//! stops it by closing its stdin (killing it if it does not exit in time), and records every
//! state change in `<dir>/<id>/recording.json` and on the event bus (`recording_*` events).
//!
//! Recordings stop when asked, when their room closes, and when the server shuts down. Past
//! recordings are loaded from the folder at start-up, so they stay listed across restarts.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use protocol::Grants;
use protocol::admin::{RecordingInfo, RecordingState, rfc3339};
use rand::Rng;
use serde::Deserialize;
use sfu::Sfu;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::TokenAuthority;

/// The sidecar's binary name.
pub const RECORDER_BINARY: &str = "switchyard-recorder";
/// The environment variable that hands the sidecar its join token (never argv: `ps` shows it).
pub const TOKEN_ENV: &str = "SWITCHYARD_RECORDER_TOKEN";
/// Each recording's own state file, in its folder.
pub const STATE_FILE: &str = "recording.json";
/// How long a stopped sidecar may take to finish its playlist before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long sidecars may take to finish when the server shuts down.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);
/// Lifetime of the sidecar's join token.
const TOKEN_TTL: u64 = 24 * 3600;
/// Lines of the sidecar's stderr kept for failure reasons.
const STDERR_TAIL: usize = 20;
/// Longest status or stderr line read from the sidecar.
const MAX_LINE: usize = 16 * 1024;
/// Reason given to recordings found unfinished at start-up.
const INTERRUPTED: &str = "the server stopped while recording";

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

/// Why a recording request failed. The messages are meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("room {room:?} is already being recorded (recording {id}); stop it first")]
    InProgress { room: String, id: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("room {0:?} has no recording in progress")]
    NoRecording(String),
    #[error("there is no recording {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Storage(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// The recordings of this server. Cloning is cheap.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    recorder: Option<PathBuf>,
    server_url: String,
    tokens: TokenAuthority,
    sfu: Sfu,
    cancel: CancellationToken,
    tasks: TaskTracker,
    entries: Mutex<HashMap<String, Entry>>,
    /// Where `ffmpeg` and the recorder are looked for, and the sidecar's `PATH`; `None`: this
    /// process's `PATH`.
    search_path: Option<OsString>,
    /// How long a stopped sidecar may take ([`STOP_TIMEOUT`]).
    stop_timeout: Duration,
}

struct Entry {
    info: RecordingInfo,
    /// Cancelled to ask a running sidecar to stop; `None` for past recordings.
    stop: Option<CancellationToken>,
}

/// One status line of the sidecar's stdout.
#[derive(Debug, Deserialize)]
struct StatusLine {
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Recordings {
    /// Loads past recordings from `config.dir` (any left unfinished become `failed`), and
    /// starts watching for rooms that close. `http_addr` is where this server's HTTP listener
    /// is bound: sidecars join through it. Cancelling `cancel` stops every recording.
    pub fn start(
        config: RecordingConfig,
        http_addr: SocketAddr,
        tokens: TokenAuthority,
        sfu: Sfu,
        cancel: CancellationToken,
    ) -> Recordings {
        let dir = std::path::absolute(&config.dir).unwrap_or(config.dir);
        let entries = load(&dir)
            .into_iter()
            .map(|info| (info.id.clone(), Entry { info, stop: None }))
            .collect();
        let recordings = Recordings {
            inner: Arc::new(Inner {
                dir,
                recorder: config.recorder,
                server_url: server_url(http_addr),
                tokens,
                sfu,
                cancel,
                tasks: TaskTracker::new(),
                entries: Mutex::new(entries),
                search_path: None,
                stop_timeout: STOP_TIMEOUT,
            }),
        };
        recordings
            .inner
            .tasks
            .spawn(recordings.clone().stop_when_rooms_close());
        recordings
    }

    /// The folder holding the recordings.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Starts recording `room` (which the caller checked is open).
    pub fn start_recording(&self, room: &str) -> Result<RecordingInfo, RecordingError> {
        if self.inner.cancel.is_cancelled() {
            return Err(RecordingError::ShuttingDown);
        }
        let mut entries = self.entries();
        if let Some(running) = entries
            .values()
            .find(|e| e.info.room == room && e.info.state.is_running())
        {
            return Err(RecordingError::InProgress {
                room: room.to_owned(),
                id: running.info.id.clone(),
            });
        }
        let recorder = self.check_available()?;
        let id = new_id();
        let out = self.inner.dir.join(&id);
        std::fs::create_dir_all(&out).map_err(|e| {
            warn!(error = %e, dir = %out.display(), "cannot create a recording folder");
            RecordingError::Storage(format!(
                "cannot create the recording folder {}: {e}; check [recording] dir",
                out.display()
            ))
        })?;
        let identity = format!("recorder-{id}");
        let grants = Grants {
            can_publish: false,
            can_subscribe: true,
            can_publish_data: false,
            hidden: true,
            room_admin: false,
            recorder: true,
        };
        let token = self
            .inner
            .tokens
            .mint(&identity, "Recorder", room, grants, TOKEN_TTL);
        let mut command = Command::new(&recorder);
        if let Some(path) = &self.inner.search_path {
            command.env("PATH", path);
        }
        let child = command
            .arg("--server")
            .arg(&self.inner.server_url)
            .arg("--room")
            .arg(room)
            .arg("--out")
            .arg(&out)
            .arg("--control-stdin")
            .env(TOKEN_ENV, token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir(&out);
                warn!(error = %e, recorder = %recorder.display(), "cannot start the recorder");
                return Err(RecordingError::Unavailable(format!(
                    "cannot start the recorder {}: {e}; check that it is an executable \
                     switchyard-recorder, or set [recording] recorder",
                    recorder.display()
                )));
            }
        };
        let info = RecordingInfo {
            id: id.clone(),
            room: room.to_owned(),
            state: RecordingState::Starting,
            reason: None,
            started_at: rfc3339(unix_now()),
            stopped_at: None,
            playlist_url: format!("/recordings/{id}/playlist.m3u8"),
        };
        info!(room, recording = %id, pid = ?child.id(), "recording starting");
        let stop = CancellationToken::new();
        self.persist_and_announce(&info);
        entries.insert(
            id.clone(),
            Entry {
                info: info.clone(),
                stop: Some(stop.clone()),
            },
        );
        drop(entries);
        self.inner
            .tasks
            .spawn(self.clone().supervise(id, child, stop));
        Ok(info)
    }

    /// Asks `room`'s running recording to stop (its sidecar finishes the playlist).
    pub fn stop_recording(&self, room: &str) -> Result<RecordingInfo, RecordingError> {
        let mut entries = self.entries();
        let entry = entries
            .values_mut()
            .find(|e| e.info.room == room && e.info.state.is_running())
            .ok_or_else(|| RecordingError::NoRecording(room.to_owned()))?;
        if let Some(stop) = &entry.stop {
            stop.cancel();
        }
        if entry.info.state != RecordingState::Stopping {
            entry.info.state = RecordingState::Stopping;
            info!(room, recording = %entry.info.id, "recording stopping");
            self.persist_and_announce(&entry.info);
        }
        Ok(entry.info.clone())
    }

    /// Every recording (of `room` only, if given), newest first.
    pub fn list(&self, room: Option<&str>) -> Vec<RecordingInfo> {
        let mut list: Vec<RecordingInfo> = self
            .entries()
            .values()
            .filter(|e| room.is_none_or(|r| e.info.room == r))
            .map(|e| e.info.clone())
            .collect();
        list.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        list
    }

    /// One recording.
    pub fn get(&self, id: &str) -> Result<RecordingInfo, RecordingError> {
        self.entries()
            .get(id)
            .map(|e| e.info.clone())
            .ok_or_else(|| RecordingError::NotFound(id.to_owned()))
    }

    /// `room`'s running recording, or else its most recent one.
    pub fn latest(&self, room: &str) -> Option<RecordingInfo> {
        let entries = self.entries();
        let of_room = entries.values().filter(|e| e.info.room == room);
        of_room
            .clone()
            .find(|e| e.info.state.is_running())
            .or_else(|| {
                of_room.max_by(|a, b| {
                    a.info
                        .started_at
                        .cmp(&b.info.started_at)
                        .then_with(|| a.info.id.cmp(&b.info.id))
                })
            })
            .map(|e| e.info.clone())
    }

    /// Resolves once every sidecar has exited after the server was told to shut down.
    pub async fn closed(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// The sidecar to run, if it and `ffmpeg` can be found.
    fn check_available(&self) -> Result<PathBuf, RecordingError> {
        let mut problems = Vec::new();
        let recorder = match &self.inner.recorder {
            Some(path) if is_executable(path) => Some(path.clone()),
            Some(path) => {
                problems.push(format!(
                    "the recorder binary was not found at {}: build it with `cargo build \
                     --release -p switchyard-recorder` or set [recording] recorder",
                    path.display()
                ));
                None
            }
            None => {
                let candidates = default_recorder_candidates(self.search_path());
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
        if find_in_path("ffmpeg", self.search_path()).is_none() {
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

    fn search_path(&self) -> Option<OsString> {
        self.inner
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes a recording's state (and reason); a recording that already ended stays ended.
    fn transition(&self, id: &str, state: RecordingState, reason: Option<String>) {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(id) else {
            return;
        };
        if !entry.info.state.is_running() || entry.info.state == state {
            return;
        }
        // A recording asked to stop does not go back to active.
        if state == RecordingState::Active && entry.info.state == RecordingState::Stopping {
            return;
        }
        entry.info.state = state;
        if !state.is_running() {
            entry.info.reason = reason;
            entry.info.stopped_at = Some(rfc3339(unix_now()));
            entry.stop = None;
        }
        let info = &entry.info;
        match state {
            RecordingState::Failed => {
                warn!(room = %info.room, recording = %info.id, reason = ?info.reason, "recording failed")
            }
            _ => info!(room = %info.room, recording = %info.id, %state, "recording state"),
        }
        self.persist_and_announce(info);
    }

    /// Writes `recording.json` and emits the matching event. Called under the entries' lock,
    /// so that the file and the events follow the order of the changes.
    fn persist_and_announce(&self, info: &RecordingInfo) {
        if let Err(e) = persist(&self.inner.dir, info) {
            warn!(recording = %info.id, error = %e, "cannot write {STATE_FILE}");
        }
        let kind = match info.state {
            RecordingState::Active => "recording_started",
            RecordingState::Complete | RecordingState::Failed => "recording_stopped",
            RecordingState::Starting | RecordingState::Stopping => "recording_updated",
        };
        let fields = serde_json::to_value(info).unwrap_or_default();
        self.inner.sfu.events().emit(kind, &info.room, fields);
    }

    /// Stops the recording of every room that closes.
    async fn stop_when_rooms_close(self) {
        let (_, mut live) = self.inner.sfu.events().subscribe(Some(u64::MAX));
        loop {
            let event = tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                event = live.recv() => event,
            };
            match event {
                Ok(event) if event.kind == "room_closed" => {
                    if self.stop_recording(&event.room).is_ok() {
                        info!(room = %event.room, "room closed: recording stopped");
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Events were missed: stop recordings of rooms that are gone.
                    let open: Vec<String> = self
                        .inner
                        .sfu
                        .room_names()
                        .iter()
                        .map(|r| r.to_string())
                        .collect();
                    let orphaned: Vec<String> = self
                        .entries()
                        .values()
                        .filter(|e| e.info.state.is_running() && !open.contains(&e.info.room))
                        .map(|e| e.info.room.clone())
                        .collect();
                    for room in orphaned {
                        let _ = self.stop_recording(&room);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Runs one sidecar to its end.
    async fn supervise(self, id: String, mut child: Child, stop: CancellationToken) {
        let mut stdin: Option<ChildStdin> = child.stdin.take();
        let (status_tx, mut status_rx) = mpsc::channel::<StatusLine>(16);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(read_status(stdout, id.clone(), status_tx)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(read_stderr(
                stderr,
                id.clone(),
                Arc::clone(&stderr_tail),
            )));
        }
        let mut reported_failure: Option<String> = None;
        let mut deadline: Option<(Instant, String)> = None;
        let mut killed: Option<String> = None;
        let mut shutting_down = false;
        let cancel = self.inner.cancel.clone();
        let status = loop {
            let kill_at = deadline.as_ref().map(|(at, _)| *at);
            tokio::select! {
                status = child.wait() => break status,
                Some(line) = status_rx.recv() => {
                    self.on_status(&id, line, &mut reported_failure);
                }
                _ = stop.cancelled(), if stdin.is_some() => {
                    // Closing its stdin is the sidecar's signal to finish the playlist.
                    stdin = None;
                    let timeout = self.inner.stop_timeout;
                    deadline = Some((
                        Instant::now() + timeout,
                        format!("did not stop within {} s", timeout.as_secs()),
                    ));
                }
                _ = cancel.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    stdin = None;
                    self.transition(&id, RecordingState::Stopping, None);
                    let at = Instant::now() + SHUTDOWN_TIMEOUT;
                    if deadline.as_ref().is_none_or(|(d, _)| at < *d) {
                        deadline = Some((
                            at,
                            format!(
                                "did not stop within {} s of the server shutting down",
                                SHUTDOWN_TIMEOUT.as_secs()
                            ),
                        ));
                    }
                }
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    if let Some((_, reason)) = deadline.take() {
                        warn!(recording = %id, "{reason}: killing the recorder");
                        killed = Some(reason);
                    }
                    if let Err(e) = child.start_kill() {
                        warn!(recording = %id, error = %e, "cannot kill the recorder");
                    }
                }
            }
        };
        drop(stdin);
        // Its last lines may still be in the pipes; ffmpeg, if it outlived the sidecar, may hold
        // them open, so do not wait long.
        let drained = futures::future::join_all(readers);
        let _ = tokio::time::timeout(Duration::from_secs(1), drained).await;
        while let Ok(line) = status_rx.try_recv() {
            self.on_status(&id, line, &mut reported_failure);
        }
        let last_stderr = stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .back()
            .cloned();
        let (state, reason) = match status {
            Ok(status) if status.success() && killed.is_none() => (RecordingState::Complete, None),
            Ok(status) => (
                RecordingState::Failed,
                Some(
                    killed
                        .or(reported_failure)
                        .unwrap_or_else(|| exit_reason(status, last_stderr.as_deref())),
                ),
            ),
            Err(e) => (
                RecordingState::Failed,
                Some(format!("lost track of the recorder process: {e}")),
            ),
        };
        let failed = state == RecordingState::Failed;
        self.transition(&id, state, reason);
        if failed {
            tokio::spawn(close_playlist(self.inner.dir.join(&id)));
        }
    }

    fn on_status(&self, id: &str, line: StatusLine, reported_failure: &mut Option<String>) {
        match line.state.as_str() {
            "active" => self.transition(id, RecordingState::Active, None),
            "failed" => {
                *reported_failure = Some(
                    line.reason
                        .filter(|r| !r.trim().is_empty())
                        .unwrap_or_else(|| "the recorder failed without a reason".into()),
                );
            }
            other => debug!(recording = %id, state = other, "recorder status"),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Parses the sidecar's stdout: one JSON object per line.
async fn read_status(
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
async fn read_stderr(
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
fn exit_reason(status: ExitStatus, last_stderr: Option<&str>) -> String {
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
fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// `20261127-220000-` and 16 random lowercase letters and digits (about 82 bits).
fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let random: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let stamp: String = rfc3339(unix_now())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!("{date}-{time}-{random}")
}

/// Whether `name` is safe as one path segment under the recordings folder: letters, digits,
/// `.`, `_` and `-`, not `..`, not hidden.
pub fn is_safe_segment(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn persist(dir: &Path, info: &RecordingInfo) -> std::io::Result<()> {
    let folder = dir.join(&info.id);
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    let temporary = folder.join(format!(".{STATE_FILE}.tmp"));
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, folder.join(STATE_FILE))
}

/// Past recordings in `dir`; those that were running when the server stopped become `failed`.
fn load(dir: &Path) -> Vec<RecordingInfo> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot read the recordings folder");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in read.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| is_safe_segment(n)) else {
            continue;
        };
        let path = entry.path().join(STATE_FILE);
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let mut info: RecordingInfo = match serde_json::from_slice(&text) {
            Ok(info) => info,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "ignoring an unreadable recording");
                continue;
            }
        };
        if info.id != name {
            warn!(file = %path.display(), "ignoring a recording whose id is not its folder's");
            continue;
        }
        if info.state.is_running() {
            info.state = RecordingState::Failed;
            info.reason = Some(INTERRUPTED.into());
            info.stopped_at = Some(rfc3339(unix_now()));
            if let Err(e) = persist(dir, &info) {
                warn!(recording = %info.id, error = %e, "cannot write {STATE_FILE}");
            }
        }
        found.push(info);
    }
    found
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

/// How long an orphaned ffmpeg gets to finish a dead sidecar's playlist by itself.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Ends the playlist of a failed recording so that players treat it as finished (VOD) rather
/// than wait for more: if, once ffmpeg has had time to close it, it still lacks
/// `#EXT-X-ENDLIST`, the tag is appended. Listed segments are complete (ffmpeg renames a
/// segment into place before listing it), so the result plays to its last segment.
async fn close_playlist(folder: PathBuf) {
    tokio::time::sleep(ORPHAN_GRACE).await;
    let playlist = folder.join("playlist.m3u8");
    let Ok(text) = tokio::fs::read_to_string(&playlist).await else {
        return; // nothing was recorded
    };
    if text.contains("#EXT-X-ENDLIST") {
        return;
    }
    let ending = if text.ends_with('\n') { "" } else { "\n" };
    let closed = format!("{text}{ending}#EXT-X-ENDLIST\n");
    match tokio::fs::write(&playlist, closed).await {
        Ok(()) => info!(playlist = %playlist.display(), "closed the failed recording's playlist"),
        Err(error) => warn!(%error, playlist = %playlist.display(), "cannot close the playlist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_unique_and_time_prefixed() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(is_safe_segment(&a), "{a}");
        assert_eq!(a.len(), "20261127-220000-".len() + 16, "{a}");
        assert!(a.starts_with("20"), "{a}");
    }

    #[test]
    fn segments_outside_the_folder_are_refused() {
        for bad in [
            "", "..", ".", "../x", "a/b", "a\\b", ".hidden", "a..b", "seg 1", "é", "a%2Fb",
        ] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
        for good in ["playlist.m3u8", "seg_00001.m4s", "init.mp4", "20261127-x_y"] {
            assert!(is_safe_segment(good), "{good:?}");
        }
    }

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

    /// A stand-in for the sidecar: joins nothing, but speaks its protocol.
    const FAKE_RECORDER: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --room) room="$2"; shift ;;
  esac
  shift
done
[ -n "$SWITCHYARD_RECORDER_TOKEN" ] || { echo '{"state":"failed","reason":"no token"}'; exit 3; }
echo "recording $room" >&2
case "$room" in
  fails) echo '{"state":"failed","reason":"cannot reach the server"}'; exit 3 ;;
  crashes) echo "ffmpeg: boom" >&2; exit 2 ;;
  dies) kill -9 $$ ;;
esac
printf '#EXTM3U\n' > "$out/playlist.m3u8"
echo '{"state":"active"}'
case "$room" in
  stuck) exec sleep 30 ;;
esac
cat > /dev/null
printf '#EXT-X-ENDLIST\n' >> "$out/playlist.m3u8"
exit 0
"#;

    fn executable(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    async fn wait_for_state(
        recordings: &Recordings,
        id: &str,
        state: RecordingState,
    ) -> RecordingInfo {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = recordings.get(id).unwrap();
            if info.state == state {
                return info;
            }
            assert!(Instant::now() < deadline, "still {info:?}, not {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_supervisor_runs_stops_and_reports_the_sidecar() {
        let root = std::env::temp_dir().join(format!("sy-supervisor-{}", new_id()));
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // Every script is written before any process starts (no "text file busy").
        executable(&bin.join("ffmpeg"), "#!/bin/sh\nexit 0\n");
        let recorder = bin.join(RECORDER_BINARY);
        executable(&recorder, FAKE_RECORDER);
        let cancel = CancellationToken::new();
        let sfu = Sfu::start(
            sfu::SfuConfig {
                rtc_port: 0,
                announce_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ..sfu::SfuConfig::default()
            },
            cancel.clone(),
        )
        .await
        .unwrap();
        let mut search_path = OsString::from(&bin);
        search_path.push(":/usr/bin:/bin");
        let recordings = {
            let started = Recordings::start(
                RecordingConfig {
                    dir: root.join("recordings"),
                    recorder: None,
                },
                "0.0.0.0:9".parse().unwrap(),
                TokenAuthority::new("APIkey", "a-secret-that-is-long-enough-for-hs256"),
                sfu.clone(),
                cancel.clone(),
            );
            // The same, with the fake PATH and a short stop timeout.
            Recordings {
                inner: Arc::new(Inner {
                    dir: started.inner.dir.clone(),
                    recorder: Some(recorder.clone()),
                    server_url: started.inner.server_url.clone(),
                    tokens: started.inner.tokens.clone(),
                    sfu: sfu.clone(),
                    cancel: cancel.clone(),
                    tasks: TaskTracker::new(),
                    entries: Mutex::default(),
                    search_path: Some(search_path),
                    stop_timeout: Duration::from_millis(500),
                }),
            }
        };
        recordings
            .inner
            .tasks
            .spawn(recordings.clone().stop_when_rooms_close());
        let (_, mut events) = sfu.events().subscribe(None);

        // A clean run: starting → active → stopping → complete, with a finished playlist.
        let info = recordings.start_recording("demo").unwrap();
        assert_eq!(info.state, RecordingState::Starting);
        assert_eq!(
            info.playlist_url,
            format!("/recordings/{}/playlist.m3u8", info.id)
        );
        wait_for_state(&recordings, &info.id, RecordingState::Active).await;
        assert_eq!(
            recordings.start_recording("demo"),
            Err(RecordingError::InProgress {
                room: "demo".into(),
                id: info.id.clone()
            })
        );
        assert_eq!(recordings.latest("demo").unwrap().id, info.id);
        let stopping = recordings.stop_recording("demo").unwrap();
        assert_eq!(stopping.state, RecordingState::Stopping);
        let done = wait_for_state(&recordings, &info.id, RecordingState::Complete).await;
        assert!(done.stopped_at.is_some() && done.reason.is_none());
        let folder = recordings.dir().join(&info.id);
        let playlist = std::fs::read_to_string(folder.join("playlist.m3u8")).unwrap();
        assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
        let on_disk: RecordingInfo =
            serde_json::from_slice(&std::fs::read(folder.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk, done);
        assert_eq!(
            recordings.stop_recording("demo"),
            Err(RecordingError::NoRecording("demo".into()))
        );
        let mut kinds = Vec::new();
        while let Ok(event) = events.try_recv() {
            if event.kind.starts_with("recording_") {
                kinds.push((event.kind, event.data["state"].as_str().unwrap().to_owned()));
            }
        }
        let kinds: Vec<(&str, &str)> = kinds.iter().map(|(k, s)| (*k, s.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("recording_updated", "starting"),
                ("recording_started", "active"),
                ("recording_updated", "stopping"),
                ("recording_stopped", "complete"),
            ]
        );

        // Failures carry the sidecar's reason, its exit code and last line, or the signal.
        for (room, reason) in [
            ("fails", "cannot reach the server"),
            ("crashes", "recorder exited with code 2: ffmpeg: boom"),
            ("dies", "recorder was killed by signal 9"),
        ] {
            let info = recordings.start_recording(room).unwrap();
            let failed = wait_for_state(&recordings, &info.id, RecordingState::Failed).await;
            assert_eq!(failed.reason.as_deref(), Some(reason), "{room}");
        }

        // A sidecar that ignores the stop is killed after the timeout.
        let info = recordings.start_recording("stuck").unwrap();
        wait_for_state(&recordings, &info.id, RecordingState::Active).await;
        recordings.stop_recording("stuck").unwrap();
        let failed = wait_for_state(&recordings, &info.id, RecordingState::Failed).await;
        assert_eq!(failed.reason.as_deref(), Some("did not stop within 0 s"));

        // The room closing stops its recording.
        let info = recordings.start_recording("closing").unwrap();
        wait_for_state(&recordings, &info.id, RecordingState::Active).await;
        sfu.events()
            .emit("room_closed", "closing", serde_json::json!({}));
        wait_for_state(&recordings, &info.id, RecordingState::Complete).await;

        // Newest first, every room.
        let listed = recordings.list(None);
        assert_eq!(listed.len(), 6);
        assert!(
            listed
                .windows(2)
                .all(|w| (&w[0].started_at, &w[0].id) >= (&w[1].started_at, &w[1].id))
        );
        assert_eq!(recordings.list(Some("demo")).len(), 1);

        // Shutting down stops what still runs, gracefully.
        let info = recordings.start_recording("last").unwrap();
        wait_for_state(&recordings, &info.id, RecordingState::Active).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), recordings.closed())
            .await
            .expect("every sidecar ends");
        assert_eq!(
            recordings.get(&info.id).unwrap().state,
            RecordingState::Complete
        );
        assert_eq!(
            recordings.start_recording("late"),
            Err(RecordingError::ShuttingDown)
        );
        sfu.closed().await;
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn unfinished_recordings_are_failed_at_load() {
        let dir = std::env::temp_dir().join(format!("sy-recordings-{}", new_id()));
        let mk = |id: &str, state, started: u64| {
            std::fs::create_dir_all(dir.join(id)).unwrap();
            let info = RecordingInfo {
                id: id.into(),
                room: "demo".into(),
                state,
                reason: None,
                started_at: rfc3339(started),
                stopped_at: None,
                playlist_url: format!("/recordings/{id}/playlist.m3u8"),
            };
            persist(&dir, &info).unwrap();
        };
        mk("old", RecordingState::Complete, 10);
        mk("cut", RecordingState::Active, 20);
        std::fs::create_dir_all(dir.join("junk")).unwrap();
        std::fs::write(dir.join("junk").join(STATE_FILE), "not json").unwrap();
        let mut loaded = load(&dir);
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].id, "cut");
        assert_eq!(loaded[0].state, RecordingState::Failed);
        assert_eq!(loaded[0].reason.as_deref(), Some(INTERRUPTED));
        assert_eq!(loaded[1].state, RecordingState::Complete);
        let on_disk: RecordingInfo =
            serde_json::from_slice(&std::fs::read(dir.join("cut").join(STATE_FILE)).unwrap())
                .unwrap();
        assert_eq!(on_disk.state, RecordingState::Failed);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
