//! One recording or broadcast: join the room, feed every participant's media to the decoders
//! and the mix, keep the roster in join order for the grid (and the active speaker for the
//! speaker layout), and finish the output when asked to stop, when the room closes or when the
//! connection is lost. It never publishes: the sidecar only receives the room's media.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Client, ClientEvent};
use protocol::{ServerMessage, TrackKind};
use serde_json::json;

use crate::audio::{AudioDecoders, Mix};
use crate::compositor::{Canvas, PictureSlot};
use crate::decoder::Decoder;
use crate::encoder::{Encoder, EncoderError, Focus, Output, Roster};
use crate::frames::{FrameAssembler, VideoCodec};
use crate::ladder::Sink;

/// How long joining may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long ffmpeg may take to finish the playlist after the inputs end.
const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// What a recording needs.
#[derive(Debug, Clone)]
pub struct RecordingOptions {
    /// The Switchyard server: `http://host:port` (or `ws://host:port/ws`).
    pub server: String,
    pub room: String,
    /// A join token for `room`, normally with the `recorder` grant.
    pub token: String,
    /// Where the output goes.
    pub destination: Destination,
    /// The ffmpeg program.
    pub ffmpeg: PathBuf,
}

/// A recording's folder, or a broadcast's frames.
#[derive(Clone)]
pub enum Destination {
    /// The folder the playlist and segments go to (created if missing).
    Folder(PathBuf),
    /// The broadcast ladder, written as frames to the sink; `speaker_layout`: the canvas
    /// follows the active speaker instead of showing a grid.
    Broadcast { sink: Sink, speaker_layout: bool },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Folder(path) => write!(f, "Folder({})", path.display()),
            Destination::Broadcast { speaker_layout, .. } => {
                write!(f, "Broadcast {{ speaker_layout: {speaker_layout} }}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0} is not installed (not found in PATH): install it, e.g. `apt-get install ffmpeg`")]
    MissingProgram(String),
    #[error("cannot create the output folder {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Connect(#[from] client::ClientError),
    #[error("the server refused to let the recorder join: {0}")]
    JoinRefused(String),
    #[error("the server did not answer the join within {0:?}")]
    JoinTimeout(Duration),
    #[error("the connection to the server was lost: {0}")]
    ConnectionLost(String),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error("the HLS encoder stopped: {0}")]
    EncoderStopped(String),
}

/// What a finished recording cost.
#[derive(Debug, Clone, Copy)]
pub struct Recording {
    /// Wall-clock length of the recording.
    pub duration: Duration,
    /// CPU time of the recorder and its ffmpeg processes together.
    pub cpu_time: Duration,
    /// Largest resident memory of the recorder and its ffmpeg processes together, in bytes.
    pub peak_memory: u64,
    /// How the recording ended (`stopped`, `room_closed`, ...).
    pub ended_by: &'static str,
}

impl Recording {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "durationSeconds": self.duration.as_secs_f64(),
            "cpuSeconds": self.cpu_time.as_secs_f64(),
            "peakMemoryBytes": self.peak_memory,
            "endedBy": self.ended_by,
        })
    }
}

/// Finds `program` as a path or in `PATH`.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The signaling WebSocket URL of a server base URL.
fn websocket_url(server: &str) -> String {
    let server = server.trim_end_matches('/');
    if server.starts_with("ws://") || server.starts_with("wss://") {
        return server.to_owned();
    }
    let rest = server
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| server.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| format!("ws://{server}"));
    format!("{rest}/ws")
}

struct Participant {
    slot: PictureSlot,
    video: Option<(FrameAssembler, Decoder)>,
}

