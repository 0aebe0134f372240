//! The node registry: this node's heartbeat, registration and room list, refreshed every
//! [`HEARTBEAT`](crate::HEARTBEAT) (sooner when rooms change), the claims on its rooms
//! re-asserted (a Redis that restarted empty learns them again), claims it no longer needs
//! released, and dead nodes swept. It never decides where a room goes ([`crate::placement`]).

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use protocol::admin::RoomDetail;
use redis::AsyncCommands;
use tracing::{debug, info, warn};

use crate::load::CpuMeter;
use crate::membership::{Cluster, HEARTBEAT, HEARTBEAT_TTL};
use crate::node_info::NodeInfo;
use crate::placement::Claimed;
use crate::scripts;

/// What this node serves now: every local room with its participants.
pub type LocalRooms = std::sync::Arc<dyn Fn() -> BoxFuture<'static, Vec<RoomDetail>> + Send + Sync>;

/// A claim this node holds with no local room is released once it is this old (a join that
/// claimed a room has opened it long before).
const UNUSED_CLAIM: Duration = Duration::from_secs(10);
/// After a wake-up, wait this long for more changes before refreshing.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Keeps this node registered until the cluster's cancel token fires, then deregisters it.
pub async fn run(cluster: Cluster, local: LocalRooms) {
    let mut meter = CpuMeter::new();
    let cancel = cluster.cancel().clone();
    loop {
        let rooms = local().await;
        beat(&cluster, &rooms, meter.sample()).await;
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = cluster.refresh_notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = cancel.cancelled() => break,
        }
    }
    leave(&cluster).await;
}

/// One refresh: heartbeat, registration, rooms, claims, sweep, view.
async fn beat(cluster: &Cluster, rooms: &[RoomDetail], cpu: f32) {
    let info = NodeInfo {
        id: cluster.node_id().to_owned(),
        url: cluster.url().to_owned(),
        rooms: rooms.len(),
        participants: rooms.iter().map(|r| r.participants.len()).sum(),
        cpu,
        draining: cluster.draining(),
        started_at: cluster.started_at(),
    };
    let result = register(cluster, &info, rooms).await;
    cluster.note(&result);
    if result.is_err() {
        return;
    }
    let local: HashSet<&str> = rooms.iter().map(|r| r.summary.name.as_str()).collect();
    for room in &local {
        match cluster.claim_for(room, cluster.node_id()).await {
            Ok(Claimed::Us) => {}
            Ok(Claimed::Other(owner)) => warn!(
                room,
                owner, "this node serves a room another live node owns (Redis lost its claims?)"
            ),
            Err(e) => debug!(error = %e, "re-asserting a claim failed"),
        }
    }
    release_unused(cluster, &local).await;
    sweep(cluster).await;
    match cluster.live_nodes().await {
        Ok(nodes) => cluster.set_view(nodes),
        Err(e) => debug!(error = %e, "reading the node list failed"),
    }
}

/// Writes the heartbeat, the registration and the room list, all with the heartbeat's TTL.
async fn register(
    cluster: &Cluster,
    info: &NodeInfo,
    rooms: &[RoomDetail],
) -> Result<(), redis::RedisError> {
    let keys = cluster.keys();
    let ttl = HEARTBEAT_TTL.as_millis() as u64;
    let node_json = serde_json::to_string(info).unwrap_or_default();
    let rooms_json = serde_json::to_string(rooms).unwrap_or_default();
    let mut conn = cluster.redis();
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(keys.alive(&info.id))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("SET")
        .arg(keys.node(&info.id))
        .arg(node_json)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("SET")
        .arg(keys.rooms_of(&info.id))
        .arg(rooms_json)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("SADD")
        .arg(keys.nodes())
        .arg(&info.id)
        .ignore()
        .query_async::<()>(&mut conn)
        .await
}

/// Releases claims this node holds but serves no room for (the room closed), unless the claim
/// is fresh (its join is still setting the room up).
async fn release_unused(cluster: &Cluster, local: &HashSet<&str>) {
    let mut conn = cluster.redis();
    let claims: Vec<String> = match conn
        .smembers(cluster.keys().claims_of(cluster.node_id()))
        .await
    {
        Ok(c) => c,
        Err(_) => return,
    };
    for room in claims {
        if local.contains(room.as_str()) || cluster.claimed_within(&room, UNUSED_CLAIM) {
            continue;
        }
        if let Err(e) = cluster.release(&room).await {
            debug!(error = %e, room, "releasing a claim failed");
        }
    }
}

/// Removes every trace of nodes whose heartbeat is gone: their rooms are free for the next
/// join, and listings no longer show them.
async fn sweep(cluster: &Cluster) {
    let keys = cluster.keys();
    let mut conn = cluster.redis();
    let Ok(nodes) = conn.smembers::<_, Vec<String>>(keys.nodes()).await else {
        return;
    };
    for node in nodes {
        let alive: bool = conn.exists(keys.alive(&node)).await.unwrap_or(true);
        if alive {
            continue;
        }
        let freed: Result<i64, _> = redis::Script::new(scripts::SWEEP)
            .arg(keys.prefix())
            .arg(&node)
            .invoke_async(&mut conn)
            .await;
        if let Ok(freed) = freed
            && freed >= 0
        {
            info!(
                node,
                rooms = freed,
                "swept a dead node: its rooms go to the next join"
            );
        }
    }
}

/// Deregisters this node on shutdown, freeing its rooms at once.
async fn leave(cluster: &Cluster) {
    let keys = cluster.keys();
    let mut conn = cluster.redis();
    let node = cluster.node_id();
    let gone = async {
        conn.del::<_, ()>(keys.alive(node)).await?;
        redis::Script::new(scripts::SWEEP)
            .arg(keys.prefix())
            .arg(node)
            .invoke_async::<i64>(&mut conn)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(2), gone).await {
        Ok(Ok(_)) => info!("left the cluster"),
        _ => warn!("could not deregister from Redis; other nodes sweep this node within seconds"),
    }
}
