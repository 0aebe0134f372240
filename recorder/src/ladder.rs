//! The broadcast ladder: ffmpeg's options for every rendition of [`protocol::broadcast::LADDER`]
//! (H.264 + AAC, keyframes at the same instants in every rendition, fragments of
//! [`PART_MICROS`]), one loopback connection per rendition that ffmpeg writes fragmented MP4 to,
//! and the threads that cut those streams into parts and hand them to the [`Sink`], which writes
//! them as frames on stdout for the server. It never packages playlists (the server does) and
//! never decodes.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use protocol::broadcast::{
    FrameHeader, FrameKind, INDEPENDENT, LADDER, PART_MICROS, SEGMENT_SECONDS, SEGMENT_START,
};

use crate::fmp4::{self, Piece, Splitter, TrackInfo};

/// H.264 for pictures composed live: fast enough for a shared core, and no look-ahead or
/// B-frames (which would hold pictures back). Recordings and every broadcast rendition use it.
pub const X264_LIVE: [&str; 6] = [
    "-c:v",
    "libx264",
    "-preset",
    "superfast",
    "-tune",
    "zerolatency",
];

/// Frames waiting for stdout; when the server reads slowly, the readers (and so ffmpeg) wait.
const SINK_QUEUE: usize = 256;

/// Where broadcast frames go: a writer thread that owns stdout. Cloning is cheap.
#[derive(Clone)]
pub struct Sink {
    frames: SyncSender<Vec<u8>>,
}

impl Sink {
    /// Starts the thread writing frames to stdout; it ends when every `Sink` is gone.
    pub fn stdout() -> (Sink, JoinHandle<()>) {
        let (frames, queue) = sync_channel(SINK_QUEUE);
        let writer = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_frames(queue))
            .expect("a thread can be started");
        (Sink { frames }, writer)
    }

    /// Sends one status object (as a recording's status line).
    pub fn status(&self, value: &serde_json::Value) {
        self.send(FrameKind::Status, 0, 0, 0, value.to_string().as_bytes());
    }

    /// Sends one frame; `false` once the writer has gone.
    fn send(&self, kind: FrameKind, rendition: u8, flags: u8, micros: u32, payload: &[u8]) -> bool {
        let header = FrameHeader {
            kind,
            rendition,
            flags,
            duration_micros: micros,
            len: payload.len() as u32,
        };
        let mut frame = Vec::with_capacity(protocol::broadcast::HEADER_LEN + payload.len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(payload);
        self.frames.send(frame).is_ok()
    }
}

fn write_frames(queue: Receiver<Vec<u8>>) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for frame in queue {
        if out.write_all(&frame).and_then(|()| out.flush()).is_err() {
            tracing::warn!("stdout is closed: the server stopped reading the broadcast");
            return;
        }
    }
}

/// Adds the ladder's filter and outputs to ffmpeg's `command` (after its two inputs: the canvas
/// and the mix), one loopback listener per rendition, in ladder order. `gop` caps the distance
/// between keyframes in pictures; they come every [`SEGMENT_SECONDS`] by time.
pub fn add_args(command: &mut Command, gop: u32) -> std::io::Result<Vec<TcpListener>> {
    let videos: Vec<(usize, (u32, u32))> = LADDER
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.size?)))
        .collect();
    // The canvas is the top rendition's size: it goes out as it is; the others are scaled.
    let mut filter = format!("[0:v]split={}", videos.len());
    for (i, _) in &videos {
        filter.push_str(&format!("[in{i}]"));
    }
    for (i, (width, height)) in &videos {
        filter.push_str(&format!(
            ";[in{i}]scale={width}:{height}:flags=fast_bilinear[out{i}]"
        ));
    }
    command.args(["-filter_complex", &filter]);
    let gop = gop.to_string();
    let keyframes = format!("expr:gte(t,n_forced*{SEGMENT_SECONDS})");
    let mut listeners = Vec::with_capacity(LADDER.len());
    for (i, rendition) in LADDER.iter().enumerate() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        listeners.push(listener);
        if rendition.size.is_some() {
            let rate = format!("{}k", rendition.video_kbps);
            let buffer = format!("{}k", rendition.video_kbps * 2);
            let profile = if i == 0 { "high" } else { "main" };
            command
                .args(["-map", &format!("[out{i}]"), "-map", "1:a"])
                .args(X264_LIVE)
                .args(["-profile:v", profile, "-pix_fmt", "yuv420p"])
                .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &buffer])
                .args(["-g", &gop, "-sc_threshold", "0"])
                .args(["-force_key_frames", &keyframes])
                // Pictures keep the times they were read at (some may have been skipped).
                .args([
                    "-fps_mode",
                    "passthrough",
                    "-video_track_timescale",
                    "90000",
                ]);
        } else {
            command.args(["-map", "1:a"]);
        }
        let audio_rate = format!("{}k", rendition.audio_kbps);
        command
            .args(["-c:a", "aac", "-b:a", &audio_rate, "-ac", "2"])
            .args(["-f", "mp4", "-movflags"])
            .arg("+frag_keyframe+empty_moov+default_base_moof")
            .args(["-frag_duration", &PART_MICROS.to_string()])
            .args(["-flush_packets", "1"])
            .arg(format!("tcp://127.0.0.1:{port}"));
    }
    Ok(listeners)
}

