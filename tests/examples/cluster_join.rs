//! Benchmark: how long a signaling join takes on the room's own node, against a join that
//! reaches another node first and is redirected (`redirect`, then the same join at the owner).
//! Two in-process nodes on one real `redis-server`; the time is from opening the WebSocket to
//! `joined`, media not included (ICE and DTLS are the same either way).
//!
//! `cargo run --release -p switchyard-tests --example cluster_join` (needs `redis-server`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cluster::PlacementPolicy;
use switchyard_tests::cluster_node::join_following_redirects;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{cluster_settings, start_server, wait_for};

const ROUNDS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for id in ["owner", "other"] {
        let url = redis.url();
        nodes.push(
            start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), move |config| {
                // Hundreds of joins from one address: lift its request limit.
                config.ip_limits.request_rate = 100_000;
                config.ip_limits.request_burst = 100_000;
                config.ip_limits.message_rate = 100_000;
                config.ip_limits.message_burst = 100_000;
                config.cluster = Some(cluster_settings(&url, "bench", id, PlacementPolicy::Local));
            })
            .await,
        );
    }
    let (owner, other) = (&nodes[0], &nodes[1]);
    // The room lives on `owner`: its first join goes there.
    let token = owner.token("first", "bench-room", protocol::Grants::default());
    let _first = join_following_redirects(
        &format!("ws://{}/ws", owner.http_addr),
        "bench-room",
        &token,
    )
    .await
    .expect("the first join");
    // Wait until the other node sees both nodes (the owner's registration among them).
    let metrics = format!("http://{}/metrics", other.http_addr);
    wait_for(
        "the other node to see both nodes",
        Duration::from_secs(10),
        async || {
            let text = reqwest::get(&metrics)
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("switchyard_cluster_nodes_alive 2") {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        },
    )
    .await;
    let mut direct = Vec::new();
    let mut redirected = Vec::new();
    for round in 0..ROUNDS {
        // Interleaved, so both see the same machine load.
        for (node, times, hops) in [(owner, &mut direct, 1), (other, &mut redirected, 2)] {
            let token = owner.token(
                &format!("p{round}-{hops}"),
                "bench-room",
                protocol::Grants::default(),
            );
            let started = Instant::now();
            let mut joined = join_following_redirects(
                &format!("ws://{}/ws", node.http_addr),
                "bench-room",
                &token,
            )
            .await
            .expect("a join");
            times.push(started.elapsed());
            assert_eq!(joined.hops.len(), hops, "{:?}", joined.hops);
            // A close frame leaves the room at once (a dropped socket would wait for resume).
            let _ = joined.socket.close(None).await;
        }
    }
    direct.sort();
    redirected.sort();
    println!("{ROUNDS} joins each, interleaved, WebSocket open to `joined`:");
    println!("| join | p50 | p90 | p99 |");
    println!("|---|---|---|---|");
    for (name, times) in [
        ("on the room's node", &direct),
        ("redirected from another node", &redirected),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(times, 0.5).as_secs_f64() * 1e3,
            percentile(times, 0.9).as_secs_f64() * 1e3,
            percentile(times, 0.99).as_secs_f64() * 1e3
        );
    }
}
