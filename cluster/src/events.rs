//! The cluster's admin event stream: each node appends its rooms' events to one Redis stream,
//! and each node tails that stream for its `/api/events` readers. Stream entry ids are the
//! event ids, so `Last-Event-ID` resumes on any node. Events a node emits while Redis is away
//! wait in a bounded queue and go out when it is back. Periodic stats are not in the stream:
//! they stay with the node that takes them. It never blocks the rooms: emitting is the local
//! event bus's broadcast.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use sfu::events::EventBus;
use tokio::sync::{Notify, broadcast};
use tracing::{debug, warn};

use crate::error::ClusterError;
use crate::membership::Cluster;

/// Events kept in the stream (approximately: Redis trims in whole blocks).
pub const STREAM_LENGTH: usize = 10_000;
/// Events at most replayed to a reader that resumes.
pub const REPLAY: usize = 1024;
/// Events kept while Redis is away.
const PENDING: usize = 10_000;

/// One event of any node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEvent {
    /// The stream entry id (`<ms>-<seq>`), increasing.
    pub id: String,
    /// The node the event happened on.
    pub node: String,
    pub kind: String,
    pub room: String,
    /// The event's JSON body.
    pub data: String,
}

/// Orders stream ids (`<ms>-<seq>`); `None` for anything else.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// An event waiting to go into the stream.
#[derive(Debug, Clone)]
struct Pending {
    kind: String,
    room: String,
    data: String,
}

/// Events sent to Redis in one pipeline.
const BATCH: usize = 200;

/// Moves this node's events (but stats) from the local bus into `queue`, never waiting.
async fn read_bus(
    cluster: Cluster,
    bus: EventBus,
    queue: Arc<Mutex<VecDeque<Pending>>>,
    ready: Arc<Notify>,
) {
    let (_, mut live) = bus.subscribe(Some(u64::MAX));
    loop {
        match live.recv().await {
            Ok(event) if event.kind != "stats" => {
                if changes_rooms(event.kind) {
                    cluster.refresh_soon();
                }
                let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.len() == PENDING {
                    queue.pop_front();
                }
                queue.push_back(Pending {
                    kind: event.kind.to_owned(),
                    room: event.room.clone(),
                    data: event.data.to_string(),
                });
                drop(queue);
                ready.notify_one();
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "the cluster event reader fell behind the rooms");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The kinds that change what a node reports in the room directory.
fn changes_rooms(kind: &str) -> bool {
    matches!(
        kind,
        "room_created" | "room_closed" | "participant_joined" | "participant_left"
    )
}

impl Cluster {
    /// Appends every event of this node's rooms (but stats) to the stream until cancelled. The
    /// local bus is read by a task that never waits for Redis; events wait in a queue of
    /// [`PENDING`] (the oldest dropped beyond) and go out in pipelined batches.
    pub async fn publish_events(self, bus: EventBus) {
        let queue: Arc<Mutex<VecDeque<Pending>>> = Arc::default();
        let ready = Arc::new(Notify::new());
        let reader = tokio::spawn(read_bus(
            self.clone(),
            bus,
            Arc::clone(&queue),
            Arc::clone(&ready),
        ));
        let cancel = self.cancel().clone();
        loop {
            let batch: Vec<Pending> = {
                let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                queue.iter().take(BATCH).cloned().collect()
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = ready.notified() => continue,
                    _ = cancel.cancelled() => break,
                }
            }
            let mut pipe = redis::pipe();
            for event in &batch {
                pipe.cmd("XADD")
                    .arg(self.keys().events())
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(STREAM_LENGTH)
                    .arg("*")
                    .arg("node")
                    .arg(self.node_id())
                    .arg("kind")
                    .arg(&event.kind)
                    .arg("room")
                    .arg(&event.room)
                    .arg("data")
                    .arg(&event.data)
                    .ignore();
            }
            let mut conn = self.redis();
            let sent: Result<(), _> = pipe.query_async(&mut conn).await;
            self.note(&sent);
            if sent.is_ok() {
                let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                // The reader may have dropped the oldest meanwhile; these were at the front.
                for _ in 0..batch.len().min(queue.len()) {
                    queue.pop_front();
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = cancel.cancelled() => break,
                }
            }
        }
        reader.abort();
    }

    /// Tails the stream into `sender` until cancelled, on a connection of its own (a blocking
    /// read would hold up everything else on a shared one), reconnecting after errors.
    pub async fn tail_events(self, sender: broadcast::Sender<Arc<ClusterEvent>>) {
        let cancel = self.cancel().clone();
        let mut last: Option<String> = None;
        while !cancel.is_cancelled() {
            // Reads block for 2 s; an answer 3 s later than that means a dead connection.
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(3)))
                .set_response_timeout(Some(Duration::from_secs(5)));
            let conn = tokio::select! {
                c = self.client().get_multiplexed_async_connection_with_config(&config) => c,
                _ = cancel.cancelled() => return,
            };
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "event stream: cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if last.is_none() {
                last = match self.newest_id(&mut conn).await {
                    Ok(id) => Some(id),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
            }
            loop {
                let from = last.clone().unwrap_or_else(|| "0-0".into());
                let mut command = redis::cmd("XREAD");
                command
                    .arg("COUNT")
                    .arg(500)
                    .arg("BLOCK")
                    .arg(2000)
                    .arg("STREAMS")
                    .arg(self.keys().events())
                    .arg(&from);
                let read: Result<Option<StreamReadReply>, _> = tokio::select! {
                    r = command.query_async(&mut conn) => r,
                    _ = cancel.cancelled() => return,
                };
                match read {
                    Ok(Some(reply)) => {
                        for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                            let event = to_event(entry);
                            last = Some(event.id.clone());
                            let _ = sender.send(Arc::new(event));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        debug!(error = %e, "event stream: read failed; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
            }
        }
    }

    /// The id of the stream's newest entry, or `0-0`.
    async fn newest_id(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> Result<String, redis::RedisError> {
        let newest: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys().events())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        Ok(newest
            .ids
            .into_iter()
            .next()
            .map(|e| e.id)
            .unwrap_or_else(|| "0-0".into()))
    }

    /// The events after `last_id` still in the stream (at most [`REPLAY`], the oldest first).
    pub async fn events_since(&self, last_id: &str) -> Result<Vec<ClusterEvent>, ClusterError> {
        if parse_id(last_id).is_none() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis();
        let range: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys().events())
            .arg(format!("({last_id}"))
            .arg("+")
            .arg("COUNT")
            .arg(REPLAY)
            .query_async(&mut conn)
            .await
            .map_err(ClusterError::redis)?;
        Ok(range.ids.into_iter().map(to_event).collect())
    }
}

fn to_event(entry: StreamId) -> ClusterEvent {
    let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
    ClusterEvent {
        node: field("node"),
        kind: field("kind"),
        room: field("room"),
        data: field("data"),
        id: entry.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert!(parse_id("1700000000000-10") > parse_id("1700000000000-9"));
        assert!(parse_id("999-0") < parse_id("1000-0"));
        assert_eq!(parse_id("17"), None);
        assert_eq!(parse_id("a-b"), None);
    }
}
