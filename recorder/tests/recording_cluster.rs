//! Recording in a cluster: a recording asked of any node runs on the room's node (its sidecar
//! joins the room there), and every node lists it, with a playlist URL on the node that keeps it,
//! which a page of another node may read. Two in-process nodes, one real `redis-server`, one
//! Chromium page publishing.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use common::Admin;
use serde_json::Value;
use switchyard_tests::browser::Driver;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{cluster_settings, start_server, wait_for};

const RECORDER: &str = env!("CARGO_BIN_EXE_switchyard-recorder");
const ROOM: &str = "cluster-rec";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_asked_of_any_node_runs_on_the_room_node_and_every_node_lists_it() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for id in ["rec-a", "rec-b"] {
        let redis_url = redis.url();
        nodes.push(
            start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), move |config| {
                config.recorder = Some(PathBuf::from(RECORDER));
                config.cluster = Some(cluster_settings(
                    &redis_url,
                    "recording",
                    id,
                    cluster::PlacementPolicy::Local,
                ));
            })
            .await,
        );
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    // A page joins at node A: the room lives there.
    let driver = Driver::start().await.expect("chromedriver");
    let _pages = driver
        .call_pages(a.http_addr.port(), ROOM, &["Alice"], "")
        .await
        .expect("the page loads");
    let admin_b = Admin::new(b);
    wait_for(
        "node B to list the room on node A",
        Duration::from_secs(20),
        async || {
            let (_, body) = admin_b.call(reqwest::Method::GET, "/api/rooms").await;
            let on_a = body["rooms"].as_array().is_some_and(|rooms| {
                rooms
                    .iter()
                    .any(|r| r["name"] == ROOM && r["node"] == "rec-a")
            });
            if on_a { Ok(()) } else { Err(format!("{body}")) }
        },
    )
    .await;

    // Asked at node B, the recording starts on node A.
    let (status, started) = admin_b
        .call(
            reqwest::Method::POST,
            &format!("/api/rooms/{ROOM}/recording"),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().expect("a recording id").to_owned();
    assert!(
        a.recordings().dir().join(&id).exists(),
        "the recording is written on node A"
    );
    // Node B lists it, with its playlist on node A, once it is active.
    let playlist = wait_for(
        "node B to list the active recording",
        Duration::from_secs(30),
        async || {
            let (_, body) = admin_b.call(reqwest::Method::GET, "/api/recordings").await;
            let found: Option<Value> = body["recordings"]
                .as_array()
                .and_then(|list| list.iter().find(|r| r["id"] == id.as_str()).cloned());
            match found {
                Some(r) if r["state"] == "active" => {
                    Ok(r["playlistUrl"].as_str().unwrap_or_default().to_owned())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        playlist,
        format!("http://{}/recordings/{id}/playlist.m3u8", a.http_addr)
    );
    let (status, one) = admin_b
        .call(reqwest::Method::GET, &format!("/api/recordings/{id}"))
        .await;
    assert_eq!(status, 200, "node B finds node A's recording by id: {one}");
    // A page served by node B may read it (the id is the capability), once its first segment
    // is written.
    let origin = format!("http://{}", b.http_addr);
    let allowed = wait_for(
        "node A to serve the playlist",
        Duration::from_secs(30),
        async || {
            let response = reqwest::Client::new()
                .get(&playlist)
                .header("origin", &origin)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if response.status() != 200 {
                return Err(format!("HTTP {}", response.status()));
            }
            Ok(response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap_or_default().to_owned()))
        },
    )
    .await;
    assert_eq!(allowed.as_deref(), Some("*"));
    // Stopped from node B too.
    let (status, stopping) = admin_b
        .call(
            reqwest::Method::DELETE,
            &format!("/api/rooms/{ROOM}/recording"),
        )
        .await;
    assert_eq!(status, 200, "{stopping}");
    assert_eq!(stopping["id"], id.as_str());
}
