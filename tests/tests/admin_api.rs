//! The admin REST API against the running server with a real HTTP client: the token attack
//! table, every route with Rust participants in a call, and the OpenAPI document checked
//! against the routes exercised here.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client::{Client, ClientEvent};
use protocol::admin::{RoomDetail, RoomList, RoomSummary};
use protocol::{Claims, CloseReason, Grants, ServerMessage};
use serde_json::{Value, json};
use switchyard_tests::{Server, start_server, ws_url};

const KEY: &str = "APIadmintest";
const SECRET: &str = "an-admin-test-secret-that-is-long-enough";
const WAIT: Duration = Duration::from_secs(10);

async fn server(max_auth_failures: u32) -> Server {
    start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.max_auth_failures = max_auth_failures;
    })
    .await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn admin_grants() -> Grants {
    Grants {
        room_admin: true,
        ..Grants::default()
    }
}

fn claims(room: &str, grants: Grants, exp: Option<u64>) -> Value {
    let mut value = serde_json::to_value(Claims {
        iss: KEY.into(),
        sub: "ops".into(),
        name: "Ops".into(),
        room: room.into(),
        exp: exp.unwrap_or(now() + 600),
        nbf: None,
        grants,
    })
    .unwrap();
    if exp.is_none() && value["exp"].as_u64() == Some(0) {
        value.as_object_mut().unwrap().remove("exp");
    }
    value
}

/// A JWT with any header and claims, signed with `alg` (HS256/HS512) and `secret`, or unsigned.
fn jwt(header: Value, claims: &Value, secret: Option<&[u8]>) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match (secret, header["alg"].as_str()) {
        (Some(secret), Some("HS512")) => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        (Some(secret), _) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        (None, _) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

fn hs256(claims: &Value) -> String {
    jwt(
        json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        Some(SECRET.as_bytes()),
    )
}

fn admin_token() -> String {
    hs256(&claims("", admin_grants(), None))
}

struct Api {
    http: reqwest::Client,
    base: String,
    /// (method, path template) of every call made, to check against the OpenAPI document.
    exercised: BTreeSet<(String, String)>,
}

impl Api {
    fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.http_addr),
            exercised: BTreeSet::new(),
        }
    }

    /// Calls `method path` with an optional bearer token and JSON body; returns status, body.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.exercised
            .insert((method.to_lowercase(), template.to_owned()));
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_attack_table_gets_the_exact_status() {
    let server = server(1000).await;
    let mut api = Api::new(&server);
    let hs256_header = json!({"alg": "HS256", "typ": "JWT"});
    let valid = claims("", admin_grants(), None);
    let mut tampered_token = hs256(&claims("", Grants::default(), None));
    {
        // Flip the payload to one with roomAdmin, keeping the old signature.
        let mut parts: Vec<String> = tampered_token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(valid.to_string());
        tampered_token = parts.join(".");
    }
    let mut no_exp = valid.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut expired = valid.clone();
    expired["exp"] = json!(now() - 120);
    let mut within_leeway = valid.clone();
    within_leeway["exp"] = json!(now() - 20);
    let mut future_nbf = valid.clone();
    future_nbf["nbf"] = json!(now() + 300);
    let mut wrong_issuer = valid.clone();
    wrong_issuer["iss"] = json!("APIsomeoneelse");
    let table: Vec<(&str, Option<String>, u16)> = vec![
        ("valid admin token", Some(hs256(&valid)), 200),
        ("no Authorization header", None, 401),
        (
            "alg none, no signature",
            Some(jwt(json!({"alg": "none", "typ": "JWT"}), &valid, None)),
            401,
        ),
        (
            "RS256 header",
            Some(jwt(
                json!({"alg": "RS256", "typ": "JWT"}),
                &valid,
                Some(SECRET.as_bytes()),
            )),
            401,
        ),
        (
            "HS512 with the right secret",
            Some(jwt(
                json!({"alg": "HS512", "typ": "JWT"}),
                &valid,
                Some(SECRET.as_bytes()),
            )),
            401,
        ),
        (
            "signed with another secret",
            Some(jwt(
                hs256_header.clone(),
                &valid,
                Some(b"not-the-secret-at-all-not-the-secret"),
            )),
            401,
        ),
        ("missing exp", Some(hs256(&no_exp)), 401),
        ("expired beyond the leeway", Some(hs256(&expired)), 401),
        (
            "expired within the 60 s leeway",
            Some(hs256(&within_leeway)),
            200,
        ),
        ("nbf in the future", Some(hs256(&future_nbf)), 401),
        ("wrong issuer", Some(hs256(&wrong_issuer)), 401),
        ("tampered claims", Some(tampered_token), 401),
        ("not a JWT", Some("hello".into()), 401),
        (
            "participant token (no roomAdmin)",
            Some(hs256(&claims("demo", Grants::default(), None))),
            403,
        ),
        (
            "admin token for one room, listing all",
            Some(hs256(&claims("demo", admin_grants(), None))),
            403,
        ),
    ];
    let mut report = Vec::new();
    for (label, token, expected) in &table {
        let (status, body) = api
            .call("GET", "/api/rooms", "/api/rooms", token.as_deref(), None)
            .await;
        report.push(format!("{label}: {status} {}", error_code(&body)));
        assert_eq!(status, *expected, "{label}: {body}");
        if *expected != 200 {
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty(),
                "{label}: error bodies carry a message: {body}"
            );
        }
    }
    println!("{report:#?}");
    // A Basic header is not a bearer token.
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/rooms", server.http_addr))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // A room-scoped admin token works for its room and nowhere else.
    let scoped = hs256(&claims("demo", admin_grants(), None));
    let (status, _) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            "/api/rooms/demo",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, 404, "its own room (not open yet)");
    let (status, _) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            "/api/rooms/other",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // A body over 1 MiB: 413, as JSON.
    let big = json!({"name": "x".repeat(1_100_000)});
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin_token()),
            Some(big),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_slowed_down() {
    let server = server(5).await;
    let mut api = Api::new(&server);
    for _ in 0..5 {
        let (status, _) = api
            .call("GET", "/api/rooms", "/api/rooms", Some("bad"), None)
            .await;
        assert_eq!(status, 401);
    }
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/rooms", server.http_addr))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429, "even a good token waits");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "slow_down");
}

