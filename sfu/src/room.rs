//! One room: its participants, their publications and the forwarding table, owned by one task.
//!
//! Inputs are data: datagrams from the media sockets, commands from participants' signaling
//! connections, timer expiries. Each input is fed to the sans-IO peer connection it belongs to,
//! then everything that connection wants to say is drained: datagrams to send, state changes,
//! received RTP/RTCP. RTP from a publisher is rewritten per subscription and written to the
//! subscribers' connections in the same pass, with no lock and no extra task hop.
//!
//! Never panics on input: every failure from the engine becomes a log line, an error message to
//! the client that caused it, or the removal of that one participant.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::{
    CloseReason, ErrorCode, IceCandidate, LeaveReason, ParticipantInfo, ServerMessage, Target,
    TrackInfo, TrackKind,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::admin::{AdminCommand, AdminError, AdminReply};
use crate::counters::{LocalCounts, MediaCounters};
use crate::data::DataChannels;
use crate::events::EventBus;
use crate::forwarder::{Decision, Forwarder};
use crate::keyframe::VideoCodec;
use crate::peer::ServerPeer;
use crate::socket::{Datagram, MediaSockets, Outgoing, PcKey, Route};
use crate::stats::{ReceiveStats, SendRate};
use crate::{
    JoinError, JoinParams, ParticipantId, RoomId, Session, SessionCommand, SessionEvent,
    SessionHandle, SfuConfig, TrackId,
};
use protocol::admin::{
    ParticipantDetail, RoomDetail, RoomSettings, RoomSummary, TrackDetail, rfc3339,
};

/// Datagrams queued for a room before the socket task starts dropping them.
const MEDIA_QUEUE: usize = 4096;
/// Signaling commands queued for a room before senders wait.
const SIGNAL_QUEUE: usize = 256;
/// Events queued for one participant's connection before it counts as stuck.
const EVENT_QUEUE: usize = 512;
/// Remote candidates held while a connection has no remote description yet.
const MAX_EARLY_CANDIDATES: usize = 64;

pub(crate) enum RoomInput {
    Datagram(Datagram),
}

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
}

pub(crate) struct SignalCommand {
    pub participant: u64,
    pub command: SessionCommand,
}

/// One server-side peer connection of a participant.
pub(crate) struct Peer {
    inner: ServerPeer,
    pub(crate) deadline: Option<Instant>,
    early_candidates: Vec<RTCIceCandidateInit>,
    connected: bool,
    /// Whether our candidates have been trickled to the client.
    trickled: bool,
    /// Where the client's datagrams last came from.
    remote: Option<std::net::SocketAddr>,
}

impl Peer {
    pub(crate) fn pc(&mut self) -> &mut RTCPeerConnection {
        &mut self.inner.pc
    }
}

/// The subscriber connection's offer/answer state: at most one offer in flight.
#[derive(Default)]
struct Negotiation {
    awaiting_answer: bool,
    again: bool,
    ever_offered: bool,
}

pub(crate) struct Participant {
    pub(crate) id: ParticipantId,
    pub(crate) identity: String,
    name: String,
    pub(crate) grants: protocol::Grants,
    events: mpsc::Sender<SessionEvent>,
    pub(crate) publisher: Peer,
    subscriber: Peer,
    /// The publisher connection's track ids → our publication ids.
    published: HashMap<String, TrackId>,
    /// Mute state the client asked for before the track was published.
    wanted_mute: [bool; 2],
    negotiation: Negotiation,
    /// Set when the participant must be removed after the current pass (stuck or failed).
    doomed: Option<LeaveReason>,
    /// The data channels it opened on its publisher connection.
    pub(crate) data: DataChannels,
    /// When it joined, Unix seconds.
    joined_at: u64,
    /// The candidates it signalled (in SDP or trickled): address → type.
    candidate_types: HashMap<std::net::SocketAddr, &'static str>,
}

/// Most remembered candidates per participant.
const MAX_REMEMBERED_CANDIDATES: usize = 64;

impl Participant {
    /// Remembers the type of each candidate in `text` (an SDP or one candidate line).
    fn remember_candidates(&mut self, text: &str) {
        for line in text.lines() {
            if self.candidate_types.len() >= MAX_REMEMBERED_CANDIDATES {
                return;
            }
            if let Some((addr, typ)) = parse_candidate(line) {
                self.candidate_types.insert(addr, typ);
            }
        }
    }

    /// The type of the candidate the client's media comes from: one it signalled, or
    /// peer-reflexive (learned from its connectivity checks).
    fn candidate_type(&self) -> Option<String> {
        let remote = self.publisher.remote?;
        Some(
            self.candidate_types
                .get(&remote)
                .copied()
                .unwrap_or("prflx")
                .to_owned(),
        )
    }
}

/// `candidate:<foundation> <component> <protocol> <priority> <ip> <port> typ <type> ...`,
/// with or without an `a=` prefix.
fn parse_candidate(line: &str) -> Option<(std::net::SocketAddr, &'static str)> {
    let line = line.trim().trim_start_matches("a=");
    let rest = line.strip_prefix("candidate:")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ip: std::net::IpAddr = fields.get(4)?.parse().ok()?;
    let port: u16 = fields.get(5)?.parse().ok()?;
    if *fields.get(6)? != "typ" {
        return None;
    }
    let typ = match *fields.get(7)? {
        "host" => "host",
        "srflx" => "srflx",
        "prflx" => "prflx",
        "relay" => "relay",
        _ => return None,
    };
    Some((std::net::SocketAddr::new(ip, port), typ))
}

impl Participant {
    fn peer(&mut self, subscriber: bool) -> &mut Peer {
        if subscriber {
            &mut self.subscriber
        } else {
            &mut self.publisher
        }
    }

    fn send(&mut self, message: ServerMessage) {
        self.send_event(SessionEvent::Message(message));
    }

    /// Sends our host candidates for one connection as `candidate` messages, once, right after
    /// its first local description.
    fn trickle_candidates(&mut self, target: Target) {
        let peer = match target {
            Target::Publisher => &mut self.publisher,
            Target::Subscriber => &mut self.subscriber,
        };
        if std::mem::replace(&mut peer.trickled, true) {
            return;
        }
        let lines = peer.inner.candidates.clone();
        for candidate in lines {
            self.send(ServerMessage::Candidate {
                target,
                candidate: Some(IceCandidate {
                    candidate,
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                }),
            });
        }
    }

    fn send_event(&mut self, event: SessionEvent) {
        if self.events.try_send(event).is_err() && self.doomed.is_none() {
            warn!(participant = %self.id, "signaling connection is not keeping up; removing it");
            self.doomed = Some(LeaveReason::Disconnected);
        }
    }
}

/// One subscription: a publication delivered to one participant.
struct DownTrack {
    subscriber: u64,
    sender_id: RTCRtpSenderId,
    ssrc: u32,
    /// Payload type the subscriber negotiated for the publication's codec; `None` until the
    /// answer to an offer that carried this down-track arrives (or when the subscriber cannot
    /// receive that codec). Until then the browser would drop the packets, keyframe included.
    payload_type: Option<u8>,
    /// Set once an offer carrying this down-track has been sent.
    offered: bool,
    forwarder: Forwarder,
}

