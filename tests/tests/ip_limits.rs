//! Per-address limits against a real server: HTTP requests to the API and WebSocket upgrades
//! over an address's limit get 429 with `Retry-After` and the API's JSON error, while other
//! addresses and the pages go on; and one address's signaling connections share one message
//! budget, so many connections cannot dodge the per-connection one.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::{ClientMessage, Grants, ServerMessage};
use serde_json::Value;
use switchyard_tests::admin::{KEY, SECRET, admin_token};
use switchyard_tests::{Server, start_server, wait_for, ws_url};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET path` as the client `client` behind the trusted proxy (this test, on 127.0.0.1).
async fn get_as(server: &Server, client: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{}{path}", server.http_addr))
        .bearer_auth(admin_token())
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("HTTP request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_an_address_limit_get_429_and_other_addresses_go_on() {
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.trusted_proxies =
            signaling::client_ip::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        config.ip_limits.request_rate = 1;
        config.ip_limits.request_burst = 5;
    })
    .await;
    let (busy, other) = ("203.0.113.10", "203.0.113.11");
    for n in 0..5 {
        let response = get_as(&server, busy, "/api/rooms").await;
        assert_eq!(response.status().as_u16(), 200, "request {n}");
    }
    let refused = get_as(&server, busy, "/api/rooms").await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    let body: Value = refused.json().await.unwrap();
    println!("refused: Retry-After {retry_after}, {body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in")
    );

    // The WebSocket upgrade counts too.
    let mut request = ws_url(&server).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", busy.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429)
        }
        other => panic!("the upgrade was not refused: {other:?}"),
    }

    // Another client behind the same proxy, and the pages, are not touched.
    assert_eq!(
        get_as(&server, other, "/api/rooms").await.status().as_u16(),
        200
    );
    for page in ["/", "/room/demo", "/static/switchyard.js", "/healthz"] {
        assert_eq!(
            get_as(&server, busy, page).await.status().as_u16(),
            200,
            "{page}"
        );
    }
    // A client that did not send the header is the proxy itself: its own bucket.
    let direct = reqwest::Client::new()
        .get(format!("http://{}/api/rooms", server.http_addr))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);

    // One request a second comes back.
    wait_for(
        "the busy client's next request",
        Duration::from_secs(3),
        async || match get_as(&server, busy, "/api/rooms").await.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("status {status}")),
        },
    )
    .await;
}

/// A WebSocket joined to `room` as `identity`, from 127.0.0.1.
async fn joined(server: &Server, identity: &str, room: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(server))
        .await
        .expect("connect");
    let join = ClientMessage::Join {
        room: room.into(),
        token: server.token(identity, room, Grants::default()),
    };
    socket
        .send(Message::text(serde_json::to_string(&join).unwrap()))
        .await
        .unwrap();
    loop {
        if let ServerMessage::Joined { .. } = next_message(&mut socket).await.expect("joined") {
            return socket;
        }
    }
}

/// The next server message, or `None` when the connection closed (or nothing came in time).
async fn next_message(socket: &mut Socket) -> Option<ServerMessage> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Sends `count` pings; returns (pongs, the error codes, the close code) read until the
/// last pong, an error after it, or the end of the connection.
async fn ping_burst(socket: &mut Socket, count: u64) -> (u64, Vec<String>, Option<u16>) {
    for ts in 0..count {
        let ping = serde_json::to_string(&ClientMessage::Ping { ts }).unwrap();
        if socket.send(Message::text(ping)).await.is_err() {
            break;
        }
    }
    let (mut pongs, mut errors) = (0, Vec::new());
    loop {
        match tokio::time::timeout(Duration::from_secs(2), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(ServerMessage::Pong { ts }) => {
                        pongs += 1;
                        if ts + 1 == count {
                            return (pongs, errors, None);
                        }
                    }
                    Ok(ServerMessage::Error { code, .. }) => {
                        let code = serde_json::to_value(code).unwrap_or_default();
                        errors.push(code.as_str().unwrap_or_default().to_owned());
                    }
                    _ => {}
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (pongs, errors, frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {}
            // Nothing more came: what was refused was dropped.
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return (pongs, errors, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_of_one_address_share_one_message_budget() {
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.ip_limits.message_rate = 1;
        config.ip_limits.message_burst = 100;
    })
    .await;
    let mut first = joined(&server, "first", "shared").await;
    let mut second = joined(&server, "second", "shared").await;
    // Each connection's own budget (200) would take 60 pings twice over; the address's 100 not:
    // the two joins took 10 each, the first connection's pings 60, so 20 are left.
    let (pongs, errors, closed) = ping_burst(&mut first, 60).await;
    assert_eq!((pongs, closed), (60, None), "{errors:?}");
    let (pongs, errors, closed) = ping_burst(&mut second, 60).await;
    println!("second connection: {pongs} pongs, errors {errors:?}");
    assert!((20..=22).contains(&pongs), "{pongs} pongs");
    assert_eq!(errors.first().map(String::as_str), Some("rate_limited"));
    assert_eq!(closed, None);
    // A newcomer from the spent address is told at once to come back later (1013, which the
    // web demo retries with back-off), not left waiting for the join timeout.
    let (mut late, _) = tokio_tungstenite::connect_async(ws_url(&server))
        .await
        .expect("connect");
    let join = ClientMessage::Join {
        room: "shared".into(),
        token: server.token("late", "shared", Grants::default()),
    };
    late.send(Message::text(serde_json::to_string(&join).unwrap()))
        .await
        .unwrap();
    let (pongs, errors, closed) = ping_burst(&mut late, 0).await;
    println!("late join: errors {errors:?}, closed {closed:?}");
    assert_eq!((pongs, closed), (0, Some(1013)), "{errors:?}");
    assert_eq!(errors.first().map(String::as_str), Some("rate_limited"));
    // A third connection of the address that keeps going is disconnected, though it never
    // went over its own budget (200 pings cost 200). It need not even join: the budget counts
    // from the first frame (and a join now would find the address's budget spent).
    let (mut third, _) = tokio_tungstenite::connect_async(ws_url(&server))
        .await
        .expect("connect");
    let (pongs, errors, closed) = ping_burst(&mut third, 200).await;
    println!("third connection: {pongs} pongs, errors {errors:?}, closed {closed:?}");
    assert_eq!(closed, Some(1008));
    // The calm first connection is still served once the address's budget refills.
    wait_for("a pong on the first connection", WAIT, async || {
        let (pongs, errors, closed) = ping_burst(&mut first, 1).await;
        if pongs == 1 {
            Ok(())
        } else {
            Err(format!(
                "{pongs} pongs, errors {errors:?}, closed {closed:?}"
            ))
        }
    })
    .await;
}
