//! Crash safety: `kill -9` of the recording sidecar mid-recording. Every segment the playlist
//! lists must be complete and decodable, and the API must report the recording failed with the
//! reason. A restarted recording starts a new playlist (a new id). The harsher case, the
//! sidecar and its ffmpeg processes killed together, must leave the listed segments decodable
//! too, and the server then ends the playlist.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Admin, Playlist, decode_segments};
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::start_server;

const RECORDER: &str = env!("CARGO_BIN_EXE_switchyard-recorder");
const ROOM: &str = "crash";

/// The playlist in `dir` follows the rules, lists at least 3 segments, and every one of them
/// decodes.
fn listed_segments_decode(dir: &std::path::Path) -> Playlist {
    let playlist = Playlist::read(&dir.join("playlist.m3u8"));
    println!(
        "{} listed segments, {:.1} s, ended {}",
        playlist.segments.len(),
        playlist.duration(),
        playlist.ended
    );
    assert!(playlist.segments.len() >= 3);
    playlist.check_rules();
    decode_segments(dir, &playlist);
    playlist
}

/// Waits (at most 15 s) until the playlist in `dir` carries `#EXT-X-ENDLIST`.
async fn wait_until_ended(dir: &std::path::Path) {
    let start = Instant::now();
    while !Playlist::read(&dir.join("playlist.m3u8")).ended {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the failed recording's playlist was never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Process ids whose command line contains every one of `needles`.
fn processes_with(needles: &[&str]) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) {
            found.push(pid);
        }
    }
    found
}

/// Children of `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn kill_9(pids: &[u32]) {
    let status = std::process::Command::new("kill")
        .arg("-9")
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -9 {pids:?} failed");
}

/// What this test asks of the admin API.
trait RecordingApi {
    async fn start(&self) -> String;
    async fn wait_state(&self, id: &str, wanted: &str, within: Duration) -> Value;
}

impl RecordingApi for Admin {
    async fn start(&self) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/rooms/{ROOM}/recording"),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn wait_state(&self, id: &str, wanted: &str, within: Duration) -> Value {
        let start = Instant::now();
        loop {
            let (_, recording) = self
                .call(reqwest::Method::GET, &format!("/api/recordings/{id}"))
                .await;
            if recording["state"] == wanted {
                return recording;
            }
            assert!(
                start.elapsed() < within,
                "recording {id} not {wanted}: {recording}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Records until the playlist lists `segments` segments, then returns the sidecar's pid.
async fn record_until_segments(dir: &std::path::Path, id: &str, segments: usize) -> u32 {
    let start = Instant::now();
    loop {
        let listed = std::fs::read_to_string(dir.join("playlist.m3u8"))
            .map(|t| Playlist::parse(&t).segments.len())
            .unwrap_or(0);
        if listed >= segments {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no segments");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Mid-segment, not on a boundary.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let pids = processes_with(&["switchyard-recorder", id]);
    assert_eq!(pids.len(), 1, "one sidecar for {id}: {pids:?}");
    pids[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recorder_leaves_decodable_segments_and_a_failed_recording() {
    let server = start_server(None, |config| {
        config.recorder = Some(PathBuf::from(RECORDER));
    })
    .await;
    let admin = Admin::new(&server);
    let driver = Driver::start().await.expect("chromedriver");
    let pages = driver
        .call_pages(server.http_addr.port(), ROOM, &["Alice", "Bob"], "")
        .await
        .expect("pages load");
    let start = Instant::now();
    while eval(
        &pages[0],
        "return window.switchyard.remoteParticipants().length",
    )
    .await
    .ok()
    .and_then(|v| v.as_u64())
        != Some(1)
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no call");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 1. kill -9 of the sidecar alone.
    let id = admin.start().await;
    let dir = server.recordings().dir().join(&id);
    let recorder = record_until_segments(&dir, &id, 3).await;
    kill_9(&[recorder]);
    let failed = admin
        .wait_state(&id, "failed", Duration::from_secs(10))
        .await;
    println!("after kill -9 of the sidecar: {failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("signal 9"),
        "the reason names the kill: {failed}"
    );
    // Its ffmpeg sees its inputs end and closes the playlist.
    wait_until_ended(&dir).await;
    listed_segments_decode(&dir);

    // 2. A restart starts a new recording, with its own playlist.
    let second = admin.start().await;
    assert_ne!(second, id, "a restart is a new recording");
    let dir = server.recordings().dir().join(&second);
    let recorder = record_until_segments(&dir, &second, 3).await;

    // 3. The sidecar and its ffmpeg processes killed at once (a lost container).
    let mut victims = children(recorder);
    victims.push(recorder);
    println!("killing the sidecar and its ffmpeg processes: {victims:?}");
    kill_9(&victims);
    let failed = admin
        .wait_state(&second, "failed", Duration::from_secs(10))
        .await;
    println!("after kill -9 of everything: {failed}");
    let playlist = listed_segments_decode(&dir);
    // The server ends a failed recording's playlist, so players treat it as finished.
    wait_until_ended(&dir).await;
    let ended = Playlist::read(&dir.join("playlist.m3u8"));
    assert_eq!(
        ended.segments, playlist.segments,
        "ending lost or added segments"
    );
}
