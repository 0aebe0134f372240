//! This node's membership in the cluster ([`Cluster`]): the Redis connection (one shared,
//! self-reconnecting connection), whether Redis answers, whether the node drains, the last view
//! of live nodes, and the cluster's figures for `/metrics`. The work lives beside it: the
//! registry keeps the node registered, placement answers where rooms go, events carries the
//! event stream. It never touches a room.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::keys::Keys;
use crate::node_info::{NodeInfo, redacted};

/// How often a node refreshes its heartbeat, registration and room list.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node whose heartbeat is this old is dead (the key's TTL).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

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
    known_urls: Mutex<HashSet<String>>,
    started_at: u64,
    /// Rooms, participants and CPU % as last measured, for the registration.
    load: Mutex<(usize, usize, f32)>,
    /// When the last Redis outage ended, as this node saw it.
    recovered_at: Mutex<Option<Instant>>,
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
                recovered_at: Mutex::new(None),
                load: Mutex::new((0, 0, 0.0)),
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
        cluster.wait_for_free_id().await?;
        Ok(cluster)
    }

    /// Refuses an id a live node has. A heartbeat with this id from a previous run of this
    /// node (a quick restart) expires within the TTL: wait for that.
    async fn wait_for_free_id(&self) -> Result<(), ClusterError> {
        let key = self.keys().alive(self.node_id());
        let deadline = tokio::time::Instant::now() + HEARTBEAT_TTL + Duration::from_secs(1);
        let mut conn = self.redis();
        loop {
            let taken: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(ClusterError::redis)?;
            if !taken {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NodeIdInUse(self.node_id().to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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
        match result {
            Ok(_) => self.note_up(true, ""),
            Err(e) => self.note_up(false, &e.to_string()),
        }
    }

    /// Notes whether Redis answered (`why`: what went wrong, when it did not).
    pub(crate) fn note_up(&self, up: bool, why: &str) {
        let was = self.inner.redis_up.swap(up, Ordering::Relaxed);
        if was && !up {
            tracing::warn!(
                error = why,
                "Redis is unreachable; calls go on, the cluster heals when it is back"
            );
        } else if !was && up {
            tracing::info!("Redis is back; re-registering this node and its rooms");
            *self
                .inner
                .recovered_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            self.refresh_soon();
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

    /// Notes this node's load: rooms, participants, CPU % of one core.
    pub(crate) fn set_load(&self, rooms: usize, participants: usize, cpu: f32) {
        *self
            .inner
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (rooms, participants, cpu);
    }

    /// Rooms, participants and CPU % as last noted.
    pub(crate) fn load(&self) -> (usize, usize, f32) {
        *self
            .inner
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether Redis came back from an outage less than `within` ago.
    pub(crate) fn recovered_within(&self, within: Duration) -> bool {
        self.inner
            .recovered_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < within)
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
        stored
            .split_once('\n')
            .map(|(k, s)| (k.to_owned(), s.to_owned()))
            .ok_or_else(|| {
                ClusterError::Redis(format!(
                    "{key} holds something else than dev credentials; delete it (redis-cli DEL {key})"
                ))
            })
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
