//! How a node joins the cluster ([`ClusterConfig`]). Plain settings: it never reads files or
//! talks to Redis.

use crate::policy::PlacementPolicy;

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
