//! The `loadtest` binary spreading participants over two nodes of a cluster (two servers in
//! this process, one real `redis-server`): the room lives on one node, the joins that reach
//! the other node are redirected there, and media flows.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use serde_json::Value;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{cluster_settings, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_spread_over_two_nodes_meet_on_their_room_nodes() {
    let redis = RedisServer::start();
    let mut urls = Vec::new();
    let mut nodes = Vec::new();
    for id in ["lt-a", "lt-b"] {
        let redis_url = redis.url();
        let node = start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), move |config| {
            config.cluster = Some(cluster_settings(
                &redis_url,
                "loadtest",
                id,
                cluster::PlacementPolicy::Participants,
            ));
        })
        .await;
        urls.push(format!("http://{}", node.http_addr));
        nodes.push(node);
    }
    let urls = urls.join(",");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(["--url", &urls, "--publishers", "2", "--subscribers", "2"])
            .args(["--audio-only", "--duration", "4", "--json"])
            .args(["--cache", env!("CARGO_TARGET_TMPDIR")])
            .output()
            .expect("loadtest runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    println!(
        "joined {}, redirected {}, packets {}, loss {} %",
        report["joined"], report["redirected"], report["packetsReceived"], report["lossPercent"]
    );
    assert_eq!(report["joined"], 4, "{stderr}");
    // Four participants joining at the two nodes in turn: the room lives on one node, so the
    // two that reach the other one are redirected.
    assert_eq!(report["redirected"], 2, "{report}");
    assert!(
        report["packetsReceived"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}
