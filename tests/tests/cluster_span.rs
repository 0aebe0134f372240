//! A room larger than one node, with real Chromium pages, two `switchyard-node` processes and a
//! real `redis-server`: node A takes two participants of a room, the next two are sent to node
//! B, and all four decode each other. Each published track crosses the A↔B link once (the
//! nodes' `/metrics`), however many subscribers the other node has; a receiver on node B picks
//! simulcast layers of a publisher on node A; a speaker on node A is named on node B; chat goes
//! both ways with its real sender. Never fakes a browser, a node or Redis.

use std::time::Duration;

use serde_json::json;
use switchyard_tests::browser::{Driver, eval, wait_for_script, wait_until_data_flows};
use switchyard_tests::cluster_node::{ClusterNode, dev_admin_token};
use switchyard_tests::cluster_pages::{page_node, wait_all_decoding};
use switchyard_tests::media::{
    downlink, num, record_events, recorded, run, sending_layers, track_stats, wait_connected,
    wait_video_track,
};
use switchyard_tests::redis::RedisServer;
use switchyard_tests::wait_for;

const NODE: &str = env!("CARGO_BIN_EXE_switchyard-node");
const ROOM: &str = "span-call";

/// Waits until `node`'s metric `name` reads `want`.
async fn metric_is(node: &ClusterNode, name: &str, want: f64) {
    wait_for(
        &format!("{name} on {} to be {want}", node.id),
        Duration::from_secs(20),
        async || match node.metric(name).await {
            Some(v) if v == want => Ok(()),
            other => Err(format!("{name} = {other:?}")),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_pages_on_two_nodes_share_one_room() {
    let redis = RedisServer::start();
    // A room goes to the node its first join reached (node A), which serves two of it.
    let flags = ["--placement", "local", "--room-participants-per-node", "2"];
    let a = ClusterNode::start(NODE, "node-a", &redis.url(), &flags).await;
    let mut b = ClusterNode::start(NODE, "node-b", &redis.url(), &flags).await;

    // All four open the room at node A, one after the other.
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = Vec::new();
    let mut ids = Vec::new();
    for name in ["Ann", "Ben", "Cat", "Dan"] {
        let page = driver.browser().await.expect("a browser");
        page.goto(&format!("{}/room/{ROOM}?name={name}", a.url()))
            .await
            .expect("the call page loads");
        ids.push(wait_connected(&page).await);
        pages.push((name, page));
    }
    for ((name, page), at) in pages.iter().zip([&a, &a, &b, &b]) {
        let node = page_node(page).await;
        assert!(
            node.contains(&format!(":{}/", at.http_port)),
            "{name} talks to {node}, not {}",
            at.id
        );
    }
    println!("Ann and Ben are served by node A; Cat and Dan were sent to node B");
    wait_all_decoding(
        &pages,
        30,
        Duration::from_secs(60),
        None,
        "all four pages to decode each other across the two nodes",
    )
    .await;
    println!("each page decodes the three others");

    // Each node sends each of its two participants' two tracks (audio, video) to the other
    // node once: four tracks out, four in, four ever opened, though two subscribers wait on
    // the other side of each.
    for node in [&a, &b] {
        metric_is(node, "switchyard_cluster_link_tracks_out", 4.0).await;
        metric_is(node, "switchyard_cluster_link_tracks_in", 4.0).await;
        metric_is(node, "switchyard_cluster_link_tracks_opened_total", 4.0).await;
        metric_is(node, "switchyard_cluster_links_up", 1.0).await;
    }
    // One copy per packet: what node A sent over the link is no more than what its own
    // publishers sent it (fewer: only the simulcast layers node B's receivers need).
    let value = |m: Option<f64>| m.unwrap_or(0.0);
    let a_in = value(a.metric("switchyard_packets_in_total").await);
    let a_link_in = value(a.metric("switchyard_cluster_link_packets_in_total").await);
    let a_link_out = value(a.metric("switchyard_cluster_link_packets_out_total").await);
    let b_out = value(b.metric("switchyard_packets_out_total").await);
    println!(
        "node A: {a_in} packets in ({a_link_in} of them from node B), {a_link_out} sent to \
         node B; node B forwarded {b_out} packets to its pages"
    );
    assert!(a_link_out > 0.0, "node A sent nothing over the link");
    assert!(
        a_link_out <= a_in - a_link_in,
        "node A sent {a_link_out} packets over the link but received only {} from its own \
         publishers: a track crossed more than once",
        a_in - a_link_in
    );

    // Node B's admin API lists the room once: four participants, on both nodes, owned by A.
    let admin = dev_admin_token(&b.url()).await;
    wait_for(
        "node B to list the room once with its four participants",
        Duration::from_secs(10),
        async || {
            let list: serde_json::Value = reqwest::Client::new()
                .get(format!("{}/api/rooms", b.url()))
                .bearer_auth(&admin)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let rooms = list["rooms"].as_array().cloned().unwrap_or_default();
            match rooms.as_slice() {
                [r] if r["participantCount"] == 4
                    && r["node"] == "node-a"
                    && r["nodes"] == json!(["node-a", "node-b"]) =>
                {
                    Ok(())
                }
                _ => Err(format!("listed {list}")),
            }
        },
    )
    .await;

    // Simulcast across the link: Cat (on node B) caps Ann's camera (on node A) at q, then
    // lets it go back up to f; her page receives q's picture size, then a larger one.
    let (cat, ann_id) = (&pages[2].1, &ids[0]);
    let ann_camera = wait_video_track(cat, ann_id, "camera").await;
    let track = ann_camera["id"].as_str().expect("a track id").to_owned();
    println!("Ann's camera at Cat: {ann_camera}");
    // (Chromium may scale every layer down when four pages share two cores, so the picture is
    // checked against q's size, not against each layer's nominal one.)
    let q_width = 320.0 * 1.05;
    for (layer, up) in [("q", false), ("f", true)] {
        run(
            cat,
            "return window.switchyard.client.setTrackSettings(arguments[0], \
             {visible: true, width: 1280, height: 720, maxLayer: arguments[1]})",
            vec![json!(track), json!(layer)],
        )
        .await
        .expect("setTrackSettings");
        let what = if up {
            "a layer above q again"
        } else {
            "layer q (320 wide at most)"
        };
        // An upgrade may wait for a probe to raise Cat's estimate (about 10 s).
        let stats = wait_for(
            &format!("Cat to receive Ann's camera at {what}"),
            Duration::from_secs(45),
            async || match track_stats(cat, &track).await {
                Some(s)
                    if (num(&s, "frameWidth") > q_width) == up && num(&s, "frameWidth") > 0.0 =>
                {
                    Ok(s)
                }
                other => Err(format!(
                    "stats now {other:?}; Cat's {}; Ann's camera {}",
                    downlink(cat).await,
                    sending_layers(&pages[0].1).await
                )),
            },
        )
        .await;
        println!(
            "Cat capped Ann's camera at {layer}: receives {}x{}, {} frames; Ann's camera {}",
            num(&stats, "frameWidth"),
            num(&stats, "frameHeight"),
            num(&stats, "framesDecoded"),
            sending_layers(&pages[0].1).await
        );
    }

    // Speakers across the link: everyone mutes, then Ann (node A) unmutes; Cat and Dan (node
    // B) are told she speaks.
    for (_, page) in &pages {
        run(
            page,
            "if (!window.switchyard.client.isMuted('audio')) \
               document.getElementById('toggle-mic').click(); \
             return window.switchyard.client.isMuted('audio')",
            vec![],
        )
        .await
        .expect("the microphone button works");
    }
    for (name, page) in &pages[2..] {
        wait_for_script(
            page,
            &format!("{name} to hear that nobody speaks"),
            Duration::from_secs(15),
            "return window.switchyard.speakers().length === 0",
        )
        .await;
        record_events(page, &["speakersChanged"]).await;
    }
    run(
        &pages[0].1,
        "document.getElementById('toggle-mic').click(); \
         return window.switchyard.client.isMuted('audio')",
        vec![],
    )
    .await
    .expect("Ann unmutes");
    for (name, page) in &pages[2..] {
        wait_for(
            &format!("{name} (node B) to hear that Ann (node A) speaks"),
            Duration::from_secs(10),
            async || {
                let events = recorded(page).await;
                let named = events.iter().any(|e| {
                    e["type"] == "speakersChanged"
                        && e["detail"]["speakers"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|s| s["participantId"] == *ann_id))
                });
                if named {
                    Ok(())
                } else {
                    Err(format!("events so far: {events:?}"))
                }
            },
        )
        .await;
    }
    println!("Cat and Dan on node B hear that Ann on node A speaks");

    // Data channels across the link: presence pings reach every page, and a chat line from
    // Dan (node B) reaches Ben (node A) labelled with its sender, and back.
    let all: Vec<_> = pages.iter().map(|(_, p)| p).collect();
    wait_until_data_flows(&all, Duration::from_secs(30)).await;
    for (from, to, text) in [(3, 1, "hello from Dan"), (1, 3, "hello from Ben")] {
        eval(
            &pages[from].1,
            &format!("window.switchyard.chat({}); return true", json!(text)),
        )
        .await
        .expect("chat sends");
        let line = wait_for_script(
            &pages[to].1,
            &format!("{}'s chat line to reach {}", pages[from].0, pages[to].0),
            Duration::from_secs(15),
            &format!(
                "return window.switchyard.chatLog().find(m => m.text === {}) || null",
                json!(text)
            ),
        )
        .await;
        let sender = pages[from].0.to_lowercase();
        assert!(
            line["from"].as_str().unwrap_or("").starts_with(&sender),
            "the line names its sender {sender}: {line}"
        );
    }
    println!("chat crosses the link both ways with its real sender");

    // Node B dies (SIGKILL): node A notices its link is gone, drops node B's participants and
    // stops sending to it; Ann and Ben go on with each other.
    let killed = std::time::Instant::now();
    b.kill().await;
    for (name, page) in &pages[..2] {
        wait_for_script(
            page,
            &format!("{name} to see only the other participant of node A"),
            Duration::from_secs(15),
            "return window.switchyard.client.participants.size === 1",
        )
        .await;
    }
    println!(
        "Ann and Ben see node B's participants leave {:?} after its death",
        killed.elapsed()
    );
    metric_is(&a, "switchyard_cluster_link_tracks_out", 0.0).await;
    metric_is(&a, "switchyard_cluster_link_tracks_in", 0.0).await;
    metric_is(&a, "switchyard_cluster_links_up", 0.0).await;
    wait_all_decoding(
        &pages[..2],
        30,
        Duration::from_secs(20),
        None,
        "Ann and Ben to keep decoding each other",
    )
    .await;
}
