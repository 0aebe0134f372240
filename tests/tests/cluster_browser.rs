//! A room on a three-node cluster, with real Chromium pages and a real `redis-server`: pages
//! joining at two nodes meet on the room's node, the admin API and event stream of a third node
//! see them, the room survives the death of its node (SIGKILL) and a Redis restart.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::cluster_node::{
    ClusterNode, dev_admin_token, dev_token, join_following_redirects,
};
use switchyard_tests::cluster_pages::{frames_by_identity, page_node, wait_all_decoding};
use switchyard_tests::events::read_events;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::wait_for;

const NODE: &str = env!("CARGO_BIN_EXE_switchyard-node");
const ROOM: &str = "cluster-call";

/// `GET /api/rooms` on `node`.
async fn rooms(node: &ClusterNode, admin: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let answer = http
        .get(format!("{}/api/rooms", node.url()))
        .bearer_auth(admin)
        .send()
        .await;
    match answer {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["rooms"].as_array().cloned())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_on_three_nodes_survives_its_node_and_a_redis_restart() {
    let mut redis = RedisServer::start();
    // `local` placement: a room goes to the node its first join reached (node A here).
    let local = ["--placement", "local"];
    let mut a = ClusterNode::start(NODE, "node-a", &redis.url(), &local).await;
    let b = ClusterNode::start(NODE, "node-b", &redis.url(), &local).await;
    let c = ClusterNode::start(NODE, "node-c", &redis.url(), &local).await;
    let admin = dev_admin_token(&b.url()).await;
    let events = read_events(&b.url(), &admin, None).await;

    // Two pages join at node A, one at node C.
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = Vec::new();
    for (name, node) in [("Ann", &a), ("Ben", &a), ("Cat", &c)] {
        let page = driver.browser().await.expect("a browser");
        page.goto(&format!("{}/room/{ROOM}?name={name}", node.url()))
            .await
            .expect("the call page loads");
        pages.push((name, page));
        if name == "Ann" {
            // Ann's join places the room first.
            wait_all_decoding(&pages, 0, Duration::from_secs(30), None, "Ann to join").await;
        }
    }
    wait_all_decoding(
        &pages,
        30,
        Duration::from_secs(60),
        None,
        "all three pages to decode each other",
    )
    .await;
    for (name, page) in &pages {
        let node = page_node(page).await;
        assert!(
            node.contains(&a.http_port.to_string()),
            "{name} talks to {node}, not node A"
        );
    }
    println!("three pages decode each other on node A (Cat was redirected from node C)");

    // Node B's admin API lists the room, its three participants and its node; its event
    // stream saw the three joins.
    wait_for(
        "node B to list the room with three participants on node A",
        Duration::from_secs(10),
        async || {
            let listed = rooms(&b, &admin).await;
            match listed.iter().find(|r| r["name"] == ROOM) {
                Some(r) if r["participantCount"] == 3 && r["node"] == "node-a" => Ok(()),
                other => Err(format!("listed {other:?}")),
            }
        },
    )
    .await;
    let detail: Value = reqwest::Client::new()
        .get(format!("{}/api/rooms/{ROOM}", b.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("node B answers")
        .json()
        .await
        .expect("a room");
    assert_eq!(
        detail["participants"].as_array().map(Vec::len),
        Some(3),
        "{detail}"
    );
    wait_for(
        "node B's event stream to show three joins",
        Duration::from_secs(10),
        async || {
            let joined: HashSet<String> = events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.kind == "participant_joined" && e.data["room"] == ROOM)
                .filter_map(|e| e.data["identity"].as_str().map(str::to_owned))
                .collect();
            if joined.len() == 3 {
                Ok(())
            } else {
                Err(format!("saw joins of {joined:?}"))
            }
        },
    )
    .await;
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("switchyard_cluster_nodes_alive 3"),
        "{metrics}"
    );
    // Node B's dashboard shows the room, its node and its three participants.
    let dashboard = driver.browser().await.expect("a browser");
    dashboard
        .goto(&format!("{}/admin?token={admin}", b.url()))
        .await
        .expect("the dashboard loads");
    let card = format!(
        "const card = document.querySelector('[data-room=\"{ROOM}\"]'); \
         if (!card) return null; \
         const ids = [...card.querySelectorAll('.participants [data-identity]')] \
           .map((el) => el.dataset.identity); \
         const charted = ids.filter((id) => \
           (window.switchyardAdmin.history('{ROOM}', id) || []).length > 0).length; \
         return [card.querySelector('[data-field=node]').textContent, ids.length, charted]"
    );
    // Its charts draw from node A's stats, which reach node B's event stream.
    wait_for(
        "node B's dashboard to show the room on node A with three participants and their charts",
        Duration::from_secs(20),
        async || {
            let shown = eval(&dashboard, &card).await.unwrap_or_default();
            if shown == serde_json::json!(["node-a", 3, 3]) {
                Ok(())
            } else {
                Err(format!("the room's card shows {shown}"))
            }
        },
    )
    .await;
    dashboard.close().await.expect("the dashboard closes");

    // Kill node A mid-call: within 15 s every page is in a call on another node, decoding.
    let killed = Instant::now();
    a.kill().await;
    wait_all_decoding(
        &pages,
        10,
        Duration::from_secs(15),
        Some(&format!(":{}/", a.http_port)),
        "every page back in a call on another node within 15 s of node A's death",
    )
    .await;
    println!(
        "all pages decode each other again {:?} after node A died",
        killed.elapsed()
    );
    // The admin API shows no participant of the dead node, and no ghost.
    let remaining = Duration::from_secs(15).saturating_sub(killed.elapsed());
    wait_for(
        "node B to show the room on a live node only, with three participants",
        remaining.max(Duration::from_secs(1)),
        async || {
            let listed = rooms(&b, &admin).await;
            let of_room: Vec<&Value> = listed.iter().filter(|r| r["name"] == ROOM).collect();
            let on_dead = listed.iter().filter(|r| r["node"] == "node-a").count();
            match of_room.as_slice() {
                [r] if on_dead == 0 && r["participantCount"] == 3 => Ok(()),
                _ => Err(format!("listed {listed:?}")),
            }
        },
    )
    .await;
    println!(
        "node B lists the room on a live node with its three participants {:?} after the death",
        killed.elapsed()
    );
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("switchyard_cluster_nodes_alive 2"),
        "{metrics}"
    );

    // Kill Redis mid-call: the call goes on without it.
    let before: Vec<BTreeMap<String, u64>> = {
        let mut v = Vec::new();
        for (_, page) in &pages {
            v.push(frames_by_identity(page).await);
        }
        v
    };
    redis.kill();
    wait_for(
        "media to keep flowing while Redis is down",
        Duration::from_secs(20),
        async || {
            for ((name, page), earlier) in pages.iter().zip(&before) {
                let now = frames_by_identity(page).await;
                for (identity, frames) in earlier {
                    let grown = now
                        .get(identity)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(*frames);
                    if grown < 60 {
                        return Err(format!(
                            "{name} decoded {grown} more frames from {identity}"
                        ));
                    }
                }
            }
            Ok(())
        },
    )
    .await;
    wait_for(
        "node B to report Redis down",
        Duration::from_secs(10),
        async || {
            let metrics = b.metrics().await;
            if metrics.contains("switchyard_cluster_redis_up 0") {
                Ok(())
            } else {
                Err("switchyard_cluster_redis_up is not 0")
            }
        },
    )
    .await;
    redis.restart();
    let restarted = Instant::now();
    // The cluster heals within 10 s: both nodes registered again, the room listed again.
    wait_for(
        "the cluster to heal after the Redis restart",
        Duration::from_secs(10),
        async || {
            let metrics = b.metrics().await;
            if !metrics.contains("switchyard_cluster_nodes_alive 2") {
                return Err("node B does not see two nodes yet".to_owned());
            }
            let listed = rooms(&c, &admin).await;
            match listed.iter().find(|r| r["name"] == ROOM) {
                Some(r) if r["participantCount"] == 3 => Ok(()),
                other => Err(format!("node C lists {other:?}")),
            }
        },
    )
    .await;
    println!(
        "the cluster healed {:?} after Redis restarted",
        restarted.elapsed()
    );
    // New joins work again, at either node: the one that does not serve the room redirects.
    let owner = rooms(&b, &admin)
        .await
        .into_iter()
        .find(|r| r["name"] == ROOM)
        .and_then(|r| r["node"].as_str().map(str::to_owned))
        .expect("the room has a node");
    let other = if owner == "node-b" { &c } else { &b };
    let token = dev_token(&other.url(), ROOM, "Dan").await;
    let ws = format!("ws://127.0.0.1:{}/ws", other.http_port);
    let joined = wait_for(
        "a new join after the Redis restart",
        Duration::from_secs(10),
        async || join_following_redirects(&ws, ROOM, &token).await,
    )
    .await;
    assert_eq!(
        joined.hops.len(),
        2,
        "the join was redirected once: {:?}",
        joined.hops
    );
    println!(
        "a new join at {} was redirected to the room's node {owner}",
        other.id
    );
}
