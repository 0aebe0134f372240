//! Entry points for the fuzz targets in `signaling/fuzz` and for the test that replays their
//! corpora. Not a stable API: it exists for fuzzing only, and the service never calls it.
//!
//! [`signaling_frame`] reads an input as a client's WebSocket text frame with the same pure
//! functions the WebSocket handler uses ([`parse_frame`], [`action`]) and hands the room command
//! it maps to to a real room. [`sdp`] hands an input to the same room as a publisher offer and
//! as an answer to a pending subscriber offer.
//!
//! The room is a real [`Sfu`] with its media socket on 127.0.0.1 (an ephemeral port), started
//! once, on its own tokio runtime, with three participants: the fuzzed one, a publisher whose
//! client is a real `rtc` peer connection sending video over 127.0.0.1 (so the fuzzed one always
//! has a subscriber offer to answer), and a silent one used to know when the room has handled
//! a command. A socket bound to 127.0.0.1 cannot send to another host, so the candidates an
//! input names never lead to traffic off this machine.
//!
//! The harness never sends `leave`, and any end of the fuzzed session, or a room that takes
//! more than 10 s over one command, is a panic, save one end the room may choose: an accepted
//! offer starts ICE towards the candidates it names, nobody answers there, and after about 30 s
//! the connection fails and the participant is removed as `disconnected`. Then the harness joins
//! again as the same identity. It also joins again (which replaces the session, as a client's
//! reconnect does) when an answer is due and the subscriber connection cannot make an offer any
//! more: `rtc` 0.21.1 applies part of an answer before refusing it (an unknown mid, a missing
//! ICE password), after which rollback and every later offer fail. Both are counted on stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::ws::Message;
use protocol::{CloseReason, Grants, ServerMessage, Target};
use sfu::admin::AdminCommand;
use sfu::fuzzing::loopback::{self, LoopbackPublisher};
use sfu::{JoinParams, RoomId, Session, SessionCommand, SessionEvent, Sfu, SfuConfig};
use tokio_util::sync::CancellationToken;

use crate::config::SignalingConfig;
use crate::inbound::{Action, Incoming, action, parse_frame};

/// The fuzzed participant's identity.
const FUZZED: &str = "fuzz-client";
/// Longest the room may take over one command (or the setup over one step).
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// Reads `bytes` as one WebSocket frame from a joined client (a text frame when they are UTF-8,
/// as a WebSocket library delivers them, else a binary frame) and sends the room command it
/// maps to, if any, to the room.
///
/// # Panics
///
/// When the room cannot be set up, does not handle the command within 10 s, or ends the fuzzed
/// participant's session for another reason than a failed ICE connection.
pub fn signaling_frame(bytes: &[u8]) {
    let frame = match std::str::from_utf8(bytes) {
        Ok(text) => Message::Text(text.to_owned().into()),
        Err(_) => Message::Binary(bytes.to_vec().into()),
    };
    let max_size = SignalingConfig::default().max_message_size;
    let command = match parse_frame(Some(Ok(frame)), max_size) {
        Incoming::Message(message) => match action(message) {
            Action::Room(command) => command,
            Action::Reply(reply) => {
                let _ = serde_json::to_string(&reply);
                return;
            }
            // `leave` ends the session: never sent, so every later input still reaches the room.
            _ => return,
        },
        _ => return,
    };
    harness().run(vec![command]);
}

/// Hands `bytes` (as UTF-8, invalid sequences replaced, as any JSON string arrives) to the
/// room as the fuzzed participant's publisher offer, then as its answer to the subscriber offer
/// waiting for one.
///
/// # Panics
///
/// As [`signaling_frame`].
pub fn sdp(bytes: &[u8]) {
    let sdp = String::from_utf8_lossy(bytes).into_owned();
    harness().run(vec![
        SessionCommand::PublisherOffer {
            sdp: sdp.clone(),
            sources: Default::default(),
        },
        SessionCommand::SubscriberAnswer(sdp),
    ]);
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    room: Mutex<FuzzRoom>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzzing setup: tokio runtime: {e}"));
        let room = runtime
            .block_on(FuzzRoom::start())
            .unwrap_or_else(|e| panic!("fuzzing setup: {e}"));
        Harness {
            runtime,
            room: Mutex::new(room),
        }
    })
}

impl Harness {
    fn run(&self, commands: Vec<SessionCommand>) {
        let mut room = self.room.lock().unwrap_or_else(PoisonError::into_inner);
        self.runtime.block_on(async {
            for command in commands {
                room.feed(command).await;
            }
        });
    }
}

/// The room and its three participants.
struct FuzzRoom {
    sfu: Sfu,
    room: RoomId,
    fuzzed: Session,
    barrier: Session,
    /// Whether the fuzzed participant has a subscriber offer waiting for its answer.
    offer_pending: bool,
    _publisher: LoopbackPublisher,
    _cancel: CancellationToken,
}