/// Starts one thread per rendition: it accepts ffmpeg's connection and sends the init segment
/// and every part to `sink`.
pub fn read_streams(
    listeners: Vec<TcpListener>,
    sink: Sink,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    listeners
        .into_iter()
        .enumerate()
        .filter_map(|(i, listener)| {
            let sink = sink.clone();
            let stop = Arc::clone(stop);
            std::thread::Builder::new()
                .name(format!("rendition-{}", LADDER[i].name))
                .spawn(move || read_stream(i as u8, listener, &sink, &stop))
                .ok()
        })
        .collect()
}

fn read_stream(rendition: u8, listener: TcpListener, sink: &Sink, stop: &AtomicBool) {
    let name = LADDER[usize::from(rendition)].name;
    // ffmpeg connects once it has opened its inputs; it may die before it does.
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let socket = loop {
        match listener.accept() {
            Ok((socket, _)) => break socket,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => {
                tracing::warn!(%error, rendition = name, "cannot accept ffmpeg's stream");
                return;
            }
        }
    };
    if socket.set_nonblocking(false).is_err() {
        return;
    }
    let mut splitter = Splitter::new(std::io::BufReader::new(socket));
    let mut cutter = PartCutter::default();
    loop {
        match splitter.next_piece() {
            Ok(Some(Piece::Init(init))) => {
                cutter.tracks = fmp4::tracks(&init);
                if !sink.send(FrameKind::Init, rendition, 0, 0, &init) {
                    return;
                }
            }
            Ok(Some(Piece::Fragment(fragment))) => {
                let (flags, micros) = cutter.cut(&fragment);
                if !sink.send(FrameKind::Part, rendition, flags, micros, &fragment) {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, rendition = name, "the broadcast stream broke");
                return;
            }
        }
    }
}

/// Decides each part's flags and duration from its timing.
#[derive(Default)]
struct PartCutter {
    tracks: Vec<TrackInfo>,
    /// The segment (by start time / [`SEGMENT_SECONDS`]) of the last part, for audio only.
    last_slot: Option<u64>,
}

impl PartCutter {
    /// (flags, duration in µs) of one fragment. A video rendition starts a segment on every
    /// keyframe (the encoder puts one every [`SEGMENT_SECONDS`]); audio only, which is always
    /// independent, when a part starts in the next [`SEGMENT_SECONDS`] slot.
    fn cut(&mut self, fragment: &[u8]) -> (u8, u32) {
        let runs = fmp4::runs(fragment);
        let info = |id: u32| self.tracks.iter().find(|t| t.track_id == id);
        let video = runs
            .iter()
            .find(|r| info(r.track_id).is_some_and(|t| t.video));
        let Some(run) = video.or(runs.first()) else {
            return (0, 0);
        };
        let timescale = info(run.track_id).map_or(90_000, |t| t.timescale.max(1));
        let micros = (run.duration * 1_000_000 / u64::from(timescale)).min(u64::from(u32::MAX));
        let flags = if video.is_some() {
            if run.starts_with_sync {
                INDEPENDENT | SEGMENT_START
            } else {
                0
            }
        } else {
            let slot = run.start / (u64::from(timescale) * u64::from(SEGMENT_SECONDS));
            let starts = self.last_slot.is_none_or(|last| slot > last);
            self.last_slot = Some(slot);
            INDEPENDENT | if starts { SEGMENT_START } else { 0 }
        };
        (flags, micros as u32)
    }
}
