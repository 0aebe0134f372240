//! Two (or three) nodes on loopback, each an SFU and the link route, no Redis.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::http::Extensions;
use cluster::link_seal::{Initiator, Refusal};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Node {
    context: LinkContext,
    info: cluster::NodeInfo,
}

async fn node(id: &str, secret: &[u8], prefix: &str) -> Node {
    let cancel = CancellationToken::new();
    let sfu = Sfu::start(
        sfu::SfuConfig {
            rtc_port: 0,
            announce_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            ..sfu::SfuConfig::default()
        },
        cancel.clone(),
    )
    .await
    .unwrap();
    let context = LinkContext {
        sfu,
        secret: secret.into(),
        prefix: prefix.into(),
        me: id.into(),
        links: NodeLinks::default(),
        cancel: cancel.clone(),
        cluster: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = context.clone();
    let app = Router::new().route(
        LINK_PATH,
        get(move |extensions: Extensions, upgrade: WebSocketUpgrade| {
            let accepting = accepting.clone();
            async move { accept_with(accepting, &extensions, upgrade) }
        }),
    );
    let stop = cancel.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    });
    Node {
        context,
        info: cluster::NodeInfo {
            id: id.into(),
            url: format!("http://{addr}"),
            rooms: 0,
            participants: 0,
            cpu: 0.0,
            draining: false,
            started_at: 0,
        },
    }
}

/// A TLS front (self-signed certificate) for the plain node at `plain`, as a reverse proxy
/// or the server's own HTTPS would be; returns its address.
async fn tls_front(plain: &str) -> SocketAddr {
    let plain = plain.trim_start_matches("http://").to_owned();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, plain) = (acceptor.clone(), plain.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut back) = tokio::net::TcpStream::connect(plain).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_node_behind_https_with_a_self_signed_certificate_links() {
    let a = node("node-a", SECRET, "sy").await;
    let b = node("node-b", SECRET, "sy").await;
    let front = tls_front(&b.info.url).await;
    let https = cluster::NodeInfo {
        url: format!("https://{front}"),
        ..b.info.clone()
    };
    a.context.ensure(&https).await.unwrap();
    assert!(a.context.sfu.links().is_up("node-b"));
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .sfu
            .links()
            .is_up("node-a"))
        .await
    );
    // A frame crosses (one that did not open would end the link).
    let to_b = a.context.sfu.links().get("node-b").unwrap();
    to_b.frames.send(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(a.context.links.links_up(&a.context.sfu), 1);
    // The wrong secret still fails behind TLS: TLS is not what lets a node in.
    let c = node("node-c", b"another-secret-another-secret-xx", "sy").await;
    let err = c.context.ensure(&https).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeLinkError::Handshake(_) | NodeLinkError::Closed { .. }
        ),
        "{err:?}"
    );
    a.context.cancel.cancel();
    b.context.cancel.cancel();
    c.context.cancel.cancel();
}

/// Waits up to `limit` for `check`.
async fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

fn connections(node: &Node, peer: &str) -> usize {
    node.context.links.connections_to(peer).unwrap_or(0)
}

#[tokio::test]
async fn a_link_comes_up_carries_frames_and_goes_down_with_its_peer() {
    let a = node("node-a", SECRET, "sy").await;
    let b = node("node-b", SECRET, "sy").await;
    a.context.ensure(&b.info).await.unwrap();
    assert!(
        a.context.sfu.links().is_up("node-b"),
        "up when ensure returns"
    );
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .sfu
            .links()
            .is_up("node-a"))
        .await
    );
    assert_eq!(a.context.links.links_up(&a.context.sfu), 1);
    assert_eq!(b.context.links.links_up(&b.context.sfu), 1);
    let text = a.context.links.metrics(&a.context.sfu);
    assert!(text.contains("switchyard_cluster_links_up 1\n"), "{text}");
    assert!(
        text.contains("switchyard_cluster_link_handshake_failures_total 0\n"),
        "{text}"
    );

    // Frames both ways: each opens at the other end (a frame that did not would end the link).
    let to_b = a.context.sfu.links().get("node-b").unwrap();
    let to_a = b.context.sfu.links().get("node-a").unwrap();
    for i in 0..200u32 {
        to_b.frames
            .send(Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        to_a.frames.send(Bytes::from(vec![7; 1200])).await.unwrap();
    }
    drop((to_b, to_a));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.context.sfu.links().is_up("node-b"));
    assert!(b.context.sfu.links().is_up("node-a"));

    // A second ensure does not dial again.
    a.context.ensure(&b.info).await.unwrap();
    assert_eq!(connections(&b, "node-a"), 1);

    // node-b goes away: node-a notices and takes the link out.
    b.context.cancel.cancel();
    assert!(
        eventually(Duration::from_secs(3), || !a
            .context
            .sfu
            .links()
            .is_up("node-b"))
        .await
    );
    assert!(eventually(Duration::from_secs(1), || connections(&a, "node-b") == 0).await);
    assert_eq!(a.context.links.links_up(&a.context.sfu), 0);
    a.context.cancel.cancel();
}

