//! `switchyard-recorder`: records one Switchyard room as HLS until stopped (Ctrl-C, SIGTERM,
//! or the end of stdin with `--control-stdin`), then finishes the playlist. With `--broadcast`
//! it encodes the room's adaptive-bitrate ladder instead and writes it to stdout as frames
//! (`protocol::broadcast`) for the server to package and serve.
//!
//! It reports one JSON object per status: `{"state":"active"}` once recording,
//! `{"summary":{...}}` after a clean stop, `{"state":"failed","reason":"..."}` before a
//! non-zero exit: as lines on stdout, or as status frames with `--broadcast`. Logs never go to
//! stdout: they go to stderr, so stdout carries only these.

use std::path::PathBuf;

use clap::Parser;
use serde_json::json;
use switchyard_recorder::ladder::Sink;
use switchyard_recorder::session::Destination;
use switchyard_recorder::{RecordingOptions, session};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Records a Switchyard room as HLS (composite video + mixed audio)"
)]
struct Args {
    /// The Switchyard server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    server: String,
    /// The room to record.
    #[arg(long)]
    room: String,
    /// Folder for the playlist (playlist.m3u8) and its segments; created if missing.
    #[arg(long, required_unless_present = "broadcast")]
    out: Option<PathBuf>,
    /// Broadcast instead of recording: encode the adaptive-bitrate ladder and write it to stdout
    /// as frames (for the server; never a terminal).
    #[arg(long, conflicts_with = "out")]
    broadcast: bool,
    /// The broadcast's layout: `grid` (everyone) or `speaker` (the active speaker fills the
    /// picture, the others in a row of thumbnails).
    #[arg(long, default_value = "grid", value_parser = ["grid", "speaker"])]
    layout: String,
    /// A join token for the room with the recorder grant (`switchyard token --recorder ROOM`).
    #[arg(long, env = "SWITCHYARD_RECORDER_TOKEN", hide_env_values = true)]
    token: String,
    /// Stop when stdin ends (how the server controls the recorder).
    #[arg(long)]
    control_stdin: bool,
    /// The ffmpeg program.
    #[arg(long, default_value = "ffmpeg")]
    ffmpeg: PathBuf,
}

/// Where status objects go: stdout lines, or status frames in broadcast mode.
#[derive(Clone)]
enum Say {
    Lines,
    Frames(Sink),
}

impl Say {
    fn say(&self, value: serde_json::Value) {
        match self {
            Say::Lines => println!("{value}"),
            Say::Frames(sink) => sink.status(&value),
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "info,rtc=error,rtc_dtls=error,rtc_ice=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (destination, say, writer, stats_file) = match args.out {
        Some(out) => {
            let stats = out.join("recorder-stats.json");
            (Destination::Folder(out), Say::Lines, None, Some(stats))
        }
        None => {
            let (sink, writer) = Sink::stdout();
            let destination = Destination::Broadcast {
                sink: sink.clone(),
                speaker_layout: args.layout == "speaker",
            };
            (destination, Say::Frames(sink), Some(writer), None)
        }
    };
    let options = RecordingOptions {
        server: args.server,
        room: args.room,
        token: args.token,
        destination,
        ffmpeg: args.ffmpeg,
    };
    let control_stdin = args.control_stdin;
    let stop = async move {
        let stdin_closed = async {
            if control_stdin {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stdin_closed => {}
            _ = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let active = say.clone();
    let result = session::record(options, stop, move || {
        active.say(json!({"state": "active"}))
    })
    .await;
    let code = match result {
        Ok(recording) => {
            tracing::info!(?recording, "recording finished");
            let summary = recording.to_json();
            // Kept with the recording: what it cost (CPU time, peak memory).
            if let Some(stats_file) = stats_file
                && let Err(error) = std::fs::write(&stats_file, format!("{summary}\n"))
            {
                tracing::warn!(%error, "cannot write {}", stats_file.display());
            }
            say.say(json!({ "summary": summary }));
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            say.say(json!({"state": "failed", "reason": error.to_string()}));
            std::process::ExitCode::FAILURE
        }
    };
    // Every frame written before exit: the last sink goes with `say`.
    drop(say);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    code
}
