//! One participant's queue of signaling events towards its connection, where other participants'
//! state changes (a track muted or unmuted) are coalesced: per (source, track kind) at most one
//! such message waits in the queue and one more here, the newest state, so however fast a source
//! toggles it can never fill this queue. It never blocks and never decides about removal.

use std::collections::HashMap;

use protocol::{ServerMessage, TrackKind};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::session::SessionEvent;

/// Whose state a coalesced message is about: the source participant (its room key) and the
/// kind of its track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StateKey {
    pub source: u64,
    pub kind: TrackKind,
}

/// A plain event did not fit: the queue is full (the connection is not keeping up) or its
/// reader is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

/// The sending end of one participant's event queue, with the coalescing of state changes.
pub(crate) struct SignalQueue {
    tx: mpsc::Sender<SessionEvent>,
    /// Events ever put into the queue; with the queue's length it tells which were read.
    pushed: u64,
    /// Per key: the position (in `pushed` terms) of its last message put into the queue.
    queued_at: HashMap<StateKey, u64>,
    /// Per key: the newest state, waiting until its previous message has been read.
    waiting: HashMap<StateKey, ServerMessage>,
}

impl SignalQueue {
    pub fn new(tx: mpsc::Sender<SessionEvent>) -> Self {
        SignalQueue {
            tx,
            pushed: 0,
            queued_at: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    /// Events put into the queue that its reader has taken out.
    fn read(&self) -> u64 {
        let queued = self.tx.max_capacity() - self.tx.capacity();
        self.pushed.saturating_sub(queued as u64)
    }

    /// Queues an event as it is. A state change still waiting here that `event` makes stale
    /// (a newer mute state of the same track, its unpublication, its owner leaving) is dropped,
    /// so the last word on a track is always the newest.
    pub fn push(&mut self, event: SessionEvent) -> Result<(), QueueFull> {
        if !self.waiting.is_empty() {
            if let SessionEvent::Message(message) = &event {
                self.forget_superseded(message);
            }
            // What waits goes first where it can, to keep the order.
            self.flush();
        }
        self.tx.try_send(event).map_err(|_| QueueFull)?;
        self.pushed += 1;
        Ok(())
    }

    /// Queues `message`, a state change of `key`: at once if the queue holds no earlier message
    /// of `key` (and has room), otherwise it waits here, replacing any older state that waited.
    /// Never fails: the worst case is that the newest state waits for [`SignalQueue::flush`].
    pub fn push_state(&mut self, key: StateKey, message: ServerMessage) {
        self.waiting.insert(key, message);
        self.flush_key(key, self.read());
    }

    /// Puts every waiting state whose earlier message has been read into the queue, while it
    /// has room.
    pub fn flush(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let read = self.read();
        let keys: Vec<StateKey> = self.waiting.keys().copied().collect();
        for key in keys {
            self.flush_key(key, read);
        }
    }

    fn flush_key(&mut self, key: StateKey, read: u64) {
        if self.queued_at.get(&key).is_some_and(|at| *at > read) {
            return; // Its previous message is still in the queue.
        }
        let Some(message) = self.waiting.remove(&key) else {
            return;
        };
        match self.tx.try_send(SessionEvent::Message(message)) {
            Ok(()) => {
                self.pushed += 1;
                self.queued_at.insert(key, self.pushed);
            }
            Err(TrySendError::Full(SessionEvent::Message(message))) => {
                self.waiting.insert(key, message);
            }
            // The reader is gone: nobody to tell.
            Err(_) => {}
        }
    }

    /// Whether state changes wait for room in the queue.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    fn forget_superseded(&mut self, message: &ServerMessage) {
        let (gone_participant, gone_track) = match message {
            ServerMessage::TrackMuted {
                participant_id,
                track_id,
                ..
            }
            | ServerMessage::TrackUnpublished {
                participant_id,
                track_id,
            } => (participant_id, Some(track_id)),
            ServerMessage::ParticipantLeft { participant_id, .. } => (participant_id, None),
            _ => return,
        };
        self.waiting.retain(|_, waiting| match waiting {
            ServerMessage::TrackMuted {
                participant_id,
                track_id,
                ..
            } => {
                participant_id != gone_participant
                    || gone_track.is_some_and(|gone| gone != track_id)
            }
            _ => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: usize = 16;

    fn muted(source: u64, kind: TrackKind, muted: bool) -> ServerMessage {
        ServerMessage::TrackMuted {
            participant_id: format!("PA_{source}"),
            track_id: format!("TR_{source}_{kind}"),
            muted,
        }
    }

    fn key(source: u64, kind: TrackKind) -> StateKey {
        StateKey { source, kind }
    }

    fn drain(rx: &mut mpsc::Receiver<SessionEvent>) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Ok(SessionEvent::Message(m)) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    /// The mute state the reader believes each track has, after reading `messages` in order.
    fn believed(messages: &[ServerMessage], into: &mut HashMap<String, bool>) {
        for m in messages {
            if let ServerMessage::TrackMuted {
                track_id, muted, ..
            } = m
            {
                into.insert(track_id.clone(), *muted);
            }
        }
    }

    #[test]
    fn a_burst_of_toggles_never_fills_the_queue_and_the_last_state_arrives() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let mut queue = SignalQueue::new(tx);
        let sources = [1u64, 2, 3];
        let kinds = [TrackKind::Audio, TrackKind::Video];
        let mut last = HashMap::new();
        // 10,000 toggles while the reader reads nothing.
        for i in 0..10_000u32 {
            let source = sources[i as usize % 3];
            let kind = kinds[(i as usize / 3) % 2];
            let state = i % 7 < 3;
            last.insert(format!("TR_{source}_{kind}"), state);
            queue.push_state(key(source, kind), muted(source, kind, state));
        }
        // One message per key in the queue, the rest of it free for everything else.
        let keys = sources.len() * kinds.len();
        assert_eq!(queue.tx.max_capacity() - queue.tx.capacity(), keys);
        for n in 0..QUEUE - keys {
            assert_eq!(
                queue.push(SessionEvent::Message(ServerMessage::Pong { ts: n as u64 })),
                Ok(()),
                "the queue filled up after {n} plain messages"
            );
        }
        // The reader catches up; what waited follows, and it ends on the last state.
        let mut seen = HashMap::new();
        let first = drain(&mut rx);
        believed(&first, &mut seen);
        queue.flush();
        let second = drain(&mut rx);
        assert_eq!(second.len(), keys, "one newest state per key: {second:?}");
        believed(&second, &mut seen);
        assert_eq!(seen, last);
        queue.flush();
        assert!(drain(&mut rx).is_empty());
        assert!(!queue.has_waiting());
    }

    #[test]
    fn a_reader_that_keeps_up_gets_every_change_in_order() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let mut queue = SignalQueue::new(tx);
        let mut got = Vec::new();
        for i in 0..100 {
            queue.push_state(
                key(1, TrackKind::Audio),
                muted(1, TrackKind::Audio, i % 2 == 0),
            );
            got.extend(drain(&mut rx));
        }
        assert_eq!(got.len(), 100);
        assert!(got.iter().enumerate().all(|(i, m)| matches!(
            m,
            ServerMessage::TrackMuted { muted, .. } if *muted == (i % 2 == 0)
        )));
    }

    #[test]
    fn a_full_queue_keeps_the_newest_state_waiting_instead_of_failing() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut queue = SignalQueue::new(tx);
        for ts in 0..4 {
            assert!(
                queue
                    .push(SessionEvent::Message(ServerMessage::Pong { ts }))
                    .is_ok()
            );
        }
        assert_eq!(
            queue.push(SessionEvent::Message(ServerMessage::Pong { ts: 9 })),
            Err(QueueFull)
        );
        for state in [true, false, true] {
            queue.push_state(key(5, TrackKind::Video), muted(5, TrackKind::Video, state));
        }
        assert!(queue.has_waiting());
        assert_eq!(drain(&mut rx).len(), 4);
        queue.flush();
        assert_eq!(drain(&mut rx), [muted(5, TrackKind::Video, true)]);
    }

    #[test]
    fn news_about_a_track_drops_its_stale_waiting_state() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let mut queue = SignalQueue::new(tx);
        let audio = key(1, TrackKind::Audio);
        let video = key(1, TrackKind::Video);
        queue.push_state(audio, muted(1, TrackKind::Audio, true));
        queue.push_state(audio, muted(1, TrackKind::Audio, false)); // waits
        queue.push_state(video, muted(1, TrackKind::Video, true));
        queue.push_state(video, muted(1, TrackKind::Video, false)); // waits
        // An admin's mute of the audio track is newer than the waiting state: it wins.
        let by_admin = muted(1, TrackKind::Audio, true);
        queue.push(SessionEvent::Message(by_admin.clone())).unwrap();
        // The video track is unpublished: its waiting state is about a track that is gone.
        let unpublished = ServerMessage::TrackUnpublished {
            participant_id: "PA_1".into(),
            track_id: format!("TR_1_{}", TrackKind::Video),
        };
        queue
            .push(SessionEvent::Message(unpublished.clone()))
            .unwrap();
        assert!(!queue.has_waiting());
        assert_eq!(
            drain(&mut rx),
            [
                muted(1, TrackKind::Audio, true),
                muted(1, TrackKind::Video, true),
                by_admin,
                unpublished
            ]
        );
        // A participant that leaves takes its waiting states along.
        queue.push_state(audio, muted(1, TrackKind::Audio, false));
        queue.push_state(audio, muted(1, TrackKind::Audio, true)); // waits
        queue.push_state(key(2, TrackKind::Audio), muted(2, TrackKind::Audio, true));
        queue.push_state(key(2, TrackKind::Audio), muted(2, TrackKind::Audio, false)); // waits
        queue
            .push(SessionEvent::Message(ServerMessage::ParticipantLeft {
                participant_id: "PA_1".into(),
                identity: "one".into(),
                reason: protocol::LeaveReason::Left,
            }))
            .unwrap();
        assert!(queue.has_waiting(), "participant 2's state still waits");
        drain(&mut rx);
        queue.flush();
        assert_eq!(drain(&mut rx), [muted(2, TrackKind::Audio, false)]);
    }
}
