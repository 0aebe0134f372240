//! The encoder: one ffmpeg process that encodes the composed canvas (raw YUV on stdin) to
//! H.264 and the mix (raw PCM over a loopback TCP connection) to AAC, and either writes an fMP4
//! HLS event playlist (a recording) or the broadcast ladder's fragmented MP4 streams
//! ([`crate::ladder`]). Two threads feed it, paced by the wall clock: the canvas at [`FPS`] and
//! the mix every 20 ms, so audio and video stay in step with real time and with each other.
//!
//! Crash safety comes from ffmpeg's HLS muxer: a segment is written to a temporary file and
//! renamed, and only then listed in the playlist, so a listed segment is always complete. If
//! the recorder dies, ffmpeg sees its inputs end, finishes the segment in progress and closes
//! the playlist. The recorder never writes a segment or the playlist itself.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::{FRAME_SAMPLES, Mix, SAMPLE_RATE, to_pcm};
use crate::compositor::{Canvas, PictureSlot, compose};
use crate::ladder::{self, Sink};

/// Canvas frames per second.
pub const FPS: u32 = 15;
/// Segment length in seconds; a keyframe starts every segment.
pub const SEGMENT_SECONDS: u32 = 2;
/// How long a broadcast's ffmpeg may take to end once its inputs have.
const LIVE_FINISH: Duration = Duration::from_secs(3);
/// Pictures ffmpeg may hold before encoding them in a broadcast (its default, 8, is half a
/// second at 15 fps: latency the viewers would see whenever the encoders are busy).
const LIVE_INPUT_QUEUE: &str = "2";
/// The playlist's file name inside the output folder.
pub const PLAYLIST: &str = "playlist.m3u8";

/// Who is on the canvas, in order: participant id and latest picture.
pub type Roster = Arc<std::sync::Mutex<Vec<(String, PictureSlot)>>>;
/// The participant the speaker layout fills the canvas with; `None` inside: the grid.
pub type Focus = Arc<std::sync::Mutex<Option<String>>>;

/// Where the encoder's output goes.
pub enum Output {
    /// A recording: `playlist.m3u8` and its segments in this folder.
    Hls(PathBuf),
    /// A broadcast: the ladder's streams, as frames on `Sink`; with a `Focus`, the canvas
    /// follows the active speaker, else it is the grid.
    Ladder(Sink, Option<Focus>),
}

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("cannot start ffmpeg ({path}): {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the audio input for ffmpeg: {0}")]
    AudioSocket(std::io::Error),
    #[error("cannot open a loopback socket for ffmpeg's broadcast streams: {0}")]
    OutputSocket(std::io::Error),
    #[error("ffmpeg failed ({status}): {detail}")]
    Failed { status: ExitStatus, detail: String },
    #[error("ffmpeg did not finish within {0:?}")]
    Stuck(Duration),
}

pub struct Encoder {
    child: Child,
    stop: Arc<AtomicBool>,
    video: Option<JoinHandle<()>>,
    audio: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
    /// The ladder's stream readers (none for a recording).
    outputs: Vec<JoinHandle<()>>,
    /// A broadcast: nothing to finalise once its inputs end.
    live: bool,
}

