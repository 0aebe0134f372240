//! What a node tells the cluster about itself ([`NodeInfo`]), and the URLs and ids derived
//! from it. Plain data: it never talks to Redis.

use serde::{Deserialize, Serialize};

/// A node as registered in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    /// Base HTTP URL.
    pub url: String,
    pub rooms: usize,
    pub participants: usize,
    /// Percent of one core.
    pub cpu: f32,
    /// Draining nodes take no new rooms.
    pub draining: bool,
    /// Unix seconds.
    pub started_at: u64,
}

impl NodeInfo {
    /// The node's signaling WebSocket URL (`ws://host:port/ws`, `wss://` for HTTPS).
    pub fn ws_url(&self) -> String {
        ws_url(&self.url)
    }
}

/// `http://h:p` → `ws://h:p/ws`; `https://h:p` → `wss://h:p/ws`.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/ws")
}

/// A URL with its password hidden, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A fresh node id: the host name and a random suffix.
pub fn new_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "node".into());
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(ws_url("http://10.0.0.1:8080"), "ws://10.0.0.1:8080/ws");
        assert_eq!(ws_url("https://a.example/"), "wss://a.example/ws");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
