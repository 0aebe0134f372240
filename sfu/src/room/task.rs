//! The room task: the one loop that owns a room and feeds it its inputs (joins and admin
//! requests, signaling commands, media datagrams, timer expiries). It only dispatches. Media
//! already waiting is taken several at a time, so that what it produces goes out in one batch.
//! Timers run on schedule even while input never stops: a due deadline is handled before the
//! next input is taken, so RTCP, retransmissions and statistics are never starved.

use std::time::Instant;

use protocol::{CloseReason, LeaveReason};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Room;
use crate::admin::{AdminCommand, AdminError, AdminReply};
use crate::error::JoinError;
use crate::io::RoomInput;
use crate::session::{JoinParams, Session};

/// Media inputs one turn takes at most: enough to batch a burst, few enough (well under a
/// millisecond of work) that timers and signaling wait little.
const MEDIA_PER_TURN: usize = 32;

/// What the registry asks of a room.
pub(crate) enum RoomControl {
    Join {
        key: u64,
        params: JoinParams,
        reply: oneshot::Sender<Result<Session, JoinError>>,
    },
    Admin {
        command: AdminCommand,
        reply: oneshot::Sender<Result<AdminReply, AdminError>>,
    },
    /// The other nodes serving parts of the room (a cluster).
    Span { peers: Vec<String> },
    /// The link to this node went down.
    PeerGone { node: String },
}

/// What one turn of the loop ended with.
enum Turn {
    Continue,
    Stop,
}

/// The runs of a room task: serve inputs until cancelled, or until the room has been empty for
/// the configured time and `remove_if_idle` confirms no join is pending.
pub(crate) async fn run<F>(
    mut room: Room,
    mut control: mpsc::UnboundedReceiver<RoomControl>,
    cancel: CancellationToken,
    remove_if_idle: F,
) where
    F: Fn(&mpsc::UnboundedReceiver<RoomControl>) -> bool + Send + 'static,
{
    info!(room = %room.id, "room opened");
    let settings = serde_json::to_value(room.summary().settings).unwrap_or_default();
    room.events.emit(
        "room_created",
        room.id.as_str(),
        serde_json::json!({ "settings": settings }),
    );
    let (Some(mut media_rx), Some(mut signal_rx)) = (room.media_rx.take(), room.signal_rx.take())
    else {
        return;
    };
    // Whether the last turn handled due timers ahead of the inputs.
    let mut timers_first = false;
    loop {
        let deadline = room.next_deadline();
        // Inputs are taken in priority order (control, signals, media), so a room whose input
        // never stops would never reach its timer branch: handle a due deadline first. Every
        // other turn at most, so that a deadline that stays due (an empty room waiting for a
        // pending join) cannot starve the inputs either.
        if !timers_first && Instant::now() >= deadline && !cancel.is_cancelled() {
            timers_first = true;
            let turn = room.timers_due(&control, &remove_if_idle);
            room.finish_turn();
            if let Turn::Stop = turn {
                break;
            }
            continue;
        }
        timers_first = false;
        let turn = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                room.close_all(LeaveReason::ServerShutdown, CloseReason::ServerShutdown);
                Turn::Stop
            }
            Some(message) = control.recv() => room.on_control(message, &control, &remove_if_idle),
            Some(signal) = signal_rx.recv() => {
                let key = signal.participant;
                room.guarded(key, |room| room.on_signal(key, signal.command));
                Turn::Continue
            }
            Some(input) = media_rx.recv() => {
                room.on_input(input);
                // Datagrams already waiting are handled in the same turn, so that what they
                // all produce leaves together (one sendmmsg per batch, not per datagram).
                for _ in 1..MEDIA_PER_TURN {
                    match media_rx.try_recv() {
                        Ok(input) => room.on_input(input),
                        Err(_) => break,
                    }
                }
                Turn::Continue
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                room.timers_due(&control, &remove_if_idle)
            }
        };
        room.finish_turn();
        if let Turn::Stop = turn {
            break;
        }
    }
    // Whoever still holds this room's queue (a socket reader, a node link) sees it closed
    // now, not after the goodbyes below, and looks the room up afresh.
    media_rx.close();
    // Recorders do not keep a room open: whoever is still here when it closes is told.
    room.close_all(LeaveReason::RoomClosed, CloseReason::RoomClosed);
    room.leave_span();
    room.finish_turn();
    info!(room = %room.id, "room closed");
    room.events
        .emit("room_closed", room.id.as_str(), serde_json::json!({}));
}

