//! A Switchyard cluster node as a real process (the test package's `switchyard-node`
//! executable, the same code as `switchyard`), so a test can kill it with SIGKILL. Each node gets
//! its own HTTP, media and TURN ports on 127.0.0.1 and its own scratch folder; it is killed when
//! dropped. The tests pass the executable's path (`env!("CARGO_BIN_EXE_switchyard-node")`).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::redis::free_port;
use crate::server::scratch_dir;
use crate::wait_for;

/// One node of a test cluster.
pub struct ClusterNode {
    pub id: String,
    pub http_port: u16,
    child: Option<Child>,
}

impl ClusterNode {
    /// Starts node `id` on Redis `redis` with extra flags, and waits until it serves HTTP.
    pub async fn start(exe: &str, id: &str, redis: &str, extra: &[&str]) -> ClusterNode {
        let http_port = free_port();
        let child = Command::new(exe)
            .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
            .args(["--rtc-port", "0", "--turn-port", "0", "--drain-secs", "0"])
            .args(["--redis", redis, "--node-id", id])
            .arg("--recordings-dir")
            .arg(scratch_dir(&format!("node-{id}")))
            .args(extra)
            .env(
                "SWITCHYARD_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| {
                    "warn,rtc=error,rtc_dtls=error,rtc_ice=error,rtc_sctp=error,\
                     switchyard_cluster=info"
                        .into()
                }),
            )
            // Its logs (stdout) and errors go where the test's own output goes.
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the switchyard-node executable runs");
        let node = ClusterNode {
            id: id.to_owned(),
            http_port,
            child: Some(child),
        };
        let health = format!("{}/healthz", node.url());
        wait_for(
            &format!("node {id} to serve HTTP"),
            Duration::from_secs(30),
            async || match reqwest::get(&health).await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            },
        )
        .await;
        node
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Kills the node with SIGKILL: no goodbye to Redis, no close frames.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// The value of the unlabelled metric `name` in the node's `/metrics` (`None`: absent).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        match reqwest::get(format!("{}/metrics", self.url())).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// A dev token for `room` from the node at `base` (`http://...`).
pub async fn dev_token(base: &str, room: &str, name: &str) -> String {
    let answer: serde_json::Value =
        reqwest::get(format!("{base}/api/dev-token?room={room}&name={name}"))
            .await
            .expect("the dev-token endpoint answers")
            .json()
            .await
            .expect("a JSON answer");
    answer["token"].as_str().expect("a token").to_owned()
}

/// A dev admin token from the node at `base`.
pub async fn dev_admin_token(base: &str) -> String {
    let answer: serde_json::Value = reqwest::get(format!("{base}/api/dev-admin-token"))
        .await
        .expect("the dev-admin-token endpoint answers")
        .json()
        .await
        .expect("a JSON answer");
    answer["token"].as_str().expect("a token").to_owned()
}

/// What a signaling join at one node came to.
#[derive(Debug)]
pub struct JoinOutcome {
    /// The WebSocket URLs the join went to, in order (redirects followed).
    pub hops: Vec<String>,
    /// The `joined` message.
    pub joined: protocol::ServerMessage,
    /// The open WebSocket of the session (dropping it leaves the room).
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// Joins `room` with `token` at the WebSocket `url`, following `redirect` (at most 3 times),
/// as the web demo does. Errors say what came instead of `joined`.
pub async fn join_following_redirects(
    url: &str,
    room: &str,
    token: &str,
) -> Result<JoinOutcome, String> {
    use futures::{SinkExt, StreamExt};
    use protocol::{ClientMessage, ServerMessage};
    use tokio_tungstenite::tungstenite::Message;
    let mut hops = vec![url.to_owned()];
    loop {
        let (mut socket, _) = tokio_tungstenite::connect_async(hops.last().unwrap().as_str())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", hops.last().unwrap()))?;
        let join = ClientMessage::Join {
            room: room.into(),
            token: token.into(),
        };
        let text = serde_json::to_string(&join).map_err(|e| e.to_string())?;
        socket
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())?;
        let answer = loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .map_err(|_| "no answer to join within 10 s".to_owned())?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    break serde_json::from_str::<ServerMessage>(&text)
                        .map_err(|e| format!("unreadable message {text}: {e}"))?;
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(format!("closed without an answer: {frame:?}"));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the connection ended".into()),
            }
        };
        match answer {
            ServerMessage::Joined { .. } => {
                return Ok(JoinOutcome {
                    hops,
                    joined: answer,
                    socket,
                });
            }
            ServerMessage::Redirect { url, .. } if hops.len() <= 3 => hops.push(url),
            other => return Err(format!("answered {other:?} at {}", hops.last().unwrap())),
        }
    }
}
