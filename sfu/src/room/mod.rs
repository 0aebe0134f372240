//! One room: its participants and its router, owned by one task (`task.rs`). The room only
//! dispatches: each input goes to the part it concerns, in the file named after it:
//! membership (join, leave, reap), signals (offers, answers, candidates, mute), connections
//! (datagrams and timers through the sans-IO peer connections), tracks (publish, subscribe,
//! forward), admin requests. Routing and forwarding live in the router, subscriptions and
//! publications in their own types, the data relay in `data_relay.rs`.
//!
//! Never panics on input: every failure from the engine becomes a log line, an error message to
//! the client that caused it, or the removal of that one participant. Never blocks.

mod admin;
mod allocation;
mod connections;
mod membership;
mod probing;
mod signals;
mod spanning;
pub(crate) mod task;
mod tracks;
mod viewers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use protocol::{CloseReason, LeaveReason, ParticipantInfo, ServerMessage, TrackInfo};
use tokio::sync::mpsc;

use crate::config::SfuConfig;
use crate::counters::{LocalCounts, MediaCounters};
use crate::data_relay::DataRelay;
use crate::events::EventBus;
use crate::ids::{RoomId, TrackId};
use crate::io::{Datagram, Outgoing, PcKey, RoomInput};
use crate::participant::kind_index;
use crate::router::{Participants, Router, Wiring};
use crate::session::SignalCommand;
use crate::socket::MediaSockets;
use crate::span::Span;
use crate::speakers::{SpeakerParams, Speakers};

/// Datagrams queued for a room before the socket task starts dropping them.
const MEDIA_QUEUE: usize = 4096;
/// Signaling commands queued for a room before senders wait.
const SIGNAL_QUEUE: usize = 256;
/// How often each receiver's layers are allocated from its estimate.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(250);
/// How often speakers are decided.
const SPEAKERS_INTERVAL: Duration = Duration::from_millis(50);

pub(crate) struct Room {
    id: RoomId,
    config: SfuConfig,
    sockets: MediaSockets,
    /// Datagrams produced while handling the current input, sent when it is done.
    outgoing: Outgoing,
    /// The largest number of bytes seen queued for one recipient's data channel (a gauge the
    /// whole SFU shares).
    data_queue_peak: Arc<AtomicUsize>,
    /// Whether some participant's data messages are being left unread for a congested
    /// recipient.
    data_senders_held: bool,
    media_tx: mpsc::Sender<RoomInput>,
    media_rx: Option<mpsc::Receiver<RoomInput>>,
    signal_tx: mpsc::Sender<SignalCommand>,
    signal_rx: Option<mpsc::Receiver<SignalCommand>>,
    participants: Participants,
    router: Router,
    empty_since: Option<Instant>,
    /// When the room opened, Unix seconds.
    created_at: u64,
    /// Set by an admin's `Close`: the room ends as soon as it has told everyone.
    closed_by_admin: bool,
    events: EventBus,
    totals: Arc<MediaCounters>,
    counts: LocalCounts,
    /// Who is speaking, from publishers' audio levels.
    speakers: Speakers,
    /// The loudest speaker of the latest non-empty speaker list (a WHEP viewer's default).
    last_speaker: Option<u64>,
    /// When layers were last allocated and speakers last decided.
    next_allocation: Instant,
    next_speakers: Instant,
    /// The other nodes serving parts of this room, and the participants they serve.
    span: Span,
}

impl Room {
    pub(crate) fn new(
        id: RoomId,
        config: SfuConfig,
        sockets: MediaSockets,
        data_queue_peak: Arc<AtomicUsize>,
        events: EventBus,
        totals: Arc<MediaCounters>,
    ) -> Self {
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let (signal_tx, signal_rx) = mpsc::channel(SIGNAL_QUEUE);
        Room {
            id,
            config,
            sockets,
            outgoing: Outgoing::default(),
            data_queue_peak,
            data_senders_held: false,
            media_tx,
            media_rx: Some(media_rx),
            signal_tx,
            signal_rx: Some(signal_rx),
            participants: HashMap::new(),
            router: Router::default(),
            empty_since: Some(Instant::now()),
            created_at: crate::clock::unix_now(),
            closed_by_admin: false,
            events,
            totals,
            counts: LocalCounts::default(),
            speakers: Speakers::new(SpeakerParams::default()),
            last_speaker: None,
            next_allocation: Instant::now(),
            next_speakers: Instant::now(),
            span: Span::new(crate::links::Links::default()),
        }
    }