impl Encoder {
    /// Starts ffmpeg writing `output` and the threads that feed it.
    pub fn start(
        ffmpeg: &Path,
        output: Output,
        roster: Roster,
        mix: Mix,
    ) -> Result<Encoder, EncoderError> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(EncoderError::AudioSocket)?;
        let audio_port = listener
            .local_addr()
            .map_err(EncoderError::AudioSocket)?
            .port();
        let (canvas, focus) = match &output {
            Output::Hls(_) => (Canvas::RECORDING, None),
            Output::Ladder(_, focus) => (Canvas::BROADCAST, focus.clone()),
        };
        let size = format!("{}x{}", canvas.width, canvas.height);
        let fps = FPS.to_string();
        // Live: a picture's time is when ffmpeg reads it, and pictures that are late are
        // skipped, so a slow moment never builds a backlog (a recording keeps every frame).
        let live = matches!(output, Output::Ladder(..));
        let mut command = Command::new(ffmpeg);
        command.args(["-hide_banner", "-loglevel", "error", "-nostats", "-y"]);
        if live {
            // ffmpeg's input queue holds at most LIVE_INPUT_QUEUE pictures: when the encoders
            // fall behind, the canvas thread's writes wait and it skips pictures instead.
            command
                .args(["-use_wallclock_as_timestamps", "1"])
                .args(["-thread_queue_size", LIVE_INPUT_QUEUE]);
        }
        command
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", &size])
            .args(["-r", &fps, "-i", "pipe:0"])
            .args(["-f", "s16le", "-ar", "48000", "-ac", "1"])
            .arg("-i")
            .arg(format!("tcp://127.0.0.1:{audio_port}"));
        let streams = match output {
            Output::Hls(out) => {
                hls_args(&mut command, &out);
                None
            }
            Output::Ladder(sink, _) => {
                let listeners = ladder::add_args(&mut command, 2 * FPS * SEGMENT_SECONDS)
                    .map_err(EncoderError::OutputSocket)?;
                Some((listeners, sink))
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| EncoderError::Spawn {
                path: ffmpeg.to_owned(),
                source,
            })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stop = Arc::new(AtomicBool::new(false));
        let outputs = match streams {
            Some((listeners, sink)) => ladder::read_streams(listeners, sink, &stop),
            None => Vec::new(),
        };
        let started = Instant::now();
        let video = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("canvas".into())
                .spawn(move || feed_video(stdin, roster, canvas, focus, live, started, &stop))
                .ok()
        };
        let audio = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("mix".into())
                .spawn(move || feed_audio(listener, mix, started, !live, &stop))
                .ok()
        };
        let stderr = std::thread::Builder::new()
            .name("ffmpeg-log".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                text
            })
            .ok();
        Ok(Encoder {
            child,
            stop,
            video,
            audio,
            stderr,
            outputs,
            live,
        })
    }

    /// `Some` when ffmpeg has exited on its own (it should not before [`Encoder::finish`]).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("ffmpeg exited early ({status})")),
            Ok(None) => None,
            Err(error) => Some(format!("cannot watch ffmpeg: {error}")),
        }
    }

    /// Ends both inputs and waits for ffmpeg to finish the last segment and the playlist.
    pub fn finish(mut self, timeout: Duration) -> Result<(), EncoderError> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in [self.video.take(), self.audio.take()].into_iter().flatten() {
            let _ = thread.join();
        }
        let deadline = Instant::now() + timeout;
        let live_deadline = Instant::now() + LIVE_FINISH;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                // A broadcast has no file to finish: the server ends its playlists, so ffmpeg
                // is not waited for long (its last part may be lost).
                Ok(None) if self.live && Instant::now() >= live_deadline => {
                    let _ = self.child.kill();
                    break self
                        .child
                        .wait()
                        .map_err(|_| EncoderError::Stuck(LIVE_FINISH))?;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(EncoderError::Stuck(timeout));
                }
            }
        };
        // ffmpeg has closed its streams: the readers have sent their last parts.
        for thread in self.outputs.drain(..) {
            let _ = thread.join();
        }
        let log = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if status.success() || self.live {
            Ok(())
        } else {
            Err(EncoderError::Failed {
                status,
                detail: log.lines().last().unwrap_or("no output").to_owned(),
            })
        }
    }

    /// The ffmpeg process id (for resource accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A recording's encoding and HLS muxer options.
