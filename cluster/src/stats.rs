//! Periodic `stats` across the cluster: a node whose event-stream readers want stats says so in
//! Redis (a flag with a short TTL), every node then takes its rooms' stats, and each node's
//! stats go out on a Redis pub/sub channel to the other nodes' readers. Stats never enter the
//! event stream, so they never push real events out of it, and no node's webhooks deliver
//! another node's stats. Best effort: a stats message lost while Redis is away is not resent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use sfu::events::{EventBus, StatsWanted};
use tokio::sync::broadcast;
use tracing::debug;

use crate::events::ClusterEvent;
use crate::membership::{Cluster, HEARTBEAT};

/// How long a node's wish for stats lasts unless renewed (it is renewed every heartbeat).
const WISH_TTL: Duration = Duration::from_secs(5);
/// A subscription that heard nothing for this long is opened anew (a silent, broken connection
/// would otherwise go unnoticed).
const QUIET: Duration = Duration::from_secs(10);

/// Whether any node's readers want stats, as last read (shared by the tasks of one node).
#[derive(Debug, Clone, Default)]
pub struct StatsWish(Arc<AtomicBool>);

impl StatsWish {
    /// Whether some node of the cluster wants stats now.
    pub fn wanted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StatsMessage {
    node: String,
    room: String,
    data: String,
}

impl Cluster {
    /// Every heartbeat: says in Redis whether this node's readers want stats, and reads whether
    /// any node's do, into `wish`.
    pub async fn share_stats_wish(self, bus: EventBus, wish: StatsWish) {
        let cancel = self.cancel().clone();
        let flag = format!("{}stats-wanted", self.keys().prefix());
        loop {
            let mut conn = self.redis();
            if bus.stats_wanted() != StatsWanted::None {
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(&flag)
                    .arg(self.node_id())
                    .arg("PX")
                    .arg(WISH_TTL.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
            }
            let anywhere: Result<bool, _> =
                redis::cmd("EXISTS").arg(&flag).query_async(&mut conn).await;
            self.note(&anywhere);
            wish.0.store(anywhere.unwrap_or(false), Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Publishes this node's `stats` events on the cluster's channel.
    pub async fn publish_stats(self, bus: EventBus) {
        let (_, mut live) = bus.subscribe(Some(u64::MAX));
        let channel = format!("{}stats", self.keys().prefix());
        let cancel = self.cancel().clone();
        loop {
            let event = tokio::select! {
                event = live.recv() => event,
                _ = cancel.cancelled() => return,
            };
            let event = match event {
                Ok(event) if event.kind == "stats" => event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let message = StatsMessage {
                node: self.node_id().to_owned(),
                room: event.room.clone(),
                data: event.data.to_string(),
            };
            let Ok(text) = serde_json::to_string(&message) else {
                continue;
            };
            let mut conn = self.redis();
            let _: Result<(), _> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(text)
                .query_async(&mut conn)
                .await;
        }
    }

    /// Passes the other nodes' `stats` from the cluster's channel to `sender` (without an id),
    /// subscribing again after any error or a long silence.
    pub async fn receive_stats(self, sender: broadcast::Sender<Arc<ClusterEvent>>) {
        let channel = format!("{}stats", self.keys().prefix());
        let cancel = self.cancel().clone();
        while !cancel.is_cancelled() {
            let mut pubsub = match self.client().get_async_pubsub().await {
                Ok(p) => p,
                Err(e) => {
                    debug!(error = %e, "stats channel: cannot connect; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = cancel.cancelled() => return,
                    }
                }
            };
            if pubsub.subscribe(&channel).await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    m = tokio::time::timeout(QUIET, messages.next()) => m,
                    _ = cancel.cancelled() => return,
                };
                let Ok(Some(message)) = message else {
                    break; // silent for long, or the connection ended: subscribe again
                };
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                let Ok(stats) = serde_json::from_str::<StatsMessage>(&text) else {
                    continue;
                };
                if stats.node == self.node_id() {
                    continue;
                }
                let _ = sender.send(Arc::new(ClusterEvent {
                    id: String::new(),
                    node: stats.node,
                    kind: "stats".into(),
                    room: stats.room,
                    data: stats.data,
                }));
            }
        }
    }
}