    /// Runs one input. A panic inside the WebRTC engine (a bug, possibly triggered by a peer's
    /// bytes) must not take the whole room down: the participant the input came from is
    /// removed, and everyone else carries on.
    pub(crate) fn guarded(&mut self, participant: u64, input: impl FnOnce(&mut Room)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| input(self)));
        if outcome.is_err() {
            tracing::error!(
                room = %self.id,
                ?participant,
                "panic while handling an input; removing the participant it came from"
            );
            if let Some(p) = self.participants.get_mut(&participant) {
                p.doom_after_panic();
            }
        }
    }

    /// Sweeps each subscriber connection the turn forwarded packets to, once for all of them,
    /// on every core when there are many, sending as it goes (see [`crate::fanout::flush`]).
    fn flush_forwarded(&mut self) {
        crate::fanout::flush(
            &mut self.participants,
            self.config.parallel_fanout,
            &mut self.outgoing,
            &self.sockets,
        );
    }

    /// One datagram from the media sockets, as the room task handles it (the per-packet path
    /// starts here: a publisher's RTP ends up in the router's `forward`).
    pub(crate) fn on_media(&mut self, datagram: Datagram) {
        let key = datagram.pc.participant;
        self.guarded(key, |room| room.on_datagram(datagram));
        self.release_data_senders(Instant::now());
    }

    /// The room's timer expired: connections' timeouts, statistics, held data senders.
    pub(crate) fn on_timers(&mut self, now: Instant) {
        self.on_timeout(now);
        self.release_data_senders(now);
        self.restart_stuck_subscribers(now);
        if now >= self.next_speakers {
            self.next_speakers = now + SPEAKERS_INTERVAL;
            self.decide_speakers(now);
        }
        if now >= self.next_allocation {
            self.next_allocation = now + ALLOCATION_INTERVAL;
            self.allocate_layers(now);
        }
        self.send_probe_padding(now);
    }

    /// When the room must next handle its timers.
    pub(crate) fn next_deadline(&self) -> Instant {
        let mut next = Instant::now() + Duration::from_secs(1);
        for p in self.participants.values() {
            for d in [
                p.publisher.deadline,
                p.subscriber.deadline,
                p.negotiator.deadline(),
            ]
            .into_iter()
            .flatten()
            {
                next = next.min(d);
            }
        }
        if let Some(since) = self.empty_since {
            next = next.min(since + self.config.empty_room_timeout);
        }
        if let Some(flush) = self.state_flush_deadline() {
            next = next.min(flush);
        }
        if !self.participants.is_empty() {
            next = next.min(self.next_allocation).min(self.next_speakers);
        }
        if let Some(probe) = self.probe_deadline() {
            next = next.min(probe);
        }
        next
    }

    fn idle_expired(&self, now: Instant) -> bool {
        self.empty_since
            .is_some_and(|since| now >= since + self.config.empty_room_timeout)
    }

    /// Ends one turn of the room task (one input handled): flushes the connections it forwarded
    /// to, removes the participants marked for removal and sends the datagrams the turn
    /// produced.
    pub(crate) fn finish_turn(&mut self) {
        self.flush_state_changes();
        self.flush_forwarded();
        self.reap();
        self.sockets.send_all(&mut self.outgoing);
    }

    fn visible_count(&self) -> usize {
        self.participants
            .values()
            .filter(|p| !p.grants.hidden)
            .count()
    }

    /// Whether anyone but recorders is in the room (recorders alone leave it "empty").
    fn occupied(&self) -> bool {
        self.participants.values().any(|p| !p.grants.recorder)
    }

    fn participant_info(&self, key: u64) -> Option<ParticipantInfo> {
        let p = self.participants.get(&key)?;
        let mut tracks: Vec<TrackInfo> = p
            .published
            .values()
            .filter_map(|t| self.router.get(t))
            .map(|pb| pb.info())
            .collect();
        tracks.sort_by_key(|t| kind_index(t.kind));
        Some(ParticipantInfo {
            id: p.id.to_string(),
            identity: p.identity.clone(),
            name: p.name.clone(),
            tracks,
        })
    }

    /// Sends `message` to every participant but `except`.
    fn broadcast(&mut self, except: u64, message: ServerMessage) {
        for (key, p) in self.participants.iter_mut() {
            if *key != except {
                p.send(message.clone());
            }
        }
    }

    fn close_all(&mut self, reason: LeaveReason, close: CloseReason) {
        let keys: Vec<u64> = self.participants.keys().copied().collect();
        for key in keys {
            self.remove(key, reason, Some(close));
        }
    }

    /// The router, with the parts of the room it works on.
    fn router_wired(&mut self) -> (&mut Router, Wiring<'_>) {
        let wiring = Wiring {
            participants: &mut self.participants,
            outgoing: &mut self.outgoing,
            counts: &mut self.counts,
        };
        (&mut self.router, wiring)
    }

    /// Sends a PLI to the publisher of `track` for the layers its subscribers forward or wait
    /// for, at most once per configured interval per layer.
    fn request_keyframe(&mut self, track: &TrackId, now: Instant) {
        self.request_layer_keyframes(track, [false; 3], now);
    }

    /// Sends a PLI to the publisher of `track` for the one layer `subscriber` forwards or waits
    /// for (a receiver's loss is repaired on its own layer: the publisher's other layers, and
    /// the receivers on them, are left alone); for every needed layer when it has none yet.
    fn request_keyframe_for(&mut self, subscriber: u64, track: &TrackId, now: Instant) {
        let layer = self.router.get(track).and_then(|p| {
            p.subscriptions
                .iter()
                .find(|s| s.subscriber == subscriber)
                .and_then(|s| {
                    s.wanted_keyframe()
                        .or(s.current_layer())
                        .or(s.target_layer())
                })
        });
        let mut layers = [false; 3];
        if let Some(layer) = layer {
            layers[layer.index()] = true;
        }
        self.request_layer_keyframes(track, layers, now);
    }

    /// Sends a PLI to the publisher of `track` for each of `layers` (by index; none: see
    /// [`Room::request_keyframe`]).
    fn request_layer_keyframes(&mut self, track: &TrackId, layers: [bool; 3], now: Instant) {
        let interval = self.config.keyframe_request_interval;
        let (router, wiring) = self.router_wired();
        let remote = router.request_keyframe(track, layers, now, interval, wiring);
        // A remote track: its node asks the publisher.
        if let Some(layers) = remote
            && let Some(origin) = self.router.get(track).and_then(|p| p.origin.clone())
        {
            let message = crate::span::wire::Control::Keyframe {
                track: track.to_string(),
                layers,
            };
            let frame = crate::span::wire::control(self.id.as_str(), &message);
            self.span.send(&origin, frame);
        }
    }

    /// The data relay, working on this room.
    fn data_relay(&mut self) -> DataRelay<'_> {
        DataRelay {
            span: &self.span,
            participants: &mut self.participants,
            outgoing: &mut self.outgoing,
            config: &self.config,
            queue_peak: &self.data_queue_peak,
            senders_held: &mut self.data_senders_held,
        }
    }

    /// Lets data senders held for a congested recipient go once it drained (or turned out
    /// slow), and reads the messages they had waiting.
    fn release_data_senders(&mut self, now: Instant) {
        if !self.data_senders_held {
            return;
        }
        for key in self.data_relay().release_senders(now) {
            self.service(
                PcKey {
                    participant: key,
                    subscriber: false,
                },
                now,
            );
        }
    }
}