/// A published track.
struct Publication {
    id: TrackId,
    owner: u64,
    kind: TrackKind,
    codec: RTCRtpCodec,
    video_codec: VideoCodec,
    receiver_id: RTCRtpReceiverId,
    media_ssrc: u32,
    muted: bool,
    /// Muted by an admin: its packets are not forwarded until an admin unmutes it.
    held_by_admin: bool,
    downtracks: Vec<DownTrack>,
    last_keyframe_request: Option<Instant>,
    received: ReceiveStats,
    forwarded: SendRate,
}

impl Publication {
    fn info(&self) -> TrackInfo {
        TrackInfo {
            id: self.id.to_string(),
            kind: self.kind,
            codec: self
                .codec
                .mime_type
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            muted: self.muted,
        }
    }
}

pub(crate) struct Room {
    id: RoomId,
    pub(crate) config: SfuConfig,
    pub(crate) sockets: MediaSockets,
    /// Datagrams produced while handling the current input, sent when it is done.
    pub(crate) outgoing: Outgoing,
    /// The largest number of bytes seen queued for one recipient's data channel (a gauge the
    /// whole SFU shares).
    pub(crate) data_queue_peak: Arc<AtomicUsize>,
    /// Whether some participant's data messages are being left unread for a congested
    /// recipient; spares the per-datagram path a scan of the room when none is.
    pub(crate) data_senders_held: bool,
    media_tx: mpsc::Sender<RoomInput>,
    media_rx: Option<mpsc::Receiver<RoomInput>>,
    signal_tx: mpsc::Sender<SignalCommand>,
    signal_rx: Option<mpsc::Receiver<SignalCommand>>,
    pub(crate) participants: HashMap<u64, Participant>,
    publications: HashMap<TrackId, Publication>,
    empty_since: Option<Instant>,
    /// When the room opened, Unix seconds.
    created_at: u64,
    /// Set by an admin's `Close`: the room ends as soon as it has told everyone.
    closed_by_admin: bool,
    events: EventBus,
    totals: Arc<MediaCounters>,
    counts: LocalCounts,
}

fn kind_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

