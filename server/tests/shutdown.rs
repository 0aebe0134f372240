//! The real binary: starts with embedded defaults, and on Ctrl-C (SIGINT) tells participants
//! the server is shutting down, closes everything and exits 0.

use std::process::{Command, Stdio};
use std::time::Duration;

use client::{Client, ClientEvent};
use protocol::{CloseReason, Grants, ServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn ctrl_c_tells_participants_and_exits_zero() {
    let http_port = free_port();
    let rtc_port = free_port();
    let turn_port = free_port();
    let secret = "a-test-secret-that-is-long-enough-0123";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--rtc-port", &rtc_port.to_string()])
        .args(["--turn-port", &turn_port.to_string()])
        .args(["--announce-ip", "127.0.0.1"])
        .args(["--api-key", "APItest", "--api-secret", secret])
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

    // With a secret configured there is no dev token endpoint.
    let status = http_status(http_port, "/api/dev-token?room=shutdown").await;
    assert_eq!(status, 404);
    assert_eq!(http_status(http_port, "/room/shutdown").await, 200);

    let token = signaling::TokenAuthority::new("APItest", secret).mint(
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
