//! The real binary: starts with embedded defaults. On Ctrl-C (SIGINT) it tells participants the
//! server is shutting down, closes everything and exits 0. On SIGTERM it drains: participants
//! are told when the server goes away and their calls go on meanwhile, new joins are refused with
//! `closed` (`draining`), and once the drain time is over everyone gets `closed`
//! (`server_shutdown`) and the process exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::{Client, ClientEvent};
use protocol::{ClientMessage, CloseReason, Grants, ServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SECRET: &str = "a-test-secret-that-is-long-enough-0123";

/// Starts the binary with a secret on free loopback ports (plus `extra` flags) and waits for its
/// banner. Returns the process, its HTTP port and its media port.
async fn spawn_server(extra: &[&str]) -> (tokio::process::Child, u16, u16) {
    let http_port = free_port();
    let rtc_port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--rtc-port", &rtc_port.to_string()])
        .args(["--turn-port", &free_port().to_string()])
        .args(["--announce-ip", "127.0.0.1"])
        .args(["--api-key", "APItest", "--api-secret", SECRET])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the switchyard binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("server prints its banner")
            .unwrap()
            .expect("server still running");
        if line.contains("Switchyard is up") {
            break;
        }
    }
    // Keep reading what it prints, so its stdout never turns into a broken pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    (child, http_port, rtc_port)
}

#[tokio::test]
async fn ctrl_c_tells_participants_and_exits_zero() {
    let (child, http_port, rtc_port) = spawn_server(&[]).await;
    let mut child = child;

    // With a secret configured there is no dev token endpoint.
    let status = http_status(http_port, "/api/dev-token?room=shutdown").await;
    assert_eq!(status, 404);
    assert_eq!(http_status(http_port, "/room/shutdown").await, 200);

    let token = signaling::TokenAuthority::new("APItest", SECRET).mint(
        "ann",
        "Ann",
        "shutdown",
        Grants::default(),
        60,
    );
    let mut c = Client::connect(&format!("ws://127.0.0.1:{http_port}/ws"))
        .await
        .unwrap();
    c.join("shutdown", &token);
    c.wait_message(Duration::from_secs(10), |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");

    let pid = child.id().expect("running").to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );

    let told = c
        .wait_message(Duration::from_secs(10), |m| match m {
            ServerMessage::Closed { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(told, Some(CloseReason::ServerShutdown));
    let closed = c
        .wait_for(Duration::from_secs(10), |e| match e {
            ClientEvent::Closed { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(
        closed,
        Some(Some(1001)),
        "the WebSocket closes with 'going away'"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("process exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    // The media port is free again.
    std::net::UdpSocket::bind(("127.0.0.1", rtc_port)).expect("media port released");
}

/// The status code of a plain HTTP/1.0 GET.
async fn http_status(port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

const DRAIN_SECS: u64 = 4;

async fn joined(http_port: u16, identity: &str) -> Client {
    let token = signaling::TokenAuthority::new("APItest", SECRET).mint(
        identity,
        identity,
        "drain",
        Grants::default(),
        60,
    );
    let c = Client::connect(&format!("ws://127.0.0.1:{http_port}/ws"))
        .await
        .unwrap();
    c.join("drain", &token);
    c
}

#[tokio::test]
async fn sigterm_drains_calls_refuses_joins_and_exits_zero() {
    let (mut child, http_port, _) = spawn_server(&["--drain-secs", &DRAIN_SECS.to_string()]).await;
    let mut ann = joined(http_port, "ann").await;
    let mut ben = joined(http_port, "ben").await;
    for c in [&mut ann, &mut ben] {
        c.wait_message(Duration::from_secs(10), |m| {
            matches!(m, ServerMessage::Joined { .. }).then_some(())
        })
        .await
        .expect("joined");
    }

    let pid = child.id().expect("running").to_string();
    let terminated = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for c in [&mut ann, &mut ben] {
        let closes_in = c
            .wait_message(Duration::from_secs(10), |m| match m {
                ServerMessage::Draining { closes_in_secs } => Some(*closes_in_secs),
                _ => None,
            })
            .await
            .expect("told the server is draining");
        assert!(
            (DRAIN_SECS - 1..=DRAIN_SECS).contains(&closes_in),
            "told the session ends in about {DRAIN_SECS} s, got {closes_in}"
        );
    }

    // A newcomer is turned away with a reason it can act on.
    let mut carl = joined(http_port, "carl").await;
    let refused = carl
        .wait_message(Duration::from_secs(10), |m| match m {
            ServerMessage::Closed { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(refused, Some(CloseReason::Draining));
    let code = carl
        .wait_for(Duration::from_secs(10), |e| match e {
            ClientEvent::Closed { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(code, Some(Some(1013)), "closed with 'try again later'");

    // Load balancers see it too.
    assert_eq!(http_status(http_port, "/healthz").await, 503);

    // The call goes on while draining: the room still answers.
    ann.send(ClientMessage::Ping { ts: 7 });
    let pong = ann
        .wait_message(Duration::from_secs(5), |m| match m {
            ServerMessage::Pong { ts } => Some(*ts),
            _ => None,
        })
        .await;
    assert_eq!(pong, Some(7), "sessions still served during the drain");

    for c in [&mut ann, &mut ben] {
        let told = c
            .wait_message(Duration::from_secs(DRAIN_SECS + 10), |m| match m {
                ServerMessage::Closed { reason } => Some(*reason),
                _ => None,
            })
            .await;
        assert_eq!(told, Some(CloseReason::ServerShutdown));
    }
    let ended = terminated.elapsed();
    assert!(
        ended >= Duration::from_secs(DRAIN_SECS - 1),
        "calls went on for the drain time, not {ended:?}"
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("process exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    println!("SIGTERM: calls ended {ended:?} later, then the process exited 0");
}
