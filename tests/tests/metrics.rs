//! `/metrics` against the running server: `promtool check metrics` (Debian package
//! prometheus) accepts it, and its counters move while a call runs.

use std::collections::HashMap;
use std::time::Duration;

use client::Client;
use protocol::{Grants, ServerMessage};
use switchyard_tests::promtool::promtool_check;
use switchyard_tests::{Server, start_local_server, ws_url};

async fn scrape(server: &Server) -> String {
    let response = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// `name value` samples (without labels) from the text format.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn publisher(server: &Server, identity: &str) -> Client {
    let mut c = Client::connect(&ws_url(server)).await.unwrap();
    c.join(
        "metrics-room",
        &server.token(identity, "metrics-room", Grants::default()),
    );
    c.wait_message(Duration::from_secs(10), |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c.publish(true, true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_move_during_a_call() {
    let server = start_local_server().await;
    let idle = scrape(&server).await;
    println!("promtool on an idle server: {:?}", promtool_check(&idle));
    let before = samples(&idle);
    assert_eq!(before["switchyard_rooms"], 0.0);

    let _alice = publisher(&server, "alice").await;
    let _bob = publisher(&server, "bob").await;
    let mut during = samples(&scrape(&server).await);
    for _ in 0..40 {
        if during["switchyard_packets_out_total"] > 200.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        during = samples(&scrape(&server).await);
    }
    let text = scrape(&server).await;
    println!("promtool during a call: {:?}", promtool_check(&text));
    let during = samples(&text);
    for name in [
        "switchyard_rooms",
        "switchyard_participants",
        "switchyard_tracks",
        "switchyard_packets_in_total",
        "switchyard_bytes_in_total",
        "switchyard_packets_out_total",
        "switchyard_bytes_out_total",
        "switchyard_websocket_connections",
        "switchyard_turn_allocations",
        "switchyard_process_cpu_seconds",
        "switchyard_process_resident_memory_bytes",
        "switchyard_process_open_fds",
        "switchyard_runtime_tasks",
    ] {
        println!(
            "{name} {} -> {}",
            before.get(name).copied().unwrap_or(0.0),
            during[name]
        );
    }
    assert_eq!(during["switchyard_rooms"], 1.0);
    assert_eq!(during["switchyard_participants"], 2.0);
    assert_eq!(during["switchyard_tracks"], 4.0);
    assert_eq!(during["switchyard_websocket_connections"], 2.0);
    assert!(during["switchyard_packets_in_total"] > before["switchyard_packets_in_total"]);
    assert!(during["switchyard_packets_out_total"] > 200.0);
    assert!(during["switchyard_bytes_out_total"] > during["switchyard_packets_out_total"]);
    assert!(during["switchyard_process_resident_memory_bytes"] > 1e6);
    // Two WebSockets and the media sockets at least; the rooms' and connections' tasks.
    assert!(during["switchyard_process_open_fds"] >= 3.0);
    assert!(during["switchyard_runtime_tasks"] > before["switchyard_runtime_tasks"]);
    for name in [
        "switchyard_packets_dropped_total",
        "switchyard_nacks_received_total",
        "switchyard_retransmissions_refused_total",
        "switchyard_padding_packets_sent_total",
        "switchyard_keyframe_requests_received_total",
        "switchyard_keyframe_requests_sent_total",
        "switchyard_turn_packets_to_peers_total",
    ] {
        assert!(during.contains_key(name), "{name} is exported");
    }
}
