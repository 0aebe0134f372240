//! Room placement: which node serves a room. The first join claims the room atomically (a Lua
//! script: the current owner if its heartbeat is alive, else the candidate), the candidate
//! chosen by the configured policy ([`crate::policy`]) among live nodes. Two nodes racing for a
//! new room therefore agree. It never moves a room that is in use.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::error::ClusterError;
use crate::membership::Cluster;
use crate::node_info::NodeInfo;
use crate::policy::choose;
use crate::scripts;

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

impl Cluster {
    /// Where `room` is served: its owner if alive, else a node chosen now, which claims it.
    pub async fn place(&self, room: &str) -> Result<Placement, ClusterError> {
        let nodes = self.live_nodes().await?;
        let candidate = choose(
            self.config().policy,
            self.node_id(),
            self.draining(),
            &nodes,
        )
        .ok_or(ClusterError::NoNode)?;
        match self.claim_for(room, &candidate).await? {
            Claimed::Us if candidate == self.node_id() => Ok(Placement::Here),
            Claimed::Us => self.elsewhere(&candidate, &nodes).await,
            Claimed::Other(owner) if owner == self.node_id() => {
                self.note_claim(room);
                Ok(Placement::Here)
            }
            Claimed::Other(owner) => self.elsewhere(&owner, &nodes).await,
        }
    }

    /// Claims `room` for this node (a room created through the admin API lives where the
    /// request arrived), unless a live node already owns it.
    pub async fn claim_here(&self, room: &str) -> Result<Placement, ClusterError> {
        match self.claim_for(room, self.node_id()).await? {
            Claimed::Us => Ok(Placement::Here),
            Claimed::Other(owner) => self.elsewhere(&owner, &self.live_nodes().await?).await,
        }
    }

    /// The live node that owns `room`, if any.
    pub async fn owner(&self, room: &str) -> Result<Option<NodeInfo>, ClusterError> {
        let mut conn = self.redis();
        let owner: Option<String> = conn
            .get(self.keys().room(room))
            .await
            .map_err(ClusterError::redis)?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        Ok(self.live_nodes().await?.into_iter().find(|n| n.id == owner))
    }

    /// Frees `room` if this node owns it (the room closed).
    pub async fn release(&self, room: &str) -> Result<(), ClusterError> {
        let mut conn = self.redis();
        redis::Script::new(scripts::RELEASE)
            .key(self.keys().room(room))
            .arg(self.node_id())
            .arg(self.keys().prefix())
            .arg(room)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(ClusterError::redis)?;
        self.recent_claims()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(room);
        Ok(())
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
        if owner == node {
            if node == self.node_id() {
                self.note_claim(room);
            }
            Ok(Claimed::Us)
        } else {
            Ok(Claimed::Other(owner))
        }
    }

    fn note_claim(&self, room: &str) {
        self.recent_claims()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room.to_owned(), Instant::now());
    }

    /// Whether this node claimed `room` less than `within` ago.
    pub(crate) fn claimed_within(&self, room: &str, within: Duration) -> bool {
        let mut recent = self
            .recent_claims()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent.retain(|_, at| at.elapsed() < Duration::from_secs(60));
        recent.get(room).is_some_and(|at| at.elapsed() < within)
    }

    async fn elsewhere(&self, owner: &str, nodes: &[NodeInfo]) -> Result<Placement, ClusterError> {
        match nodes.iter().find(|n| n.id == owner) {
            Some(node) => Ok(Placement::Elsewhere(node.clone())),
            None => Err(ClusterError::Redis(format!(
                "the room's node {owner} has no registration yet; try again"
            ))),
        }
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
        let answers: Vec<(bool, Option<String>)> = pipe
            .query_async::<Vec<redis::Value>>(&mut conn)
            .await
            .map_err(ClusterError::redis)?
            .chunks(2)
            .map(|pair| {
                let alive = redis::from_redis_value_ref::<bool>(&pair[0]).unwrap_or(false);
                let info = pair
                    .get(1)
                    .and_then(|v| redis::from_redis_value_ref::<Option<String>>(v).ok())
                    .flatten();
                (alive, info)
            })
            .collect();
        let mut nodes: Vec<NodeInfo> = answers
            .into_iter()
            .filter(|(alive, _)| *alive)
            .filter_map(|(_, info)| info.and_then(|i| serde_json::from_str(&i).ok()))
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}
