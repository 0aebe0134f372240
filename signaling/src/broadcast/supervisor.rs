//! The broadcasts of this server ([`Broadcasts`]): one sidecar per broadcasting room, run in
//! broadcast mode, whose stdout frames feed the room's [`Stream`]; stopping it (closing its
//! stdin, killing it if it lingers), stopping it when the room closes, and the
//! `broadcast_started` / `broadcast_stopped` events. It never serves HTTP.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use protocol::admin::{BroadcastInfo, BroadcastLayout, BroadcastState, StartBroadcast, rfc3339};
use protocol::broadcast::{FrameHeader, FrameKind, HEADER_LEN};
use sfu::Sfu;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broadcast::stream::Stream;
use crate::recording::error::RecordingError;
use crate::recording::ids::{new_id, unix_now};
use crate::recording::sidecar::{STDERR_TAIL, exit_reason, read_stderr};
use crate::recording::supervisor::Recordings;
use crate::recording::{SHUTDOWN_TIMEOUT, STOP_TIMEOUT};

/// How long an ended broadcast stays (its playlists end with `EXT-X-ENDLIST`).
const KEEP_ENDED: Duration = Duration::from_secs(60);

/// Why a broadcast cannot start or stop.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("room {0:?} is already broadcasting; stop it first (DELETE)")]
    InProgress(String),
    #[error("room {0:?} is not broadcasting")]
    NotBroadcasting(String),
    #[error(transparent)]
    Sidecar(#[from] RecordingError),
}

/// A room's broadcast: what the API shows, and the stream viewers read.
#[derive(Clone)]
pub struct Live {
    pub info: BroadcastInfo,
    pub stream: Arc<Stream>,
}

struct Entry {
    live: Live,
    stop: CancellationToken,
}

/// The broadcasts of this server. Cloning is cheap.
#[derive(Clone)]
pub struct Broadcasts {
    inner: Arc<Inner>,
}

struct Inner {
    recordings: Recordings,
    sfu: Sfu,
    cancel: CancellationToken,
    tasks: TaskTracker,
    rooms: Mutex<HashMap<String, Entry>>,
}

