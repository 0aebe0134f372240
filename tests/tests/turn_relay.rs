//! The TURN relay against real clients: coturn's `turnutils_uclient` relaying to coturn's
//! `turnutils_peer` over UDP and TCP with REST credentials, and our own TURN client probing
//! the policy (the deny list in every encoding, through CreatePermission, ChannelBind and
//! Send), credentials, nonces, quotas and malformed input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use protocol::{Grants, ServerMessage};
use switchyard_tests::turn_client::{Transport, TurnClient, TurnError, rest_credentials};
use switchyard_tests::{Server, start_server, wait_for, ws_url};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use turn_server::credentials::unix_now;
use turn_server::policy::{DENY_SAMPLES, encodings};
use turn_server::{AllowRule, PeerPolicy, RestSecret, TurnConfig, TurnServer};

const SECRET: &str = "turn-test-secret-0123456789";

/// The bundled server (SFU on 127.0.0.1), with a known TURN secret and extra allowed peers.
async fn bundled(allow: Vec<AllowRule>) -> Server {
    start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), |config| {
        let turn = config.turn.as_mut().expect("TURN is on by default");
        turn.port = 0;
        turn.secret = Some(SECRET.into());
        turn.allow_peers = allow;
    })
    .await
}

fn turn_addr(server: &Server) -> SocketAddr {
    let port = server
        .turn
        .as_ref()
        .expect("TURN running")
        .udp_addr()
        .port();
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A relay on its own (standalone mode: public peers allowed), started from the library.
async fn standalone(
    allow: Vec<AllowRule>,
    tweak: impl FnOnce(&mut TurnConfig),
) -> (TurnServer, CancellationToken) {
    let mut config = TurnConfig::new(RestSecret::new(SECRET), PeerPolicy::public(allow));
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    tweak(&mut config);
    let cancel = CancellationToken::new();
    let server = TurnServer::start(config, cancel.clone())
        .await
        .expect("relay starts");
    (server, cancel)
}

fn credentials(identity: &str) -> (String, String) {
    rest_credentials(SECRET, identity, unix_now() + 300)
}

async fn client(transport: Transport, server: SocketAddr, identity: &str) -> TurnClient {
    let (username, password) = credentials(identity);
    TurnClient::connect(transport, server, &username, &password)
        .await
        .expect("connect to the relay")
}

/// Two consecutive free UDP ports on 127.0.0.1 (turnutils_peer listens on `p` and `p + 1`).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let base = (20_000 + rand::random::<u16>() % 20_000) & !1;
        let a = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, base));
        let b = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, base + 1));
        if a.is_ok() && b.is_ok() {
            return base;
        }
    }
    panic!("no free pair of UDP ports");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Udp,
    Tcp,
    Tls,
}

