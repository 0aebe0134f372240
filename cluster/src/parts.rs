//! Rooms that span nodes: the nodes serving parts of a room besides its owner. A node is
//! listed when a full node sends a join its way, and stays listed while it serves the room (its
//! heartbeat renews the entry, `scripts::REASSERT`); the entry expires otherwise. Where a join
//! goes when the room's node is full is chosen here. It never touches a room: signaling asks,
//! then tells the room which nodes to link to.

use std::collections::HashMap;

use crate::error::ClusterError;
use crate::membership::Cluster;
use crate::node_info::NodeInfo;
use crate::placement::REDIS_WAIT;
use crate::scripts;

impl Cluster {
    /// The live nodes serving parts of `room` (not its owner), read now.
    pub async fn parts(&self, room: &str) -> Result<Vec<String>, ClusterError> {
        let work = async {
            let parts: Result<Vec<String>, _> = redis::Script::new(scripts::PARTS)
                .key(self.keys().parts(room))
                .invoke_async(&mut self.redis())
                .await;
            self.note(&parts);
            parts.map_err(ClusterError::redis)
        };
        tokio::time::timeout(REDIS_WAIT, work)
            .await
            .unwrap_or_else(|_| Err(ClusterError::Redis("no answer in time".into())))
    }

    /// Lists `node` as serving a part of `room` (its join is on its way there).
    pub async fn add_part(&self, room: &str, node: &str) -> Result<(), ClusterError> {
        let added: Result<i64, _> = redis::Script::new(scripts::ADD_PART)
            .key(self.keys().parts(room))
            .arg(node)
            .arg(scripts::PART_TTL_MS)
            .invoke_async(&mut self.redis())
            .await;
        self.note(&added);
        added.map(|_| ()).map_err(ClusterError::redis)
    }

    /// The other nodes serving `room` (its owner and its parts), as the room must link to
    /// them; empty when the room lives on this node alone.
    pub async fn span_peers(&self, room: &str) -> Result<Vec<NodeInfo>, ClusterError> {
        let parts = self.parts(room).await?;
        let here = self.node_id();
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let owner = self.owner(room).await?;
        let nodes = self.live_nodes().await?;
        Ok(nodes
            .into_iter()
            .filter(|n| n.id != here)
            .filter(|n| parts.contains(&n.id) || owner.as_ref().is_some_and(|o| o.id == n.id))
            .collect())
    }

    /// Where a join goes when this node serves as many of `room`'s participants as it may
    /// (`limit`): a node already serving the room with room to spare (as the nodes last
    /// reported), else a live node not serving it (fewest participants first); that node is
    /// listed as a part of the room. `None`: no other node can take it.
    pub async fn span_to(
        &self,
        room: &str,
        limit: usize,
    ) -> Result<Option<NodeInfo>, ClusterError> {
        let here = self.node_id().to_owned();
        let reported = self.rooms().await?;
        let mut in_room: HashMap<String, usize> = HashMap::new();
        for node in &reported {
            if let Some(r) = node.rooms.iter().find(|r| r.summary.name == room) {
                in_room.insert(node.node.clone(), r.summary.participant_count);
            }
        }
        let parts = self.parts(room).await?;
        let owner = self.owner(room).await?.map(|o| o.id);
        let mut nodes: Vec<NodeInfo> = self
            .live_nodes()
            .await?
            .into_iter()
            .filter(|n| n.id != here && !n.draining)
            .filter(|n| in_room.get(&n.id).is_none_or(|count| *count < limit))
            .collect();
        let serving = |n: &NodeInfo| {
            parts.contains(&n.id)
                || owner.as_deref() == Some(n.id.as_str())
                || in_room.contains_key(&n.id)
        };
        nodes.sort_by_key(|n| {
            (
                !serving(n),
                in_room.get(&n.id).copied().unwrap_or(0),
                n.participants,
            )
        });
        let Some(node) = nodes.into_iter().next() else {
            return Ok(None);
        };
        if owner.as_deref() != Some(node.id.as_str()) {
            self.add_part(room, &node.id).await?;
        }
        Ok(Some(node))
    }

    /// Those of `rooms` that span nodes (some node serves a part), in one round trip.
    pub async fn spanning(&self, rooms: &[String]) -> Result<Vec<String>, ClusterError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.zcard(self.keys().parts(room));
        }
        let counts: Result<Vec<usize>, _> = pipe.query_async(&mut self.redis()).await;
        self.note(&counts);
        let counts = counts.map_err(ClusterError::redis)?;
        Ok(rooms
            .iter()
            .zip(counts)
            .filter(|(_, parts)| *parts > 0)
            .map(|(room, _)| room.clone())
            .collect())
    }

    /// Whether this node is listed as serving a part of `room`.
    pub async fn serves_part(&self, room: &str) -> Result<bool, ClusterError> {
        Ok(self.parts(room).await?.iter().any(|p| p == self.node_id()))
    }
}
