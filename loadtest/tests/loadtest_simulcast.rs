//! The `loadtest` binary publishing simulcast against a real server (in this process): the SFU
//! recognises the three layers (q, h, f) by their rids, and each receiver, having sent its tile
//! size, gets the layer that fits it, with keyframes of that layer's picture size.

use std::process::Command;

use serde_json::Value;
use switchyard_tests::start_local_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_gets_the_layer_its_tile_needs() {
    let server = start_local_server().await;
    let url = format!("http://{}", server.http_addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(["--url", &url, "--publishers", "1", "--subscribers", "3"])
            .args(["--simulcast", "--tiles", "320x180,640x360,1280x720"])
            .args(["--duration", "6", "--json"])
            .args(["--cache", env!("CARGO_TARGET_TMPDIR")])
            .output()
            .expect("loadtest runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    println!("{:#}", report["receivers"]);
    println!("{:#}", report["layers"]);
    assert_eq!(report["joined"], 4, "{stderr}");
    assert_eq!(report["simulcast"], true);
    assert_eq!(report["layers"].as_array().map(Vec::len), Some(3));
    let receivers = report["receivers"].as_array().expect("receivers");
    assert_eq!(receivers.len(), 3, "one video track per subscriber");
    for (tile, layer, least_kbps) in [
        ("320x180", "q", 75.0),
        ("640x360", "h", 250.0),
        ("1280x720", "f", 750.0),
    ] {
        let row = receivers
            .iter()
            .find(|r| r["tile"] == tile)
            .unwrap_or_else(|| panic!("no receiver at {tile}"));
        assert_eq!(row["layer"], layer, "{row}");
        assert_eq!(row["picture"], tile, "the keyframes that arrived: {row}");
        let kbps = row["videoKbps"].as_f64().unwrap();
        assert!(kbps > least_kbps, "{tile} got {kbps} kbit/s: {row}");
    }
}
