//! Every kind of bad input on the signaling WebSocket gets its precise error (and close code
//! when fatal), and the call of the other participants goes on undisturbed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use client::{Client, ClientEvent};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use protocol::{ClientMessage, ErrorCode, Grants, IceCandidate, ServerMessage, Target, TrackKind};
use switchyard_tests::{Server, start_local_server, start_server, ws_url};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

async fn next_error(c: &mut Client) -> Option<ErrorCode> {
    c.wait_message(WAIT, |m| match m {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    })
    .await
}

async fn close_code(c: &mut Client) -> Option<u16> {
    c.wait_for(WAIT, |e| match e {
        ClientEvent::Closed { code, .. } => Some(code.unwrap_or(0)),
        _ => None,
    })
    .await
}

/// The connection still answers: a ping gets its pong.
async fn still_serving(c: &mut Client) {
    c.send(ClientMessage::Ping { ts: 42 });
    let pong = c
        .wait_message(WAIT, |m| {
            matches!(m, ServerMessage::Pong { ts: 42 }).then_some(())
        })
        .await;
    assert!(
        pong.is_some(),
        "the connection stopped answering after an error"
    );
}

fn sign(server: &Server, claims: serde_json::Value) -> String {
    let (_, secret) = server
        .dev_credentials
        .clone()
        .expect("test servers run in dev mode");
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn join(server: &Server, identity: &str, room: &str) -> Client {
    let mut c = Client::connect(&ws_url(server)).await.expect("connect");
    c.join(room, &server.token(identity, room, Grants::default()));
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c
}

/// A publisher and a subscriber whose call must survive everyone else's mistakes.
async fn bystanders(server: &Server, room: &str) -> (Client, Client) {
    let publisher = join(server, "pub", room).await;
    publisher.publish(true, true);
    let mut subscriber = join(server, "sub", room).await;
    assert!(
        receives_video(&mut subscriber).await,
        "bystander call never started"
    );
    (publisher, subscriber)
}

async fn receives_video(c: &mut Client) -> bool {
    let mut n = 0;
    c.wait_for(Duration::from_secs(15), |e| {
        if matches!(
            e,
            ClientEvent::Rtp {
                kind: TrackKind::Video,
                ..
            }
        ) {
            n += 1;
        }
        (n >= 30).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_errors_and_the_connection_stays() {
    let server = start_local_server().await;
    let (_publisher, mut subscriber) = bystanders(&server, "errors").await;

    let mut c = Client::connect(&ws_url(&server)).await.unwrap();
    // Before join.
    c.send_text("{not json");
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::BadJson));
    c.send(ClientMessage::Mute {
        kind: TrackKind::Audio,
        muted: true,
    });
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::NotJoined));
    c.send_text(r#"{"type":"teleport"}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::UnknownType));
    c.send_text(r#"{"type":"join","room":5}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidMessage));
    c.send_text(r#"{"no":"type"}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidMessage));
    c.send_binary(vec![1, 2, 3]);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::BadJson));
    still_serving(&mut c).await;

    // After join.
    c.join(
        "errors",
        &server.token("mallory", "errors", Grants::default()),
    );
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c.join(
        "errors",
        &server.token("mallory", "errors", Grants::default()),
    );
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::AlreadyJoined));
    c.send(ClientMessage::Offer {
        target: Target::Publisher,
        sdp: "v=0 this is not sdp".into(),
        sources: Default::default(),
    });
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidSdp));
    c.send(ClientMessage::Answer {
        target: Target::Subscriber,
        sdp: "v=0".into(),
    });
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidSdp));
    c.send(ClientMessage::Offer {
        target: Target::Subscriber,
        sdp: "v=0".into(),
        sources: Default::default(),
    });
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidMessage));
    c.send_text(r#"{"type":"candidate","target":"sideways","candidate":null}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidMessage));
    // Tile settings for a track this participant does not receive, and with a bad layer.
    c.send_text(r#"{"type":"trackSettings","trackId":"TR_nope","visible":false}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::UnknownTrack));
    c.send_text(r#"{"type":"trackSettings","trackId":"TR_nope","maxLayer":"x"}"#);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidMessage));
    still_serving(&mut c).await;

    // A garbage ICE candidate on a negotiated connection.
    c.publish(true, false);
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Answer { .. }).then_some(())
    })
    .await
    .expect("publisher answer");
    c.send(ClientMessage::Candidate {
        target: Target::Publisher,
        candidate: Some(IceCandidate {
            candidate: "candidate:garbage".into(),
            ..Default::default()
        }),
    });
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::InvalidCandidate));
    still_serving(&mut c).await;

    assert!(
        receives_video(&mut subscriber).await,
        "the bystanders' call was disturbed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_close_codes() {
    let server = start_local_server().await;
    let (_publisher, mut subscriber) = bystanders(&server, "tokens").await;
    let (key, _) = server.dev_credentials.clone().unwrap();

    let cases: Vec<(&str, String, ErrorCode, u16)> = vec![
        (
            "missing token",
            String::new(),
            ErrorCode::Unauthorized,
            4001,
        ),
        (
            "forged signature",
            {
                let claims = serde_json::json!({"iss": key, "sub": "eve", "room": "tokens", "exp": now() + 600});
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &claims,
                    &EncodingKey::from_secret(b"not-the-server-secret-at-all-000000"),
                )
                .unwrap()
            },
            ErrorCode::Unauthorized,
            4001,
        ),
        (
            "expired",
            sign(
                &server,
                serde_json::json!({"iss": key, "sub": "eve", "room": "tokens", "exp": now() - 3600}),
            ),
            ErrorCode::TokenExpired,
            4001,
        ),
        (
            "another room",
            sign(
                &server,
                serde_json::json!({"iss": key, "sub": "eve", "room": "elsewhere", "exp": now() + 600}),
            ),
            ErrorCode::WrongRoom,
            4003,
        ),
        ("not a JWT", "abc.def".into(), ErrorCode::Unauthorized, 4001),
    ];
    for (what, token, code, close) in cases {
        let mut c = Client::connect(&ws_url(&server)).await.unwrap();
        c.join("tokens", &token);
        assert_eq!(next_error(&mut c).await, Some(code), "{what}");
        assert_eq!(close_code(&mut c).await, Some(close), "{what}");
    }
    assert!(
        receives_video(&mut subscriber).await,
        "the bystanders' call was disturbed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_close_with_1009() {
    let server = start_local_server().await;
    let (_publisher, mut subscriber) = bystanders(&server, "big").await;
    let mut c = join(&server, "big-sender", "big").await;
    let huge = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    c.send_text(huge);
    assert_eq!(next_error(&mut c).await, Some(ErrorCode::MessageTooLarge));
    assert_eq!(close_code(&mut c).await, Some(1009));
    // The sender is gone from the room, and the others go on.
    let left = subscriber
        .wait_message(WAIT, |m| match m {
            ServerMessage::ParticipantLeft { identity, .. } if identity == "big-sender" => Some(()),
            _ => None,
        })
        .await;
    assert!(left.is_some());
    assert!(receives_video(&mut subscriber).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_client_is_removed_and_announced_after_the_resume_window() {
    // A vanished client's session waits the resume window for it (`call_resume` shows a
    // client coming back); here nobody comes back.
    let window = Duration::from_secs(2);
    let server = start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), |c| {
        c.resume_window = window
    })
    .await;
    let mut watcher = join(&server, "watcher", "vanish").await;

    // The tab closes: the TCP connection drops without a WebSocket close.
    let gone = join(&server, "gone", "vanish").await;
    drop(gone);
    let dropped = std::time::Instant::now();
    let left = watcher
        .wait_message(window + Duration::from_secs(5), |m| match m {
            ServerMessage::ParticipantLeft {
                identity, reason, ..
            } if identity == "gone" => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(left, Some(protocol::LeaveReason::Disconnected));
    assert!(
        dropped.elapsed() >= window,
        "kept for the resume window, not only {:?}",
        dropped.elapsed()
    );

    // The network vanishes: the connection stays open but silent; keepalive removes it.
    let (mut silent, _) = tokio_tungstenite::connect_async(ws_url(&server))
        .await
        .unwrap();
    let join = serde_json::to_string(&ClientMessage::Join {
        room: "vanish".into(),
        token: server.token("silent", "vanish", Grants::default()),
    })
    .unwrap();
    silent
        .send(tokio_tungstenite::tungstenite::Message::text(join))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let joined = watcher
        .wait_message(WAIT, |m| match m {
            ServerMessage::ParticipantJoined { participant }
                if participant.identity == "silent" =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    assert!(joined.is_some());
    let left = watcher
        .wait_message(Duration::from_secs(25), |m| match m {
            ServerMessage::ParticipantLeft { identity, .. } if identity == "silent" => Some(()),
            _ => None,
        })
        .await;
    assert!(left.is_some(), "a silent client was never removed");
    assert!(
        started.elapsed() <= Duration::from_secs(17) + window,
        "removed after {:?}",
        started.elapsed()
    );
    drop(silent);
}

/// A WebSocket proxy in front of `server` for one client: it passes every frame on, except
/// that it replaces the client's first subscriber answer with `bad_sdp`. Returns the proxy's
/// URL and a flag that is set once it has done so.
async fn answer_spoiling_proxy(
    server: &Server,
    bad_sdp: &'static str,
) -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind the proxy");
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let upstream = ws_url(server);
    let spoiled = Arc::new(AtomicBool::new(false));
    let flag = spoiled.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let client = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("client handshake");
        let (server, _) = tokio_tungstenite::connect_async(upstream)
            .await
            .expect("server handshake");
        let (mut to_client, mut from_client) = client.split();
        let (mut to_server, mut from_server) = server.split();
        let up = async {
            while let Some(Ok(frame)) = from_client.next().await {
                let frame = match frame {
                    Message::Text(text) if !flag.load(Ordering::SeqCst) => {
                        match serde_json::from_str(text.as_str()) {
                            Ok(ClientMessage::Answer {
                                target: Target::Subscriber,
                                ..
                            }) => {
                                flag.store(true, Ordering::SeqCst);
                                let bad = ClientMessage::Answer {
                                    target: Target::Subscriber,
                                    sdp: bad_sdp.into(),
                                };
                                Message::text(serde_json::to_string(&bad).unwrap())
                            }
                            _ => Message::Text(text),
                        }
                    }
                    Message::Text(_) | Message::Binary(_) | Message::Close(_) => frame,
                    _ => continue, // Each side's WebSocket answers pings itself.
                };
                if to_server.send(frame).await.is_err() {
                    break;
                }
            }
        };
        let down = async {
            while let Some(Ok(frame)) = from_server.next().await {
                if matches!(
                    frame,
                    Message::Text(_) | Message::Binary(_) | Message::Close(_)
                ) && to_client.send(frame).await.is_err()
                {
                    break;
                }
            }
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
    (url, spoiled)
}

/// The next subscriber offer; panics on an error message before it.
async fn next_subscriber_offer(c: &mut Client) -> Option<()> {
    c.wait_message(WAIT, |m| match m {
        ServerMessage::Offer {
            target: Target::Subscriber,
            ..
        } => Some(()),
        ServerMessage::Error { code, message } => {
            panic!("error instead of a subscriber offer: {code:?}: {message}")
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscriber_answer_is_followed_by_a_new_offer_and_media_flows() {
    refused_answer_then_media("refused-answer", "v=0 garbage").await;
}

/// A well-formed answer to another offer (a real Chromium answer with other media sections):
/// the engine would take it half-way and then refuse it, leaving an offer it cannot roll back.
/// The negotiator checks it against our offer first, so the participant recovers the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_another_offer_is_refused_and_media_flows() {
    let other =
        include_str!("../../signaling/fuzz/seeds/sdp_offer_answer/chromium_subscriber_answer");
    refused_answer_then_media("foreign-answer", other).await;
}

/// Bob's first subscriber answer is replaced by `bad_sdp`: he gets `invalid_sdp`, a new offer,
/// and then Alice's audio and video.
async fn refused_answer_then_media(room: &str, bad_sdp: &'static str) {
    let server = start_local_server().await;

    // Alice publishes audio and video; a watcher sees both tracks published, so no track
    // change can start another offer to Bob later.
    let mut watcher = join(&server, "watcher", room).await;
    let alice = join(&server, "alice", room).await;
    alice.publish(true, true);
    let mut alice_id = String::new();
    let mut kinds = Vec::new();
    let published = watcher
        .wait_message(Duration::from_secs(15), |m| {
            if let ServerMessage::TrackPublished {
                participant_id,
                track,
            } = m
            {
                alice_id.clone_from(participant_id);
                kinds.push(track.kind);
            }
            (kinds.contains(&TrackKind::Audio) && kinds.contains(&TrackKind::Video)).then_some(())
        })
        .await;
    assert!(published.is_some(), "Alice's tracks were never published");

    // Bob's real client talks through a proxy that turns his first subscriber answer into
    // garbage.
    let (proxy, spoiled) = answer_spoiling_proxy(&server, bad_sdp).await;
    let mut bob = Client::connect(&proxy).await.expect("connect");
    bob.join(room, &server.token("bob", room, Grants::default()));
    let alice_tracks = bob
        .wait_message(WAIT, |m| match m {
            ServerMessage::Joined { participants, .. } => Some(
                participants
                    .iter()
                    .find(|p| p.id == alice_id)
                    .map_or(0, |p| p.tracks.len()),
            ),
            _ => None,
        })
        .await;
    assert_eq!(
        alice_tracks,
        Some(2),
        "Bob joined before Alice's two tracks"
    );
    assert!(
        next_subscriber_offer(&mut bob).await.is_some(),
        "Bob never got a subscriber offer"
    );
    assert_eq!(next_error(&mut bob).await, Some(ErrorCode::InvalidSdp));
    assert!(
        spoiled.load(Ordering::SeqCst),
        "the refused answer was not ours"
    );

    // The server rolled its offer back and offers again at once; Bob answers properly.
    assert!(
        next_subscriber_offer(&mut bob).await.is_some(),
        "no new subscriber offer after the refused answer"
    );

    // That answer is accepted (no error) and Alice's media reaches Bob.
    let mut counts = [0usize; 2];
    let mut errors = Vec::new();
    let flowing = bob
        .wait_for(Duration::from_secs(20), |e| {
            match e {
                ClientEvent::Rtp {
                    participant_id,
                    kind,
                    ..
                } if *participant_id == alice_id => counts[*kind as usize] += 1,
                ClientEvent::Message(ServerMessage::Error { code, message }) => {
                    errors.push(format!("{code:?}: {message}"))
                }
                _ => {}
            }
            counts.iter().all(|&n| n >= 30).then_some(())
        })
        .await;
    assert!(errors.is_empty(), "errors after the new offer: {errors:?}");
    assert!(
        flowing.is_some(),
        "Alice's media did not reach Bob: {counts:?} (audio, video) RTP packets"
    );
}

/// One participant toggling mute and pinging as fast as it can: it is told `rate_limited`, then
/// disconnected (1008), and nobody else is touched: the others stay, and their call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_rate_limited_then_disconnected_and_nobody_else_is_touched() {
    let server = start_local_server().await;
    let (mut publisher, mut subscriber) = bystanders(&server, "flood").await;
    let mut flooder = join(&server, "flooder", "flood").await;
    flooder.publish(true, false);
    // Its audio track is published, so every toggle that got through would reach everyone.
    let published = subscriber
        .wait_message(WAIT, |m| match m {
            ServerMessage::TrackPublished { track, .. } if track.kind == TrackKind::Audio => {
                Some(())
            }
            _ => None,
        })
        .await;
    assert!(
        published.is_some(),
        "the flooder's audio was never published"
    );

    let started = std::time::Instant::now();
    for i in 0..50_000u32 {
        flooder.send(ClientMessage::Mute {
            kind: TrackKind::Audio,
            muted: i % 2 == 0,
        });
        if i % 5 == 0 {
            flooder.send(ClientMessage::Ping { ts: u64::from(i) });
        }
    }
    assert_eq!(next_error(&mut flooder).await, Some(ErrorCode::RateLimited));
    assert_eq!(close_code(&mut flooder).await, Some(1008));
    println!("flooder disconnected after {:?}", started.elapsed());

    // The others: told that the flooder left, and of nobody else.
    for (name, c) in [
        ("publisher", &mut publisher),
        ("subscriber", &mut subscriber),
    ] {
        let mut others_left = Vec::new();
        let flooder_left = c
            .wait_message(WAIT, |m| match m {
                ServerMessage::ParticipantLeft { identity, .. } if identity == "flooder" => {
                    Some(())
                }
                ServerMessage::ParticipantLeft { identity, .. } => {
                    others_left.push(identity.clone());
                    None
                }
                _ => None,
            })
            .await;
        assert!(
            flooder_left.is_some(),
            "{name} was not told the flooder left"
        );
        assert!(others_left.is_empty(), "{name} saw {others_left:?} leave");
        still_serving(c).await;
    }
    // And the call between them goes on.
    assert!(
        receives_video(&mut subscriber).await,
        "the bystanders' call stopped"
    );
}

/// The budget holds from the first frame: a client that floods pings (or junk) before it ever
/// joins is told `rate_limited`, then closed with 1008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_before_join_is_rate_limited_then_disconnected() {
    let server = start_local_server().await;
    let mut flooder = Client::connect(&ws_url(&server)).await.expect("connect");
    for i in 0..20_000u64 {
        if i % 4 == 0 {
            flooder.send_text("{not json");
        } else {
            flooder.send(ClientMessage::Ping { ts: i });
        }
    }
    assert_eq!(
        next_error_of(&mut flooder, ErrorCode::RateLimited).await,
        Some(())
    );
    assert_eq!(close_code(&mut flooder).await, Some(1008));
    // Another client joins as usual.
    let mut fine = join(&server, "fine", "pre-join").await;
    still_serving(&mut fine).await;
}

/// Waits for an `error` with `code`, skipping the others (a flood of junk gets `bad_json`s).
async fn next_error_of(c: &mut Client, code: ErrorCode) -> Option<()> {
    c.wait_message(WAIT, |m| match m {
        ServerMessage::Error { code: got, .. } if *got == code => Some(()),
        _ => None,
    })
    .await
}
