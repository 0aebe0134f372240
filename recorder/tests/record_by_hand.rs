//! The sidecar run by hand against a server URL, with a recorder token: two headless Chromium
//! participants call, one sending VP8 and one H.264; the recording is stopped by closing its stdin (as the server does) and
//! must be a finished, playable HLS recording with both cameras on the grid.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Playlist, check_streams, frame_at, probe, tiles_with_video};
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::start_server;

const RECORDER: &str = env!("CARGO_BIN_EXE_switchyard-recorder");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_run_by_hand_writes_a_finished_hls_recording() {
    let server = start_server(None, |_| {}).await;
    let driver = Driver::start().await.expect("chromedriver");
    let room = "by-hand";
    // Alice sends VP8, Bob H.264: the recorder decodes both.
    let mut pages = driver
        .call_pages(server.http_addr.port(), room, &["Alice"], "")
        .await
        .expect("Alice's page loads");
    pages.extend(
        driver
            .call_pages(server.http_addr.port(), room, &["Bob"], "&codec=h264")
            .await
            .expect("Bob's page loads"),
    );
    let start = Instant::now();
    loop {
        let mut seen = 0;
        for page in &pages {
            let remote = eval(page, "return window.switchyard.remoteParticipants().length")
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            seen += usize::from(remote == 1);
        }
        if seen == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the call did not start"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let out = std::env::temp_dir().join(format!("switchyard-by-hand-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let token = server.token(
        "recorder-by-hand",
        room,
        protocol::Grants {
            recorder: true,
            ..Default::default()
        },
    );
    let mut recorder = Command::new(RECORDER)
        .arg("--server")
        .arg(format!("http://{}", server.http_addr))
        .args(["--room", room, "--control-stdin", "--out"])
        .arg(&out)
        .env("SWITCHYARD_RECORDER_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the recorder starts");
    let mut lines = BufReader::new(recorder.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a status line").unwrap();
    assert_eq!(first, r#"{"state":"active"}"#);
    let recording_started = Instant::now();

    // Record until the live playlist lists 10 s of segments, then check that the recorder, in
    // the room all that time, stayed hidden: neither page lists it.
    let live = out.join("playlist.m3u8");
    loop {
        let listed = std::fs::read_to_string(&live)
            .map(|text| Playlist::parse(&text).duration())
            .unwrap_or(0.0);
        if listed >= 10.0 {
            break;
        }
        assert!(
            recording_started.elapsed() < Duration::from_secs(60),
            "the live playlist lists only {listed} s after a minute"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for page in &pages {
        let remote = eval(page, "return window.switchyard.remoteParticipants().length")
            .await
            .unwrap();
        assert_eq!(remote.as_u64(), Some(1), "a page sees the recorder");
    }
    drop(recorder.stdin.take()); // stop
    let recorded = recording_started.elapsed().as_secs_f64();
    let summary = lines.next().expect("a summary line").unwrap();
    println!("recorder: {summary}");
    let status = recorder.wait().unwrap();
    assert!(status.success(), "the recorder failed: {status}");

    let playlist_path = out.join("playlist.m3u8");
    let playlist = Playlist::read(&playlist_path);
    println!("{playlist:?}");
    assert!(playlist.ended, "no EXT-X-ENDLIST after a stop");
    assert_eq!(playlist.playlist_type.as_deref(), Some("EVENT"));
    playlist.check_rules();
    let (duration, streams) = probe(&playlist_path);
    println!("ffprobe: {duration} s, {streams:?}");
    assert!(
        (duration - recorded).abs() < 3.0,
        "recording lasts {duration} s, recorded for {recorded} s"
    );
    check_streams(duration, &streams, 0.1);
    let luma = frame_at(&playlist_path, duration - 2.0);
    assert_eq!(
        tiles_with_video(&luma, 2),
        2,
        "both cameras are on the grid"
    );
    let _ = std::fs::remove_dir_all(&out);
}
