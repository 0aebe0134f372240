//! `switchyard-recorder`: records one Switchyard room as HLS until stopped (Ctrl-C, SIGTERM,
//! or the end of stdin with `--control-stdin`), then finishes the playlist.
//!
//! It reports on stdout, one JSON object per line: `{"state":"active"}` once recording,
//! `{"summary":{...}}` after a clean stop, `{"state":"failed","reason":"..."}` before a
//! non-zero exit. Logs never go to stdout: they go to stderr, so stdout carries only these lines.

use std::path::PathBuf;

use clap::Parser;
use serde_json::json;
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
    #[arg(long)]
    out: PathBuf,
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

fn say(value: serde_json::Value) {
    println!("{value}");
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
    let options = RecordingOptions {
        server: args.server,
        room: args.room,
        token: args.token,
        out: args.out,
        ffmpeg: args.ffmpeg,
    };
    let control_stdin = args.control_stdin;
    let stats_file = options.out.join("recorder-stats.json");
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
    let result = session::record(options, stop, || say(json!({"state": "active"}))).await;
    match result {
        Ok(recording) => {
            tracing::info!(?recording, "recording finished");
            let summary = recording.to_json();
            // Kept with the recording: what it cost (CPU time, peak memory).
            if let Err(error) = std::fs::write(&stats_file, format!("{summary}\n")) {
                tracing::warn!(%error, "cannot write {}", stats_file.display());
            }
            say(json!({ "summary": summary }));
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            say(json!({"state": "failed", "reason": error.to_string()}));
            std::process::ExitCode::FAILURE
        }
    }
}