/// Records until `stop` completes, the room closes or the connection is lost. `on_active`
/// runs once the recorder has joined and the playlist is being written.
pub async fn record(
    options: RecordingOptions,
    stop: impl std::future::Future<Output = ()>,
    on_active: impl FnOnce(),
) -> Result<Recording, RecordError> {
    let ffmpeg = find_program(&options.ffmpeg)
        .ok_or_else(|| RecordError::MissingProgram(options.ffmpeg.display().to_string()))?;
    if let Destination::Folder(out) = &options.destination {
        std::fs::create_dir_all(out).map_err(|source| RecordError::Output {
            path: out.clone(),
            source,
        })?;
    }
    let mut client = Client::connect(&websocket_url(&options.server)).await?;
    client.join(&options.room, &options.token);
    let others = wait_joined(&mut client).await?;

    let roster: Roster = Arc::new(Mutex::new(Vec::new()));
    let mix = Mix::default();
    let mut participants: HashMap<String, Participant> = HashMap::new();
    for id in others {
        add_participant(&roster, &mut participants, id);
    }
    let focus: Focus = Arc::default();
    let (output, canvas, follow_speaker) = match options.destination.clone() {
        Destination::Folder(out) => (Output::Hls(out), Canvas::RECORDING, false),
        Destination::Broadcast {
            sink,
            speaker_layout,
        } => (
            Output::Ladder(sink, speaker_layout.then(|| Arc::clone(&focus))),
            Canvas::BROADCAST,
            speaker_layout,
        ),
    };
    let mut encoder = Encoder::start(&ffmpeg, output, Arc::clone(&roster), mix.clone())?;
    let started = Instant::now();
    tracing::info!(room = %options.room, destination = ?options.destination, "recording");
    on_active();

    let mut audio = AudioDecoders::new(mix);
    // Per participant: payload type → video codec, from the negotiated tracks.
    let mut video_codecs: HashMap<String, HashMap<u8, VideoCodec>> = HashMap::new();
    let mut usage = Usage::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(stop);
    let outcome: Result<&'static str, RecordError> = loop {
        tokio::select! {
            _ = &mut stop => break Ok("stopped"),
            _ = tick.tick() => {
                if let Some(reason) = encoder.exited() {
                    break Err(RecordError::EncoderStopped(reason));
                }
                usage.sample(encoder.pid(), participants.values().filter_map(|p| p.video.as_ref().map(|(_, d)| d.pid())));
            }
            event = client.events.recv() => match event {
                None => break Err(RecordError::ConnectionLost("the client stopped".into())),
                Some(ClientEvent::Rtp { participant_id, kind: TrackKind::Audio, payload, .. }) => {
                    audio.decode(&participant_id, &payload);
                }
                Some(ClientEvent::Rtp { participant_id, kind: TrackKind::Video, payload_type, sequence_number, timestamp, marker, payload, .. }) => {
                    let Some(&codec) = video_codecs.get(&participant_id).and_then(|c| c.get(&payload_type)) else { continue };
                    let participant = match participants.get_mut(&participant_id) {
                        Some(p) => p,
                        None => {
                            add_participant(&roster, &mut participants, participant_id.clone());
                            participants.get_mut(&participant_id).expect("just added")
                        }
                    };
                    feed_video(&ffmpeg, canvas, participant, codec, sequence_number, timestamp, marker, &payload);
                }
                Some(ClientEvent::TrackOpened { participant_id, kind: TrackKind::Video, codecs, .. }) => {
                    let known = codecs
                        .iter()
                        .filter_map(|(pt, mime)| Some((*pt, VideoCodec::from_mime(mime)?)))
                        .collect();
                    video_codecs.insert(participant_id, known);
                }
                Some(ClientEvent::Message(ServerMessage::ParticipantJoined { participant })) => {
                    add_participant(&roster, &mut participants, participant.id);
                }
                Some(ClientEvent::Message(ServerMessage::ParticipantLeft { participant_id, .. })) => {
                    participants.remove(&participant_id);
                    audio.remove(&participant_id);
                    video_codecs.remove(&participant_id);
                    if let Ok(mut roster) = roster.lock() {
                        roster.retain(|(id, _)| *id != participant_id);
                    }
                }
                Some(ClientEvent::Message(ServerMessage::TrackUnpublished { participant_id, .. })) => {
                    // Their tile stays, grey until they publish again.
                    if let Some(p) = participants.get_mut(&participant_id) {
                        p.video = None;
                        if let Ok(mut picture) = p.slot.lock() { *picture = None; }
                    }
                }
                Some(ClientEvent::Message(ServerMessage::SpeakersChanged { speakers })) => {
                    // The loudest speaker keeps the canvas until someone else speaks.
                    if let (true, Some(loudest)) = (follow_speaker, speakers.first())
                        && let Ok(mut focus) = focus.lock()
                    {
                        *focus = Some(loudest.participant_id.clone());
                    }
                }
                Some(ClientEvent::Message(ServerMessage::Closed { reason })) => {
                    tracing::info!(?reason, "the server closed the recorder's session");
                    break Ok("room_closed");
                }
                Some(ClientEvent::Closed { code, reason }) => {
                    break Err(RecordError::ConnectionLost(format!("WebSocket closed ({code:?}) {reason}")));
                }
                Some(_) => {}
            }
        }
    };
    client.leave();
    participants.clear(); // stops the decoders
    let duration = started.elapsed();
    let finished = tokio::task::spawn_blocking(move || encoder.finish(FINISH_TIMEOUT))
        .await
        .map_err(|e| RecordError::EncoderStopped(e.to_string()))?;
    let ended_by = outcome?;
    finished?;
    let (cpu_time, own_peak) = own_usage();
    Ok(Recording {
        duration,
        cpu_time,
        peak_memory: usage.peak.max(own_peak),
        ended_by,
    })
}