#[tokio::test]
async fn concurrent_ensures_dial_once() {
    let a = node("node-a", SECRET, "sy").await;
    let b = node("node-b", SECRET, "sy").await;
    let results = futures::future::join_all((0..5).map(|_| a.context.ensure(&b.info))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(eventually(Duration::from_secs(2), || connections(&b, "node-a") == 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connections(&b, "node-a"), 1);
    assert_eq!(connections(&a, "node-b"), 1);
    assert!(a.context.links.no_dials());
    a.context.cancel.cancel();
    b.context.cancel.cancel();
}

#[tokio::test]
async fn a_wrong_secret_fails_and_is_counted_on_both_sides() {
    let a = node("node-a", b"not the cluster's secret", "sy").await;
    let b = node("node-b", SECRET, "sy").await;
    let err = a.context.ensure(&b.info).await.unwrap_err();
    assert!(
        matches!(
            &err,
            NodeLinkError::Handshake(LinkError::WrongSecret { peer }) if peer == "node-b"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("api_secret"), "{err}");
    assert!(!a.context.sfu.links().is_up("node-b"));
    assert_eq!(a.context.links.handshake_failures(), 1);
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .links
            .handshake_failures()
            == 1)
        .await
    );
    assert!(!b.context.sfu.links().is_up("node-a"));
    a.context.cancel.cancel();
    b.context.cancel.cancel();
}

#[tokio::test]
async fn the_wrong_node_or_another_cluster_is_refused() {
    let a = node("node-a", SECRET, "sy").await;
    let b = node("node-b", SECRET, "sy").await;
    let stale = cluster::NodeInfo {
        id: "node-c".into(),
        ..b.info.clone()
    };
    let err = a.context.ensure(&stale).await.unwrap_err();
    assert!(
        matches!(
            &err,
            NodeLinkError::Handshake(LinkError::UnexpectedNode { expected, found })
                if expected == "node-c" && found == "node-b"
        ),
        "{err:?}"
    );

    let other = node("node-x", SECRET, "another").await;
    let err = other.context.ensure(&b.info).await.unwrap_err();
    assert!(
        matches!(
            &err,
            NodeLinkError::Handshake(LinkError::Refused {
                reason: Refusal::OtherCluster,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(!b.context.sfu.links().is_up("node-x"));
    assert!(!b.context.sfu.links().is_up("node-a"));
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .links
            .handshake_failures()
            == 2)
        .await
    );
    for n in [a, b, other] {
        n.context.cancel.cancel();
    }
}

#[tokio::test]
async fn an_unreachable_node_fails_fast_over_ws_and_over_tls() {
    let a = node("node-a", SECRET, "sy").await;
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gone = cluster::NodeInfo {
        id: "node-gone".into(),
        url,
        rooms: 0,
        participants: 0,
        cpu: 0.0,
        draining: false,
        started_at: 0,
    };
    let err = a.context.ensure(&gone).await.unwrap_err();
    assert!(matches!(err, NodeLinkError::Connect { .. }), "{err:?}");
    assert_eq!(
        a.context.links.handshake_failures(),
        0,
        "no socket, no handshake"
    );
    // An https:// node is dialled over TLS: nothing listens there, so the TCP connect fails.
    let https = cluster::NodeInfo {
        url: gone.url.replace("http://", "https://"),
        ..gone.clone()
    };
    let err = a.context.ensure(&https).await.unwrap_err();
    assert!(
        matches!(&err, NodeLinkError::Connect { url, .. } if url.starts_with("wss://")),
        "{err:?}"
    );
    assert!(matches!(
        a.context.ensure(&a.info).await,
        Err(NodeLinkError::ToSelf(_))
    ));
    a.context.cancel.cancel();
}

#[tokio::test]
async fn a_silent_peer_is_dropped() {
    let b = node("node-b", SECRET, "sy").await;
    // A dialler that completes the handshake, then neither reads nor sends (a frozen or killed
    // node whose socket stays open).
    let url = link_url(&b.info.url);
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (initiator, hello) = Initiator::new(SECRET, "sy", "node-z", "node-b").unwrap();
    socket.send(Message::Binary(hello.into())).await.unwrap();
    let reply = loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Binary(b) => break b,
            _ => continue,
        }
    };
    let (confirm, _, _) = initiator.on_reply(&reply).unwrap();
    socket.send(Message::Binary(confirm.into())).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .sfu
            .links()
            .is_up("node-z"))
        .await
    );
    let started = tokio::time::Instant::now();
    assert!(
        eventually(SILENCE_LIMIT + Duration::from_secs(2), || !b
            .context
            .sfu
            .links()
            .is_up("node-z"))
        .await
    );
    assert!(started.elapsed() >= SILENCE_LIMIT - Duration::from_millis(500));
    drop(socket);
    b.context.cancel.cancel();
}

#[tokio::test]
async fn a_forged_frame_ends_the_link() {
    let b = node("node-b", SECRET, "sy").await;
    let url = link_url(&b.info.url);
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (initiator, hello) = Initiator::new(SECRET, "sy", "node-z", "node-b").unwrap();
    socket.send(Message::Binary(hello.into())).await.unwrap();
    let reply = loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Binary(b) => break b,
            _ => continue,
        }
    };
    let (confirm, mut sealer, _) = initiator.on_reply(&reply).unwrap();
    socket.send(Message::Binary(confirm.into())).await.unwrap();
    let good = sealer.seal(b"fine").unwrap();
    socket
        .send(Message::Binary(good.clone().into()))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(2), || b
            .context
            .sfu
            .links()
            .is_up("node-z"))
        .await
    );
    // The same frame again: a replay.
    socket.send(Message::Binary(good.into())).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || !b
            .context
            .sfu
            .links()
            .is_up("node-z"))
        .await
    );
    b.context.cancel.cancel();
}

#[test]
fn link_urls_follow_the_scheme() {
    assert_eq!(
        link_url("http://10.0.0.1:8080"),
        "ws://10.0.0.1:8080/cluster/link"
    );
    assert_eq!(
        link_url("https://a.example/"),
        "wss://a.example/cluster/link"
    );
}
