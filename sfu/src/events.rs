//! The admin event stream's source: rooms report what happens in them (created, closed,
//! participants joining and leaving, tracks published, muted, unpublished, periodic stats),
//! each event gets the next id, and a bounded history lets a reader that reconnects with the
//! last id it saw catch up. Control plane only: nothing here runs per packet. Emitting never waits
//! for a reader: one that falls behind lags on its own.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::broadcast;

/// Events kept for readers that reconnect.
pub const HISTORY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEvent {
    /// Increasing from 1.
    pub id: u64,
    /// `room_created`, `participant_joined`, `stats`, ...
    pub kind: &'static str,
    pub room: String,
    /// The event's JSON body (with `room` and `at` included).
    pub data: Value,
}

#[derive(Debug)]
struct History {
    next_id: u64,
    events: VecDeque<Arc<RoomEvent>>,
}

/// Shared by every room; cloning is cheap.
#[derive(Debug, Clone)]
pub struct EventBus {
    history: Arc<Mutex<History>>,
    live: broadcast::Sender<Arc<RoomEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(HISTORY);
        Self {
            history: Arc::new(Mutex::new(History {
                next_id: 1,
                events: VecDeque::with_capacity(HISTORY),
            })),
            live,
        }
    }

    /// Records an event; `fields` (a JSON object) gets `room` and `at` added.
    pub fn emit(&self, kind: &'static str, room: &str, fields: Value) {
        let mut data = match fields {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        data.insert("room".into(), Value::from(room));
        data.insert(
            "at".into(),
            Value::from(protocol::admin::rfc3339(crate::clock::unix_now())),
        );
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let event = Arc::new(RoomEvent {
            id: history.next_id,
            kind,
            room: room.to_owned(),
            data: Value::Object(data),
        });
        history.next_id += 1;
        if history.events.len() == HISTORY {
            history.events.pop_front();
        }
        history.events.push_back(Arc::clone(&event));
        // Sent under the lock, so live readers see ids in order after the history.
        let _ = self.live.send(event);
    }

    /// Whether anyone reads the live stream now.
    pub fn has_listeners(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// The events after `last_id` still in the history (all of it for `None`), and a receiver
    /// for what follows, with no gap and no overlap between the two.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<RoomEvent>>, broadcast::Receiver<Arc<RoomEvent>>) {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = self.live.subscribe();
        let missed = history
            .events
            .iter()
            .filter(|e| last_id.is_none_or(|last| e.id > last))
            .cloned()
            .collect();
        (missed, receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn replays_what_was_missed_then_goes_live() {
        let bus = EventBus::new();
        bus.emit("room_created", "a", json!({}));
        bus.emit("participant_joined", "a", json!({"identity": "x"}));
        let (missed, mut live) = bus.subscribe(Some(1));
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].id, 2);
        assert_eq!(missed[0].data["identity"], "x");
        assert_eq!(missed[0].data["room"], "a");
        bus.emit("participant_left", "a", json!({"identity": "x"}));
        let next = live.recv().await.unwrap();
        assert_eq!((next.id, next.kind), (3, "participant_left"));
    }

    #[test]
    fn history_is_bounded() {
        let bus = EventBus::new();
        for _ in 0..HISTORY + 10 {
            bus.emit("stats", "a", json!({}));
        }
        let (all, _) = bus.subscribe(None);
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all[0].id, 11);
    }
}