fn hls_args(command: &mut Command, out: &Path) {
    let gop = (FPS * SEGMENT_SECONDS).to_string();
    command
        .args(["-map", "0:v", "-map", "1:a"])
        .args(ladder::X264_LIVE)
        .args(["-profile:v", "main", "-pix_fmt", "yuv420p", "-crf", "26"])
        .args(["-maxrate", "2500k", "-bufsize", "5000k"])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
        .args(["-f", "hls", "-hls_time", &SEGMENT_SECONDS.to_string()])
        .args(["-hls_list_size", "0", "-hls_playlist_type", "event"])
        .args([
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ])
        .args([
            "-hls_flags",
            "program_date_time+independent_segments+temp_file",
        ])
        .arg("-hls_segment_filename")
        .arg(out.join("seg_%05d.m4s"))
        .arg(out.join(PLAYLIST));
}

impl Drop for Encoder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Writes one canvas per frame interval; when late, a recording catches up by repeating the
/// canvas, a live broadcast skips the missed intervals.
fn feed_video(
    mut stdin: ChildStdin,
    roster: Roster,
    canvas: Canvas,
    focus: Option<Focus>,
    live: bool,
    started: Instant,
    stop: &AtomicBool,
) {
    let mut buffer = vec![0; canvas.bytes()];
    let mut written: u64 = 0;
    let frame = Duration::from_secs(1) / FPS;
    while !stop.load(Ordering::SeqCst) {
        let due = (started.elapsed().as_secs_f64() * f64::from(FPS)) as u64 + 1;
        if written < due {
            let speaker = focus
                .as_ref()
                .and_then(|f| f.lock().ok().and_then(|f| f.clone()));
            let (tiles, focused): (Vec<_>, Option<usize>) = match roster.lock() {
                Ok(roster) => (
                    roster
                        .iter()
                        .map(|(_, slot)| slot.lock().ok().and_then(|p| p.clone()))
                        .collect(),
                    speaker.and_then(|s| roster.iter().position(|(id, _)| *id == s)),
                ),
                Err(_) => return,
            };
            // The speaker layout with nobody speaking yet focuses on the first participant.
            let focused = focus.as_ref().map(|_| focused.unwrap_or(0));
            compose(&mut buffer, canvas, &tiles, focused);
            if live {
                written = due - 1;
            }
            while written < due {
                if stdin.write_all(&buffer).is_err() {
                    return;
                }
                written += 1;
            }
        }
        let next = started + frame * (written as u32);
        std::thread::sleep(next.saturating_duration_since(Instant::now()).min(frame));
    }
}

/// Writes 20 ms of the mix per interval to ffmpeg's audio connection.
fn feed_audio(listener: TcpListener, mix: Mix, started: Instant, pad: bool, stop: &AtomicBool) {
    // ffmpeg connects once it has opened its first input.
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut socket = loop {
        match listener.accept() {
            Ok((socket, _)) => break socket,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return,
        }
    };
    if socket.set_nonblocking(false).is_err() {
        return;
    }
    let _ = socket.set_nodelay(true);
    let mut mixed = [0i32; FRAME_SAMPLES];
    let mut pcm = Vec::with_capacity(FRAME_SAMPLES * 2);
    let mut written: u64 = 0;
    let step = Duration::from_millis(20);
    while !stop.load(Ordering::SeqCst) {
        let due = (started.elapsed().as_secs_f64() * SAMPLE_RATE as f64) as u64;
        while written + FRAME_SAMPLES as u64 <= due {
            mix.mix_into(&mut mixed);
            to_pcm(&mixed, &mut pcm);
            if socket.write_all(&pcm).is_err() {
                return;
            }
            written += FRAME_SAMPLES as u64;
        }
        std::thread::sleep(step);
    }
    if !pad {
        return;
    }
    // Pad the audio to the video's length so both streams end together.
    let due = (started.elapsed().as_secs_f64() * SAMPLE_RATE as f64) as u64;
    mixed.fill(0);
    to_pcm(&mixed, &mut pcm);
    while written < due {
        if socket.write_all(&pcm).is_err() {
            return;
        }
        written += FRAME_SAMPLES as u64;
    }
}