/// Queues every datagram a peer connection wants to send; the room sends the queue when it has
/// finished with the current input ([`Room::finish_turn`]).
pub(crate) fn flush(outgoing: &mut Outgoing, peer: &mut Peer) {
    while let Some(out) = peer.pc().poll_write() {
        outgoing.push(
            out.transport.local_addr,
            out.transport.peer_addr,
            out.message,
        );
    }
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
    loop {
        let deadline = room.next_deadline();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                room.close_all(LeaveReason::ServerShutdown, CloseReason::ServerShutdown);
                break;
            }
            Some(message) = control.recv() => match message {
                RoomControl::Join { key, params, reply } => room.guarded(key, |room| {
                    let result = room.join(key, params);
                    if let Err(Ok(session)) = reply.send(result) {
                        // The joiner gave up waiting; undo the join.
                        drop(session);
                    }
                }),
                RoomControl::Admin { command, reply } => {
                    let now = Instant::now();
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        room.on_admin(command, now)
                    }))
                    .unwrap_or(Err(AdminError::Unavailable));
                    let _ = reply.send(outcome);
                    if room.closed_by_admin && remove_if_idle(&control) {
                        room.finish_turn();
                        break;
                    }
                }
            },
            Some(signal) = signal_rx.recv() => {
                let key = signal.participant;
                room.guarded(key, |room| room.on_signal(key, signal.command));
            }
            Some(RoomInput::Datagram(datagram)) = media_rx.recv() => room.on_media(datagram),
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                room.on_timers(now);
                if room.idle_expired(now) && remove_if_idle(&control) {
                    break;
                }
            }
        }
        room.finish_turn();
    }
    // Recorders do not keep a room open: whoever is still here when it closes is told.
    room.close_all(LeaveReason::RoomClosed, CloseReason::RoomClosed);
    room.finish_turn();
    info!(room = %room.id, "room closed");
    room.events
        .emit("room_closed", room.id.as_str(), serde_json::json!({}));
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
            publications: HashMap::new(),
            empty_since: Some(Instant::now()),
            created_at: crate::unix_now(),
            closed_by_admin: false,
            events,
            totals,
            counts: LocalCounts::default(),
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
                p.doomed.get_or_insert(LeaveReason::Disconnected);
                // Its connections are in an unknown state: stop timing them.
                p.publisher.deadline = None;
                p.subscriber.deadline = None;
            }
        }
    }

    /// One datagram from the media sockets, as the room task handles it (the per-packet path
    /// starts here: a publisher's RTP ends up in [`Room::forward`]).
    pub(crate) fn on_media(&mut self, datagram: Datagram) {
        let key = datagram.pc.participant;
        self.guarded(key, |room| room.on_datagram(datagram));
        self.release_data_senders(Instant::now());
    }

    /// The room's timer expired: connections' timeouts, statistics, held data senders.
    pub(crate) fn on_timers(&mut self, now: Instant) {
        self.on_timeout(now);
        self.release_data_senders(now);
    }

    pub(crate) fn next_deadline(&self) -> Instant {
        let mut next = Instant::now() + Duration::from_secs(1);
        for p in self.participants.values() {
            for d in [p.publisher.deadline, p.subscriber.deadline]
                .into_iter()
                .flatten()
            {
                next = next.min(d);
            }
        }
        if let Some(since) = self.empty_since {
            next = next.min(since + self.config.empty_room_timeout);
        }
        next
    }

    fn idle_expired(&self, now: Instant) -> bool {
        self.empty_since
            .is_some_and(|since| now >= since + self.config.empty_room_timeout)
    }

    fn visible_count(&self) -> usize {
        self.participants
            .values()
            .filter(|p| !p.grants.hidden)
            .count()
    }

    fn participant_info(&self, key: u64) -> Option<ParticipantInfo> {
        let p = self.participants.get(&key)?;
        let mut tracks: Vec<TrackInfo> = p
            .published
            .values()
            .filter_map(|t| self.publications.get(t))
            .map(Publication::info)
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

    /// Whether anyone but recorders is in the room (recorders alone leave it "empty").
    fn occupied(&self) -> bool {
        self.participants.values().any(|p| !p.grants.recorder)
    }

    pub(crate) fn join(&mut self, key: u64, mut params: JoinParams) -> Result<Session, JoinError> {
        params.grants = params.grants.effective();
        // The same identity joining again replaces the old session (a reconnect).
        let previous: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.identity == params.identity)
            .map(|(k, _)| *k)
            .collect();
        let reconnected = !previous.is_empty();
        for old in previous {
            self.remove(old, LeaveReason::Replaced, Some(CloseReason::Replaced));
        }
        if !params.grants.hidden && self.visible_count() >= self.config.max_participants {
            return Err(JoinError::RoomFull {
                room: self.id.clone(),
                max: self.config.max_participants,
            });
        }
        let now = Instant::now();
        let candidates: Vec<_> = self.sockets.announced().collect();
        let new_peer = || -> Result<Peer, JoinError> {
            let inner = ServerPeer::new(now, &candidates, &self.config.video_codecs, &self.totals)
                .map_err(|e| JoinError::Engine(e.to_string()))?;
            Ok(Peer {
                inner,
                deadline: None,
                early_candidates: Vec::new(),
                connected: false,
                trickled: false,
                remote: None,
            })
        };
        let publisher = new_peer()?;
        let subscriber = new_peer()?;
        for (peer, is_sub) in [(&publisher, false), (&subscriber, true)] {
            self.sockets.register(
                &peer.inner.ufrag,
                Route {
                    room: self.media_tx.clone(),
                    pc: PcKey {
                        participant: key,
                        subscriber: is_sub,
                    },
                },
            );
        }
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let id = ParticipantId::random();
        let participant = Participant {
            id: id.clone(),
            identity: params.identity,
            name: params.name,
            grants: params.grants,
            events: events_tx,
            publisher,
            subscriber,
            published: HashMap::new(),
            wanted_mute: [false; 2],
            negotiation: Negotiation::default(),
            doomed: None,
            data: DataChannels::default(),
            joined_at: crate::unix_now(),
            candidate_types: HashMap::new(),
        };
        let hidden = participant.grants.hidden;
        let can_subscribe = participant.grants.can_subscribe;
        info!(room = %self.id, participant = %id, identity = %participant.identity, "participant joined");
        self.events.emit(
            if reconnected {
                "participant_reconnected"
            } else {
                "participant_joined"
            },
            self.id.as_str(),
            serde_json::json!({
                "identity": participant.identity,
                "participantId": id.to_string(),
                "name": participant.name,
                "hidden": participant.grants.hidden,
            }),
        );
        self.participants.insert(key, participant);
        self.totals.participants.fetch_add(1, Ordering::Relaxed);
        if self.occupied() {
            self.empty_since = None;
        }

        let you = self.participant_info(key).ok_or(JoinError::ShuttingDown)?;
        let others: Vec<ParticipantInfo> = self
            .participants
            .iter()
            .filter(|(k, p)| **k != key && !p.grants.hidden)
            .filter_map(|(k, _)| self.participant_info(*k))
            .collect();
        if let Some(p) = self.participants.get_mut(&key) {
            p.send(ServerMessage::Joined {
                room: self.id.to_string(),
                you: you.clone(),
                participants: others,
                ice_servers: params.ice_servers,
            });
        }
        if !hidden {
            self.broadcast(key, ServerMessage::ParticipantJoined { participant: you });
        }
        if can_subscribe {
            let existing: Vec<TrackId> = self.publications.keys().cloned().collect();
            for track in existing {
                self.subscribe(key, &track);
            }
            self.negotiate_subscriber(key);
        }
        Ok(Session {
            participant_id: id,
            room: self.id.clone(),
            events: events_rx,
            handle: SessionHandle {
                key,
                signals: self.signal_tx.clone(),
                left: false,
            },
        })
    }

    /// Removes a participant: its publications leave every subscriber, the others are told.
    fn remove(&mut self, key: u64, reason: LeaveReason, close: Option<CloseReason>) {
        let Some(mut p) = self.participants.remove(&key) else {
            return;
        };
        self.totals.participants.fetch_sub(1, Ordering::Relaxed);
        info!(room = %self.id, participant = %p.id, ?reason, "participant left");
        if reason != LeaveReason::Replaced {
            self.events.emit(
                "participant_left",
                self.id.as_str(),
                serde_json::json!({
                    "identity": p.identity,
                    "participantId": p.id.to_string(),
                    "reason": reason,
                }),
            );
        }
        if let Some(close) = close {
            p.send_event(SessionEvent::Closed(close));
        }
        for peer in [&mut p.publisher, &mut p.subscriber] {
            self.sockets.unregister(&peer.inner.ufrag);
            let _ = peer.pc().close();
            flush(&mut self.outgoing, peer);
        }
        let tracks: Vec<TrackId> = p.published.values().cloned().collect();
        for track in tracks {
            self.unpublish(&track);
        }
        for publication in self.publications.values_mut() {
            publication.downtracks.retain(|d| d.subscriber != key);
        }
        if !p.grants.hidden {
            self.broadcast(
                key,
                ServerMessage::ParticipantLeft {
                    participant_id: p.id.to_string(),
                    identity: p.identity.clone(),
                    reason,
                },
            );
        }
        if !self.occupied() && self.empty_since.is_none() {
            self.empty_since = Some(Instant::now());
        }
    }

    /// Ends one turn of the room task (one input handled): removes the participants marked for
    /// removal and sends the datagrams the turn produced.
    pub(crate) fn finish_turn(&mut self) {
        self.reap();
        self.sockets.send_all(&mut self.outgoing);
    }

    /// Removes participants marked for removal during the last pass.
    fn reap(&mut self) {
        let doomed: Vec<(u64, LeaveReason)> = self
            .participants
            .iter()
            .filter_map(|(k, p)| p.doomed.map(|r| (*k, r)))
            .collect();
        for (key, reason) in doomed {
            self.remove(key, reason, Some(CloseReason::Disconnected));
        }
    }

    fn close_all(&mut self, reason: LeaveReason, close: CloseReason) {
        let keys: Vec<u64> = self.participants.keys().copied().collect();
        for key in keys {
            self.remove(key, reason, Some(close));
        }
    }

    fn on_datagram(&mut self, d: Datagram) {
        let Some(p) = self.participants.get_mut(&d.pc.participant) else {
            return;
        };
        let peer = p.peer(d.pc.subscriber);
        peer.remote = Some(d.peer);
        let result = peer.pc().handle_read(TaggedBytesMut {
            now: d.received_at,
            transport: TransportContext {
                local_addr: d.local,
                peer_addr: d.peer,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: d.data,
        });
        if let Err(e) = result {
            debug!(error = %e, "peer connection rejected a datagram");
        }
        self.service(d.pc, Instant::now());
    }

    fn on_timeout(&mut self, now: Instant) {
        self.counts.flush_into(&self.totals);
        for publication in self.publications.values_mut() {
            publication.received.tick(now);
            publication.forwarded.tick(now);
        }
        let due: Vec<PcKey> = self
            .participants
            .iter()
            .flat_map(|(k, p)| {
                [(false, p.publisher.deadline), (true, p.subscriber.deadline)]
                    .into_iter()
                    .filter(|(_, d)| d.is_some_and(|d| d <= now))
                    .map(|(subscriber, _)| PcKey {
                        participant: *k,
                        subscriber,
                    })
            })
            .collect();
        for pc in due {
            self.guarded(pc.participant, |room| {
                if let Some(p) = room.participants.get_mut(&pc.participant)
                    && let Err(e) = p.peer(pc.subscriber).pc().handle_timeout(now)
                {
                    debug!(error = %e, "peer connection timeout handling failed");
                }
                room.service(pc, now);
            });
        }
    }

    pub(crate) fn on_signal(&mut self, key: u64, command: SessionCommand) {
        let now = Instant::now();
        match command {
            SessionCommand::PublisherOffer(sdp) => self.on_publisher_offer(key, sdp, now),
            SessionCommand::SubscriberAnswer(sdp) => self.on_subscriber_answer(key, sdp, now),
            SessionCommand::Candidate(target, candidate) => {
                self.on_candidate(key, target, candidate, now)
            }
            SessionCommand::Mute(kind, muted) => self.on_mute(key, kind, muted),
            SessionCommand::Leave(reason) => self.remove(key, reason, None),
        }
    }

    fn on_publisher_offer(&mut self, key: u64, sdp: String, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.remember_candidates(&sdp);
        if !p.grants.can_publish && offers_to_send_media(&sdp) {
            p.send(ServerMessage::Error {
                code: ErrorCode::PermissionDenied,
                message: "your token does not grant canPublish: offer without audio or video \
                          tracks to send"
                    .into(),
            });
            return;
        }
        let result = (|| {
            let offer = RTCSessionDescription::offer(sdp)?;
            let pc = p.publisher.pc();
            pc.set_remote_description(now, offer)?;
            let answer = pc.create_answer(None)?;
            pc.set_local_description(now, answer.clone())?;
            Ok::<_, rtc::shared::error::Error>(answer.sdp)
        })();
        match result {
            Ok(answer) => {
                p.send(ServerMessage::Answer {
                    target: Target::Publisher,
                    sdp: answer,
                });
                p.trickle_candidates(Target::Publisher);
                let early = std::mem::take(&mut p.publisher.early_candidates);
                for c in early {
                    let _ = p.publisher.pc().add_remote_candidate(c);
                }
            }
            Err(e) => p.send(ServerMessage::Error {
                code: ErrorCode::InvalidSdp,
                message: format!("the publisher offer was refused: {e}"),
            }),
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: false,
            },
            now,
        );
    }

    fn on_subscriber_answer(&mut self, key: u64, sdp: String, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.remember_candidates(&sdp);
        if !p.negotiation.awaiting_answer {
            p.send(ServerMessage::Error {
                code: ErrorCode::InvalidSdp,
                message: "no subscriber offer is waiting for an answer".into(),
            });
            return;
        }
        let result = RTCSessionDescription::answer(sdp)
            .and_then(|answer| p.subscriber.pc().set_remote_description(now, answer));
        if let Err(e) = result {
            p.send(ServerMessage::Error {
                code: ErrorCode::InvalidSdp,
                message: format!("the subscriber answer was refused: {e}"),
            });
            return;
        }
        p.negotiation.awaiting_answer = false;
        let early = std::mem::take(&mut p.subscriber.early_candidates);
        for c in early {
            let _ = p.subscriber.pc().add_remote_candidate(c);
        }
        self.resolve_payload_types(key);
        let again = self
            .participants
            .get_mut(&key)
            .map(|p| std::mem::take(&mut p.negotiation.again))
            .unwrap_or(false);
        if again {
            self.negotiate_subscriber(key);
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: true,
            },
            now,
        );
    }

    fn on_candidate(
        &mut self,
        key: u64,
        target: Target,
        candidate: Option<IceCandidate>,
        now: Instant,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let Some(c) = candidate else {
            return; // End of candidates: nothing to do for a full ICE agent with host candidates.
        };
        if c.candidate.is_empty() {
            return;
        }
        p.remember_candidates(&c.candidate);
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        let subscriber = target == Target::Subscriber;
        let peer = p.peer(subscriber);
        if peer.pc().remote_description().is_none() {
            if peer.early_candidates.len() < MAX_EARLY_CANDIDATES {
                peer.early_candidates.push(init);
            }
            return;
        }
        if let Err(e) = peer.pc().add_remote_candidate(init) {
            p.send(ServerMessage::Error {
                code: ErrorCode::InvalidCandidate,
                message: format!("the ICE candidate was refused: {e}"),
            });
        }
        self.service(
            PcKey {
                participant: key,
                subscriber,
            },
            now,
        );
    }

    fn on_mute(&mut self, key: u64, kind: TrackKind, muted: bool) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.wanted_mute[kind_index(kind)] = muted;
        let participant_id = p.id.to_string();
        let track = p
            .published
            .values()
            .find(|t| self.publications.get(*t).is_some_and(|pb| pb.kind == kind))
            .cloned();
        let Some(track) = track else { return };
        if let Some(publication) = self.publications.get_mut(&track) {
            if publication.muted == muted {
                return;
            }
            publication.muted = muted;
        }
        let identity = self
            .participants
            .get(&key)
            .map(|p| p.identity.clone())
            .unwrap_or_default();
        self.events.emit(
            "track_muted",
            self.id.as_str(),
            serde_json::json!({
                "identity": identity,
                "participantId": participant_id,
                "trackId": track.to_string(),
                "muted": muted,
                "byAdmin": false,
            }),
        );
        self.broadcast(
            key,
            ServerMessage::TrackMuted {
                participant_id,
                track_id: track.to_string(),
                muted,
            },
        );
    }

    /// Drains everything a peer connection produced: datagrams, events, RTP/RTCP.
    pub(crate) fn service(&mut self, pc: PcKey, now: Instant) {
        loop {
            let Some(p) = self.participants.get_mut(&pc.participant) else {
                return;
            };
            let data_paused = p.data.paused;
            let peer = p.peer(pc.subscriber);
            flush(&mut self.outgoing, peer);
            if let Some(event) = peer.pc().poll_event() {
                self.on_pc_event(pc, event, now);
                continue;
            }
            // A sender held back for a slow recipient keeps its data messages unread (media
            // still flows): SCTP's window then slows it down at the source.
            let message = if data_paused {
                peer.pc().poll_media_read()
            } else {
                peer.pc().poll_read()
            };
            if let Some(message) = message {
                self.on_pc_message(pc, message);
                continue;
            }
            peer.deadline = peer.pc().poll_timeout();
            return;
        }
    }

    fn on_pc_event(&mut self, pc: PcKey, event: RTCPeerConnectionEvent, now: Instant) {
        let key = pc.participant;
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                debug!(participant = %p.id, subscriber = pc.subscriber, %state, "connection state");
                match state {
                    RTCPeerConnectionState::Connected => {
                        p.peer(pc.subscriber).connected = true;
                        if pc.subscriber {
                            // Video needs a keyframe to start; ask for one from every
                            // publisher this participant receives.
                            let tracks: Vec<TrackId> = self
                                .publications
                                .iter()
                                .filter(|(_, pb)| pb.downtracks.iter().any(|d| d.subscriber == key))
                                .map(|(t, _)| t.clone())
                                .collect();
                            for t in tracks {
                                self.request_keyframe(&t, now);
                            }
                        }
                    }
                    RTCPeerConnectionState::Failed => {
                        p.doomed.get_or_insert(LeaveReason::Disconnected);
                    }
                    RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Closed => {
                        p.peer(pc.subscriber).connected = false;
                    }
                    _ => {}
                }
            }
            RTCPeerConnectionEvent::OnIceCandidateEvent(event) => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                if let Ok(init) = event.candidate.to_json() {
                    p.send(ServerMessage::Candidate {
                        target: if pc.subscriber {
                            Target::Subscriber
                        } else {
                            Target::Publisher
                        },
                        candidate: Some(IceCandidate {
                            candidate: init.candidate,
                            sdp_mid: init.sdp_mid,
                            sdp_m_line_index: init.sdp_mline_index,
                            username_fragment: init.username_fragment,
                        }),
                    });
                }
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id))
                if !pc.subscriber =>
            {
                if let Some(p) = self.participants.get_mut(&key) {
                    let label = p
                        .publisher
                        .pc()
                        .data_channel(id)
                        .map(|dc| dc.label().to_owned());
                    if let Some(label) = label {
                        p.data.opened(id, &label);
                    }
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) if !pc.subscriber => {
                self.publish(key, init.track_id, init.receiver_id, init.ssrc);
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) if !pc.subscriber => {
                let track = self
                    .participants
                    .get_mut(&key)
                    .and_then(|p| p.published.remove(&track_id));
                if let Some(track) = track {
                    self.unpublish(&track);
                }
            }
            _ => {}
        }
    }

    fn on_pc_message(&mut self, pc: PcKey, message: TaggedRTCMessage) {
        let now = message.now;
        match message.message {
            RTCMessage::DataChannelMessage(channel, data) if !pc.subscriber => {
                self.relay_data(pc.participant, channel, data, now);
            }
            RTCMessage::RtpPacket(track_id, packet) if !pc.subscriber => {
                self.forward(pc.participant, &track_id, packet, now);
            }
            RTCMessage::RtcpPacket(_, packets) if pc.subscriber => {
                // Feedback from a subscriber about our down-tracks: relay keyframe requests to
                // the publisher. NACKs are answered by the sender's interceptor. The engine
                // files a compound packet under its first SSRC only, so each request's own
                // media SSRC decides which down-track it is about.
                let mut wanted: Vec<u32> = Vec::new();
                for p in &packets {
                    if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                        wanted.push(pli.media_ssrc);
                    } else if let Some(fir) = p.as_any().downcast_ref::<FullIntraRequest>() {
                        wanted.extend(fir.fir.iter().map(|e| e.ssrc));
                        wanted.push(fir.media_ssrc);
                    }
                }
                for ssrc in wanted {
                    let track = self
                        .publications
                        .values()
                        .find(|pb| {
                            pb.downtracks
                                .iter()
                                .any(|d| d.subscriber == pc.participant && d.ssrc == ssrc)
                        })
                        .map(|pb| pb.id.clone());
                    if let Some(track) = track {
                        debug!(%track, "subscriber asked for a keyframe");
                        self.counts.keyframe_requests_received += 1;
                        self.request_keyframe(&track, Instant::now());
                    }
                }
            }
            _ => {}
        }
    }

    /// The per-packet path: one publisher packet to every subscription of its track.
    fn forward(
        &mut self,
        publisher: u64,
        rtc_track_id: &str,
        mut packet: rtc::rtp::Packet,
        now: Instant,
    ) {
        let Some(track) = self
            .participants
            .get(&publisher)
            .and_then(|p| p.published.get(rtc_track_id))
            .cloned()
        else {
            return;
        };
        let Some(publication) = self.publications.get_mut(&track) else {
            return;
        };
        let keyframe = publication.kind == TrackKind::Video
            && publication.video_codec.is_keyframe_start(&packet.payload);
        publication.received.on_packet(
            packet.header.sequence_number,
            packet.header.timestamp,
            publication.kind == TrackKind::Video && packet.header.marker,
            packet.payload.len(),
            now,
        );
        if keyframe && let Some(size) = publication.video_codec.dimensions(&packet.payload) {
            publication.received.set_dimensions(size);
        }
        if publication.held_by_admin {
            return;
        }
        let payload_len = packet.payload.len();
        self.counts.packets_in += 1;
        self.counts.bytes_in += payload_len as u64;
        // Header extension ids are negotiated per connection; the publisher's mean nothing to
        // the subscriber, so they are not forwarded.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        let (source_ssrc, seq, ts) = (
            packet.header.ssrc,
            packet.header.sequence_number,
            packet.header.timestamp,
        );
        let mut need_keyframe = false;
        for down in publication.downtracks.iter_mut() {
            let Some(sub) = self.participants.get_mut(&down.subscriber) else {
                continue;
            };
            let Some(payload_type) = down.payload_type else {
                continue;
            };
            if !sub.subscriber.connected {
                continue;
            }
            let was_started = down.forwarder.started();
            match down.forwarder.forward(source_ssrc, seq, ts, keyframe) {
                Decision::Forward {
                    sequence_number,
                    timestamp,
                } => {
                    if !was_started {
                        debug!(participant = %sub.id, track = %publication.id, keyframe, "down-track started");
                    }
                    let mut out = packet.clone();
                    out.header.ssrc = down.ssrc;
                    out.header.payload_type = payload_type;
                    out.header.sequence_number = sequence_number;
                    out.header.timestamp = timestamp;
                    if let Some(mut sender) = sub.subscriber.pc().rtp_sender(down.sender_id)
                        && let Err(e) = sender.write_rtp(now, out)
                    {
                        debug!(error = %e, "down-track write failed");
                    }
                    publication.forwarded.on_bytes(payload_len);
                    self.counts.packets_out += 1;
                    self.counts.bytes_out += payload_len as u64;
                    flush(&mut self.outgoing, &mut sub.subscriber);
                    sub.subscriber.deadline = sub.subscriber.pc().poll_timeout();
                }
                Decision::Drop => self.counts.packets_dropped += 1,
                Decision::DropNeedKeyframe => {
                    self.counts.packets_dropped += 1;
                    need_keyframe = true;
                }
            }
        }
        if need_keyframe {
            self.request_keyframe(&track, now);
        }
    }

    /// Sends a PLI to the publisher of `track`, at most once per configured interval.
    fn request_keyframe(&mut self, track: &TrackId, now: Instant) {
        let Some(publication) = self.publications.get_mut(track) else {
            return;
        };
        if publication.kind != TrackKind::Video {
            return;
        }
        if publication
            .last_keyframe_request
            .is_some_and(|t| now < t + self.config.keyframe_request_interval)
        {
            return;
        }
        publication.last_keyframe_request = Some(now);
        self.counts.keyframe_requests_sent += 1;
        debug!(track = %publication.id, "keyframe requested from the publisher");
        let (owner, receiver_id, media_ssrc) = (
            publication.owner,
            publication.receiver_id,
            publication.media_ssrc,
        );
        let Some(p) = self.participants.get_mut(&owner) else {
            return;
        };
        if let Some(mut receiver) = p.publisher.pc().rtp_receiver(receiver_id) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
                debug!(error = %e, "keyframe request failed");
            }
        }
        flush(&mut self.outgoing, &mut p.publisher);
        p.publisher.deadline = p.publisher.pc().poll_timeout();
    }

    fn publish(
        &mut self,
        key: u64,
        rtc_track_id: String,
        receiver_id: RTCRtpReceiverId,
        ssrc: u32,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.published.contains_key(&rtc_track_id) || !p.grants.can_publish {
            return;
        }
        let Some(mut receiver) = p.publisher.pc().rtp_receiver(receiver_id) else {
            return;
        };
        let rtc_kind = receiver.track().kind();
        let codec = receiver.track().codec(ssrc).cloned().or_else(|| {
            receiver
                .get_parameters()
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.rtp_codec.clone())
        });
        let Some(codec) = codec else {
            warn!(participant = %p.id, "published track has no negotiated codec; ignored");
            return;
        };
        let kind = match rtc_kind {
            RtpCodecKind::Audio => TrackKind::Audio,
            RtpCodecKind::Video => TrackKind::Video,
            _ => return,
        };
        // One track of each kind per participant: a new one replaces the old.
        let replaced: Vec<(String, TrackId)> = p
            .published
            .iter()
            .filter(|(_, t)| self.publications.get(*t).is_some_and(|pb| pb.kind == kind))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect();
        for (rtc_id, _) in &replaced {
            p.published.remove(rtc_id);
        }
        let id = TrackId::random();
        p.published.insert(rtc_track_id, id.clone());
        let muted = p.wanted_mute[kind_index(kind)];
        let participant_id = p.id.to_string();
        info!(room = %self.id, participant = %participant_id, track = %id, %kind, codec = %codec.mime_type, "track published");
        self.events.emit(
            "track_published",
            self.id.as_str(),
            serde_json::json!({
                "identity": p.identity,
                "participantId": participant_id,
                "trackId": id.to_string(),
                "kind": kind,
                "codec": codec.mime_type.rsplit('/').next().unwrap_or_default(),
            }),
        );
        for (_, old) in replaced {
            self.unpublish(&old);
        }
        let now = Instant::now();
        let clock_rate = codec.clock_rate;
        let publication = Publication {
            id: id.clone(),
            owner: key,
            kind,
            video_codec: VideoCodec::from_mime(&codec.mime_type),
            codec,
            receiver_id,
            media_ssrc: ssrc,
            muted,
            held_by_admin: false,
            downtracks: Vec::new(),
            last_keyframe_request: None,
            received: ReceiveStats::new(clock_rate, now),
            forwarded: SendRate::new(now),
        };
        let info = publication.info();
        self.publications.insert(id.clone(), publication);
        self.totals.tracks.fetch_add(1, Ordering::Relaxed);
        self.broadcast(
            key,
            ServerMessage::TrackPublished {
                participant_id,
                track: info,
            },
        );
        let subscribers: Vec<u64> = self
            .participants
            .iter()
            .filter(|(k, p)| **k != key && p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, &id);
            self.negotiate_subscriber(sub);
        }
    }

    fn unpublish(&mut self, track: &TrackId) {
        let Some(publication) = self.publications.remove(track) else {
            return;
        };
        self.totals.tracks.fetch_sub(1, Ordering::Relaxed);
        let owner_id = self.participants.get_mut(&publication.owner).map(|p| {
            p.published.retain(|_, t| t != track);
            p.id.to_string()
        });
        let identity = self
            .participants
            .get(&publication.owner)
            .map(|p| p.identity.clone())
            .unwrap_or_default();
        self.events.emit(
            "track_unpublished",
            self.id.as_str(),
            serde_json::json!({
                "identity": identity,
                "participantId": owner_id.clone().unwrap_or_default(),
                "trackId": track.to_string(),
            }),
        );
        for down in &publication.downtracks {
            if let Some(sub) = self.participants.get_mut(&down.subscriber)
                && let Err(e) = sub.subscriber.pc().remove_track(down.sender_id)
            {
                debug!(error = %e, "removing a down-track failed");
            }
        }
        let subscribers: Vec<u64> = publication
            .downtracks
            .iter()
            .map(|d| d.subscriber)
            .collect();
        for sub in subscribers {
            self.negotiate_subscriber(sub);
        }
        if let Some(participant_id) = owner_id {
            self.broadcast(
                publication.owner,
                ServerMessage::TrackUnpublished {
                    participant_id,
                    track_id: track.to_string(),
                },
            );
        }
    }

    /// Adds a down-track of `track` to `subscriber`'s connection (negotiated separately).
    fn subscribe(&mut self, subscriber: u64, track: &TrackId) {
        let Some(publication) = self.publications.get_mut(track) else {
            return;
        };
        if publication.owner == subscriber
            || publication
                .downtracks
                .iter()
                .any(|d| d.subscriber == subscriber)
        {
            return;
        }
        let Some(owner_id) = self
            .participants
            .get(&publication.owner)
            .map(|p| p.id.to_string())
        else {
            return;
        };
        let Some(sub) = self.participants.get_mut(&subscriber) else {
            return;
        };
        let ssrc = rand::random::<u32>();
        let local = MediaStreamTrack::new(
            owner_id,
            publication.id.to_string(),
            format!("{} {}", publication.kind, publication.id),
            match publication.kind {
                TrackKind::Audio => RtpCodecKind::Audio,
                TrackKind::Video => RtpCodecKind::Video,
            },
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: publication.codec.clone(),
                ..Default::default()
            }],
        );
        let video_codecs = &self.config.video_codecs;
        match sub.subscriber.pc().add_track(local) {
            Ok(sender_id) => {
                if publication.kind == TrackKind::Video {
                    offer_every_video_codec(
                        sub.subscriber.pc(),
                        sender_id,
                        &publication.codec,
                        video_codecs,
                    );
                }
                publication.downtracks.push(DownTrack {
                    subscriber,
                    sender_id,
                    ssrc,
                    payload_type: None,
                    offered: false,
                    forwarder: Forwarder::new(
                        publication.kind == TrackKind::Video,
                        rand::random(),
                        rand::random(),
                    ),
                })
            }
            Err(e) => warn!(
                participant = %sub.id,
                codec = %publication.codec.mime_type,
                fmtp = %publication.codec.sdp_fmtp_line,
                error = %e,
                "could not add a down-track"
            ),
        }
    }

    /// Offers the subscriber connection's current tracks, or queues another round if an offer
    /// is already waiting for its answer.
    fn negotiate_subscriber(&mut self, key: u64) {
        let now = Instant::now();
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.negotiation.awaiting_answer {
            p.negotiation.again = true;
            return;
        }
        let has_tracks = p.subscriber.pc().get_senders().next().is_some();
        if !has_tracks && !p.negotiation.ever_offered {
            return;
        }
        let result = (|| {
            let pc = p.subscriber.pc();
            let offer = pc.create_offer(None)?;
            pc.set_local_description(now, offer.clone())?;
            Ok::<_, rtc::shared::error::Error>(offer.sdp)
        })();
        match result {
            Ok(sdp) => {
                debug!(participant = %p.id, %sdp, "subscriber offer");
                for publication in self.publications.values_mut() {
                    for down in publication
                        .downtracks
                        .iter_mut()
                        .filter(|d| d.subscriber == key)
                    {
                        down.offered = true;
                    }
                }
                p.negotiation.awaiting_answer = true;
                p.negotiation.ever_offered = true;
                p.send(ServerMessage::Offer {
                    target: Target::Subscriber,
                    sdp,
                });
                p.trickle_candidates(Target::Subscriber);
            }
            Err(e) => warn!(participant = %p.id, error = %e, "could not create a subscriber offer"),
        }
        self.service(
            PcKey {
                participant: key,
                subscriber: true,
            },
            now,
        );
    }

    /// After an answer, finds the payload type each of this subscriber's down-tracks must use.
    fn resolve_payload_types(&mut self, key: u64) {
        let Some(sub) = self.participants.get_mut(&key) else {
            return;
        };
        for publication in self.publications.values_mut() {
            for down in publication
                .downtracks
                .iter_mut()
                .filter(|d| d.subscriber == key)
            {
                let Some(mut sender) = sub.subscriber.pc().rtp_sender(down.sender_id) else {
                    continue;
                };
                let codecs = &sender.get_parameters().rtp_parameters.codecs;
                let wanted = &publication.codec;
                let same_mime = |c: &&rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters| {
                    c.rtp_codec
                        .mime_type
                        .eq_ignore_ascii_case(&wanted.mime_type)
                };
                let found = codecs
                    .iter()
                    .filter(same_mime)
                    .find(|c| c.rtp_codec.sdp_fmtp_line == wanted.sdp_fmtp_line)
                    .or_else(|| codecs.iter().find(same_mime));
                down.payload_type = found.map(|c| c.payload_type);
                debug!(participant = %sub.id, track = %publication.id, pt = ?down.payload_type, ssrc = down.ssrc, "down-track payload type");
                if down.payload_type.is_none() {
                    warn!(
                        participant = %sub.id,
                        codec = %wanted.mime_type,
                        "subscriber cannot receive this codec; track not forwarded"
                    );
                }
            }
        }
    }
}

