//! The cluster's room directory: every live node's rooms as that node last reported them (with
//! its heartbeat, and sooner when rooms change), for admin listings on any node. A dead node's
//! rooms vanish with its heartbeat. Read-only: it never asks a room anything.

use protocol::admin::RoomDetail;

use crate::error::ClusterError;
use crate::membership::Cluster;

/// One node's rooms.
#[derive(Debug, Clone)]
pub struct NodeRooms {
    pub node: String,
    pub rooms: Vec<RoomDetail>,
}

impl Cluster {
    /// Every live node's rooms, read now.
    pub async fn rooms(&self) -> Result<Vec<NodeRooms>, ClusterError> {
        let nodes = self.live_nodes().await?;
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys();
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.get(keys.rooms_of(&node.id));
        }
        let mut conn = self.redis();
        let lists: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(ClusterError::redis)?;
        Ok(nodes
            .into_iter()
            .zip(lists)
            .map(|(node, list)| NodeRooms {
                node: node.id,
                rooms: list
                    .and_then(|l| serde_json::from_str(&l).ok())
                    .unwrap_or_default(),
            })
            .collect())
    }
}
