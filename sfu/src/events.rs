//! The admin event stream's source: rooms report what happens in them (created, closed,
//! participants joining and leaving, tracks published, muted, unpublished), each event gets the
//! next id, and a bounded history lets a reader that reconnects with the last id it saw catch up.
//! Periodic snapshots (stats) go to live readers only, never into the history, and are wanted
//! only while someone holds a [`StatsInterest`]. Control plane only: nothing here runs per
//! packet. Emitting never waits for a reader: one that falls behind lags on its own.

use std::collections::{HashMap, VecDeque};
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

/// Who wants periodic stats: readers of every room, and readers of one room each.
#[derive(Debug, Default)]
struct Interest {
    all_rooms: usize,
    rooms: HashMap<String, usize>,
}

/// Which rooms' stats someone wants now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsWanted {
    /// Nobody listens: take no snapshot.
    None,
    /// Someone reads every room's.
    AllRooms,
    /// Only these rooms' (sorted).
    Rooms(Vec<String>),
}

impl StatsWanted {
    /// Whether `room`'s stats are wanted.
    pub fn includes(&self, room: &str) -> bool {
        match self {
            StatsWanted::None => false,
            StatsWanted::AllRooms => true,
            StatsWanted::Rooms(rooms) => rooms.iter().any(|r| r == room),
        }
    }
}

/// A reader's wish for periodic stats (every room's, or one room's), held for as long as it
/// reads; dropping it withdraws the wish.
#[derive(Debug)]
pub struct StatsInterest {
    interest: Arc<Mutex<Interest>>,
    room: Option<String>,
}

impl Drop for StatsInterest {
    fn drop(&mut self) {
        let mut interest = self.interest.lock().unwrap_or_else(PoisonError::into_inner);
        match &self.room {
            None => interest.all_rooms = interest.all_rooms.saturating_sub(1),
            Some(room) => {
                if let Some(count) = interest.rooms.get_mut(room) {
                    *count -= 1;
                    if *count == 0 {
                        interest.rooms.remove(room);
                    }
                }
            }
        }
    }
}

/// Shared by every room; cloning is cheap.
#[derive(Debug, Clone)]
pub struct EventBus {
    history: Arc<Mutex<History>>,
    live: broadcast::Sender<Arc<RoomEvent>>,
    stats_interest: Arc<Mutex<Interest>>,
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
            stats_interest: Arc::default(),
        }
    }

    /// Records an event; `fields` (a JSON object) gets `room` and `at` added.
    pub fn emit(&self, kind: &'static str, room: &str, fields: Value) {
        self.publish(kind, room, fields, true);
    }

    /// Sends a periodic snapshot (`stats`) to the live readers only: it takes the next id but is
    /// never kept in the history, so however many there are, they push no event out of it, and
    /// a reader that reconnects is not replayed stale ones.
    pub fn emit_live(&self, kind: &'static str, room: &str, fields: Value) {
        self.publish(kind, room, fields, false);
    }

    fn publish(&self, kind: &'static str, room: &str, fields: Value, keep: bool) {
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
        if keep {
            if history.events.len() == HISTORY {
                history.events.pop_front();
            }
            history.events.push_back(Arc::clone(&event));
        }
        // Sent under the lock, so live readers see ids in order after the history.
        let _ = self.live.send(event);
    }

    /// Whether anyone reads the live stream now (for any kind of event).
    pub fn has_listeners(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// Registers a wish for periodic stats of `room`, or of every room (`None`), until the
    /// returned guard is dropped.
    pub fn want_stats(&self, room: Option<&str>) -> StatsInterest {
        let mut interest = self
            .stats_interest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match room {
            None => interest.all_rooms += 1,
            Some(room) => *interest.rooms.entry(room.to_owned()).or_default() += 1,
        }
        StatsInterest {
            interest: Arc::clone(&self.stats_interest),
            room: room.map(str::to_owned),
        }
    }

    /// Which rooms' stats someone wants now.
    pub fn stats_wanted(&self) -> StatsWanted {
        let interest = self
            .stats_interest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if interest.all_rooms > 0 {
            return StatsWanted::AllRooms;
        }
        if interest.rooms.is_empty() {
            return StatsWanted::None;
        }
        let mut rooms: Vec<String> = interest.rooms.keys().cloned().collect();
        rooms.sort();
        StatsWanted::Rooms(rooms)
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
            bus.emit("track_muted", "a", json!({}));
        }
        let (all, _) = bus.subscribe(None);
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all[0].id, 11);
    }

    #[tokio::test]
    async fn snapshots_reach_live_readers_but_never_push_events_out_of_the_history() {
        let bus = EventBus::new();
        bus.emit("room_created", "a", json!({}));
        let (_, mut live) = bus.subscribe(None);
        bus.emit_live("stats", "a", json!({"bitrateIn": 1}));
        let snapshot = live.recv().await.unwrap();
        assert_eq!((snapshot.id, snapshot.kind), (2, "stats"));
        assert_eq!(snapshot.data["bitrateIn"], 1);
        // Three histories' worth of snapshots, then a real event.
        for _ in 0..3 * HISTORY {
            bus.emit_live("stats", "a", json!({"bitrateIn": 1}));
        }
        bus.emit("participant_joined", "a", json!({"identity": "x"}));
        // The history: both real events, no snapshot.
        let (kept, _) = bus.subscribe(None);
        let kinds: Vec<(u64, &str)> = kept.iter().map(|e| (e.id, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (1, "room_created"),
                (3 * HISTORY as u64 + 3, "participant_joined")
            ]
        );
        let (after_first, _) = bus.subscribe(Some(1));
        assert_eq!(after_first.len(), 1);
    }

    #[test]
    fn stats_are_wanted_only_while_someone_holds_an_interest() {
        let bus = EventBus::new();
        assert_eq!(bus.stats_wanted(), StatsWanted::None);
        // A live reader alone (webhooks without stats, the recorder) wants no stats.
        let (_, _reader) = bus.subscribe(None);
        assert_eq!(bus.stats_wanted(), StatsWanted::None);
        let b = bus.want_stats(Some("b"));
        let a = bus.want_stats(Some("a"));
        let a_again = bus.want_stats(Some("a"));
        assert_eq!(
            bus.stats_wanted(),
            StatsWanted::Rooms(vec!["a".into(), "b".into()])
        );
        assert!(bus.stats_wanted().includes("a") && !bus.stats_wanted().includes("c"));
        drop(b);
        drop(a);
        assert_eq!(bus.stats_wanted(), StatsWanted::Rooms(vec!["a".into()]));
        let everything = bus.want_stats(None);
        assert_eq!(bus.stats_wanted(), StatsWanted::AllRooms);
        assert!(bus.stats_wanted().includes("c"));
        drop(everything);
        drop(a_again);
        assert_eq!(bus.stats_wanted(), StatsWanted::None);
    }
}