/// Admin requests (`crate::Sfu::admin`): answered inside the room task, like every input.
impl Room {
    fn on_admin(&mut self, command: AdminCommand, now: Instant) -> Result<AdminReply, AdminError> {
        match command {
            AdminCommand::Snapshot => Ok(AdminReply::Room(Box::new(self.detail(now)))),
            AdminCommand::Close => {
                info!(room = %self.id, "room closed by an admin");
                self.close_all(LeaveReason::RoomClosed, CloseReason::RoomClosed);
                self.closed_by_admin = true;
                Ok(AdminReply::Done)
            }
            AdminCommand::Remove { identity } => {
                let key = self.key_of(&identity)?;
                info!(room = %self.id, %identity, "participant removed by an admin");
                self.remove(key, LeaveReason::Removed, Some(CloseReason::Removed));
                Ok(AdminReply::Done)
            }
            AdminCommand::MuteTrack {
                identity,
                track,
                muted,
            } => self.admin_mute(&identity, &track, muted, now),
            AdminCommand::UpdateGrants { identity, grants } => {
                self.admin_grants(&identity, grants, now)
            }
            AdminCommand::SendData { topic, payload, to } => {
                self.admin_send_data(&topic, &payload, &to, now)
            }
        }
    }

    fn key_of(&self, identity: &str) -> Result<u64, AdminError> {
        self.participants
            .iter()
            .find(|(_, p)| p.identity == identity)
            .map(|(k, _)| *k)
            .ok_or_else(|| AdminError::NoSuchParticipant {
                room: self.id.to_string(),
                identity: identity.to_owned(),
            })
    }