/// Runs `turnutils_uclient` against the relay and returns (sent, received, lost) messages.
async fn uclient(turn: SocketAddr, peer_port: u16, over: Over) -> (u64, u64, u64) {
    let mut command = tokio::process::Command::new("turnutils_uclient");
    match over {
        Over::Udp => {}
        Over::Tcp => {
            command.arg("-t");
        }
        Over::Tls => {
            command.args(["-t", "-S"]);
        }
    }
    // One identity per run: the per-identity quota (12) counts allocations of earlier runs
    // until they expire.
    let identity = format!("uclient-{over:?}");
    let output = command
        .args(["-W", SECRET, "-u", &identity, "-e", "127.0.0.1"])
        .args(["-r", &peer_port.to_string(), "-p", &turn.port().to_string()])
        .args(["-n", "300", "-m", "5", "-l", "170", "-c", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("turnutils_uclient finishes within 2 minutes")
        .expect("turnutils_uclient runs (Debian package coturn; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let number_after = |key: &str| -> Option<u64> {
        let line = text.lines().rev().find(|l| l.contains(key))?;
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start_matches([' ', '='])
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("start_mclient: tot_") || l.contains("Total lost"))
        .collect();
    println!("turnutils_uclient over {over:?}: {summary:#?}");
    let sent = number_after("tot_send_msgs").unwrap_or_else(|| panic!("no totals in:\n{text}"));
    let received = number_after("tot_recv_msgs").expect("received total");
    let lost = number_after("Total lost packets").expect("lost total");
    (sent, received, lost)
}

/// Waits until `turnutils_peer` echoes on both its ports (`p` and `p + 1`).
async fn wait_until_echoed(peer_port: u16) {
    let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    for port in [peer_port, peer_port + 1] {
        wait_for(
            &format!("turnutils_peer to echo on port {port}"),
            Duration::from_secs(10),
            async || {
                probe.send_to(b"ping", (Ipv4Addr::LOCALHOST, port)).await?;
                let mut buf = [0u8; 16];
                let (len, from) =
                    tokio::time::timeout(Duration::from_millis(100), probe.recv_from(&mut buf))
                        .await??;
                if from.port() == port && &buf[..len] == b"ping" {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("{len} bytes from {from}"))
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_client_relays_through_us_over_udp_tcp_and_tls_without_loss() {
    let peer_port = free_port_pair();
    // A self-signed certificate turns on TLS (uclient does not verify it without -E).
    let dir = std::env::temp_dir().join(format!("sy-turn-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), |config| {
        let turn = config.turn.as_mut().expect("TURN is on by default");
        turn.port = 0;
        turn.secret = Some(SECRET.into());
        turn.allow_peers = vec![
            format!("127.0.0.1:{peer_port}").parse().unwrap(),
            format!("127.0.0.1:{}", peer_port + 1).parse().unwrap(),
        ];
        turn.tls = Some((0, cert.clone(), key.clone()));
    })
    .await;
    let _peer = tokio::process::Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("turnutils_peer runs (Debian package coturn)");
    wait_until_echoed(peer_port).await;
    let relay = server.turn.as_ref().unwrap();
    let tls_port = relay.tls_addr().expect("TLS listener").port();
    for over in [Over::Udp, Over::Tcp, Over::Tls] {
        let turn = match over {
            Over::Tls => SocketAddr::from((Ipv4Addr::LOCALHOST, tls_port)),
            _ => turn_addr(&server),
        };
        let (sent, received, lost) = uclient(turn, peer_port, over).await;
        assert_eq!(sent, 1500, "5 clients x 300 messages over {over:?}");
        assert_eq!(received, sent, "every echo came back over {over:?}");
        assert_eq!(lost, 0);
    }
    std::fs::remove_dir_all(&dir).ok();
    let stats = relay.stats();
    println!("relay counters: {stats:?}");
    assert!(stats.packets_to_peers >= 4500 && stats.packets_to_clients >= 4500);
    // TCP allocations end with their connections; UDP ones live until they expire.
    assert!(stats.allocations < stats.allocations_created);
}

/// Signaling hands each participant a TURN credential on join, and it works on the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_hands_out_a_working_turn_credential() {
    let server = bundled(vec![]).await;
    let mut participant = client::Client::connect(&ws_url(&server)).await.unwrap();
    participant.join(
        "turn-room",
        &server.token("alice", "turn-room", Grants::default()),
    );
    let ice_servers = participant
        .wait_message(Duration::from_secs(5), |m| match m {
            ServerMessage::Joined { ice_servers, .. } => Some(ice_servers.clone()),
            _ => None,
        })
        .await
        .expect("joined");
    println!("iceServers: {ice_servers:?}");
    let turn = ice_servers
        .iter()
        .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
        .expect("a TURN entry");
    let port = turn_addr(&server).port();
    assert!(
        turn.urls
            .contains(&format!("turn:127.0.0.1:{port}?transport=udp"))
    );
    assert!(
        turn.urls
            .contains(&format!("turn:127.0.0.1:{port}?transport=tcp"))
    );
    let username = turn.username.clone().expect("username");
    let (expiry, identity) = username.split_once(':').expect("expiry:identity");
    assert_eq!(identity, "alice");
    let lifetime = expiry.parse::<u64>().unwrap() - unix_now();
    assert!(
        (290..=300).contains(&lifetime),
        "5-minute credential, got {lifetime} s"
    );
    let password = turn.credential.clone().expect("credential");
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut relay = TurnClient::connect(transport, turn_addr(&server), &username, &password)
            .await
            .unwrap();
        relay
            .allocate()
            .await
            .expect("the minted credential allocates");
    }
}

/// Every deny-list address, in every encoding, is refused by CreatePermission and
/// ChannelBind with 403, and nothing is ever sent to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deny_list_is_refused_in_every_encoding() {
    let canary = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let canary_port = canary.local_addr().unwrap().port();
    // Standalone (public) mode: only special-purpose ranges are refused.
    let (relay, _cancel) = standalone(vec![], |_| {}).await;
    let mut turn = client(Transport::Udp, relay.udp_addr(), "sweeper").await;
    turn.allocate().await.expect("allocate");
    let mut targets: Vec<(String, IpAddr)> = Vec::new();
    for (text, range) in DENY_SAMPLES {
        let ip: IpAddr = text.parse().unwrap();
        match ip {
            IpAddr::V4(v4) => {
                for (encoding, encoded) in encodings(v4) {
                    targets.push((format!("{text} ({range}) as {encoding}"), encoded));
                }
            }
            IpAddr::V6(_) => targets.push((format!("{text} ({range})"), ip)),
        }
    }
    // Teredo is refused outright.
    targets.push((
        "Teredo 2001:0:4136:e378::1".into(),
        "2001:0:4136:e378::1".parse().unwrap(),
    ));
    assert!(
        targets.len() > 100,
        "the sweep covers {} addresses",
        targets.len()
    );
    let mut failures = Vec::new();
    for (label, ip) in &targets {
        let peer = SocketAddr::new(*ip, canary_port);
        match turn.create_permission(&[*ip]).await {
            Err(TurnError::Status { code: 403, .. }) => {}
            other => failures.push(format!("CreatePermission {label}: {other:?}")),
        }
        match turn.channel_bind(0x4000, peer).await {
            Err(TurnError::Status { code: 403, .. }) => {}
            other => failures.push(format!("ChannelBind {label}: {other:?}")),
        }
        turn.send_indication(peer, b"must not arrive")
            .await
            .unwrap();
    }
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    // The relay serves a client's datagrams in order, one at a time, and relays a Send
    // indication while handling it: once a later request is answered, every indication above
    // has been dealt with: anything relayed to the canary has been sent, over loopback.
    turn.refresh(600)
        .await
        .expect("a Refresh after the indications");
    let mut buf = [0u8; 64];
    assert!(
        canary.try_recv_from(&mut buf).is_err(),
        "a refused address received a packet"
    );
    let stats = relay.stats();
    println!(
        "swept {} addresses: {} refusals, {} packets sent to peers",
        targets.len(),
        stats.refused_peers,
        stats.packets_to_peers
    );
    assert_eq!(stats.packets_to_peers, 0);
    assert_eq!(stats.refused_peers, 3 * targets.len() as u64);

    // The same relay does reach a public-range peer it is allowed to (the check above can
    // fail): an allow rule for the canary lets the same packets through.
    let (open, _cancel2) = standalone(
        vec![format!("127.0.0.1:{canary_port}").parse().unwrap()],
        |_| {},
    )
    .await;
    let mut allowed = client(Transport::Udp, open.udp_addr(), "allowed").await;
    allowed.allocate().await.unwrap();
    let canary_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, canary_port));
    allowed
        .create_permission(&[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .await
        .unwrap();
    allowed
        .send_indication(canary_addr, b"hello")
        .await
        .unwrap();
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), canary.recv_from(&mut buf))
        .await
        .expect("the allowed peer receives")
        .unwrap();
    assert_eq!(&buf[..len], b"hello");
    assert_eq!(open.stats().packets_to_peers, 1);
}

/// Bundled with the SFU, the relay reaches the SFU's media address and nothing else: not
/// public addresses, and not other ports of the same host (HTTP, a UDP service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_relay_reaches_only_the_sfu() {
    let server = bundled(vec![]).await;
    let sfu = server.media_addrs[0];
    let canary = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let canary_addr = canary.local_addr().unwrap();
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut turn = client(transport, turn_addr(&server), "bundled").await;
        turn.allocate().await.expect("allocate");
        turn.create_permission(&[sfu.ip()])
            .await
            .expect("the SFU's IP");
        turn.channel_bind(0x4001, sfu)
            .await
            .expect("the SFU itself");
        for (label, peer) in [
            ("a UDP port of this host", canary_addr),
            ("the HTTP port", server.http_addr),
            ("a public address", "8.8.8.8:53".parse().unwrap()),
        ] {
            let refused = turn.channel_bind(0x4002, peer).await;
            assert_eq!(refused.unwrap_err().code(), Some(403), "{label}");
            turn.send_indication(peer, b"must not arrive")
                .await
                .unwrap();
        }
        let public = turn.create_permission(&["8.8.8.8".parse().unwrap()]).await;
        assert_eq!(public.unwrap_err().code(), Some(403));
        // Answered after the indications above (a client's packets are handled in order), so
        // by now the relay has dealt with them: the canary check below is final.
        turn.refresh(600)
            .await
            .expect("a Refresh after the indications");
    }
    let mut buf = [0u8; 64];
    assert!(canary.try_recv_from(&mut buf).is_err());
    let stats = server.turn.as_ref().unwrap().stats();
    assert_eq!(stats.packets_to_peers, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_and_expired_ones_keep_existing_allocations() {
    let server = bundled(vec![]).await;
    let turn = turn_addr(&server);
    let sfu = server.media_addrs[0];

    // A wrong password: 401.
    let (username, _) = credentials("mallory");
    let mut wrong = TurnClient::connect(Transport::Udp, turn, &username, "not-the-password")
        .await
        .unwrap();
    assert_eq!(wrong.allocate().await.unwrap_err().code(), Some(401));
    // A credential signed with another secret: 401. A username that is not REST: 401.
    let (username, password) = rest_credentials("another-secret", "mallory", unix_now() + 300);
    let mut forged = TurnClient::connect(Transport::Udp, turn, &username, &password)
        .await
        .unwrap();
    assert_eq!(forged.allocate().await.unwrap_err().code(), Some(401));
    let mut plain = TurnClient::connect(Transport::Udp, turn, "mallory", "x")
        .await
        .unwrap();
    assert_eq!(plain.allocate().await.unwrap_err().code(), Some(401));
    // An expired credential cannot start an allocation: 401.
    let (username, password) = rest_credentials(SECRET, "late", unix_now() - 10);
    let mut expired = TurnClient::connect(Transport::Udp, turn, &username, &password)
        .await
        .unwrap();
    assert_eq!(expired.allocate().await.unwrap_err().code(), Some(401));

    // A credential that expires during the call: the allocation keeps being served.
    let expiry = unix_now() + 2;
    let (username, password) = rest_credentials(SECRET, "caller", expiry);
    let mut caller = TurnClient::connect(Transport::Udp, turn, &username, &password)
        .await
        .unwrap();
    caller.allocate().await.expect("fresh credential");
    // The relay refuses a credential once its expiry second has passed.
    wait_for(
        "the caller's credential to expire",
        Duration::from_secs(5),
        async || {
            let now = unix_now();
            if now > expiry {
                Ok(())
            } else {
                Err(format!("it is {now}, the credential expires at {expiry}"))
            }
        },
    )
    .await;
    let mut newcomer = TurnClient::connect(Transport::Udp, turn, &username, &password)
        .await
        .unwrap();
    assert_eq!(
        newcomer.allocate().await.unwrap_err().code(),
        Some(401),
        "the credential has expired for new allocations"
    );
    caller
        .create_permission(&[sfu.ip()])
        .await
        .expect("CreatePermission with an expired credential on an existing allocation");
    caller
        .channel_bind(0x4000, sfu)
        .await
        .expect("ChannelBind likewise");
    assert_eq!(caller.refresh(600).await.expect("Refresh likewise"), 600);
    caller
        .send_indication(sfu, b"still here")
        .await
        .expect("Send");
    let stats = server.turn.as_ref().unwrap().stats();
    assert!(stats.unauthorized >= 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_foreign_nonces_get_438() {
    let lifetime = Duration::from_secs(2);
    let (relay, _cancel) = standalone(vec![], |config| {
        config.nonce_lifetime = lifetime;
    })
    .await;
    let mut turn = client(Transport::Udp, relay.udp_addr(), "nonce").await;
    turn.allocate().await.unwrap();
    let before = relay.stats().stale_nonces;
    // A nonce in our format but not signed by this relay.
    turn.set_nonce("1.0000000000000000");
    turn.refresh(600).await.expect("refresh succeeds after 438");
    assert_eq!(
        relay.stats().stale_nonces,
        before + 1,
        "one 438 for the forged nonce"
    );
    // Our own nonce, after its lifetime: 438, then the client retries with the new one. The
    // nonce says when it was issued (`<unix seconds, hex>.<MAC>`), and is stale `lifetime`
    // after that.
    let nonce = turn.nonce().expect("a nonce from the relay").to_owned();
    let issued = nonce
        .split_once('.')
        .and_then(|(at, _)| u64::from_str_radix(at, 16).ok())
        .unwrap_or_else(|| panic!("a nonce of the form <issued hex>.<MAC>: {nonce}"));
    wait_for(
        "the nonce to go stale",
        Duration::from_secs(5),
        async || {
            let now = unix_now();
            if now >= issued + lifetime.as_secs() {
                Ok(())
            } else {
                Err(format!("it is {now}, the nonce was issued at {issued}"))
            }
        },
    )
    .await;
    turn.refresh(600).await.expect("refresh succeeds after 438");
    assert_eq!(
        relay.stats().stale_nonces,
        before + 2,
        "one 438 for the stale nonce"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_transports_and_permission_limits() {
    let server = bundled(vec![]).await;
    let turn = turn_addr(&server);

    // REQUESTED-TRANSPORT other than UDP: 442.
    let mut tcp_relay = client(Transport::Udp, turn, "transport").await;
    let refused = tcp_relay.allocate_with(6, None).await.unwrap_err();
    assert_eq!(refused.code(), Some(442));

    // Twelve allocations for one identity; retransmissions are not charged.
    let mut clients = Vec::new();
    for i in 0..12 {
        let mut c = client(Transport::Udp, turn, "quota").await;
        let relayed = c
            .allocate()
            .await
            .unwrap_or_else(|e| panic!("allocation {i}: {e}"));
        if i == 0 {
            for _ in 0..3 {
                assert_eq!(c.retransmit_last_allocate().await.unwrap(), relayed);
            }
        }
        clients.push(c);
    }
    let mut thirteenth = client(Transport::Udp, turn, "quota").await;
    assert_eq!(thirteenth.allocate().await.unwrap_err().code(), Some(486));
    // Another identity is unaffected.
    let mut other = client(Transport::Udp, turn, "someone-else").await;
    other.allocate().await.unwrap();
    // Closing one allocation releases its quota.
    assert_eq!(clients[5].refresh(0).await.unwrap(), 0);
    let mut again = client(Transport::Udp, turn, "quota").await;
    again.allocate().await.expect("quota released on close");

    // At most 1024 permissions per allocation (public addresses on a standalone relay).
    let (relay, _cancel) = standalone(vec![], |_| {}).await;
    let mut many = client(Transport::Udp, relay.udp_addr(), "permissions").await;
    many.allocate().await.unwrap();
    let public = |i: u32| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(11, 0, 0, 0)) + i));
    for batch in 0..4 {
        let peers: Vec<IpAddr> = (batch * 256..(batch + 1) * 256).map(public).collect();
        many.create_permission(&peers).await.unwrap();
    }
    let over = many.create_permission(&[public(1024)]).await.unwrap_err();
    assert_eq!(over.code(), Some(508), "the 1025th permission is refused");
    // Refreshing an existing one is still fine.
    many.create_permission(&[public(7)]).await.unwrap();
}

/// Garbage over UDP and TCP: answered with 400 where it is a request, dropped otherwise,
/// and the relay keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_never_break_the_relay() {
    let server = bundled(vec![]).await;
    let turn = turn_addr(&server);
    let mut raw = client(Transport::Udp, turn, "fuzzy").await;
    let header = |method: u16, len: u16| {
        let mut m = Vec::new();
        m.extend(method.to_be_bytes());
        m.extend(len.to_be_bytes());
        m.extend(0x2112_A442u32.to_be_bytes());
        m.extend([7u8; 12]);
        m
    };
    // An Allocate request whose attribute overruns the message: a 400 comes back.
    let mut overrun = header(0x0003, 8);
    overrun.extend([0x00, 0x19, 0x00, 0x40, 17, 0, 0, 0]);
    let reply = raw
        .send_raw(&overrun, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("a reply to a malformed request");
    let (reply, _) = stun_rs::MessageDecoderBuilder::default()
        .build()
        .decode(&reply)
        .expect("the reply is valid STUN");
    assert_eq!(reply.method(), stun_rs::methods::ALLOCATE);
    assert_eq!(reply.class(), stun_rs::MessageClass::ErrorResponse);
    let code = reply
        .get::<stun_rs::attributes::stun::ErrorCode>()
        .and_then(|a| a.as_error_code().ok())
        .map(|e| e.error_code().error_code());
    assert_eq!(code, Some(400));
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        header(0x0001, 1000),
        header(0x0003, 3),
        vec![0x40, 0x00, 0xFF, 0xFF, 1, 2],
        vec![0x7F, 0xFF, 0x00, 0x00],
        vec![0xFF; 100],
    ];
    let mut seed = 0x1234_5678_u64;
    for _ in 0..500 {
        let mut m = header(0x0003 | ((seed as u16) & 0x0110), 0);
        let len = (seed % 200) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            m.push(seed as u8);
        }
        let body = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&body.to_be_bytes());
        cases.push(m);
    }
    for case in &cases {
        raw.send_raw(case, Duration::from_millis(5)).await.unwrap();
    }
    // A 64 KB Allocate with 16,000 unknown comprehension-required attributes: dropped
    // unparsed (parsing it would cost the relay far more than the sender).
    let mut huge = header(0x0003, 0);
    for kind in 0..16_000u16 {
        huge.extend((0x0100 + kind % 0x7E00).to_be_bytes());
        huge.extend([0, 0]);
    }
    let body = (huge.len() - 20) as u16;
    huge[2..4].copy_from_slice(&body.to_be_bytes());
    let started = std::time::Instant::now();
    let answer = raw
        .send_raw(&huge, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(answer.is_none(), "an oversized request is not answered");
    println!(
        "oversized request dropped; round trip {:?}",
        started.elapsed()
    );
    let mut tcp_garbage = client(Transport::Tcp, turn, "fuzzy").await;
    let _ = tcp_garbage
        .send_raw(b"\x16\x03\x01 not TURN at all", Duration::from_millis(200))
        .await;
    // Still serving, over both transports.
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut fine = client(transport, turn, "after-fuzz").await;
        fine.allocate().await.expect("the relay still serves");
    }
    let stats = server.turn.as_ref().unwrap().stats();
    println!("after {} malformed packets: {stats:?}", cases.len());
    assert!(stats.malformed > 0);
}
