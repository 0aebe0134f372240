//! One peer connection of a participant, as the room drives it: datagrams in, datagrams out to
//! the room's outgoing batch, its next timeout, remote candidates that arrive before the remote
//! description, and whether our own candidates have been trickled. It never sends on a socket
//! and never reads the clock: the room passes `now` in and sends the batch itself.

use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::io::{Datagram, Outgoing};
use crate::peer::ServerPeer;

/// Remote candidates held while a connection has no remote description yet.
const MAX_EARLY_CANDIDATES: usize = 64;

/// One server-side peer connection of a participant.
pub(crate) struct Transport {
    inner: ServerPeer,
    /// When the connection wants its timeout handled next.
    pub deadline: Option<Instant>,
    early_candidates: Vec<RTCIceCandidateInit>,
    /// Whether ICE and DTLS are up.
    pub connected: bool,
    /// Since when a connection that was up has been down (`None`: up, or never up yet).
    pub down_since: Option<Instant>,
    /// When we last restarted ICE on it.
    pub restarted_at: Option<Instant>,
    /// Whether our candidates have been trickled to the client.
    trickled: bool,
    /// Where the client's datagrams last came from.
    pub remote: Option<SocketAddr>,
    /// Every local ICE ufrag this connection has had (a new one per ICE restart): the socket
    /// routes datagrams to it by these.
    ufrags: Vec<String>,
    /// Packets were written to it since it was last flushed (see [`Transport::wrote`]).
    unflushed: bool,
}

/// What became of a remote candidate.
pub(crate) enum CandidateOutcome {
    Added,
    /// Kept until the remote description arrives (or dropped past the bound).
    Held,
}

impl Transport {
    pub fn new(inner: ServerPeer) -> Self {
        Transport {
            inner,
            deadline: None,
            early_candidates: Vec::new(),
            connected: false,
            down_since: None,
            restarted_at: None,
            trickled: false,
            remote: None,
            unflushed: false,
            ufrags: Vec::new(),
        }
    }

    pub fn pc(&mut self) -> &mut RTCPeerConnection {
        &mut self.inner.pc
    }

    /// The local ICE ufrags that route datagrams to this connection.
    pub fn ufrags(&self) -> &[String] {
        &self.ufrags
    }

    /// Notes the local ufrag of an SDP we are about to send; returns it when it is new (the
    /// first description, or an ICE restart), so the caller routes datagrams by it.
    pub fn learn_local_ufrag(&mut self, sdp: &str) -> Option<String> {
        let ufrag = sdp
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))?
            .to_owned();
        if self.ufrags.contains(&ufrag) {
            return None;
        }
        self.ufrags.push(ufrag.clone());
        Some(ufrag)
    }

    /// Hands one datagram from the client to the connection.
    pub fn feed(&mut self, d: Datagram) -> Result<(), rtc::shared::error::Error> {
        self.remote = Some(d.peer);
        self.inner.pc.handle_read(TaggedBytesMut {
            now: d.received_at,
            transport: TransportContext {
                local_addr: d.local,
                peer_addr: d.peer,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: d.data,
        })
    }

    /// Queues every datagram the connection wants to send; the room sends the queue when it
    /// has finished with the current input.
    pub fn flush(&mut self, outgoing: &mut Outgoing) {
        self.unflushed = false;
        while let Some(out) = self.inner.pc.poll_write() {
            outgoing.push(
                out.transport.local_addr,
                out.transport.peer_addr,
                out.message,
            );
        }
    }

    /// Notes that packets were written to the connection and are to be flushed later, once
    /// for all that a turn writes ([`Transport::flush_if_written`]): a burst (a keyframe's
    /// packets) then passes the engine's pipeline in one sweep instead of one sweep a packet.
    pub fn wrote(&mut self) {
        self.unflushed = true;
    }

    /// Whether packets were written since the last flush.
    pub fn has_unflushed(&self) -> bool {
        self.unflushed
    }

    /// [`Transport::flush_and_reschedule`] if anything was written since the last flush.
    pub fn flush_if_written(&mut self, outgoing: &mut Outgoing) {
        if self.unflushed {
            self.flush_and_reschedule(outgoing);
        }
    }

    /// [`Transport::flush`], then takes the connection's next timeout.
    pub fn flush_and_reschedule(&mut self, outgoing: &mut Outgoing) {
        self.flush(outgoing);
        self.reschedule();
    }

    /// Takes the connection's next timeout.
    pub fn reschedule(&mut self) {
        self.deadline = self.inner.pc.poll_timeout();
    }

    /// Adds a trickled remote candidate, or holds it while there is no remote description.
    pub fn add_remote_candidate(
        &mut self,
        init: RTCIceCandidateInit,
    ) -> Result<CandidateOutcome, rtc::shared::error::Error> {
        if self.inner.pc.remote_description().is_none() {
            if self.early_candidates.len() < MAX_EARLY_CANDIDATES {
                self.early_candidates.push(init);
            }
            return Ok(CandidateOutcome::Held);
        }
        self.inner.pc.add_remote_candidate(init)?;
        Ok(CandidateOutcome::Added)
    }

    /// Adds the candidates held for want of a remote description (call after setting it).
    pub fn add_held_candidates(&mut self) {
        for c in std::mem::take(&mut self.early_candidates) {
            let _ = self.inner.pc.add_remote_candidate(c);
        }
    }

    /// Our host candidates, the first time this is asked (they go to the client once, right
    /// after the connection's first local description); `None` afterwards.
    pub fn candidates_to_trickle(&mut self) -> Option<Vec<String>> {
        (!std::mem::replace(&mut self.trickled, true)).then(|| self.inner.candidates.clone())
    }

    /// Stops timing the connection (its state is unknown after a panic in the engine).
    pub fn stop_timers(&mut self) {
        self.deadline = None;
    }
}