    fn summary(&self) -> RoomSummary {
        let visible = self.participants.values().filter(|p| !p.grants.hidden);
        let publishers = visible.clone().filter(|p| !p.published.is_empty()).count();
        RoomSummary {
            name: self.id.to_string(),
            participant_count: visible.count(),
            publisher_count: publishers,
            created_at: rfc3339(self.created_at),
            age_seconds: crate::unix_now().saturating_sub(self.created_at),
            bitrate_in: self
                .publications
                .values()
                .map(|p| p.received.snapshot().bitrate)
                .sum(),
            bitrate_out: self
                .publications
                .values()
                .map(|p| p.forwarded.bitrate())
                .sum(),
            settings: RoomSettings {
                max_participants: self.config.max_participants,
                empty_timeout_seconds: self.config.empty_room_timeout.as_secs(),
                codecs: self.config.video_codecs.clone(),
            },
            recording_state: None,
        }
    }

    fn detail(&mut self, now: Instant) -> RoomDetail {
        let mut keys: Vec<u64> = self.participants.keys().copied().collect();
        keys.sort_by_key(|k| self.participants.get(k).map(|p| p.joined_at));
        let participants = keys
            .into_iter()
            .filter_map(|key| self.participant_detail(key, now))
            .collect();
        RoomDetail {
            summary: self.summary(),
            participants,
            recording: None,
        }
    }