/// Waits for `joined`; returns the ids of the participants already in the room.
async fn wait_joined(client: &mut Client) -> Result<Vec<String>, RecordError> {
    let deadline = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Err(RecordError::JoinTimeout(JOIN_TIMEOUT)),
            event = client.events.recv() => match event {
                Some(ClientEvent::Message(ServerMessage::Joined { participants, .. })) => {
                    return Ok(participants.into_iter().map(|p| p.id).collect());
                }
                Some(ClientEvent::Message(ServerMessage::Error { code, message })) => {
                    return Err(RecordError::JoinRefused(format!("{code:?}: {message}")));
                }
                Some(ClientEvent::Closed { code, reason }) => {
                    return Err(RecordError::JoinRefused(format!("closed ({code:?}) {reason}")));
                }
                None => return Err(RecordError::ConnectionLost("the client stopped".into())),
                Some(_) => {}
            }
        }
    }
}

fn add_participant(roster: &Roster, participants: &mut HashMap<String, Participant>, id: String) {
    if participants.contains_key(&id) {
        return;
    }
    let slot: PictureSlot = Arc::default();
    if let Ok(mut roster) = roster.lock() {
        roster.push((id.clone(), Arc::clone(&slot)));
    }
    participants.insert(id, Participant { slot, video: None });
}

#[allow(clippy::too_many_arguments)]
fn feed_video(
    ffmpeg: &Path,
    canvas: Canvas,
    participant: &mut Participant,
    codec: VideoCodec,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    payload: &bytes::Bytes,
) {
    if participant
        .video
        .as_ref()
        .is_none_or(|(assembler, _)| assembler.codec() != codec)
    {
        match Decoder::start(ffmpeg, codec, Arc::clone(&participant.slot), canvas) {
            Ok(decoder) => participant.video = Some((FrameAssembler::new(codec), decoder)),
            Err(error) => {
                tracing::warn!(%error, "cannot start a video decoder");
                return;
            }
        }
    }
    let Some((assembler, decoder)) = participant.video.as_mut() else {
        return;
    };
    if let Some((pts, frame)) = assembler.push(sequence, timestamp, marker, payload)
        && !decoder.decode(codec.frame_record(pts, &frame))
    {
        participant.video = None; // restarted with the next packet
    }
}

/// Peak resident memory of the recorder and its ffmpeg processes, sampled.
#[derive(Default)]
struct Usage {
    peak: u64,
}

impl Usage {
    fn sample(&mut self, encoder: u32, decoders: impl Iterator<Item = u32>) {
        let total: u64 = std::iter::once(std::process::id())
            .chain(std::iter::once(encoder))
            .chain(decoders)
            .filter_map(|pid| status_field(&format!("/proc/{pid}/status"), "VmRSS:"))
            .sum();
        self.peak = self.peak.max(total);
    }
}

/// A `kB` field of a `/proc/*/status` file, in bytes.
fn status_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time of this process and its finished children (ffmpeg), and this process's peak RSS.
fn own_usage() -> (Duration, u64) {
    let peak = status_field("/proc/self/status", "VmHWM:").unwrap_or(0);
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (Duration::ZERO, peak);
    };
    // Fields after the command name: utime, stime, cutime, cstime are 14..=17 (1-based).
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = (11..15)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    (Duration::from_millis(ticks * 10), peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_from_the_server_url() {
        assert_eq!(websocket_url("http://h:8080"), "ws://h:8080/ws");
        assert_eq!(websocket_url("https://h/"), "wss://h/ws");
        assert_eq!(websocket_url("ws://h:1/ws"), "ws://h:1/ws");
        assert_eq!(websocket_url("h:8080"), "ws://h:8080/ws");
    }

    #[test]
    fn finds_programs_in_path() {
        assert!(find_program(Path::new("sh")).is_some());
        assert!(find_program(Path::new("no-such-program-here")).is_none());
    }
}
