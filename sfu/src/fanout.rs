//! Fan-out over cores, in two steps, so that a big room (a webinar, 1 → 300) is not held to
//! one core. [`forward`]: one publisher packet handed to many subscriptions at once, each core
//! taking a share of them (the forwarder's decision, the rewritten header, the packet queued
//! on the subscriber's connection). [`flush`], at the end of the room's turn: each connection
//! written to swept once for every packet the turn queued on it (SRTP, the engine's
//! interceptors, the datagrams out), again each core taking a share; this is most of the work.
//! Below `SfuConfig::parallel_fanout` subscriptions (128 by default), or on a one-core machine,
//! the room does both in its own loop instead: handing work to other threads costs a few
//! microseconds, which only a big fan-out repays.
//!
//! Per packet it pairs each subscription with its subscriber in one pass over the room (a table
//! and a list for the whole fan-out, nothing per subscriber), then waits for the shares.
//!
//! The sweep sends as it goes: each time its batch would fill one `sendmmsg` call it leaves
//! ([`Sending`]), so the first subscribers of a big burst (a keyframe to a hundred receivers) are
//! not kept waiting for the last ones to be encrypted.
//!
//! It never decides what a subscriber gets (that is [`Subscription::forward`]), takes no lock of
//! ours and never blocks beyond waiting for its shares (sends drop on a full socket buffer).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use protocol::Layer;
use rayon::prelude::*;
use tracing::debug;

use crate::ids::TrackId;
use crate::io::Outgoing;
use crate::participant::Participant;
use crate::socket::MediaSockets;
use crate::subscription::{Forwarded, Subscription};

/// Datagrams the sweep gathers before it sends them: as many as one `sendmmsg` call takes
/// (`socket/send.rs`). A turn that produces fewer (a few packets to a few dozen receivers) still
/// leaves in one go at its end; only a long one (a burst to many) is sent in parts.
const SEND_EVERY: usize = 128;

/// A sweep's batch, sent each time it holds [`SEND_EVERY`] datagrams.
struct Sending<'a> {
    out: &'a mut Outgoing,
    sockets: &'a MediaSockets,
}

impl Sending<'_> {
    /// One more connection swept into the batch.
    fn swept(&mut self) {
        if self.out.datagrams.len() >= SEND_EVERY {
            self.send();
        }
    }

    fn send(&mut self) {
        self.sockets.send_all(self.out);
    }
}

/// The threads the fan-out runs on (one per core), or `None` on a one-core machine or when no
/// thread could be started (then the router's own loop does all the work).
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("sfu-fanout-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no fan-out threads; big rooms use one core"))
            .ok()
    })
    .as_ref()
}

/// What forwarding one packet to some subscriptions came to, added up.
#[derive(Default)]
pub(crate) struct Tally {
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_dropped: u64,
    /// Layers some subscriber waits for a keyframe on (by [`Layer::index`]).
    pub need_keyframe: [bool; 3],
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        self.packets_out += other.packets_out;
        self.bytes_out += other.bytes_out;
        self.packets_dropped += other.packets_dropped;
        for (m, t) in self.need_keyframe.iter_mut().zip(other.need_keyframe) {
            *m |= t;
        }
        self
    }
}

/// One packet of `track` as the publication saw it.
pub(crate) struct Packet<'a> {
    pub track: &'a TrackId,
    pub packet: &'a rtc::rtp::Packet,
    pub layer: Layer,
    pub keyframe: bool,
    pub now: Instant,
}

/// Writes `packet` to every connected subscriber of `subscriptions` on all cores, or returns
/// `None` (nothing done) when there are fewer than `from` subscriptions or one core.
pub(crate) fn forward(
    packet: &Packet<'_>,
    subscriptions: &mut [Subscription],
    participants: &mut HashMap<u64, Participant>,
    from: usize,
) -> Option<Tally> {
    if subscriptions.len() < from {
        return None;
    }
    let pool = pool()?;
    // Each subscription with its subscriber, found in one pass over the room (a subscriber has
    // at most one subscription per track, so no participant is taken twice).
    let mut by_subscriber: HashMap<u64, &mut Subscription> = subscriptions
        .iter_mut()
        .map(|s| (s.subscriber, s))
        .collect();
    let mut pairs: Vec<(&mut Subscription, &mut Participant)> =
        Vec::with_capacity(by_subscriber.len());
    for (key, participant) in participants.iter_mut() {
        if let Some(subscription) = by_subscriber.remove(key)
            && participant.subscriber.connected
        {
            pairs.push((subscription, participant));
        }
    }
    let share_len = pairs.len().div_ceil(pool.current_num_threads()).max(1);
    Some(pool.install(|| {
        pairs
            .par_chunks_mut(share_len)
            .map(|share| forward_share(packet, share))
            .reduce(Tally::default, Tally::merge)
    }))
}