    fn participant_detail(&mut self, key: u64, now: Instant) -> Option<ParticipantDetail> {
        let rtt_ms = {
            let p = self.participants.get_mut(&key)?;
            selected_pair_rtt(p.publisher.pc(), now)
        };
        let p = self.participants.get(&key)?;
        let candidate_type = p.candidate_type();
        let mut tracks: Vec<TrackDetail> = p
            .published
            .values()
            .filter_map(|t| self.publications.get(t))
            .map(track_detail)
            .collect();
        tracks.sort_by_key(|t| kind_index(t.kind));
        let mut subscriptions: Vec<String> = self
            .publications
            .values()
            .filter(|pb| pb.downtracks.iter().any(|d| d.subscriber == key))
            .map(|pb| pb.id.to_string())
            .collect();
        subscriptions.sort();
        let state = if p.doomed.is_some() {
            "disconnected"
        } else if p.publisher.connected {
            "connected"
        } else {
            "connecting"
        };
        Some(ParticipantDetail {
            id: p.id.to_string(),
            identity: p.identity.clone(),
            name: p.name.clone(),
            joined_at: rfc3339(p.joined_at),
            state: state.into(),
            candidate_type,
            rtt_ms,
            grants: p.grants.clone(),
            tracks,
            subscriptions,
        })
    }

