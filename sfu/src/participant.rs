//! One participant of a room: identity, grants from its token, its signaling queue with
//! back-pressure, its two transports (publisher and subscriber), the tracks it publishes and the
//! candidates it signalled. It never blocks: a participant whose signaling connection cannot keep
//! up with its own messages is marked for removal; others' state changes are coalesced, so they
//! never can get it removed.

mod signal_queue;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use protocol::{IceCandidate, LeaveReason, ServerMessage, Target, TrackKind, TrackSource};
use tokio::sync::mpsc;
use tracing::warn;

use crate::data_channels::DataChannels;
use crate::downlink::Downlink;
use crate::ids::{ParticipantId, TrackId};
use crate::negotiator::Negotiator;
use crate::session::{JoinParams, SessionEvent};
use crate::transport::Transport;
use signal_queue::{SignalQueue, StateKey};

/// Events queued for one participant's connection before it counts as stuck.
pub(crate) const EVENT_QUEUE: usize = 512;
/// Most track sources remembered per participant.
const MAX_SOURCES: usize = 16;
/// Most remembered candidates per participant.
const MAX_REMEMBERED_CANDIDATES: usize = 64;

pub(crate) struct Participant {
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    pub grants: protocol::Grants,
    events: SignalQueue,
    pub publisher: Transport,
    pub subscriber: Transport,
    /// The publisher connection's track ids → our publication ids.
    pub published: HashMap<String, TrackId>,
    /// Mute state the client asked for before the track was published.
    pub wanted_mute: [bool; 2],
    /// Its downlink: bandwidth estimate and layer allocation.
    pub downlink: Downlink,
    /// What the client said each of its tracks is (by its track id), from its offers.
    pub sources: HashMap<String, TrackSource>,
    /// The subscriber connection's offer/answer state.
    pub negotiator: Negotiator,
    /// Set when the participant must be removed after the current pass (stuck or failed).
    pub doomed: Option<LeaveReason>,
    /// The data channels it opened on its publisher connection.
    pub data: DataChannels,
    /// When it joined, Unix seconds.
    pub joined_at: u64,
    /// A WHEP viewer: its client offered its subscriber connection once, and it receives only
    /// the tracks chosen then (never subscribed to new ones, never offered to).
    pub viewer: bool,
    /// The candidates it signalled (in SDP or trickled): address → type.
    candidate_types: HashMap<SocketAddr, &'static str>,
}

/// Index of a track kind in per-kind arrays.
pub(crate) fn kind_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Audio => 0,
        TrackKind::Video => 1,
    }
}

impl Participant {
    /// A participant with its two transports; the receiver is its signaling connection's end.
    pub fn new(
        id: ParticipantId,
        params: &JoinParams,
        publisher: Transport,
        subscriber: Transport,
    ) -> (Participant, mpsc::Receiver<SessionEvent>) {
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let participant = Participant {
            id,
            identity: params.identity.clone(),
            name: params.name.clone(),
            grants: params.grants.clone(),
            events: SignalQueue::new(events),
            publisher,
            subscriber,
            published: HashMap::new(),
            wanted_mute: [false; 2],
            sources: HashMap::new(),
            downlink: Downlink::new(std::time::Instant::now()),
            negotiator: Negotiator::default(),
            doomed: None,
            data: DataChannels::default(),
            joined_at: crate::clock::unix_now(),
            viewer: false,
            candidate_types: HashMap::new(),
        };
        (participant, events_rx)
    }

    /// Marks the participant for removal at the end of the turn after a panic in one of its
    /// connections' engines, and stops timing its connections (their state is unknown).
    pub fn doom_after_panic(&mut self) {
        self.doomed.get_or_insert(LeaveReason::Disconnected);
        self.publisher.stop_timers();
        self.subscriber.stop_timers();
    }

    pub fn transport(&mut self, subscriber: bool) -> &mut Transport {
        if subscriber {
            &mut self.subscriber
        } else {
            &mut self.publisher
        }
    }

    /// Notes what the client's tracks are, from an offer (bounded: a client names at most
    /// `MAX_SOURCES` tracks; the newest offer's names win).
    pub fn note_sources(&mut self, sources: std::collections::BTreeMap<String, TrackSource>) {
        for (track, source) in sources {
            if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&track) {
                warn!(participant = %self.id, "too many track sources named; ignoring the rest");
                break;
            }
            self.sources.insert(track, source);
        }
    }

    /// Queues a protocol message for the client.
    pub fn send(&mut self, message: ServerMessage) {
        self.send_event(SessionEvent::Message(message));
    }

    /// Queues an event for the signaling connection; a full queue dooms the participant.
    pub fn send_event(&mut self, event: SessionEvent) {
        if self.events.push(event).is_err() && self.doomed.is_none() {
            warn!(participant = %self.id, "signaling connection is not keeping up; removing it");
            self.doomed = Some(LeaveReason::Disconnected);
        }
    }

    /// Queues a state change of another participant's track (`trackMuted`), coalesced with the
    /// earlier changes of the same (participant, kind) that the client has not read yet: the
    /// newest state always arrives, and however fast the source toggles, this never fills the
    /// queue or dooms this participant.
    pub fn send_state(&mut self, source: u64, kind: TrackKind, message: ServerMessage) {
        self.events.push_state(StateKey { source, kind }, message);
    }

    /// Passes coalesced state changes on once the client has read the earlier ones.
    pub fn flush_states(&mut self) {
        self.events.flush();
    }

    /// Whether coalesced state changes wait for the client to read earlier ones.
    pub fn has_waiting_states(&self) -> bool {
        self.events.has_waiting()
    }

    /// Sends our host candidates for one connection as `candidate` messages, once, right after
    /// its first local description.
    pub fn trickle_candidates(&mut self, target: Target) {
        let Some(lines) = self
            .transport(target == Target::Subscriber)
            .candidates_to_trickle()
        else {
            return;
        };
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

    /// Remembers the type of each candidate in `text` (an SDP or one candidate line).
    pub fn remember_candidates(&mut self, text: &str) {
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
    pub fn candidate_type(&self) -> Option<String> {
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
fn parse_candidate(line: &str) -> Option<(SocketAddr, &'static str)> {
    let line = line.trim().trim_start_matches("a=");
    let rest = line.strip_prefix("candidate:")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ip: IpAddr = fields.get(4)?.parse().ok()?;
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
    Some((SocketAddr::new(ip, port), typ))
}

#[cfg(test)]
mod tests {
    use super::parse_candidate;

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
}
