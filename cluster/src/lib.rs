//! Switchyard's cluster on Redis: what nodes must agree on, and nothing else.
//!
//! - [`registry`]: each node registers itself (id, URL, load) and keeps a heartbeat key alive;
//!   dead nodes' entries and room claims are swept.
//! - [`placement`]: the first join of a room claims it for one node, atomically (a Lua script),
//!   chosen by load; later joins learn the owner.
//! - [`directory`]: each node's rooms, as it reports them, for cluster-wide admin listings.
//! - [`events`]: every node's admin events in one Redis stream, so any node can stream them and
//!   `Last-Event-ID` resumes across nodes.
//!
//! Media never goes through Redis and never depends on it: when Redis goes away, calls go on,
//! and the cluster heals when it is back (claims are re-asserted, the heartbeat resumes). It
//! never touches a media socket or a room's state; signaling asks it questions.

pub mod directory;
mod error;
pub mod events;
mod keys;
pub mod load;
pub mod placement;
pub mod registry;
mod scripts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use error::ClusterError;
pub use keys::Keys;
pub use placement::{Placement, PlacementPolicy};

/// How often a node refreshes its heartbeat, registration and room list.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node whose heartbeat is this old is dead (the key's TTL).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub redis_url: String,
    /// Key prefix: clusters on one Redis with different prefixes never see each other.
    pub prefix: String,
    /// This node's id (unique in the cluster).
    pub node_id: String,
    /// The base URL clients and other nodes reach this node's HTTP at (`http://host:port`).
    pub url: String,
    /// How a new room's node is chosen.
    pub policy: PlacementPolicy,
}

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

/// This node's membership in the cluster. Cloning is cheap.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    keys: Keys,
    client: redis::Client,
    redis: ConnectionManager,
    /// Whether the last Redis call worked.
    redis_up: AtomicBool,
    draining: AtomicBool,
    /// Wakes the heartbeat early (rooms changed, drain started).
    refresh: Notify,
    /// The live nodes as last read (this one included).
    view: Mutex<Vec<NodeInfo>>,
    /// Every node URL seen since this node started (dead nodes' too).
    known_urls: Mutex<std::collections::HashSet<String>>,
    started_at: u64,
    recent_claims: placement::RecentClaims,
    cancel: CancellationToken,
}

