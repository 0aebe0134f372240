//! The supervisor driven end to end with a shell-script stand-in for the sidecar: clean runs,
//! failures and their reasons, kills after the stop timeout, rooms closing, shutdown.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::recording::config::RECORDER_BINARY;

/// A stand-in for the sidecar: joins nothing, but speaks its protocol.
const FAKE_RECORDER: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --room) room="$2"; shift ;;
  esac
  shift
done
[ -n "$SWITCHYARD_RECORDER_TOKEN" ] || { echo '{"state":"failed","reason":"no token"}'; exit 3; }
echo "recording $room" >&2
case "$room" in
  fails) echo '{"state":"failed","reason":"cannot reach the server"}'; exit 3 ;;
  crashes) echo "ffmpeg: boom" >&2; exit 2 ;;
  dies) kill -9 $$ ;;
esac
printf '#EXTM3U\n' > "$out/playlist.m3u8"
echo '{"state":"active"}'
case "$room" in
  stuck) exec sleep 30 ;;
esac
cat > /dev/null
printf '#EXT-X-ENDLIST\n' >> "$out/playlist.m3u8"
exit 0
"#;

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn wait_for_state(recordings: &Recordings, id: &str, state: RecordingState) -> RecordingInfo {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = recordings.get(id).unwrap();
        if info.state == state {
            return info;
        }
        assert!(Instant::now() < deadline, "still {info:?}, not {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_runs_stops_and_reports_the_sidecar() {
    let root = std::env::temp_dir().join(format!("sy-supervisor-{}", new_id()));
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Every script is written before any process starts (no "text file busy").
    executable(&bin.join("ffmpeg"), "#!/bin/sh\nexit 0\n");
    let recorder = bin.join(RECORDER_BINARY);
    executable(&recorder, FAKE_RECORDER);
    let cancel = CancellationToken::new();
    let sfu = Sfu::start(
        sfu::SfuConfig {
            rtc_port: 0,
            announce_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..sfu::SfuConfig::default()
        },
        cancel.clone(),
    )
    .await
    .unwrap();
    let mut search_path = OsString::from(&bin);
    search_path.push(":/usr/bin:/bin");
    let recordings = {
        let started = Recordings::start(
            RecordingConfig {
                dir: root.join("recordings"),
                recorder: None,
            },
            "0.0.0.0:9".parse().unwrap(),
            TokenAuthority::new("APIkey", "a-secret-that-is-long-enough-for-hs256"),
            sfu.clone(),
            cancel.clone(),
        );
        // The same, with the fake PATH and a short stop timeout.
        Recordings {
            inner: Arc::new(Inner {
                dir: started.inner.dir.clone(),
                recorder: Some(recorder.clone()),
                server_url: started.inner.server_url.clone(),
                tokens: started.inner.tokens.clone(),
                sfu: sfu.clone(),
                cancel: cancel.clone(),
                tasks: TaskTracker::new(),
                entries: Mutex::default(),
                search_path: Some(search_path),
                stop_timeout: Duration::from_millis(500),
            }),
        }
    };
    recordings
        .inner
        .tasks
        .spawn(recordings.clone().stop_when_rooms_close());
    let (_, mut events) = sfu.events().subscribe(None);

    // A clean run: starting → active → stopping → complete, with a finished playlist.
    let info = recordings.start_recording("demo").unwrap();
    assert_eq!(info.state, RecordingState::Starting);
    assert_eq!(
        info.playlist_url,
        format!("/recordings/{}/playlist.m3u8", info.id)
    );
    wait_for_state(&recordings, &info.id, RecordingState::Active).await;
    assert_eq!(
        recordings.start_recording("demo"),
        Err(RecordingError::InProgress {
            room: "demo".into(),
            id: info.id.clone()
        })
    );
    assert_eq!(recordings.latest("demo").unwrap().id, info.id);
    let stopping = recordings.stop_recording("demo").unwrap();
    assert_eq!(stopping.state, RecordingState::Stopping);
    let done = wait_for_state(&recordings, &info.id, RecordingState::Complete).await;
    assert!(done.stopped_at.is_some() && done.reason.is_none());
    let folder = recordings.dir().join(&info.id);
    let playlist = std::fs::read_to_string(folder.join("playlist.m3u8")).unwrap();
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    let on_disk: RecordingInfo =
        serde_json::from_slice(&std::fs::read(folder.join(STATE_FILE)).unwrap()).unwrap();
    assert_eq!(on_disk, done);
    assert_eq!(
        recordings.stop_recording("demo"),
        Err(RecordingError::NoRecording("demo".into()))
    );
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.kind.starts_with("recording_") {
            kinds.push((event.kind, event.data["state"].as_str().unwrap().to_owned()));
        }
    }
    let kinds: Vec<(&str, &str)> = kinds.iter().map(|(k, s)| (*k, s.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("recording_updated", "starting"),
            ("recording_started", "active"),
            ("recording_updated", "stopping"),
            ("recording_stopped", "complete"),
        ]
    );

    // Failures carry the sidecar's reason, its exit code and last line, or the signal.
    for (room, reason) in [
        ("fails", "cannot reach the server"),
        ("crashes", "recorder exited with code 2: ffmpeg: boom"),
        ("dies", "recorder was killed by signal 9"),
    ] {
        let info = recordings.start_recording(room).unwrap();
        let failed = wait_for_state(&recordings, &info.id, RecordingState::Failed).await;
        assert_eq!(failed.reason.as_deref(), Some(reason), "{room}");
    }

    // A sidecar that ignores the stop is killed after the timeout.
    let info = recordings.start_recording("stuck").unwrap();
    wait_for_state(&recordings, &info.id, RecordingState::Active).await;
    recordings.stop_recording("stuck").unwrap();
    let failed = wait_for_state(&recordings, &info.id, RecordingState::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("did not stop within 0 s"));

    // The room closing stops its recording.
    let info = recordings.start_recording("closing").unwrap();
    wait_for_state(&recordings, &info.id, RecordingState::Active).await;
    sfu.events()
        .emit("room_closed", "closing", serde_json::json!({}));
    wait_for_state(&recordings, &info.id, RecordingState::Complete).await;

    // Newest first, every room.
    let listed = recordings.list(None);
    assert_eq!(listed.len(), 6);
    assert!(
        listed
            .windows(2)
            .all(|w| (&w[0].started_at, &w[0].id) >= (&w[1].started_at, &w[1].id))
    );
    assert_eq!(recordings.list(Some("demo")).len(), 1);

    // Shutting down stops what still runs, gracefully.
    let info = recordings.start_recording("last").unwrap();
    wait_for_state(&recordings, &info.id, RecordingState::Active).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), recordings.closed())
        .await
        .expect("every sidecar ends");
    assert_eq!(
        recordings.get(&info.id).unwrap().state,
        RecordingState::Complete
    );
    assert_eq!(
        recordings.start_recording("late"),
        Err(RecordingError::ShuttingDown)
    );
    sfu.closed().await;
    let _ = std::fs::remove_dir_all(&root);
}
