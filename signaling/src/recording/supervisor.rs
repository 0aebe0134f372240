//! The recordings of this server ([`Recordings`]): starting a sidecar per recording,
//! following its status, stopping or killing it, and keeping every state change in
//! `recording.json` and on the event bus. It never serves HTTP.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::Grants;
use protocol::admin::{RecordingInfo, RecordingState, rfc3339};
use sfu::Sfu;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::auth::TokenAuthority;
use crate::recording::config::{RecordingConfig, SHUTDOWN_TIMEOUT, STOP_TIMEOUT, TOKEN_ENV};
use crate::recording::error::RecordingError;
use crate::recording::ids::{new_id, unix_now};
use crate::recording::locate::check_available;
use crate::recording::sidecar::{
    STDERR_TAIL, StatusLine, exit_reason, read_status, read_stderr, server_url,
};
use crate::recording::store::{STATE_FILE, close_playlist, load, persist};

#[cfg(test)]
mod tests;

/// Lifetime of the sidecar's join token.
const TOKEN_TTL: u64 = 24 * 3600;

/// The recordings of this server. Cloning is cheap.
///
/// Starting a recording mints a hidden, subscribe-only join token (the `recorder` grant) and
/// spawns the sidecar, which joins the room over the public signaling protocol and writes
/// `playlist.m3u8`, `init.mp4` and `seg_NNNNN.m4s` into `<dir>/<id>/`. The supervisor reads the
/// sidecar's JSON status lines on stdout, keeps the tail of its stderr for failure reasons,
/// stops it by closing its stdin (killing it if it does not exit in time), and records every
/// state change in `<dir>/<id>/recording.json` and on the event bus (`recording_*` events).
///
/// Recordings stop when asked, when their room closes, and when the server shuts down. Past
/// recordings are loaded from the folder at start-up, so they stay listed across restarts.
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
        let recorder = self.recorder()?;
        let id = new_id();
        let out = self.inner.dir.join(&id);
        std::fs::create_dir_all(&out).map_err(|e| {
            warn!(error = %e, dir = %out.display(), "cannot create a recording folder");
            RecordingError::Storage(format!(
                "cannot create the recording folder {}: {e}; check [recording] dir",
                out.display()
            ))
        })?;
        let mut command = self.sidecar(&recorder, room, &format!("recorder-{id}"), "Recorder");
        let child = command
            .arg("--out")
            .arg(&out)
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

    /// The sidecar, found and checked (`Unavailable` with what to do when it cannot run).
    pub(crate) fn recorder(&self) -> Result<PathBuf, RecordingError> {
        check_available(self.inner.recorder.as_deref(), self.search_path())
    }

    /// The sidecar's command for `room`, joining as the hidden, subscribe-only `identity` (a
    /// token with the `recorder` grant in its environment), stopped by closing its stdin. The
    /// caller adds what it should make and the pipes.
    pub(crate) fn sidecar(
        &self,
        recorder: &Path,
        room: &str,
        identity: &str,
        name: &str,
    ) -> Command {
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
            .mint(identity, name, room, grants, TOKEN_TTL);
        let mut command = Command::new(recorder);
        if let Some(path) = &self.inner.search_path {
            command.env("PATH", path);
        }
        command
            .arg("--server")
            .arg(&self.inner.server_url)
            .arg("--room")
            .arg(room)
            .arg("--control-stdin")
            .env(TOKEN_ENV, token)
            .kill_on_drop(true);
        command
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
