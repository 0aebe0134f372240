//! The node registry: this node's heartbeat (its own task, every [`HEARTBEAT`], never held up
//! by anything else), its registration and room list (refreshed every heartbeat and soon after
//! rooms change), the claims on its rooms re-asserted (a Redis that restarted empty learns them
//! again), claims it no longer uses released, dead nodes swept. When another live node holds
//! the claim of a room served here (after a Redis outage, say), this node is listed as serving a
//! part of the room and the two link up: a room never stays split, and nobody is moved.
//! It never decides where a new room goes ([`crate::placement`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use protocol::admin::RoomDetail;
use redis::AsyncCommands;
use sfu::Sfu;
use tracing::{debug, info, warn};

use crate::load::CpuMeter;
use crate::membership::{Cluster, HEARTBEAT, HEARTBEAT_TTL};
use crate::node_info::NodeInfo;
use crate::placement::UNUSED_CLAIM;
use crate::scripts;

/// Every local room with its participants, for the cluster's room listings.
pub type LocalRooms = Arc<dyn Fn() -> BoxFuture<'static, Vec<RoomDetail>> + Send + Sync>;

/// After a wake-up, wait this long for more changes before refreshing.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Keeps this node registered until the cluster's cancel token fires, then deregisters it.
/// `sfu` says which rooms are served here; `snapshots` describes them for listings.
pub async fn run(cluster: Cluster, sfu: Sfu, snapshots: LocalRooms) {
    let heartbeat = tokio::spawn(heartbeat(cluster.clone()));
    let mut meter = CpuMeter::new();
    let cancel = cluster.cancel().clone();
    let mut was_local = HashSet::new();
    loop {
        let rooms = snapshots().await;
        cluster.set_load(
            rooms.len(),
            rooms.iter().map(|r| r.participants.len()).sum(),
            meter.sample(),
        );
        let listed = publish_rooms(&cluster, &rooms).await;
        cluster.note(&listed);
        if listed.is_ok() {
            let local: HashSet<String> = sfu.room_names().iter().map(|r| r.to_string()).collect();
            reassert(&cluster, &local).await;
            release_unused(&cluster, &local, &was_local).await;
            was_local = local;
            sweep(&cluster).await;
            match cluster.live_nodes().await {
                Ok(nodes) => cluster.set_view(nodes),
                Err(e) => debug!(error = %e, "reading the node list failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = cluster.refresh_notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = cancel.cancelled() => break,
        }
    }
    let _ = heartbeat.await;
    leave(&cluster).await;
}

/// This node as the cluster should see it now.
fn info(cluster: &Cluster) -> NodeInfo {
    let (rooms, participants, cpu) = cluster.load();
    NodeInfo {
        id: cluster.node_id().to_owned(),
        url: cluster.url().to_owned(),
        rooms,
        participants,
        cpu,
        draining: cluster.draining(),
        started_at: cluster.started_at(),
    }
}

/// The heartbeat and registration, every [`HEARTBEAT`] until cancelled, whatever the rest of
/// the registry is doing.
async fn heartbeat(cluster: Cluster) {
    let cancel = cluster.cancel().clone();
    loop {
        // A call that waits on a reconnecting connection counts as failed after a heartbeat.
        match tokio::time::timeout(HEARTBEAT, register(&cluster, &info(&cluster))).await {
            Ok(beat) => cluster.note(&beat),
            Err(_) => cluster.note_up(false, "no answer within a heartbeat"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Writes the heartbeat and the registration, with the heartbeat's TTL.
async fn register(cluster: &Cluster, info: &NodeInfo) -> Result<(), redis::RedisError> {
    let keys = cluster.keys();
    let mut pipe = redis::pipe();
    pipe.atomic();
    expiring(&mut pipe, keys.alive(&info.id), "1".into());
    expiring(&mut pipe, keys.node(&info.id), json(info));
    pipe.cmd("SADD").arg(keys.nodes()).arg(&info.id).ignore();
    pipe.query_async(&mut cluster.redis()).await
}

/// Writes the room list (and the registration, whose counts it updates), with the TTL.
async fn publish_rooms(cluster: &Cluster, rooms: &[RoomDetail]) -> Result<(), redis::RedisError> {
    let keys = cluster.keys();
    let info = info(cluster);
    let mut pipe = redis::pipe();
    pipe.atomic();
    expiring(&mut pipe, keys.rooms_of(&info.id), json(&rooms));
    expiring(&mut pipe, keys.node(&info.id), json(&info));
    pipe.query_async(&mut cluster.redis()).await
}

/// Adds `SET key value PX <heartbeat TTL>` to `pipe`.
fn expiring(pipe: &mut redis::Pipeline, key: String, value: String) {
    pipe.cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(HEARTBEAT_TTL.as_millis() as u64)
        .ignore();
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Re-asserts the claim of every room served here, in one call. A room another live node holds
/// is served here as a part of it (the script lists this node): the room spans both nodes, which
/// link up (signaling's `keep_linked`), and nobody is moved.
async fn reassert(cluster: &Cluster, local: &HashSet<String>) {
    if local.is_empty() {
        return;
    }
    let script = redis::Script::new(scripts::REASSERT);
    let mut call = script.arg(cluster.node_id());
    call.arg(cluster.keys().prefix());
    for room in local {
        call.arg(room);
    }
    let taken: Result<Vec<String>, _> = call.invoke_async(&mut cluster.redis()).await;
    cluster.note(&taken);
    let taken = match taken {
        Ok(taken) => taken,
        Err(e) => {
            debug!(error = %e, "re-asserting the claims failed");
            return;
        }
    };
    for pair in taken.chunks(2) {
        let [room, owner] = pair else { continue };
        warn!(
            room,
            owner,
            "another live node holds this room's claim; this node now serves a part of it and \
             links to that node"
        );
    }
}

/// Releases claims this node holds but serves no room for: at once for a room that closed here
/// since the last round, else once [`UNUSED_CLAIM`] old (the Lua script checks the age, so a
/// claim whose join is on its way stays).
async fn release_unused(cluster: &Cluster, local: &HashSet<String>, was_local: &HashSet<String>) {
    let mut conn = cluster.redis();
    let claims: Vec<String> = match conn
        .zrange(cluster.keys().claims_of(cluster.node_id()), 0, -1)
        .await
    {
        Ok(c) => c,
        Err(_) => return,
    };
    for room in claims.iter().filter(|r| !local.contains(*r)) {
        let least_age = if was_local.contains(room) {
            Duration::ZERO
        } else {
            UNUSED_CLAIM
        };
        if let Err(e) = cluster.release(room, least_age).await {
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