impl Broadcasts {
    /// Sidecars are found and started as [`Recordings`] starts its own; `cancel` stops every
    /// broadcast.
    pub fn start(recordings: Recordings, sfu: Sfu, cancel: CancellationToken) -> Broadcasts {
        let broadcasts = Broadcasts {
            inner: Arc::new(Inner {
                recordings,
                sfu,
                cancel,
                tasks: TaskTracker::new(),
                rooms: Mutex::new(HashMap::new()),
            }),
        };
        broadcasts
            .inner
            .tasks
            .spawn(broadcasts.clone().stop_when_rooms_close());
        broadcasts
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `room`'s broadcast, running or recently ended.
    pub fn get(&self, room: &str) -> Option<Live> {
        self.rooms().get(room).map(|e| e.live.clone())
    }

    /// Starts broadcasting `room` (which the caller checked is open).
    pub fn start_broadcast(
        &self,
        room: &str,
        request: StartBroadcast,
    ) -> Result<BroadcastInfo, BroadcastError> {
        if self.inner.cancel.is_cancelled() {
            return Err(RecordingError::ShuttingDown.into());
        }
        let mut rooms = self.rooms();
        if rooms
            .get(room)
            .is_some_and(|e| is_running(e.live.info.state))
        {
            return Err(BroadcastError::InProgress(room.to_owned()));
        }
        let recorder = self.inner.recordings.recorder()?;
        let id = new_id();
        let layout = match request.layout {
            BroadcastLayout::Grid => "grid",
            BroadcastLayout::Speaker => "speaker",
        };
        let child = self
            .inner
            .recordings
            .sidecar(&recorder, room, &format!("broadcast-{id}"), "Broadcast")
            .args(["--broadcast", "--layout", layout])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                RecordingError::Unavailable(format!(
                    "cannot start the sidecar {}: {e}; check that it is an executable \
                     switchyard-recorder, or set [recording] recorder",
                    recorder.display()
                ))
            })?;
        let info = BroadcastInfo {
            id: id.clone(),
            room: room.to_owned(),
            state: BroadcastState::Starting,
            public: request.public,
            layout: request.layout,
            reason: None,
            started_at: rfc3339(unix_now()),
            stopped_at: None,
            watch_url: format!("/watch/{room}"),
            playlist_url: format!("/watch/{room}/live.m3u8"),
            cpu_seconds: None,
            peak_memory_bytes: None,
        };
        info!(room, broadcast = %id, layout, public = request.public, "broadcast starting");
        let stop = CancellationToken::new();
        let live = Live {
            info: info.clone(),
            stream: Arc::new(Stream::new(id)),
        };
        rooms.insert(
            room.to_owned(),
            Entry {
                live: live.clone(),
                stop: stop.clone(),
            },
        );
        drop(rooms);
        self.inner
            .tasks
            .spawn(self.clone().supervise(room.to_owned(), child, live, stop));
        Ok(info)
    }

    /// Asks `room`'s broadcast to stop.
    pub fn stop_broadcast(&self, room: &str) -> Result<BroadcastInfo, BroadcastError> {
        let mut rooms = self.rooms();
        let entry = rooms
            .get_mut(room)
            .filter(|e| is_running(e.live.info.state))
            .ok_or_else(|| BroadcastError::NotBroadcasting(room.to_owned()))?;
        entry.stop.cancel();
        entry.live.info.state = BroadcastState::Stopping;
        Ok(entry.live.info.clone())
    }

    /// Resolves once every sidecar has exited after the server was told to shut down.
    pub async fn closed(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Changes `room`'s broadcast `id` to `state`, announcing starts and ends.
    fn transition(&self, room: &str, id: &str, state: BroadcastState, reason: Option<String>) {
        let mut rooms = self.rooms();
        let Some(entry) = rooms.get_mut(room).filter(|e| e.live.info.id == id) else {
            return;
        };
        let info = &mut entry.live.info;
        if !is_running(info.state) || info.state == state {
            return;
        }
        if state == BroadcastState::Live && info.state == BroadcastState::Stopping {
            return;
        }
        info.state = state;
        let kind = match state {
            BroadcastState::Live => "broadcast_started",
            BroadcastState::Ended | BroadcastState::Failed => {
                info.stopped_at = Some(rfc3339(unix_now()));
                info.reason = reason;
                "broadcast_stopped"
            }
            _ => return,
        };
        info!(room, broadcast = %id, ?state, reason = ?info.reason, "broadcast");
        let fields = serde_json::to_value(&*info).unwrap_or_default();
        self.inner.sfu.events().emit(kind, room, fields);
    }

    /// Keeps what the ended sidecar says it cost.
    fn cost(&self, room: &str, id: &str, summary: &serde_json::Value) {
        let mut rooms = self.rooms();
        if let Some(entry) = rooms.get_mut(room).filter(|e| e.live.info.id == id) {
            entry.live.info.cpu_seconds = summary.get("cpuSeconds").and_then(|v| v.as_f64());
            entry.live.info.peak_memory_bytes =
                summary.get("peakMemoryBytes").and_then(|v| v.as_u64());
        }
    }

    async fn stop_when_rooms_close(self) {
        let (_, mut live) = self.inner.sfu.events().subscribe(Some(u64::MAX));
        loop {
            let event = tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                event = live.recv() => event,
            };
            match event {
                Ok(event) if event.kind == "room_closed" => {
                    let _ = self.stop_broadcast(&event.room);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Runs one sidecar to its end, feeding its frames to the stream.
    async fn supervise(self, room: String, mut child: Child, live: Live, stop: CancellationToken) {
        let id = live.info.id.clone();
        let mut stdin = child.stdin.take();
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(read_stderr(stderr, id.clone(), Arc::clone(&tail)));
        }
        let (status_tx, mut status_rx) = tokio::sync::mpsc::channel::<serde_json::Value>(16);
        let reader = child
            .stdout
            .take()
            .map(|stdout| tokio::spawn(read_frames(stdout, Arc::clone(&live.stream), status_tx)));
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut reported: Option<String> = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(status) = status_rx.recv() => {
                    match status.get("state").and_then(|s| s.as_str()) {
                        Some("active") => self.transition(&room, &id, BroadcastState::Live, None),
                        Some("failed") => {
                            reported = status.get("reason").and_then(|r| r.as_str()).map(str::to_owned);
                        }
                        _ => {}
                    }
                    if let Some(summary) = status.get("summary") {
                        self.cost(&room, &id, summary);
                    }
                }
                _ = stop.cancelled(), if stdin.is_some() => {
                    stdin = None; // the sidecar's signal to finish
                    kill_at = Some(tokio::time::Instant::now() + STOP_TIMEOUT);
                }
                _ = self.inner.cancel.cancelled(), if stdin.is_some() => {
                    stdin = None;
                    kill_at = Some(tokio::time::Instant::now() + SHUTDOWN_TIMEOUT);
                }
                _ = sleep_until(kill_at), if kill_at.is_some() => {
                    warn!(room, broadcast = %id, "the broadcast sidecar did not stop: killing it");
                    kill_at = None;
                    let _ = child.start_kill();
                }
            }
        };
        drop(stdin);
        if let Some(reader) = reader {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        // The last status frames (the summary) may arrive after the exit.
        while let Ok(status) = status_rx.try_recv() {
            if let Some(reason) = status.get("reason").and_then(|r| r.as_str()) {
                reported = Some(reason.to_owned());
            }
            if let Some(summary) = status.get("summary") {
                self.cost(&room, &id, summary);
            }
        }
        live.stream.end();
        let last = tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .back()
            .cloned();
        let (state, reason) = match status {
            Ok(status) if status.success() => (BroadcastState::Ended, None),
            Ok(status) => (
                BroadcastState::Failed,
                Some(reported.unwrap_or_else(|| exit_reason(status, last.as_deref()))),
            ),
            Err(e) => (
                BroadcastState::Failed,
                Some(format!("lost track of the broadcast sidecar: {e}")),
            ),
        };
        self.transition(&room, &id, state, reason);
        // The ended broadcast stays a while for players to reach its end, unless replaced.
        tokio::select! {
            _ = tokio::time::sleep(KEEP_ENDED) => {}
            _ = self.inner.cancel.cancelled() => {}
        }
        let mut rooms = self.rooms();
        if rooms.get(&room).is_some_and(|e| e.live.info.id == id) {
            rooms.remove(&room);
        }
    }
}

fn is_running(state: BroadcastState) -> bool {
    matches!(
        state,
        BroadcastState::Starting | BroadcastState::Live | BroadcastState::Stopping
    )
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads the sidecar's frames until its stdout ends or breaks the format.
async fn read_frames(
    mut stdout: ChildStdout,
    stream: Arc<Stream>,
    status: tokio::sync::mpsc::Sender<serde_json::Value>,
) {
    let mut header = [0u8; HEADER_LEN];
    loop {
        if stdout.read_exact(&mut header).await.is_err() {
            return;
        }
        let frame = match FrameHeader::decode(&header) {
            Ok(frame) => frame,
            Err(error) => {
                warn!(%error, "the broadcast sidecar's output is malformed; ignoring the rest");
                return;
            }
        };
        let mut payload = BytesMut::zeroed(frame.len as usize);
        if stdout.read_exact(&mut payload).await.is_err() {
            return;
        }
        let payload: Bytes = payload.freeze();
        let rendition = usize::from(frame.rendition);
        match frame.kind {
            FrameKind::Status => {
                if let Ok(value) = serde_json::from_slice(&payload) {
                    let _ = status.send(value).await;
                }
            }
            FrameKind::Init => stream.set_init(rendition, payload),
            FrameKind::Part => stream.push_part(
                rendition,
                frame.flags,
                f64::from(frame.duration_micros) / 1e6,
                payload,
            ),
        }
    }
}