impl FuzzRoom {
    async fn start() -> Result<FuzzRoom, String> {
        let cancel = CancellationToken::new();
        let config = SfuConfig {
            rtc_port: 0,
            announce_ip: Some([127, 0, 0, 1].into()),
            empty_room_timeout: Duration::from_secs(3600),
            ..SfuConfig::default()
        };
        let sfu = Sfu::start(config, cancel.clone())
            .await
            .map_err(|e| format!("SFU: {e}"))?;
        if let Some(address) = sfu.media_addresses().iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!("the media socket is not on loopback: {address}"));
        }
        let room = RoomId::new("fuzz").map_err(|e| e.to_string())?;
        let silent = Grants {
            can_publish: false,
            can_subscribe: false,
            can_publish_data: false,
            ..Grants::default()
        };
        let barrier = join(&sfu, &room, "fuzz-barrier", silent).await?;
        let publisher = loopback::start(&sfu, room.clone(), "fuzz-publisher").await?;
        let fuzzed = join(&sfu, &room, FUZZED, Grants::default()).await?;
        let mut fuzz_room = FuzzRoom {
            sfu,
            room,
            fuzzed,
            barrier,
            offer_pending: false,
            _publisher: publisher,
            _cancel: cancel,
        };
        fuzz_room.wait_for_offer().await?;
        Ok(fuzz_room)
    }

    /// Until the fuzzed participant has been offered the publisher's video.
    async fn wait_for_offer(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + 3 * ANSWER_LIMIT;
        loop {
            self.sync().await;
            if self.offer_pending {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the publisher's video never reached the room".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one command as the fuzzed participant and waits until the room has handled it.
    async fn feed(&mut self, command: SessionCommand) {
        if let SessionCommand::Leave(_) = command {
            return;
        }
        let answer = matches!(command, SessionCommand::SubscriberAnswer(_));
        if answer && !self.offer_pending {
            self.ask_for_offer().await;
            if !self.offer_pending {
                self.join_again("its subscriber connection could not offer")
                    .await;
            }
        }
        assert!(
            self.fuzzed.handle.send(command).await,
            "the room task ended"
        );
        if answer {
            // Until the room offers again (a refused answer is rolled back and offered anew).
            self.offer_pending = false;
        }
        self.sync().await;
    }

    /// Has the room offer the fuzzed participant its tracks again, through the admin path:
    /// revoking `can_subscribe` and granting it back renegotiates the subscriber connection.
    async fn ask_for_offer(&mut self) {
        for can_subscribe in [false, true] {
            let grants = Grants {
                can_subscribe,
                ..Grants::default()
            };
            let command = AdminCommand::UpdateGrants {
                identity: FUZZED.to_owned(),
                grants,
            };
            if let Err(e) = self.sfu.admin(&self.room, command).await {
                panic!("the room refused an admin request: {e}");
            }
        }
        self.sync().await;
    }

    /// Waits until the room has handled everything sent so far: the silent participant's
    /// refused offer is answered after it, since one room handles its signals in order. Then
    /// reads what the fuzzed participant was sent meanwhile.
    async fn sync(&mut self) {
        let sent = self
            .barrier
            .handle
            .send(SessionCommand::PublisherOffer {
                sdp: String::new(),
                sources: Default::default(),
            })
            .await;
        assert!(sent, "the room task ended");
        loop {
            match tokio::time::timeout(ANSWER_LIMIT, self.barrier.events.recv()).await {
                Ok(Some(SessionEvent::Message(ServerMessage::Error { .. }))) => break,
                Ok(Some(SessionEvent::Message(_))) => {}
                Ok(Some(SessionEvent::Closed(reason))) => {
                    panic!("the room ended a silent participant's session: {reason:?}")
                }
                Ok(None) => panic!("the room task ended"),
                Err(_) => panic!("the room did not handle a command within {ANSWER_LIMIT:?}"),
            }
        }
        while let Ok(event) = self.fuzzed.events.try_recv() {
            match event {
                SessionEvent::Message(message) => {
                    // What the WebSocket handler would send the client.
                    let _ = serde_json::to_string(&message);
                    if let ServerMessage::Offer {
                        target: Target::Subscriber,
                        ..
                    } = message
                    {
                        self.offer_pending = true;
                    }
                }
                SessionEvent::Closed(CloseReason::Disconnected) => {
                    // An accepted offer's ICE failed (see the module documentation).
                    self.join_again("it was removed as disconnected").await;
                    return;
                }
                SessionEvent::Closed(reason) => {
                    panic!("the room ended the fuzzed participant's session: {reason:?}")
                }
            }
        }
    }

    /// Joins the room again as the fuzzed identity (see the module documentation for when).
    async fn join_again(&mut self, why: &str) {
        static TIMES: AtomicU64 = AtomicU64::new(0);
        let times = TIMES.fetch_add(1, Ordering::Relaxed) + 1;
        if times.is_power_of_two() {
            eprintln!("fuzzing: the fuzzed client joined again {times} times ({why})");
        }
        self.fuzzed = join(&self.sfu, &self.room, FUZZED, Grants::default())
            .await
            .unwrap_or_else(|e| panic!("joining again: {e}"));
        self.offer_pending = false;
        Box::pin(self.wait_for_offer())
            .await
            .unwrap_or_else(|e| panic!("joining again: {e}"));
    }
}

async fn join(sfu: &Sfu, room: &RoomId, identity: &str, grants: Grants) -> Result<Session, String> {
    let params = JoinParams {
        identity: identity.to_owned(),
        name: identity.to_owned(),
        grants,
        ice_servers: Vec::new(),
    };
    sfu.join(room.clone(), params)
        .await
        .map_err(|e| format!("{identity} could not join: {e}"))
}