async fn participant(server: &Server, identity: &str, room: &str, publish: bool) -> Client {
    let mut c = Client::connect(&ws_url(server)).await.expect("connect");
    let token = server.token(identity, room, Grants::default());
    c.join(room, &token);
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c.open_data_channels();
    let mut open = 0;
    c.wait_for(WAIT, |e| {
        open += usize::from(matches!(e, ClientEvent::DataOpen { .. }));
        (open == 2).then_some(())
    })
    .await
    .expect("data channels open");
    if publish {
        c.publish(true, true);
    }
    c
}

async fn room_detail(api: &mut Api, room: &str) -> RoomDetail {
    let (status, body) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            &format!("/api/rooms/{room}"),
            Some(&admin_token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a RoomDetail")
}

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
    let mut detail = room_detail(&mut api, "h264-only").await;
    for _ in 0..20 {
        if detail
            .participants
            .first()
            .is_some_and(|p| !p.tracks.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        detail = room_detail(&mut api, "h264-only").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let detail = room_detail(&mut api, "h264-only").await;
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

/// Sends one raw HTTP/1.1 GET (no client-side path normalisation) and returns the status.
async fn raw_get_status(server: &Server, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http_addr)
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_requests_that_need_no_recorder_get_the_exact_error() {
    let missing = switchyard_tests::scratch_dir("no-recorder").join("switchyard-recorder");
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.recorder = Some(missing.clone());
    })
    .await;
    let mut api = Api::new(&server);
    let admin = admin_token();

    // No token: 401, before anything else.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            None,
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
    let (status, _) = api
        .call("GET", "/api/recordings", "/api/recordings", None, None)
        .await;
    assert_eq!(status, 401);

    // A room that is not open: 404.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");

    // An open room, but the configured recorder does not exist: 503 naming it.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin),
            Some(json!({"name": "taped"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "recorder_unavailable"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    println!("503 message: {message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("cargo build --release -p switchyard-recorder"),
        "{message}"
    );
    // Nothing was started or written.
    let (status, body) = api
        .call(
            "GET",
            "/api/recordings",
            "/api/recordings",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({"recordings": []})));
    assert!(!server.recordings().dir().exists());
    let detail = room_detail(&mut api, "taped").await;
    assert!(detail.recording.is_none() && detail.summary.recording_state.is_none());

    // Nothing to stop: 404 no_recording. Another room's admin: 403.
    let (status, body) = api
        .call(
            "DELETE",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "no_recording"), "{body}");
    let other_admin = hs256(&claims("elsewhere", admin_grants(), None));
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // Files: served from the recordings folder with their types, and nothing outside it.
    let dir = server.recordings().dir().to_path_buf();
    let id = "20261127-220000-abcdefghij012345";
    std::fs::create_dir_all(dir.join(id)).unwrap();
    std::fs::write(dir.join(id).join("playlist.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(dir.join(id).join("seg_00001.m4s"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("secret.json"), "{}").unwrap();
    std::fs::write(dir.join(id).join(".hidden"), "x").unwrap();
    let base = format!("http://{}", server.http_addr);
    let playlist = reqwest::get(format!("{base}/recordings/{id}/playlist.m3u8"))
        .await
        .unwrap();
    assert_eq!(playlist.status().as_u16(), 200);
    assert_eq!(
        playlist.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(playlist.headers()["cache-control"], "no-cache");
    assert_eq!(playlist.text().await.unwrap(), "#EXTM3U\n");
    let segment = reqwest::get(format!("{base}/recordings/{id}/seg_00001.m4s"))
        .await
        .unwrap();
    assert_eq!(segment.status().as_u16(), 200);
    assert_eq!(segment.headers()["content-type"], "video/iso.segment");
    assert_eq!(segment.bytes().await.unwrap().len(), 16);
    for path in [
        format!("/recordings/{id}/missing.m4s"),
        format!("/recordings/{id}/.hidden"),
        format!("/recordings/{id}/..%2Fsecret.json"),
        format!("/recordings/{id}/%2E%2E%2Fsecret.json"),
        "/recordings/../secret.json".to_owned(),
        "/recordings/..%2F..%2Fetc/passwd".to_owned(),
        "/recordings/%2E%2E/secret.json".to_owned(),
        format!("/recordings/{id}%2F..%2F/secret.json"),
        "/recordings/x/playlist%20.m3u8".to_owned(),
    ] {
        assert_eq!(raw_get_status(&server, &path).await, 404, "{path}");
    }
    assert_eq!(
        raw_get_status(&server, &format!("/recordings/{id}/playlist.m3u8")).await,
        200
    );
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