fn forward_share(p: &Packet<'_>, share: &mut [(&mut Subscription, &mut Participant)]) -> Tally {
    let mut tally = Tally::default();
    for (subscription, sub) in share.iter_mut() {
        forward_one(p, subscription, sub, &mut tally);
    }
    tally
}

/// The packet to one subscription of a connected subscriber: written to its connection (which
/// is swept at the end of the room's turn, see [`flush`]) or dropped; counted in
/// `tally` either way. The step both the room's own loop and each share take. A panic in the
/// subscriber's engine marks that subscriber for removal (not the publisher whose packet it
/// was), and a subscriber so marked gets nothing more.
pub(crate) fn forward_one(
    p: &Packet<'_>,
    subscription: &mut Subscription,
    sub: &mut Participant,
    tally: &mut Tally,
) {
    if sub.doomed.is_some() {
        tally.packets_dropped += 1;
        return;
    }
    let forwarded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        subscription.forward(p.packet, p.layer, p.keyframe, sub.subscriber.pc(), p.now)
    }));
    let Ok(forwarded) = forwarded else {
        tracing::error!(participant = %sub.id, track = %p.track, "panic while forwarding to a subscriber; removing them");
        sub.doom_after_panic();
        tally.packets_dropped += 1;
        return;
    };
    match forwarded {
        Forwarded::Sent { first } => {
            if first {
                debug!(participant = %sub.id, track = %p.track, keyframe = p.keyframe, "down-track started");
            }
            tally.packets_out += 1;
            tally.bytes_out += p.packet.payload.len() as u64;
            sub.subscriber.wrote();
        }
        Forwarded::NotReady => {}
        Forwarded::Dropped => tally.packets_dropped += 1,
        Forwarded::NeedKeyframe(wanted) => {
            tally.packets_dropped += 1;
            tally.need_keyframe[wanted.index()] = true;
        }
    }
}

/// Sweeps the subscriber connections a turn wrote to (each once, for every packet the turn
/// wrote to it: SRTP, the engine's interceptors, the datagrams out) and sends what they produce
/// through `sockets` as it goes, with whatever `outgoing` held before. From `from` such
/// connections on, on every core: this sweep is most of what forwarding costs. Below that it
/// allocates nothing. A panic in one connection's engine marks that subscriber for removal and
/// spares the others.
pub(crate) fn flush(
    participants: &mut HashMap<u64, Participant>,
    from: usize,
    outgoing: &mut Outgoing,
    sockets: &MediaSockets,
) {
    let written = participants
        .values()
        .filter(|p| p.subscriber.has_unflushed())
        .count();
    if written == 0 {
        return;
    }
    let written_to = participants
        .values_mut()
        .filter(|p| p.subscriber.has_unflushed());
    match pool() {
        Some(pool) if written >= from => {
            sockets.send_all(outgoing);
            let mut subscribers: Vec<&mut Participant> = written_to.collect();
            let share_len = subscribers
                .len()
                .div_ceil(pool.current_num_threads())
                .max(1);
            pool.install(|| {
                subscribers.par_chunks_mut(share_len).for_each(|share| {
                    let mut out = Outgoing::default();
                    let mut sending = Sending {
                        out: &mut out,
                        sockets,
                    };
                    for sub in share.iter_mut() {
                        sweep(sub, &mut sending);
                    }
                    sending.send();
                })
            });
        }
        _ => {
            let mut sending = Sending {
                out: outgoing,
                sockets,
            };
            for sub in written_to {
                sweep(sub, &mut sending);
            }
        }
    }
}

/// One subscriber connection swept into the batch, its participant marked for removal if its
/// engine panics.
fn sweep(sub: &mut Participant, sending: &mut Sending<'_>) {
    let transport = &mut sub.subscriber;
    let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        transport.flush_if_written(sending.out)
    }));
    if swept.is_err() {
        tracing::error!(participant = %sub.id, "panic while sending to a subscriber; removing them");
        sub.doom_after_panic();
    }
    sending.swept();
}
