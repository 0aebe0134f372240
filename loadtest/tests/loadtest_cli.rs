//! The `loadtest` binary against a real server: a short run reports what it measured, and
//! bad input (an unreachable server, a bad token, impossible parameters) ends with one line
//! naming the problem and a failure exit code, never a panic.

use std::process::{Command, Output};

use serde_json::Value;
use switchyard_tests::start_local_server;

const LOADTEST: &str = env!("CARGO_BIN_EXE_loadtest");

fn loadtest(args: &[&str]) -> Output {
    Command::new(LOADTEST)
        .args(args)
        .args(["--cache", env!("CARGO_TARGET_TMPDIR")])
        .output()
        .expect("loadtest runs")
}

/// Runs loadtest with `args` (plus `--json`) off the async runtime; the run must succeed, and
/// its JSON report is returned.
async fn report_of(args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        loadtest(&[&args[..], &["--json"]].concat())
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

/// The run failed with exactly one line on stderr that contains `expected`.
fn fails_with_one_line(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it succeeded: {stderr}");
    assert!(!stderr.contains("panicked"), "it panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(
        lines[0].starts_with("loadtest: ") && lines[0].contains(expected),
        "{:?} does not name {expected:?}",
        lines[0]
    );
    println!("{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_reports_media_latency_and_server_cost() {
    let server = start_local_server().await;
    let url = format!("http://{}", server.http_addr);
    let pid = std::process::id().to_string(); // the server runs inside this test process
    let args = [
        "--url",
        &url,
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--duration",
        "4",
        "--video-kbps",
        "300",
        "--server-pid",
        &pid,
    ];
    let report = report_of(args.map(String::from).to_vec()).await;
    println!("{report:#}");
    assert_eq!(report["joined"], 4);
    assert_eq!(report["errors"], serde_json::json!([]));
    // 2 publishers × (audio + video) to 3 receivers each.
    assert!(report["packetsReceived"].as_u64().unwrap() > 500);
    assert!(report["latencyMs"]["p50"].as_f64().unwrap() > 0.0);
    assert!(report["joinMs"]["max"].as_f64().unwrap() > 0.0);
    assert!(report["trackKbps"]["video"].as_f64().unwrap() > 100.0);
    assert!(report["serverCpuUsPerPacket"].as_f64().unwrap() > 0.0);
    assert!(report["lossPercent"].as_f64().unwrap() < 5.0);
}

/// Nobody publishing: the participants join, stay connected and receive nothing, in the rooms
/// `--room-prefix` names (what `scripts/bench-idle` measures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_participants_join_and_receive_nothing() {
    let server = start_local_server().await;
    let url = format!("http://{}", server.http_addr);
    let args = [
        "--url",
        &url,
        "--room-prefix",
        "idle",
        "--rooms",
        "2",
        "--publishers",
        "0",
        "--subscribers",
        "3",
        "--duration",
        "2",
    ];
    let report = report_of(args.map(String::from).to_vec()).await;
    assert_eq!(report["joined"], 6, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["packetsReceived"], 0);
    // Two rooms (idle-0, idle-1), still open a while after their last participant left.
    assert_eq!(server.room_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_with_one_line_naming_it() {
    // Nothing listens on port 1.
    fails_with_one_line(
        &loadtest(&["--url", "http://127.0.0.1:1", "--duration", "1"]),
        "cannot reach the server at http://127.0.0.1:1",
    );
    fails_with_one_line(
        &loadtest(&[
            "--server",
            "janus",
            "--url",
            "http://127.0.0.1:1/janus",
            "--publishers",
            "0",
        ]),
        "--publishers must be at least 1 against Janus",
    );
    fails_with_one_line(
        &loadtest(&["--video-kbps", "5"]),
        "--video-kbps must be between 50 and 20000",
    );
    fails_with_one_line(&loadtest(&["--ramp", "0"]), "--ramp must be more than 0");
    fails_with_one_line(
        &loadtest(&["--tiles", "640"]),
        "--tiles: \"640\" is not WIDTHxHEIGHT",
    );
    fails_with_one_line(
        &loadtest(&["--simulcast", "--video-kbps", "800"]),
        "--simulcast sends its own layer bitrates",
    );
    fails_with_one_line(
        &loadtest(&["--simulcast", "--audio-only"]),
        "--simulcast sends video",
    );
    fails_with_one_line(
        &loadtest(&["--server-pid", "4294967295"]),
        "cannot read /proc/4294967295",
    );
    let server = start_local_server().await;
    let url = format!("http://{}", server.http_addr);
    let output = tokio::task::spawn_blocking(move || {
        loadtest(&["--url", &url, "--token", "not-a-token", "--duration", "1"])
    })
    .await
    .unwrap();
    fails_with_one_line(&output, "no participant could join");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Unauthorized"));
}