impl Room {
    fn on_input(&mut self, input: RoomInput) {
        match input {
            RoomInput::Datagram(datagram) => self.on_media(datagram),
            RoomInput::Span(frame) => self.guarded(0, |room| room.on_span_frame(frame)),
        }
    }

    fn on_control<F>(
        &mut self,
        message: RoomControl,
        control: &mpsc::UnboundedReceiver<RoomControl>,
        remove_if_idle: &F,
    ) -> Turn
    where
        F: Fn(&mpsc::UnboundedReceiver<RoomControl>) -> bool,
    {
        match message {
            RoomControl::Join { key, params, reply } => {
                self.guarded(key, |room| {
                    let result = room.join(key, params);
                    if let Err(Ok(session)) = reply.send(result) {
                        // The joiner gave up waiting; undo the join.
                        drop(session);
                    }
                });
                Turn::Continue
            }
            RoomControl::Span { peers } => {
                self.guarded(0, |room| room.on_span_peers(peers));
                Turn::Continue
            }
            RoomControl::PeerGone { node } => {
                self.guarded(0, |room| room.drop_peer(&node));
                Turn::Continue
            }
            RoomControl::Admin { command, reply } => {
                let now = Instant::now();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.on_admin(command, now)
                }))
                .unwrap_or(Err(AdminError::Unavailable));
                let _ = reply.send(outcome);
                if self.closed_by_admin && remove_if_idle(control) {
                    Turn::Stop
                } else {
                    Turn::Continue
                }
            }
        }
    }

    /// Handles the room's timers; stops the room when it has been empty long enough and no join
    /// is pending.
    fn timers_due<F>(
        &mut self,
        control: &mpsc::UnboundedReceiver<RoomControl>,
        remove_if_idle: &F,
    ) -> Turn
    where
        F: Fn(&mpsc::UnboundedReceiver<RoomControl>) -> bool,
    {
        let now = Instant::now();
        self.on_timers(now);
        if self.idle_expired(now) && remove_if_idle(control) {
            Turn::Stop
        } else {
            Turn::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;
    use crate::config::SfuConfig;
    use crate::events::EventBus;
    use crate::ids::RoomId;
    use crate::io::{Datagram, Outbox, PcKey};
    use crate::socket::MediaSockets;

    /// A room whose media input never runs dry still handles its timers on schedule: here, the
    /// timer that closes it once it has been empty for 200 ms. Before timers were checked ahead
    /// of input, the biased loop took a datagram every turn and this room never closed.
    #[tokio::test(flavor = "current_thread")]
    async fn timers_fire_while_media_input_never_stops() {
        let address: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let empty_timeout = Duration::from_millis(200);
        // The room counts as empty from its creation on.
        let started = Instant::now();
        let room = Room::new(
            RoomId::new("busy").unwrap(),
            SfuConfig {
                empty_room_timeout: empty_timeout,
                ..SfuConfig::default()
            },
            MediaSockets::in_memory(address, Arc::new(Mutex::new(Outbox::default()))),
            Arc::new(AtomicUsize::new(0)),
            EventBus::new(),
            Arc::default(),
        );
        let media = room.media_tx.clone();
        let datagram = move || {
            RoomInput::Datagram(Datagram {
                // No such participant: each datagram is a real, cheap turn of the loop.
                pc: PcKey {
                    participant: 42,
                    subscriber: false,
                },
                local: address,
                peer: address,
                received_at: Instant::now(),
                data: BytesMut::from(&[0x80u8; 64][..]),
            })
        };
        // Fill the queue before the room starts, then keep it full.
        while media.try_send(datagram()).is_ok() {}
        let sent = Arc::new(AtomicU64::new(0));
        let flood = tokio::spawn({
            let sent = Arc::clone(&sent);
            async move {
                while media.send(datagram()).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (_control_tx, control_rx) = mpsc::unbounded_channel();
        let closed = tokio::time::timeout(
            Duration::from_secs(10),
            run(room, control_rx, CancellationToken::new(), |_| true),
        )
        .await;
        let elapsed = started.elapsed();
        flood.abort();
        assert!(
            closed.is_ok(),
            "the room's idle timer never fired while its input was saturated \
             ({} datagrams taken in 10 s)",
            sent.load(Ordering::Relaxed)
        );
        assert!(
            sent.load(Ordering::Relaxed) > 1000,
            "the input was not saturated: only {} datagrams sent",
            sent.load(Ordering::Relaxed)
        );
        assert!(elapsed >= empty_timeout, "closed after {elapsed:?}");
    }
}
