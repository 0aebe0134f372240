//! Issue 6's end-to-end acceptance: two headless Chromium participants call; an admin starts a
//! recording through the API; 20 s later a third joins; 20 s after that the recording is
//! stopped. The recording must be a finished HLS event playlist whose media ffprobe reads as
//! 40 s of H.264 and AAC, whose last seconds show three camera tiles, and which the web demo's
//! recordings page plays with hls.js, both live while recording and afterwards. Its state is
//! in the room detail and the admin event stream.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Admin, Playlist, check_streams, frame_at, probe, tiles_with_video, wait_call};
use futures::StreamExt;
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::start_server;

const RECORDER: &str = env!("CARGO_BIN_EXE_switchyard-recorder");
const ROOM: &str = "recorded";

/// The room's current recording, from the room detail.
async fn room_recording(admin: &Admin) -> Value {
    admin
        .call(reqwest::Method::GET, &format!("/api/rooms/{ROOM}"))
        .await
        .1["recording"]
        .clone()
}

/// Collects the event types of the admin event stream for the room.
fn watch_events(admin: &Admin) -> Arc<Mutex<Vec<(String, Value)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let request = admin
        .http
        .get(format!("{}/api/events?room={ROOM}", admin.base))
        .bearer_auth(&admin.token);
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        let Ok(response) = request.send().await else {
            return;
        };
        let mut stream = response.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let kind = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|k| k.trim().to_owned());
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data:"))
                    .and_then(|d| serde_json::from_str(d.trim()).ok());
                if let (Some(kind), Some(data)) = (kind, data) {
                    sink.lock().unwrap().push((kind, data));
                }
            }
        }
    });
    seen
}

/// Opens the recordings page on `id` and waits until hls.js has played past 5 s.
async fn plays_past_five_seconds(driver: &Driver, port: u16, id: &str, what: &str) {
    let page = driver.browser().await.expect("a browser");
    page.goto(&format!("http://127.0.0.1:{port}/recordings?id={id}"))
        .await
        .expect("the recordings page loads");
    let start = Instant::now();
    loop {
        let state = eval(
            &page,
            "const r = window.switchyardRecordings; \
             return r ? { t: r.video.currentTime, w: r.video.videoWidth, \
                          engine: r.state().engine, error: r.state().error } : null",
        )
        .await
        .unwrap_or(Value::Null);
        if state["t"].as_f64().unwrap_or(0.0) > 5.0 && state["w"].as_u64().unwrap_or(0) > 0 {
            println!("{what}: playing with {} at {state}", state["engine"]);
            assert_eq!(state["engine"], "hls.js");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "{what}: the recordings page did not play past 5 s: {state}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_plays_back_as_hls_with_every_camera() {
    // SWITCHYARD_TEST_RECORDER=target/release/switchyard-recorder measures a release build.
    let recorder = std::env::var("SWITCHYARD_TEST_RECORDER").unwrap_or_else(|_| RECORDER.into());
    let server = start_server(None, |config| {
        config.recorder = Some(PathBuf::from(recorder));
    })
    .await;
    let port = server.http_addr.port();
    let admin = Admin::new(&server);
    let events = watch_events(&admin);
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = driver
        .call_pages(port, ROOM, &["Alice", "Bob"], "")
        .await
        .expect("pages load");
    wait_call(&pages, 1).await;

    // Start: 201 with the id and the playlist URL.
    let (status, started) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/rooms/{ROOM}/recording"),
        )
        .await;
    let t0 = Instant::now();
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        started["playlistUrl"],
        format!("/recordings/{id}/playlist.m3u8")
    );
    let (status, again) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/rooms/{ROOM}/recording"),
        )
        .await;
    assert_eq!(status, 409, "a second recording of the room: {again}");
    loop {
        let recording = room_recording(&admin).await;
        if recording["state"] == "active" {
            println!("active after {:?}", t0.elapsed());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "not active: {recording}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Live: the recordings page plays the growing playlist.
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(t0.elapsed())).await;
    plays_past_five_seconds(&driver, port, &id, "live").await;
    let live_playlist = Playlist::read(&server.recordings().dir().join(&id).join("playlist.m3u8"));
    assert!(!live_playlist.ended, "still recording, yet ENDLIST");
    assert_eq!(live_playlist.playlist_type.as_deref(), Some("EVENT"));

    // At 20 s a third participant joins; the pages see her and the grid grows.
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(t0.elapsed())).await;
    pages.extend(
        driver
            .call_pages(port, ROOM, &["Carol"], "")
            .await
            .expect("Carol's page loads"),
    );
    wait_call(&pages, 2).await;

    // At 40 s it stops.
    tokio::time::sleep(Duration::from_secs(40).saturating_sub(t0.elapsed())).await;
    let (status, stopping) = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api/rooms/{ROOM}/recording"),
        )
        .await;
    let recorded = t0.elapsed().as_secs_f64();
    assert_eq!(status, 200, "{stopping}");
    let done = loop {
        let recording = room_recording(&admin).await;
        if recording["state"] == "complete" {
            break recording;
        }
        assert_ne!(recording["state"], "failed", "{recording}");
        assert!(
            t0.elapsed() < Duration::from_secs(70),
            "not complete: {recording}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("room detail: {done}");
    let kinds: Vec<String> = events.lock().unwrap().iter().map(|e| e.0.clone()).collect();
    for kind in [
        "recording_updated",
        "recording_started",
        "recording_stopped",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }

    // The files.
    let dir = server.recordings().dir().join(&id);
    let playlist_path = dir.join("playlist.m3u8");
    let playlist = Playlist::read(&playlist_path);
    println!(
        "playlist: target {} s, {} segments, {:.1} s, type {:?}, ended {}",
        playlist.target_duration,
        playlist.segments.len(),
        playlist.duration(),
        playlist.playlist_type,
        playlist.ended
    );
    assert!(playlist.ended, "no EXT-X-ENDLIST");
    playlist.check_rules();
    let (duration, streams) = probe(&playlist_path);
    println!("ffprobe: duration {duration} s, streams {streams:?}; recorded for {recorded:.1} s");
    assert!(
        (duration - 40.0).abs() <= 3.0,
        "the recording lasts {duration} s, not 40 ± 3"
    );
    let expected_segments = duration / playlist.target_duration;
    assert!(
        (playlist.segments.len() as f64 - expected_segments).abs() <= 1.0,
        "{} segments for {duration} s at {} s each",
        playlist.segments.len(),
        playlist.target_duration
    );
    check_streams(duration, &streams, 0.05);

    // The last 10 s show three cameras.
    let luma = frame_at(&playlist_path, duration - 5.0);
    let frame_png = dir.join(format!("frame-{:.0}s.png", duration - 5.0));
    let kept = std::env::temp_dir().join("switchyard-recording-three-tiles.png");
    let _ = std::fs::copy(&frame_png, &kept);
    println!("frame from the last 10 s: {}", kept.display());
    assert_eq!(tiles_with_video(&luma, 3), 3, "three cameras on the grid");
    // ...and the first 20 s two.
    let early = frame_at(&playlist_path, 15.0);
    assert_eq!(tiles_with_video(&early, 2), 2, "two cameras before Carol");

    if let Ok(stats) = std::fs::read_to_string(dir.join("recorder-stats.json")) {
        println!("recorder stats (3-person room, 40 s): {}", stats.trim());
    }

    // Afterwards: the recordings page plays the finished recording.
    plays_past_five_seconds(&driver, port, &id, "on demand").await;
}
