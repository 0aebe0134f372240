//! Room placement: which node serves a room. The first join claims the room atomically (a Lua
//! script: the current owner if its heartbeat is alive, else the candidate), the candidate
//! chosen by the configured policy among live nodes that are not draining. Two nodes racing for
//! a new room therefore agree. It never moves a room that is in use.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::{Cluster, ClusterError, NodeInfo, scripts};

/// How a new room's node is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlacementPolicy {
    /// The node with the fewest participants (then the least CPU).
    #[default]
    Participants,
    /// The node using the least CPU (then the fewest participants).
    Cpu,
    /// The node the join arrived at, unless it drains.
    Local,
}

impl std::str::FromStr for PlacementPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "participants" => Ok(PlacementPolicy::Participants),
            "cpu" => Ok(PlacementPolicy::Cpu),
            "local" => Ok(PlacementPolicy::Local),
            other => Err(format!(
                "unknown placement policy {other:?}: use participants, cpu or local"
            )),
        }
    }
}

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

/// When this node claimed each room lately (a claim is kept while its join sets the room up).
pub(crate) type RecentClaims = Mutex<HashMap<String, Instant>>;

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

/// The node a new room should go to under `policy`: never a draining node. `here` is this node,
/// which counts even before its first registration is visible.
fn choose(
    policy: PlacementPolicy,
    here: &str,
    here_draining: bool,
    nodes: &[NodeInfo],
) -> Option<String> {
    let open: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| !(n.draining || (n.id == here && here_draining)))
        .collect();
    let here_open = !here_draining;
    match policy {
        PlacementPolicy::Local if here_open => return Some(here.to_owned()),
        _ => {}
    }
    let best = match policy {
        PlacementPolicy::Cpu => open.iter().min_by(|a, b| {
            a.cpu
                .total_cmp(&b.cpu)
                .then(a.participants.cmp(&b.participants))
                .then(a.id.cmp(&b.id))
        }),
        _ => open.iter().min_by(|a, b| {
            a.participants
                .cmp(&b.participants)
                .then(a.cpu.total_cmp(&b.cpu))
                .then(a.id.cmp(&b.id))
        }),
    };
    match best {
        Some(node) => Some(node.id.clone()),
        None if here_open => Some(here.to_owned()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: usize, cpu: f32, draining: bool) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            url: format!("http://{id}"),
            rooms: 0,
            participants,
            cpu,
            draining,
            started_at: 0,
        }
    }

    #[test]
    fn the_least_loaded_open_node_gets_the_room() {
        let nodes = [
            node("a", 5, 10.0, false),
            node("b", 1, 90.0, false),
            node("c", 0, 0.0, true),
        ];
        let by_people = choose(PlacementPolicy::Participants, "a", false, &nodes);
        assert_eq!(by_people.as_deref(), Some("b"));
        let by_cpu = choose(PlacementPolicy::Cpu, "a", false, &nodes);
        assert_eq!(by_cpu.as_deref(), Some("a"));
        let local = choose(PlacementPolicy::Local, "a", false, &nodes);
        assert_eq!(local.as_deref(), Some("a"));
    }

    #[test]
    fn a_draining_node_takes_no_new_room() {
        let nodes = [node("a", 0, 0.0, true), node("b", 9, 50.0, false)];
        assert_eq!(
            choose(PlacementPolicy::Local, "a", true, &nodes).as_deref(),
            Some("b")
        );
        assert_eq!(
            choose(PlacementPolicy::Participants, "a", true, &nodes[..1]),
            None
        );
        // Before its own registration is visible, a node still counts itself.
        assert_eq!(
            choose(PlacementPolicy::Participants, "a", false, &[]).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn policies_parse_by_name() {
        assert_eq!("cpu".parse(), Ok(PlacementPolicy::Cpu));
        assert!("round-robin".parse::<PlacementPolicy>().is_err());
    }
}
