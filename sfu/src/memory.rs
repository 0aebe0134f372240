//! A room driven by hand, without sockets, tasks or a runtime: the real room logic and peer
//! connections, with datagrams handed in and taken out by the caller.
//!
//! Meant for benches (`benches/forwarding.rs`) that want the media path without a network: the
//! caller plays the clients (its own `rtc` peer connections), carries their datagrams to
//! [`MemoryRoom::datagram`] and what [`MemoryRoom::take_sent`] returns back to them, and calls
//! [`MemoryRoom::timers`] when [`MemoryRoom::next_deadline`] has passed. Each of those does
//! exactly what the room task does for the same input; only the channels and the sockets are
//! left out. Not a stable API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use protocol::{Grants, ServerMessage, Target};

use crate::config::SfuConfig;
use crate::error::JoinError;
use crate::events::EventBus;
use crate::ids::RoomId;
pub use crate::io::SentDatagram;
use crate::io::{Datagram, Outbox, PcKey};
use crate::room::Room;
use crate::session::{JoinParams, Session, SessionCommand, SessionEvent};
use crate::socket::MediaSockets;

/// One participant of a [`MemoryRoom`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberKey(u64);

/// A room whose inputs are method calls. See the module documentation.
pub struct MemoryRoom {
    room: Room,
    address: SocketAddr,
    outbox: Arc<Mutex<Outbox>>,
    sessions: HashMap<MemberKey, Session>,
    next_key: u64,
}

impl MemoryRoom {
    /// A room announcing `address` as its one host candidate. Sent datagrams are kept until
    /// [`MemoryRoom::keep_sent`] says otherwise.
    pub fn new(id: RoomId, address: SocketAddr, config: SfuConfig) -> Self {
        let outbox = Arc::new(Mutex::new(Outbox {
            keep: true,
            ..Outbox::default()
        }));
        let room = Room::new(
            id,
            config,
            MediaSockets::in_memory(address, Arc::clone(&outbox)),
            Arc::new(AtomicUsize::new(0)),
            EventBus::new(),
            Arc::default(),
        );
        MemoryRoom {
            room,
            address,
            outbox,
            sessions: HashMap::new(),
            next_key: 1,
        }
    }

    /// The address the room announces and sends from.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Joins a participant; its first message is `joined`.
    pub fn join(&mut self, identity: &str, grants: Grants) -> Result<MemberKey, JoinError> {
        let key = self.next_key;
        self.next_key += 1;
        let session = self.room.join(
            key,
            JoinParams {
                identity: identity.to_owned(),
                name: identity.to_owned(),
                grants,
                ice_servers: Vec::new(),
            },
        )?;
        self.sessions.insert(MemberKey(key), session);
        Ok(MemberKey(key))
    }

    /// A command from the participant's signaling connection.
    pub fn command(&mut self, member: MemberKey, command: SessionCommand) {
        let key = member.0;
        self.room.guarded(key, |room| room.on_signal(key, command));
        self.room.finish_turn();
    }

    /// The signaling messages the room has for the participant since the last call.
    pub fn messages(&mut self, member: MemberKey) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        if let Some(session) = self.sessions.get_mut(&member) {
            while let Ok(event) = session.events.try_recv() {
                if let SessionEvent::Message(message) = event {
                    out.push(message);
                }
            }
        }
        out
    }

    /// A datagram from the participant's `target` connection, sent from `from` and received at
    /// `now`: one turn of the room task for a media datagram (handling, removal of failed
    /// participants, the next deadline, which it returns).
    pub fn datagram(
        &mut self,
        member: MemberKey,
        target: Target,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) -> Instant {
        self.room.on_media(Datagram {
            pc: PcKey {
                participant: member.0,
                subscriber: target == Target::Subscriber,
            },
            local: self.address,
            peer: from,
            received_at: now,
            data,
        });
        self.room.finish_turn();
        self.room.next_deadline()
    }

    /// When the room wants [`MemoryRoom::timers`] called next.
    pub fn next_deadline(&self) -> Instant {
        self.room.next_deadline()
    }

    /// The room's timer: every connection whose deadline is due, statistics, counters.
    pub fn timers(&mut self, now: Instant) {
        self.room.on_timers(now);
        self.room.finish_turn();
    }

    /// Whether sent datagrams are kept for [`MemoryRoom::take_sent`] (they are always counted).
    pub fn keep_sent(&mut self, keep: bool) {
        self.outbox().keep = keep;
    }

    /// The datagrams kept since the last call.
    pub fn take_sent(&mut self) -> Vec<SentDatagram> {
        std::mem::take(&mut self.outbox().kept)
    }

    /// Datagrams and bytes sent since the last call.
    pub fn take_sent_counts(&mut self) -> (u64, u64) {
        let mut outbox = self.outbox();
        let counts = (outbox.datagrams, outbox.bytes);
        outbox.datagrams = 0;
        outbox.bytes = 0;
        counts
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
