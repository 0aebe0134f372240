//! The admin REST API against the running server with a real HTTP client: every route with
//! Rust participants in a call, checked against the OpenAPI document; rooms created with
//! settings; the event stream and webhooks; a room closed while a client talks. Tokens and
//! refusals: admin_access.rs.

use std::collections::BTreeSet;
use std::time::Duration;

use client::{Client, ClientEvent};
use protocol::admin::{RoomList, RoomSummary};
use protocol::{CloseReason, Grants, ServerMessage};
use serde_json::{Value, json};
use switchyard_tests::admin::{
    Api, KEY, SECRET, WAIT, admin_token, error_code, participant, room_detail, server,
};
use switchyard_tests::{start_server, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_works_and_matches_the_openapi_document() {
    let server = server(10).await;
    let mut api = Api::new(&server);
    let admin = admin_token();
    let room = "ops-room";
    let mut alice = participant(&server, "alice", room, true).await;
    let mut bob = participant(&server, "bob", room, true).await;

    // Room detail: both participants, their tracks with codecs, and media counted.
    let mut detail = room_detail(&mut api, room).await;
    for _ in 0..40 {
        let flowing = detail.participants.len() == 2
            && detail.participants.iter().all(|p| {
                p.tracks.len() == 2
                    && p.tracks.iter().all(|t| t.packets > 0 && t.bitrate > 0)
                    && p.subscriptions.len() == 2
            });
        if flowing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        detail = room_detail(&mut api, room).await;
    }
    println!("{}", serde_json::to_string_pretty(&detail).unwrap());
    assert_eq!(detail.summary.participant_count, 2);
    assert_eq!(detail.summary.publisher_count, 2);
    assert!(detail.summary.bitrate_in > 0 && detail.summary.bitrate_out > 0);
    for p in &detail.participants {
        assert_eq!(p.state, "connected", "{p:?}");
        assert_eq!(p.candidate_type.as_deref(), Some("host"), "{p:?}");
        let codecs: Vec<&str> = p.tracks.iter().map(|t| t.codec.as_str()).collect();
        assert_eq!(codecs, ["opus", "VP8"], "{p:?}");
        assert!(
            p.tracks.iter().all(|t| t.packets > 0 && t.bitrate > 0),
            "{p:?}"
        );
        assert_eq!(p.subscriptions.len(), 2, "{p:?}");
    }

    // List rooms.
    let (status, body) = api
        .call("GET", "/api/rooms", "/api/rooms", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    let list: RoomList = serde_json::from_value(body).unwrap();
    assert!(
        list.rooms
            .iter()
            .any(|r| r.name == room && r.participant_count == 2)
    );

    // Create a room with settings; a second create conflicts.
    let create = json!({"name": "planned", "maxParticipants": 3, "emptyTimeoutSeconds": 120, "codecs": ["vp8"]});
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin),
            Some(create.clone()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let created: RoomSummary = serde_json::from_value(body).unwrap();
    assert_eq!(created.settings.max_participants, 3);
    assert_eq!(created.settings.empty_timeout_seconds, 120);
    assert_eq!(created.settings.codecs, ["vp8"]);
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin),
            Some(create),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "conflict"));
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin),
            Some(json!({"name": "bad room!"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"));

    // Mute Bob's video: everyone is told, the publisher included.
    let bob_video = detail
        .participants
        .iter()
        .find(|p| p.identity == "bob")
        .and_then(|p| p.tracks.iter().find(|t| t.codec == "VP8"))
        .map(|t| t.id.clone())
        .unwrap();
    let mute_path = format!("/api/rooms/{room}/participants/bob/tracks/{bob_video}/mute");
    let mute_template = "/api/rooms/{room}/participants/{identity}/tracks/{track}/mute";
    let (status, body) = api
        .call(
            "POST",
            mute_template,
            &mute_path,
            Some(&admin),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["muted"], json!(true));
    for c in [&mut alice, &mut bob] {
        c.wait_message(WAIT, |m| match m {
            ServerMessage::TrackMuted {
                track_id, muted, ..
            } if *track_id == bob_video => muted.then_some(()),
            _ => None,
        })
        .await
        .expect("trackMuted reaches everyone");
    }
    let (status, _) = api
        .call(
            "POST",
            mute_template,
            &format!("/api/rooms/{room}/participants/bob/tracks/TR_nope/mute"),
            Some(&admin),
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .call(
            "POST",
            mute_template,
            &mute_path,
            Some(&admin),
            Some(json!({"muted": false})),
        )
        .await;
    assert_eq!(status, 200);

    // Send data from the server to Alice only.
    let data_path = format!("/api/rooms/{room}/data");
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/data",
            &data_path,
            Some(&admin),
            Some(json!({"topic": "notice", "text": "maintenance at noon", "to": ["alice"]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["delivered"], json!(1));
    let (header, payload) = alice
        .wait_for(WAIT, |e| match e {
            ClientEvent::Data {
                header, payload, ..
            } if header["topic"] == "notice" => Some((header.clone(), payload.clone())),
            _ => None,
        })
        .await
        .expect("Alice gets the server's message");
    assert_eq!(header["from"], json!("server"));
    assert_eq!(payload, b"maintenance at noon");
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/data",
            &data_path,
            Some(&admin),
            Some(json!({"text": "x", "base64": "eA=="})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "bad_request"));
    let (status, _) = api
        .call(
            "POST",
            "/api/rooms/{room}/data",
            &data_path,
            Some(&admin),
            Some(json!({"text": "x", "to": ["nobody"]})),
        )
        .await;
    assert_eq!(status, 404);

    // Revoke Alice's canPublish: her tracks leave Bob.
    let permissions = "/api/rooms/{room}/participants/{identity}/permissions";
    let (status, body) = api
        .call(
            "PATCH",
            permissions,
            &format!("/api/rooms/{room}/participants/alice/permissions"),
            Some(&admin),
            Some(json!({"canPublish": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grants"]["canPublish"], json!(false));
    assert_eq!(body["grants"]["canSubscribe"], json!(true));
    let mut unpublished = 0;
    bob.wait_message(WAIT, |m| {
        unpublished += usize::from(matches!(m, ServerMessage::TrackUnpublished { .. }));
        (unpublished == 2).then_some(())
    })
    .await
    .expect("Bob sees both of Alice's tracks unpublished");
    let (status, _) = api
        .call(
            "PATCH",
            permissions,
            &format!("/api/rooms/{room}/participants/carol/permissions"),
            Some(&admin),
            Some(json!({"canPublish": false})),
        )
        .await;
    assert_eq!(status, 404);

    // Mint a participant token through the API; it joins.
    let (status, body) = api
        .call(
            "POST",
            "/api/tokens",
            "/api/tokens",
            Some(&admin),
            Some(json!({"identity": "carol", "name": "Carol", "room": room, "ttlSeconds": 600})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let mut carol = Client::connect(&ws_url(&server)).await.unwrap();
    carol.join(room, &token);
    carol
        .wait_message(WAIT, |m| {
            matches!(m, ServerMessage::Joined { .. }).then_some(())
        })
        .await
        .expect("the minted token joins");

    // Remove Bob: he is told why and disconnected; the others see him leave.
    let (status, _) = api
        .call(
            "DELETE",
            "/api/rooms/{room}/participants/{identity}",
            &format!("/api/rooms/{room}/participants/bob"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    bob.wait_message(WAIT, |m| match m {
        ServerMessage::Closed { reason } => (*reason == CloseReason::Removed).then_some(()),
        _ => None,
    })
    .await
    .expect("Bob is told he was removed");
    alice
        .wait_message(WAIT, |m| match m {
            ServerMessage::ParticipantLeft { identity, .. } => (identity == "bob").then_some(()),
            _ => None,
        })
        .await
        .expect("Alice sees Bob leave");
    let (status, _) = api
        .call(
            "DELETE",
            "/api/rooms/{room}/participants/{identity}",
            &format!("/api/rooms/{room}/participants/bob"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 404, "already gone");

    // Close the room: everyone is told, then it is gone.
    let (status, _) = api
        .call(
            "DELETE",
            "/api/rooms/{room}",
            &format!("/api/rooms/{room}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    for c in [&mut alice, &mut carol] {
        c.wait_message(WAIT, |m| match m {
            ServerMessage::Closed { reason } => (*reason == CloseReason::RoomClosed).then_some(()),
            _ => None,
        })
        .await
        .expect("told the room closed");
    }
    let (status, _) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            &format!("/api/rooms/{room}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 404, "a closed room is gone");

    // Recording routes, on their paths that need no recorder: the room is closed now.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            &format!("/api/rooms/{room}/recording"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, body) = api
        .call(
            "DELETE",
            "/api/rooms/{room}/recording",
            &format!("/api/rooms/{room}/recording"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "no_recording"), "{body}");
    // Broadcast routes, likewise (the broadcast itself: recorder/tests/broadcast_browser.rs).
    for (method, code) in [
        ("POST", "not_found"),
        ("GET", "no_broadcast"),
        ("DELETE", "no_broadcast"),
    ] {
        let (status, body) = api
            .call(
                method,
                "/api/rooms/{room}/broadcast",
                &format!("/api/rooms/{room}/broadcast"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!((status, error_code(&body)), (404, code), "{method}: {body}");
    }
    let (status, body) = api
        .call(
            "GET",
            "/api/recordings",
            "/api/recordings",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"recordings": []}));
    let (status, body) = api
        .call(
            "GET",
            "/api/recordings/{id}",
            "/api/recordings/20261127-220000-nosuchrecording1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");

    // The OpenAPI document describes exactly the routes exercised here (and the stream).
    let (status, doc) = api
        .call("GET", "/api/openapi.json", "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let mut documented = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for method in operations.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let mut exercised = api.exercised.clone();
    // The event stream is exercised by its own test.
    exercised.insert(("get".into(), "/api/events".into()));
    let undocumented: Vec<_> = exercised.difference(&documented).collect();
    let untested: Vec<_> = documented.difference(&exercised).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        untested.is_empty(),
        "documented but not exercised: {untested:?}"
    );
}

/// One Server-Sent Event: (id, event name, data).
type Sse = (u64, String, Value);

/// Reads SSE frames from `response` until `done` says stop (or 15 s pass).
async fn read_events(
    response: reqwest::Response,
    mut done: impl FnMut(&[Sse]) -> bool,
) -> Vec<Sse> {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive in time")
            .expect("the stream stays open")
            .expect("readable");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (mut id, mut name, mut data) = (None, String::new(), Value::Null);
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                }
            }
            if let Some(id) = id {
                events.push((id, name, data));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_joins_and_leaves_in_order_and_resumes() {
    let server = server(10).await;
    let url = format!("http://{}/api/events?room=sse-room", server.http_addr);
    let http = reqwest::Client::new();
    let response = http
        .get(&url)
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let alice = participant(&server, "alice", "sse-room", false).await;
    let bob = participant(&server, "bob", "sse-room", false).await;
    // Another room's events are filtered out.
    let _other = participant(&server, "zed", "other-room", false).await;
    bob.leave();
    let events = read_events(response, |events| {
        events
            .iter()
            .any(|(_, name, data)| name == "participant_left" && data["identity"] == "bob")
    })
    .await;
    let names: Vec<String> = events
        .iter()
        .filter(|(_, name, _)| name != "stats")
        .map(|(_, name, data)| format!("{name} {}", data["identity"].as_str().unwrap_or("")))
        .collect();
    println!("events: {names:?}");
    assert_eq!(
        names,
        [
            "room_created ",
            "participant_joined alice",
            "participant_joined bob",
            "participant_left bob"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert!(events.iter().all(|(_, _, data)| data["room"] == "sse-room"));
    // A reader that saw up to Alice's join gets the rest on reconnecting.
    let alice_joined = events[1].0;
    let resumed = http
        .get(&url)
        .bearer_auth(admin_token())
        .header("Last-Event-ID", alice_joined.to_string())
        .send()
        .await
        .unwrap();
    let replay = read_events(resumed, |events| events.len() >= 2).await;
    let replayed: Vec<&str> = replay.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(replayed[..2], ["participant_joined", "participant_left"]);
    assert_eq!(replay[0].2["identity"], "bob");
    drop(alice);
    // The stream needs a token like every admin route.
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_signed_events_and_retry() {
    use std::sync::{Arc, Mutex};
    // A receiver that refuses its first delivery (to see a retry) and records everything.
    /// (signature header, body) of each delivery.
    type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Deliveries = Arc::default();
    let record = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let record = Arc::clone(&record);
                async move {
                    let signature = headers
                        .get("x-switchyard-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let mut all = record.lock().unwrap();
                    all.push((signature, body.to_vec()));
                    if all.len() == 1 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.webhooks = Some(signaling::webhooks::WebhookConfig {
            urls: vec![hook.clone()],
            secret: "hook-secret".into(),
            node: None,
        });
    })
    .await;
    let _alice = participant(&server, "alice", "hooked", false).await;
    let start = std::time::Instant::now();
    let deliveries = loop {
        let all = received.lock().unwrap().clone();
        let joined = all
            .iter()
            .filter(|(_, body)| String::from_utf8_lossy(body).contains("participant_joined"))
            .count();
        if joined >= 1 && all.len() >= 3 {
            break all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "webhooks: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The refused first delivery (room_created) came again; every body is signed.
    assert_eq!(
        deliveries[0].1, deliveries[1].1,
        "the refused delivery is retried"
    );
    for (signature, body) in &deliveries {
        assert_eq!(
            *signature,
            signaling::webhooks::signature("hook-secret", body)
        );
        let event: Value = serde_json::from_slice(body).unwrap();
        assert!(event["id"].as_u64().is_some() && event["data"]["room"] == "hooked");
    }
    let names: Vec<String> = deliveries
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    println!("webhook deliveries: {names:?}");
    assert_eq!(
        names[..3],
        ["room_created", "room_created", "participant_joined"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_with_codec_preferences_refuses_other_video_codecs() {
    let server = server(10).await;
    let mut api = Api::new(&server);
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin_token()),
            Some(json!({"name": "h264-only", "codecs": ["h264"], "maxParticipants": 1})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The Rust client sends VP8 video only: in this room just its audio gets through.
    let _vp8 = participant(&server, "vp8-sender", "h264-only", true).await;
    // The client starts its audio and video together; once the room has received a second of
    // its audio (50 packets of 20 ms), a video track it accepted would be published too.
    let mut detail = room_detail(&mut api, "h264-only").await;
    for _ in 0..60 {
        let audio_packets = detail
            .participants
            .first()
            .and_then(|p| p.tracks.iter().find(|t| t.codec == "opus"))
            .map_or(0, |t| t.packets);
        if audio_packets >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        detail = room_detail(&mut api, "h264-only").await;
    }
    let codecs: Vec<String> = detail.participants[0]
        .tracks
        .iter()
        .map(|t| t.codec.clone())
        .collect();
    println!("tracks in the h264-only room: {codecs:?}");
    assert_eq!(codecs, ["opus"]);
    // maxParticipants 1: a second participant is turned away.
    let mut second = Client::connect(&ws_url(&server)).await.unwrap();
    second.join(
        "h264-only",
        &server.token("late", "h264-only", Grants::default()),
    );
    let refused = second
        .wait_message(WAIT, |m| match m {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, Some(protocol::ErrorCode::RoomFull));
}

/// A client whose messages cross the room's closing (an answer in flight, a mute) is still told
/// `closed` with the reason and gets a proper close frame, not a dropped connection. Each round
/// keeps messages to the room flowing while the admin closes it, so both arrive together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_talking_while_its_room_closes_is_still_told_why() {
    let server = server(100).await;
    let admin = admin_token();
    for round in 0..20 {
        let room = format!("closing-{round}");
        let mut alice = Client::connect(&ws_url(&server)).await.expect("connect");
        alice.join(&room, &server.token("alice", &room, Grants::default()));
        alice
            .wait_message(WAIT, |m| {
                matches!(m, ServerMessage::Joined { .. }).then_some(())
            })
            .await
            .expect("joined");
        let close = tokio::spawn({
            let url = format!("http://{}/api/rooms/{room}", server.http_addr);
            let admin = admin.clone();
            async move {
                reqwest::Client::new()
                    .delete(url)
                    .bearer_auth(admin)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        });
        let mut muted = false;
        while !close.is_finished() {
            muted = !muted;
            alice.send(protocol::ClientMessage::Mute {
                kind: protocol::TrackKind::Audio,
                muted,
            });
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        for _ in 0..50 {
            muted = !muted;
            alice.send(protocol::ClientMessage::Mute {
                kind: protocol::TrackKind::Audio,
                muted,
            });
        }
        assert_eq!(close.await.unwrap().expect("DELETE"), 204);
        let mut told = None;
        let close_code = alice
            .wait_for(WAIT, |e| match e {
                ClientEvent::Message(ServerMessage::Closed { reason }) => {
                    told = Some(*reason);
                    None
                }
                ClientEvent::Closed { code, reason } => Some((*code, reason.clone())),
                _ => None,
            })
            .await
            .expect("the connection ends");
        assert_eq!(
            told,
            Some(CloseReason::RoomClosed),
            "round {round}: not told why (connection ended with {close_code:?})"
        );
        assert_eq!(close_code.0, Some(1000), "round {round}: {close_code:?}");
    }
}
