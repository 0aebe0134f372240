//! The admin API with two headless Chromium participants in a call: the room detail shows
//! both with codec, resolution, bitrate and candidate type; the event stream carries their
//! joins and leaves in order; removing one through the API disconnects its page within 2 s
//! and the other page sees it leave; revoking canPublish stops that participant's video at
//! the other within 5 s.

use std::time::{Duration, Instant};

use futures::StreamExt;
use protocol::Grants;
use protocol::admin::RoomDetail;
use serde_json::{Value, json};
use switchyard_tests::browser::{Driver, eval, media_stats};
use switchyard_tests::{Server, start_server, wait_for};

fn admin_token(server: &Server) -> String {
    let grants = Grants {
        room_admin: true,
        ..Grants::default()
    };
    server.tokens.mint("ops", "Ops", "", grants, 600)
}

async fn detail(server: &Server, room: &str) -> RoomDetail {
    reqwest::Client::new()
        .get(format!("http://{}/api/rooms/{room}", server.http_addr))
        .bearer_auth(admin_token(server))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Video frames `page` decoded from the participant whose identity starts with `prefix`.
async fn frames_from(page: &fantoccini::Client, prefix: &str) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video")
        .filter(|s| {
            s["identity"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix)
        })
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Collects SSE frames (event name, data) from the stream into a shared list.
fn collect_events(
    response: reqwest::Response,
) -> std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>> {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = Value::Null;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                    }
                }
                if !name.is_empty() && name != "stats" {
                    sink.lock().unwrap().push((name, data));
                }
            }
        }
    });
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_a_browser_call_and_act_on_it() {
    let server = start_server(None, |_| {}).await;
    let room = "admin-e2e";
    let events_response = reqwest::Client::new()
        .get(format!(
            "http://{}/api/events?room={room}",
            server.http_addr
        ))
        .bearer_auth(admin_token(&server))
        .send()
        .await
        .unwrap();
    let events = collect_events(events_response);

    let driver = Driver::start().await.expect("chromedriver");
    let pages = driver
        .call_pages(server.http_addr.port(), room, &["Alice", "Bob"], "")
        .await
        .expect("pages load");

    // 1. The room detail: both participants with codec, resolution, bitrate, candidate type.
    let start = Instant::now();
    let room_detail = loop {
        let d = detail(&server, room).await;
        let complete = d.participants.len() == 2
            && d.participants.iter().all(|p| {
                p.candidate_type.is_some()
                    && p.tracks
                        .iter()
                        .any(|t| t.codec == "VP8" && t.width.unwrap_or(0) > 0 && t.bitrate > 0)
                    && p.tracks.iter().any(|t| t.codec == "opus" && t.bitrate > 0)
            });
        if complete {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "room detail never complete: {}",
            serde_json::to_string_pretty(&d).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for p in &room_detail.participants {
        let video = p.tracks.iter().find(|t| t.codec == "VP8").unwrap();
        println!(
            "{} ({}): {} via {:?}, rtt {:?} ms, video {}x{} at {:.0} fps, {} kbit/s, loss {:.3}, audio {} kbit/s",
            p.name,
            p.identity,
            p.state,
            p.candidate_type,
            p.rtt_ms.map(|r| (r * 10.0).round() / 10.0),
            video.width.unwrap(),
            video.height.unwrap(),
            video.fps.unwrap_or(0.0),
            video.bitrate / 1000,
            video.loss_rate,
            p.tracks.iter().find(|t| t.codec == "opus").unwrap().bitrate / 1000
        );
        assert_eq!(p.state, "connected");
        assert_eq!(p.candidate_type.as_deref(), Some("host"));
    }
    let identity_of = |name: &str| {
        room_detail
            .participants
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.identity.clone())
            .unwrap()
    };
    let (alice, bob) = (identity_of("Alice"), identity_of("Bob"));

    // Both pages decode each other's video.
    let start = Instant::now();
    while frames_from(&pages[1], "alice").await < 30 || frames_from(&pages[0], "bob").await < 30 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "video did not flow"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 3. Revoke Alice's canPublish: her video stops at Bob within 5 s.
    let revoked_at = Instant::now();
    let response = reqwest::Client::new()
        .patch(format!(
            "http://{}/api/rooms/{room}/participants/{alice}/permissions",
            server.http_addr
        ))
        .bearer_auth(admin_token(&server))
        .json(&json!({"canPublish": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut last = frames_from(&pages[1], "alice").await;
    let mut still_since = Instant::now();
    let stopped_after = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now_frames = frames_from(&pages[1], "alice").await;
        if now_frames != last {
            last = now_frames;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_secs(1) {
            // No new frame for a second: stopped when the last one came. (This quiet second is
            // the measurement itself, not a barrier: a running video decodes many frames in it.)
            break still_since.duration_since(revoked_at);
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(8),
            "Alice's video kept arriving at Bob ({now_frames} frames)"
        );
    };
    println!("Alice's video stopped at Bob {stopped_after:?} after canPublish was revoked");
    assert!(stopped_after <= Duration::from_secs(5));
    // Bob's video still reaches Alice.
    let before = frames_from(&pages[0], "bob").await;
    wait_for(
        "Bob's video to go on at Alice",
        Duration::from_secs(5),
        async || {
            let now = frames_from(&pages[0], "bob").await;
            if now > before {
                Ok(())
            } else {
                Err(format!("still {now} frames"))
            }
        },
    )
    .await;

    // 2. Remove Bob: his page is disconnected within 2 s and Alice's page sees him leave.
    let removed_at = Instant::now();
    let response = reqwest::Client::new()
        .delete(format!(
            "http://{}/api/rooms/{room}/participants/{bob}",
            server.http_addr
        ))
        .bearer_auth(admin_token(&server))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    loop {
        let state = eval(&pages[1], "return window.switchyard.state()")
            .await
            .unwrap();
        if state == "failed" {
            break;
        }
        assert!(
            removed_at.elapsed() < Duration::from_secs(2),
            "Bob's page still {state} after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bob_gone = removed_at.elapsed();
    let banner = eval(&pages[1], "return document.body.innerText")
        .await
        .unwrap();
    assert!(
        banner.as_str().unwrap_or_default().contains("removed"),
        "Bob's page says why"
    );
    loop {
        let remotes = eval(&pages[0], "return window.switchyard.remoteParticipants()")
            .await
            .unwrap();
        if remotes.as_array().is_some_and(|r| r.is_empty()) {
            break;
        }
        assert!(
            removed_at.elapsed() < Duration::from_secs(5),
            "Alice still shows {remotes}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "Bob's page disconnected {bob_gone:?} after the API call; Alice saw him leave after {:?}",
        removed_at.elapsed()
    );

    // The event stream carried the joins and the leave, in order (the leave may still be on
    // its way).
    wait_for(
        "participant_left on the event stream",
        Duration::from_secs(5),
        async || {
            let seen = events.lock().unwrap();
            if seen.iter().any(|(name, _)| name == "participant_left") {
                Ok(())
            } else {
                Err(format!("only {seen:?}"))
            }
        },
    )
    .await;
    let seen: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("participant_"))
        .map(|(name, data)| format!("{name} {}", data["identity"].as_str().unwrap_or("")))
        .collect();
    println!("events: {seen:?}");
    // The two pages joined concurrently, so either join may come first; the leave is last.
    assert_eq!(seen.len(), 3, "{seen:?}");
    let mut joins = seen[..2].to_vec();
    joins.sort();
    let mut expected = vec![
        format!("participant_joined {alice}"),
        format!("participant_joined {bob}"),
    ];
    expected.sort();
    assert_eq!(joins, expected);
    assert_eq!(seen[2], format!("participant_left {bob}"));
    let left = events
        .lock()
        .unwrap()
        .iter()
        .find(|(name, _)| name == "participant_left")
        .map(|(_, data)| data["reason"].clone());
    assert_eq!(left, Some(json!("removed")));
}
