//! The cluster on a real `redis-server`, without browsers: placement races, draining, the admin
//! API and event stream across nodes, webhooks once per event, clusters sharing a Redis under
//! different prefixes, and bad configurations (Redis down, a wrong password, a malformed URL).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use cluster::registry::LocalRooms;
use cluster::{Cluster, ClusterConfig, Placement, PlacementPolicy};
use protocol::Grants;
use serde_json::{Value, json};
use switchyard_tests::admin::participant;
use switchyard_tests::events::{Deliveries, read_events, webhook_receiver};
use switchyard_tests::promtool::promtool_check;
use switchyard_tests::redis::{RedisServer, free_port};
use switchyard_tests::{Server, cluster_settings, start_server, wait_for};
use tokio_util::sync::CancellationToken;

const NODE: &str = env!("CARGO_BIN_EXE_switchyard-node");
const WAIT: Duration = Duration::from_secs(10);

/// A cluster member that serves no room, for placement tests.
async fn member(redis: &RedisServer, id: &str, cancel: &CancellationToken) -> Cluster {
    let cluster = Cluster::connect(
        ClusterConfig {
            redis_url: redis.url(),
            prefix: "race".into(),
            node_id: id.into(),
            url: format!("http://{id}.invalid:8080"),
            policy: PlacementPolicy::Local,
        },
        cancel.clone(),
    )
    .await
    .expect("connects to Redis");
    // A media plane with no room, so the node serves none.
    let sfu = sfu::Sfu::start(
        sfu::SfuConfig {
            rtc_port: 0,
            announce_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..sfu::SfuConfig::default()
        },
        cancel.clone(),
    )
    .await
    .expect("the media plane starts");
    let nothing: LocalRooms = Arc::new(|| Box::pin(async { Vec::new() }));
    tokio::spawn(cluster::registry::run(cluster.clone(), sfu, nothing));
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_new_rooms_always_agree() {
    let redis = RedisServer::start();
    let cancel = CancellationToken::new();
    let x = member(&redis, "x", &cancel).await;
    let y = member(&redis, "y", &cancel).await;
    wait_for("both nodes to register", WAIT, async || {
        match x.live_nodes().await {
            Ok(nodes) if nodes.len() == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Each node wants each new room for itself (`local` policy): one must win, the other
    // must be told the winner.
    let (mut x_won, mut y_won) = (0, 0);
    for i in 0..100 {
        let room = format!("room-{i}");
        let (at_x, at_y) = tokio::join!(x.place(&room), y.place(&room));
        match (at_x.expect("x places"), at_y.expect("y places")) {
            (Placement::Here, Placement::Elsewhere(owner)) if owner.id == "x" => x_won += 1,
            (Placement::Elsewhere(owner), Placement::Here) if owner.id == "y" => y_won += 1,
            other => panic!("the nodes disagree about {room}: {other:?}"),
        }
        // Later joins at either node learn the same owner.
        let owner = x.owner(&room).await.unwrap().expect("an owner");
        assert_eq!(y.owner(&room).await.unwrap().map(|n| n.id), Some(owner.id));
    }
    println!("100 races: x won {x_won}, y won {y_won}, never both");
    assert_eq!(x_won + y_won, 100);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_takes_no_new_rooms() {
    let redis = RedisServer::start();
    let cancel = CancellationToken::new();
    let x = member(&redis, "x", &cancel).await;
    let y = member(&redis, "y", &cancel).await;
    assert_eq!(x.place("before").await.unwrap(), Placement::Here);
    x.set_draining();
    wait_for("y to see x draining", WAIT, async || {
        match y.live_nodes().await {
            Ok(nodes) if nodes.iter().any(|n| n.id == "x" && n.draining) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // A new room asked of the draining node goes to the other one...
    match x.place("after").await.unwrap() {
        Placement::Elsewhere(node) => assert_eq!(node.id, "y"),
        Placement::Here => panic!("a draining node took a new room"),
    }
    // ...while its own room stays with it until it goes.
    match y.place("before").await.unwrap() {
        Placement::Elsewhere(node) => assert_eq!(node.id, "x"),
        Placement::Here => panic!("a room moved off a live node"),
    }
    cancel.cancel();
}

/// An in-process node of cluster `prefix` (dev mode: the nodes share their credentials through
/// Redis; rooms go to the node a join reaches).
async fn node(redis: &RedisServer, prefix: &str, id: &str, hook: Option<&str>) -> Server {
    let (redis, prefix, id) = (redis.url(), prefix.to_owned(), id.to_owned());
    start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), move |config| {
        config.webhooks = hook.map(|url| signaling::webhooks::WebhookConfig {
            urls: vec![url.to_owned()],
            secret: "hook-secret".into(),
            node: Some(id.clone()),
        });
        config.cluster = Some(cluster_settings(
            &redis,
            &prefix,
            &id,
            PlacementPolicy::Local,
        ));
    })
    .await
}

fn admin(server: &Server) -> String {
    let grants = Grants {
        room_admin: true,
        ..Grants::default()
    };
    server.token("ops", "", grants)
}

/// `method path` on `server` with an admin token: (status, node that answered, body).
async fn api(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("http://{}{path}", server.http_addr),
        )
        .bearer_auth(admin(server));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    let node = response
        .headers()
        .get("x-switchyard-node")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        node,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The rooms `server` lists, as (name, node).
async fn listed(server: &Server) -> Vec<(String, String)> {
    let (_, _, body) = api(server, "GET", "/api/rooms", None).await;
    body["rooms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["node"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn metrics(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_reach_the_room_node_and_clusters_under_other_prefixes_stay_apart() {
    let redis = RedisServer::start();
    let blue1 = node(&redis, "blue", "blue-1", None).await;
    let blue2 = node(&redis, "blue", "blue-2", None).await;
    let green = node(&redis, "green", "green-1", None).await;
    let room = json!({"name": "shared-name"});

    let (status, _, body) = api(&blue1, "POST", "/api/rooms", Some(room.clone())).await;
    assert_eq!(status, 201, "{body}");
    wait_for("blue-2 to list the room on blue-1", WAIT, async || {
        let rooms = listed(&blue2).await;
        if rooms == [("shared-name".to_owned(), "blue-1".to_owned())] {
            Ok(())
        } else {
            Err(format!("{rooms:?}"))
        }
    })
    .await;
    // The same name in the other cluster is another room; the first cluster's is not listed.
    assert!(listed(&green).await.is_empty());
    let (status, _, body) = api(&green, "POST", "/api/rooms", Some(room.clone())).await;
    assert_eq!(status, 201, "the green cluster has its own rooms: {body}");
    // Within one cluster a name is one room.
    let (status, _, body) = api(&blue2, "POST", "/api/rooms", Some(room.clone())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blue-1"),
        "{body}"
    );

    // Asked at blue-2, the room's own node answers.
    let (status, answered_by, body) = api(&blue2, "GET", "/api/rooms/shared-name", None).await;
    assert_eq!((status, answered_by.as_str()), (200, "blue-1"), "{body}");
    let (status, answered_by, body) = api(&blue2, "DELETE", "/api/rooms/shared-name", None).await;
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(answered_by, "blue-1");
    wait_for(
        "the closed room to leave blue's listing",
        WAIT,
        async || {
            let rooms = listed(&blue2).await;
            if rooms.is_empty() {
                Ok(())
            } else {
                Err(format!("{rooms:?}"))
            }
        },
    )
    .await;
    // Its name is free again, anywhere in the cluster.
    wait_for(
        "blue-2 to create the room once its claim is released",
        WAIT,
        async || {
            let (status, _, body) = api(&blue2, "POST", "/api/rooms", Some(room.clone())).await;
            if status == 201 {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            }
        },
    )
    .await;

    // Cluster figures in /metrics, in a format Prometheus accepts.
    let text = metrics(&blue1).await;
    assert!(text.contains("switchyard_cluster_nodes_alive 2"), "{text}");
    assert!(
        text.contains("switchyard_cluster_node_rooms{node=\"blue-2\"} 1")
            || text.contains("switchyard_cluster_node_rooms{node=\"blue-2\"} 0"),
        "{text}"
    );
    promtool_check(&text);
    let text = metrics(&green).await;
    assert!(text.contains("switchyard_cluster_nodes_alive 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_from_any_node_resume_on_another_and_webhooks_fire_once() {
    let redis = RedisServer::start();
    let deliveries = Deliveries::default();
    let hook = webhook_receiver(&deliveries).await;
    let n1 = node(&redis, "events", "n1", Some(&hook)).await;
    let n2 = node(&redis, "events", "n2", Some(&hook)).await;
    let at_n2 = read_events(&format!("http://{}", n2.http_addr), &admin(&n2), None).await;
    let ann = participant(&n1, "ann", "ev-room", false).await;
    ann.leave();
    let kinds = wait_for(
        "n2's stream to show n1's room, join and leave",
        WAIT,
        async || {
            let seen = at_n2.lock().unwrap().clone();
            let of_room: Vec<(String, String)> = seen
                .iter()
                .filter(|e| e.data["room"] == "ev-room")
                .map(|e| (e.id.clone().unwrap_or_default(), e.kind.clone()))
                .collect();
            let has = |k: &str| of_room.iter().any(|(_, kind)| kind == k);
            if has("room_created") && has("participant_joined") && has("participant_left") {
                Ok(of_room)
            } else {
                Err(format!("{of_room:?}"))
            }
        },
    )
    .await;
    // Resuming at n1 after the room's creation (an id n2 handed out) replays what followed.
    let created = kinds
        .iter()
        .find(|(_, k)| k == "room_created")
        .unwrap()
        .0
        .clone();
    let at_n1 = read_events(
        &format!("http://{}", n1.http_addr),
        &admin(&n1),
        Some(created.clone()),
    )
    .await;
    wait_for(
        "n1 to replay the events after room_created",
        WAIT,
        async || {
            let replayed: Vec<String> = at_n1
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.data["room"] == "ev-room")
                .map(|e| e.kind.clone())
                .collect();
            let first_two: Vec<&str> = replayed.iter().take(2).map(String::as_str).collect();
            if first_two == ["participant_joined", "participant_left"] {
                Ok(())
            } else {
                Err(format!("{replayed:?}"))
            }
        },
    )
    .await;
    // Both nodes have webhooks, but each event goes out once, from the room's node.
    wait_for("the webhook to get ann's leave", WAIT, async || {
        let got = deliveries
            .lock()
            .unwrap()
            .iter()
            .any(|d| d["event"] == "participant_left" && d["data"]["identity"] == "ann");
        if got { Ok(()) } else { Err("not yet") }
    })
    .await;
    let joins: Vec<Value> = deliveries
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "participant_joined" && d["data"]["identity"] == "ann")
        .cloned()
        .collect();
    assert_eq!(joins.len(), 1, "one delivery per event: {joins:?}");
    assert_eq!(joins[0]["node"], "n1");
}

/// Runs a node that must refuse to start; returns its exit code and what it printed.
async fn failed_start(args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(NODE)
            .args(["--http-bind", &format!("127.0.0.1:{}", free_port())])
            .args(["--rtc-port", "0", "--turn-port", "0"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the node gives up within 30 s")
    .expect("the node runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cluster_settings_get_clear_errors() {
    // Redis is down (nothing listens on the port).
    let down = format!("redis://127.0.0.1:{}", free_port());
    let (code, printed) = failed_start(&["--redis", &down]).await;
    assert_ne!(code, Some(0), "{printed}");
    assert!(
        printed.contains("cannot reach Redis at redis://127.0.0.1:")
            && printed.contains("redis-server running"),
        "{printed}"
    );
    // A wrong password, and none for a Redis that wants one; the password is never printed.
    let guarded = RedisServer::start_with_password(Some("right-password"));
    for url in [
        format!("redis://:wrong-password@127.0.0.1:{}", guarded.port),
        format!("redis://127.0.0.1:{}", guarded.port),
    ] {
        let (code, printed) = failed_start(&["--redis", &url]).await;
        assert_ne!(code, Some(0), "{printed}");
        assert!(printed.contains("refused the password"), "{url}: {printed}");
        assert!(
            !printed.contains("wrong-password"),
            "the password leaked: {printed}"
        );
    }
    // Two nodes with one id: the second refuses to start (after waiting out a heartbeat that
    // could be its own previous run's).
    let redis = RedisServer::start();
    let _first = node(&redis, "switchyard", "twin", None).await;
    let (code, printed) = failed_start(&["--redis", &redis.url(), "--node-id", "twin"]).await;
    assert_ne!(code, Some(0), "{printed}");
    assert!(printed.contains("node id \"twin\" is in use"), "{printed}");
    // Not a Redis URL: a configuration error naming the setting.
    let (code, printed) = failed_start(&["--redis", "localhost:6379"]).await;
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("cluster.redis"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_found_on_two_nodes_joins_up_across_them() {
    let redis = RedisServer::start();
    let x = node(&redis, "split", "x", None).await;
    let y = node(&redis, "split", "y", None).await;
    let mut ann = participant(&x, "ann", "split-room", false).await;
    // Redis loses track (as after a restart) and node y's claim wins the room meanwhile; Bob
    // then joins at node y, which opens the room there too.
    let set = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "SET",
            "split:room:split-room",
            "y",
        ])
        .output()
        .expect("redis-cli runs");
    assert!(set.status.success(), "{set:?}");
    let mut bob = participant(&y, "bob", "split-room", false).await;
    // Node x serves its half as a part of the room on node y: the two halves link up and see
    // each other, and nobody is moved.
    for (who, client, other) in [("ann", &mut ann, "bob"), ("bob", &mut bob, "ann")] {
        let seen = client
            .wait_message(Duration::from_secs(15), |m| match m {
                protocol::ServerMessage::ParticipantJoined { participant } => {
                    Some(participant.identity.clone())
                }
                protocol::ServerMessage::Closed { reason } => Some(format!("closed: {reason:?}")),
                _ => None,
            })
            .await;
        assert_eq!(
            seen.as_deref(),
            Some(other),
            "{who} sees {other} across the two nodes"
        );
    }
    // The admin API lists the room once, with both nodes, and its detail names each
    // participant's node.
    wait_for(
        "node x to list the room once, on both nodes",
        Duration::from_secs(10),
        async || {
            let (_, _, list) = api(&x, "GET", "/api/rooms", None).await;
            let of_room: Vec<&Value> = list["rooms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["name"] == "split-room")
                .collect();
            match of_room.as_slice() {
                [r] if r["participantCount"] == 2
                    && r["nodes"] == json!(["x", "y"])
                    && r["node"] == "y" =>
                {
                    Ok(())
                }
                _ => Err(format!("listed {list}")),
            }
        },
    )
    .await;
    let (_, _, detail) = api(&x, "GET", "/api/rooms/split-room", None).await;
    let mut who: Vec<(String, String)> = detail["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["identity"].as_str().unwrap_or_default().to_owned(),
                p["node"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    who.sort();
    assert_eq!(
        who,
        [
            ("ann".to_owned(), "x".to_owned()),
            ("bob".to_owned(), "y".to_owned())
        ],
        "{detail}"
    );
    // An admin removes Bob through node x: the request goes to Bob's node, y.
    let (status, answered_by, _) =
        api(&x, "DELETE", "/api/rooms/split-room/participants/bob", None).await;
    assert_eq!((status, answered_by.as_str()), (204, "y"));
    let left = ann
        .wait_message(Duration::from_secs(10), |m| match m {
            protocol::ServerMessage::ParticipantLeft { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        left.as_deref(),
        Some("bob"),
        "ann hears that bob was removed"
    );
    // Closing the room on one node closes it on every node serving it.
    let mut cat = participant(&y, "cat", "split-room", false).await;
    let joined = ann
        .wait_message(Duration::from_secs(10), |m| match m {
            protocol::ServerMessage::ParticipantJoined { participant } => {
                Some(participant.identity.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(joined.as_deref(), Some("cat"));
    let (status, _, _) = api(&x, "DELETE", "/api/rooms/split-room", None).await;
    assert_eq!(status, 204);
    for (who, client) in [("ann", &mut ann), ("cat", &mut cat)] {
        let reason = client
            .wait_message(Duration::from_secs(10), |m| match m {
                protocol::ServerMessage::Closed { reason } => Some(*reason),
                _ => None,
            })
            .await;
        assert_eq!(
            reason,
            Some(protocol::CloseReason::RoomClosed),
            "{who} is told the room closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_one_node_gets_the_stats_of_rooms_on_another() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "stats", "s1", None).await;
    let n2 = node(&redis, "stats", "s2", None).await;
    let _ann = participant(&n1, "ann", "stats-room", false).await;
    // A reader at n2 wants stats: n1 takes its room's and sends them over.
    let at_n2 = read_events(&format!("http://{}", n2.http_addr), &admin(&n2), None).await;
    wait_for("n2's reader to get stats of n1's room", WAIT, async || {
        let seen = at_n2.lock().unwrap().clone();
        match seen
            .iter()
            .find(|e| e.kind == "stats" && e.data["room"] == "stats-room")
        {
            Some(e) if e.data["participantCount"] == 1 && e.id.is_none() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