    fn admin_mute(
        &mut self,
        identity: &str,
        track: &str,
        muted: bool,
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        let key = self.key_of(identity)?;
        let no_track = || AdminError::NoSuchTrack {
            identity: identity.to_owned(),
            track: track.to_owned(),
        };
        let track_id = self
            .participants
            .get(&key)
            .and_then(|p| p.published.values().find(|t| t.as_str() == track).cloned())
            .ok_or_else(no_track)?;
        let publication = self.publications.get_mut(&track_id).ok_or_else(no_track)?;
        let changed = publication.muted != muted || publication.held_by_admin != muted;
        publication.muted = muted;
        publication.held_by_admin = muted;
        let detail = track_detail(publication);
        if changed {
            info!(room = %self.id, %identity, track, muted, "track mute set by an admin");
            self.events.emit(
                "track_muted",
                self.id.as_str(),
                serde_json::json!({
                    "identity": identity,
                    "trackId": track_id.to_string(),
                    "muted": muted,
                    "byAdmin": true,
                }),
            );
            let participant_id = self
                .participants
                .get(&key)
                .map(|p| p.id.to_string())
                .unwrap_or_default();
            // Everyone, the publisher included, learns the new state.
            let message = ServerMessage::TrackMuted {
                participant_id,
                track_id: track_id.to_string(),
                muted,
            };
            for p in self.participants.values_mut() {
                p.send(message.clone());
            }
            if !muted {
                // Subscribers' decoders need a fresh keyframe after the gap.
                if let Some(publication) = self.publications.get_mut(&track_id) {
                    publication.last_keyframe_request = None;
                }
                self.request_keyframe(&track_id, now);
            }
        }
        Ok(AdminReply::Track(detail))
    }