impl Cluster {
    /// Connects to Redis (failing at once with a clear error when it is down or refuses the
    /// password) and registers this node. Background work starts with [`Cluster::run`].
    pub async fn connect(
        config: ClusterConfig,
        cancel: CancellationToken,
    ) -> Result<Cluster, ClusterError> {
        let shown = redacted(&config.redis_url);
        let client =
            redis::Client::open(config.redis_url.as_str()).map_err(|e| ClusterError::BadUrl {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_max_delay(Duration::from_secs(2));
        let redis = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| start_error(&shown, e))?;
        let keys = Keys::new(&config.prefix);
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                keys,
                client,
                redis,
                redis_up: AtomicBool::new(true),
                draining: AtomicBool::new(false),
                refresh: Notify::new(),
                view: Mutex::new(Vec::new()),
                known_urls: Mutex::default(),
                started_at,
                recent_claims: Default::default(),
                cancel,
            }),
        };
        // Fails like the connection would, e.g. a password Redis accepted for AUTH but an ACL
        // that forbids our commands.
        let mut conn = cluster.redis();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| start_error(&shown, e))?;
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// This node's base URL.
    pub fn url(&self) -> &str {
        &self.inner.config.url
    }

    /// Sets this node's base URL once its port is known; only before the node is shared.
    pub fn set_url(&mut self, url: String) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.config.url = url;
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// A handle on the shared, self-reconnecting connection.
    pub(crate) fn redis(&self) -> ConnectionManager {
        self.inner.redis.clone()
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    pub(crate) fn cancel(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether the last Redis call worked.
    pub fn redis_up(&self) -> bool {
        self.inner.redis_up.load(Ordering::Relaxed)
    }

    /// Notes the outcome of a Redis call (for `/metrics` and the logs).
    pub(crate) fn note<T>(&self, result: &Result<T, redis::RedisError>) {
        let up = result.is_ok();
        let was = self.inner.redis_up.swap(up, Ordering::Relaxed);
        if was && !up {
            if let Err(e) = result {
                tracing::warn!(error = %e, "Redis is unreachable; calls go on, the cluster heals when it is back");
            }
        } else if !was && up {
            tracing::info!("Redis is back; re-registering this node and its rooms");
        }
    }

    /// From now on this node takes no new rooms (it drains before going away).
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
        self.inner.refresh.notify_one();
    }

    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Asks the heartbeat to refresh soon (a room opened or closed, someone joined or left).
    pub fn refresh_soon(&self) {
        self.inner.refresh.notify_one();
    }

    pub(crate) fn refresh_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.refresh.notified()
    }

    /// The live nodes as last read (refreshed with each heartbeat), this one included.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.inner
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_view(&self, nodes: Vec<NodeInfo>) {
        self.inner
            .known_urls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(nodes.iter().map(|n| n.url.trim_end_matches('/').to_owned()));
        *self
            .inner
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = nodes;
    }

    /// Whether `url` is (or was) a node's base URL: a page a node served, whose node has died
    /// since, still counts.
    pub fn is_known_url(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        url == self.url().trim_end_matches('/')
            || self
                .inner
                .known_urls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(url)
    }

    pub(crate) fn recent_claims(&self) -> &placement::RecentClaims {
        &self.inner.recent_claims
    }

    pub(crate) fn started_at(&self) -> u64 {
        self.inner.started_at
    }

    /// Dev mode's API key and secret, the same on every node: the first node's `proposed`
    /// pair, or the one stored by a node before.
    pub async fn shared_dev_credentials(
        &self,
        proposed: (String, String),
    ) -> Result<(String, String), ClusterError> {
        let mut conn = self.redis();
        let key = self.keys().dev_credentials();
        let value = format!("{}\n{}", proposed.0, proposed.1);
        let stored: String = redis::Script::new(
            "redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])",
        )
        .key(&key)
        .arg(&value)
        .invoke_async(&mut conn)
        .await
        .map_err(ClusterError::redis)?;
        Ok(stored
            .split_once('\n')
            .map(|(k, s)| (k.to_owned(), s.to_owned()))
            .unwrap_or(proposed))
    }

    /// Prometheus lines with the cluster's figures as this node sees them.
    pub fn metrics(&self) -> String {
        let nodes = self.nodes();
        let mut out = String::new();
        out.push_str("# HELP switchyard_cluster_redis_up Whether this node's last Redis call worked.\n# TYPE switchyard_cluster_redis_up gauge\n");
        out.push_str(&format!(
            "switchyard_cluster_redis_up {}\n",
            u8::from(self.redis_up())
        ));
        out.push_str("# HELP switchyard_cluster_nodes_alive Nodes whose heartbeat is alive.\n# TYPE switchyard_cluster_nodes_alive gauge\n");
        out.push_str(&format!("switchyard_cluster_nodes_alive {}\n", nodes.len()));
        out.push_str("# HELP switchyard_cluster_node_rooms Rooms on each live node.\n# TYPE switchyard_cluster_node_rooms gauge\n");
        for node in &nodes {
            out.push_str(&format!(
                "switchyard_cluster_node_rooms{{node=\"{}\"}} {}\n",
                label(&node.id),
                node.rooms
            ));
        }
        out.push_str("# HELP switchyard_cluster_node_participants Participants on each live node.\n# TYPE switchyard_cluster_node_participants gauge\n");
        for node in &nodes {
            out.push_str(&format!(
                "switchyard_cluster_node_participants{{node=\"{}\"}} {}\n",
                label(&node.id),
                node.participants
            ));
        }
        out
    }
}

/// A Prometheus label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A start-up failure in words an operator can act on.
fn start_error(url: &str, error: redis::RedisError) -> ClusterError {
    let text = error.to_string();
    let upper = text.to_ascii_uppercase();
    if upper.contains("WRONGPASS") || upper.contains("NOAUTH") || upper.contains("AUTH") {
        ClusterError::WrongPassword {
            url: url.to_owned(),
            detail: text,
        }
    } else {
        ClusterError::Unreachable {
            url: url.to_owned(),
            detail: text,
        }
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
