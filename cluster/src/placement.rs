//! Room placement: which node serves a room. The first join claims the room atomically (a Lua
//! script: the current owner if its heartbeat is alive, else the candidate), the candidate
//! chosen by the configured policy ([`crate::policy`]) among live nodes. Two nodes racing for a
//! new room therefore agree. Right after a Redis outage no new room is placed until every node
//! has had a heartbeat to re-assert its rooms. Every call gives up after [`REDIS_WAIT`]. It
//! never moves a room that is in use.

use std::time::Duration;

use redis::AsyncCommands;

use crate::error::ClusterError;
use crate::membership::{Cluster, HEARTBEAT};
use crate::node_info::NodeInfo;
use crate::policy::choose;
use crate::scripts;

/// The longest a placement question waits for Redis.
pub const REDIS_WAIT: Duration = Duration::from_secs(2);
/// A claim this node holds with no local room is released once it is this old (the join it
/// was made for has long arrived).
pub const UNUSED_CLAIM: Duration = Duration::from_secs(10);

/// Where a room is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// On this node.
    Here,
    /// On another live node.
    Elsewhere(NodeInfo),
}

/// Who holds a claim after a claim attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claimed {
    Us,
    Other(String),
}

/// `work`, or a Redis error once [`REDIS_WAIT`] has passed.
async fn within<T>(work: impl Future<Output = Result<T, ClusterError>>) -> Result<T, ClusterError> {
    tokio::time::timeout(REDIS_WAIT, work)
        .await
        .unwrap_or_else(|_| {
            Err(ClusterError::Redis(format!(
                "no answer within {} s",
                REDIS_WAIT.as_secs()
            )))
        })
}

impl Cluster {
    /// Where `room` is served: its owner if alive, else a node chosen now, which claims it.
    pub async fn place(&self, room: &str) -> Result<Placement, ClusterError> {
        // Just after Redis came back (empty, perhaps), the nodes re-assert their rooms with
        // their next heartbeat: placing a room before that could give it a second node.
        if self.recovered_within(HEARTBEAT + Duration::from_secs(1)) {
            return Err(ClusterError::Recovering);
        }
        within(async {
            let nodes = self.live_nodes().await?;
            let candidate = choose(
                self.config().policy,
                self.node_id(),
                self.draining(),
                &nodes,
            )
            .ok_or(ClusterError::NoNode)?;
            let owner = match self.claim_for(room, &candidate).await? {
                Claimed::Us => candidate,
                Claimed::Other(owner) => owner,
            };
            if owner == self.node_id() {
                Ok(Placement::Here)
            } else {
                elsewhere(&owner, &nodes)
            }
        })
        .await
    }

    /// Claims `room` for this node (a room created through the admin API lives where the
    /// request arrived), unless a live node already owns it.
    pub async fn claim_here(&self, room: &str) -> Result<Placement, ClusterError> {
        within(async {
            match self.claim_for(room, self.node_id()).await? {
                Claimed::Us => Ok(Placement::Here),
                Claimed::Other(owner) => elsewhere(&owner, &self.live_nodes().await?),
            }
        })
        .await
    }

    /// The live node that owns `room`, if any.
    pub async fn owner(&self, room: &str) -> Result<Option<NodeInfo>, ClusterError> {
        within(async {
            let mut conn = self.redis();
            let owner: Option<String> = conn
                .get(self.keys().room(room))
                .await
                .map_err(ClusterError::redis)?;
            let Some(owner) = owner else {
                return Ok(None);
            };
            Ok(self.live_nodes().await?.into_iter().find(|n| n.id == owner))
        })
        .await
    }

    /// Frees `room` if this node owns it and claimed it at least `unused` ago.
    pub async fn release(&self, room: &str, unused: Duration) -> Result<bool, ClusterError> {
        let mut conn = self.redis();
        let freed: i64 = redis::Script::new(scripts::RELEASE)
            .key(self.keys().room(room))
            .arg(self.node_id())
            .arg(self.keys().prefix())
            .arg(room)
            .arg(unused.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(ClusterError::redis)?;
        Ok(freed == 1)
    }

    /// Claims `room` for `node` unless a live node holds it.
    pub(crate) async fn claim_for(&self, room: &str, node: &str) -> Result<Claimed, ClusterError> {
        let mut conn = self.redis();
        let owner: Result<String, _> = redis::Script::new(scripts::CLAIM)
            .key(self.keys().room(room))
            .arg(node)
            .arg(self.keys().prefix())
            .arg(room)
            .invoke_async(&mut conn)
            .await;
        self.note(&owner);
        let owner = owner.map_err(ClusterError::redis)?;
        Ok(if owner == node {
            Claimed::Us
        } else {
            Claimed::Other(owner)
        })
    }

    /// Every node whose heartbeat is alive, read now.
    pub async fn live_nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let keys = self.keys();
        let mut conn = self.redis();
        let ids: Result<Vec<String>, _> = conn.smembers(keys.nodes()).await;
        self.note(&ids);
        let ids = ids.map_err(ClusterError::redis)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.exists(keys.alive(id)).get(keys.node(id));
        }
        let answers: Vec<redis::Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(ClusterError::redis)?;
        let mut nodes: Vec<NodeInfo> = answers
            .chunks(2)
            .filter(|pair| redis::from_redis_value_ref::<bool>(&pair[0]).unwrap_or(false))
            .filter_map(|pair| {
                let info = redis::from_redis_value_ref::<Option<String>>(pair.get(1)?).ok()??;
                serde_json::from_str(&info).ok()
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}

fn elsewhere(owner: &str, nodes: &[NodeInfo]) -> Result<Placement, ClusterError> {
    match nodes.iter().find(|n| n.id == owner) {
        Some(node) => Ok(Placement::Elsewhere(node.clone())),
        None => Err(ClusterError::Redis(format!(
            "the room's node {owner} has no registration yet; try again"
        ))),
    }
}
