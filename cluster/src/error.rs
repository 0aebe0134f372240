//! Why a cluster operation failed ([`ClusterError`]), in words an operator can act on. It never
//! retries or logs: callers decide.

/// A cluster operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The Redis URL cannot be parsed.
    #[error(
        "the Redis URL {url:?} is not valid ({reason}); write it as redis://[:password@]host:port[/db]"
    )]
    BadUrl { url: String, reason: String },
    /// Redis refused the credentials.
    #[error(
        "Redis at {url} refused the password ({detail}); check the password in [cluster] redis / --redis"
    )]
    WrongPassword { url: String, detail: String },
    /// Redis cannot be reached (down, wrong host or port, a firewall).
    #[error(
        "cannot reach Redis at {url} ({detail}); is redis-server running there? (set [cluster] redis / --redis)"
    )]
    Unreachable { url: String, detail: String },
    /// Redis answered with an error, or did not answer in time, during normal work.
    #[error("Redis: {0}")]
    Redis(String),
    /// Another live node has this node's id.
    #[error(
        "node id {0:?} is in use by a live node of this cluster; give each node its own --node-id (or [cluster] node_id)"
    )]
    NodeIdInUse(String),
    /// Redis came back moments ago; rooms are placed again once every node re-asserted its own.
    #[error("the cluster is recovering from a Redis outage; try again in a few seconds")]
    Recovering,
    /// No live node takes new rooms (every one drains or is full).
    #[error(
        "no node of the cluster takes new rooms now (all are draining or full); try again shortly"
    )]
    NoNode,
}

impl ClusterError {
    /// An error of normal work (after start-up).
    pub(crate) fn redis(error: redis::RedisError) -> Self {
        ClusterError::Redis(error.to_string())
    }
}