    fn admin_grants(
        &mut self,
        identity: &str,
        grants: protocol::Grants,
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        let key = self.key_of(identity)?;
        let Some(p) = self.participants.get_mut(&key) else {
            return Err(AdminError::Unavailable);
        };
        // A recorder stays one (hidden, never publishing) whatever the new grants say.
        let grants = protocol::Grants {
            recorder: grants.recorder || p.grants.recorder,
            ..grants
        }
        .effective();
        let before = std::mem::replace(&mut p.grants, grants.clone());
        info!(room = %self.id, %identity, ?grants, "grants changed by an admin");
        if before.can_publish && !grants.can_publish {
            let tracks: Vec<TrackId> = p.published.values().cloned().collect();
            for track in tracks {
                self.unpublish(&track);
            }
        }
        if before.can_subscribe && !grants.can_subscribe {
            for publication in self.publications.values_mut() {
                let gone: Vec<RTCRtpSenderId> = publication
                    .downtracks
                    .iter()
                    .filter(|d| d.subscriber == key)
                    .map(|d| d.sender_id)
                    .collect();
                publication.downtracks.retain(|d| d.subscriber != key);
                if let Some(sub) = self.participants.get_mut(&key) {
                    for sender in gone {
                        let _ = sub.subscriber.pc().remove_track(sender);
                    }
                }
            }
            self.negotiate_subscriber(key);
        }
        if !before.can_subscribe && grants.can_subscribe {
            let tracks: Vec<TrackId> = self
                .publications
                .values()
                .filter(|pb| pb.owner != key)
                .map(|pb| pb.id.clone())
                .collect();
            for track in tracks {
                self.subscribe(key, &track);
            }
            self.negotiate_subscriber(key);
        }
        self.participant_detail(key, now)
            .map(|d| AdminReply::Participant(Box::new(d)))
            .ok_or(AdminError::Unavailable)
    }

    fn admin_send_data(
        &mut self,
        topic: &str,
        payload: &[u8],
        to: &[String],
        now: Instant,
    ) -> Result<AdminReply, AdminError> {
        for identity in to {
            self.key_of(identity)?;
        }
        let header = protocol::data::DeliveredHeader {
            from: "server".into(),
            from_id: "server".into(),
            topic: (!topic.is_empty()).then(|| topic.to_owned()),
            to: to.to_vec(),
        };
        let frame = bytes::BytesMut::from(&protocol::data::encode_frame(&header, payload)[..]);
        if frame.len() > self.config.max_data_message {
            return Err(AdminError::Invalid(format!(
                "the message is {} bytes framed; the data relay carries at most {}",
                frame.len(),
                self.config.max_data_message
            )));
        }
        let mut delivered = 0;
        for p in self.participants.values_mut() {
            if !to.is_empty() && !to.contains(&p.identity) {
                continue;
            }
            let Some(channel) = p.data.reliable else {
                continue;
            };
            let Some(mut dc) = p.publisher.pc().data_channel(channel) else {
                continue;
            };
            if dc.outstanding_bytes() + frame.len() > self.config.max_queued_data {
                continue;
            }
            if dc.send(now, frame.clone()).is_ok() {
                delivered += 1;
            }
            flush(&mut self.outgoing, &mut p.publisher);
            p.publisher.deadline = p.publisher.pc().poll_timeout();
        }
        Ok(AdminReply::Delivered(delivered))
    }
}

fn track_detail(publication: &Publication) -> TrackDetail {
    let stats = publication.received.snapshot();
    let video = publication.kind == TrackKind::Video;
    TrackDetail {
        id: publication.id.to_string(),
        kind: publication.kind,
        codec: publication.info().codec,
        muted: publication.muted,
        width: stats.dimensions.map(|d| d.0),
        height: stats.dimensions.map(|d| d.1),
        fps: video.then_some(stats.fps),
        bitrate: stats.bitrate,
        packets: stats.packets,
        packets_lost: stats.lost,
        loss_rate: stats.loss_rate,
        jitter_ms: stats.jitter_ms,
    }
}

/// The round-trip time of a connection's selected ICE pair, in milliseconds.
fn selected_pair_rtt(pc: &mut RTCPeerConnection, now: Instant) -> Option<f64> {
    use rtc::statistics::StatsSelector;
    let report = pc.get_stats(now, StatsSelector::None);
    let selected_id = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.clone())
        .filter(|id| !id.is_empty());
    let pair = report.candidate_pairs().find(|pair| match &selected_id {
        Some(id) => pair.stats.id == *id,
        None => pair.nominated,
    });
    let pair = pair?;
    (pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1000.0)
}

/// True when an SDP offer has an audio or video section the offerer would send on.
fn offers_to_send_media(sdp: &str) -> bool {
    let mut in_media = false;
    let mut sends = false;
    let mut any = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            if in_media && sends {
                any = true;
            }
            in_media = rest.starts_with("audio") || rest.starts_with("video");
            sends = true; // sendrecv is the default direction
        } else if in_media {
            match line {
                "a=recvonly" | "a=inactive" => sends = false,
                "a=sendonly" | "a=sendrecv" => sends = true,
                _ => {}
            }
        }
    }
    any || (in_media && sends)
}

/// Lists every video codec we support on a new video down-track's m-line, the publication's
/// own first. The engine fixes a connection's video codecs at its first negotiation, from the
/// first video m-line; offering only the first track's codec there would leave a subscriber
/// who first received VP8 unable ever to receive H.264 (and the reverse). Once the first
/// negotiation is done, the engine refuses codecs outside it: the m-line then carries the
/// track's codec alone, which was negotiated already.
fn offer_every_video_codec(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
    own: &rtc::rtp_transceiver::rtp_sender::RTCRtpCodec,
    allowed: &[String],
) {
    let mut codecs: Vec<_> = crate::peer::supported_codecs()
        .into_iter()
        .filter(|(codec, kind)| {
            *kind == RtpCodecKind::Video && crate::peer::codec_allowed(codec, *kind, allowed)
        })
        .map(|(codec, _)| codec)
        .collect();
    let is_own = |c: &rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters| {
        c.rtp_codec.mime_type.eq_ignore_ascii_case(&own.mime_type)
            && c.rtp_codec.sdp_fmtp_line == own.sdp_fmtp_line
    };
    codecs.sort_by_key(|c| !is_own(c));
    if let Some(mut transceiver) = pc.rtp_transceiver(sender.into())
        && let Err(e) = transceiver.set_codec_preferences(codecs)
    {
        debug!(error = %e, "video codecs already negotiated; offering the track's own");
    }
}

#[cfg(test)]
mod tests {
    use super::{offers_to_send_media, parse_candidate};

    #[test]
    fn candidate_lines_give_address_and_type() {
        assert_eq!(
            parse_candidate("a=candidate:1 1 udp 2122260223 192.0.2.7 54400 typ host generation 0"),
            Some(("192.0.2.7:54400".parse().unwrap(), "host"))
        );
        assert_eq!(
            parse_candidate(
                "candidate:9 1 udp 41885439 203.0.113.5 61000 typ relay raddr 0.0.0.0 rport 0"
            ),
            Some(("203.0.113.5:61000".parse().unwrap(), "relay"))
        );
        assert_eq!(
            parse_candidate("candidate:1 1 udp 1 host.local 5 typ host"),
            None
        );
        assert_eq!(parse_candidate("a=mid:0"), None);
        assert_eq!(
            parse_candidate("candidate:1 1 udp 1 192.0.2.1 5 typ weird"),
            None
        );
    }

    #[test]
    fn detects_offers_that_send_media() {
        let send = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\nm=application 9 x\r\n";
        assert!(offers_to_send_media(send));
        let recv = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        assert!(!offers_to_send_media(recv));
        let data = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert!(!offers_to_send_media(data));
        let default_dir = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
        assert!(offers_to_send_media(default_dir));
    }
}
