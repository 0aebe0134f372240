//! The real binary on SIGTERM: it drains. Participants are told when the server goes away and
//! their calls go on meanwhile, new joins are refused with `closed` (`draining`), and once the
//! drain time is over everyone gets `closed` (`server_shutdown`) and the process exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::{Client, ClientEvent};
use protocol::{ClientMessage, CloseReason, Grants, ServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "a-test-secret-that-is-long-enough-0123";
const DRAIN_SECS: u64 = 4;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let http_port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--rtc-port", &free_port().to_string()])
        .args(["--turn-port", &free_port().to_string()])
        .args(["--announce-ip", "127.0.0.1"])
        .args(["--api-key", "APItest", "--api-secret", SECRET])
        .args(["--drain-secs", &DRAIN_SECS.to_string()])
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
