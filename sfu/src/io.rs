//! The media plane's I/O vocabulary: a datagram on its way into a room, where a peer
//! connection's datagrams go, and the datagrams a room has produced but not yet sent. A leaf
//! module: it imports nothing else of this crate, so sockets, rooms and the in-memory driver can
//! all use it without importing each other in a circle. It never does I/O itself.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::mpsc;

/// Identifies one peer connection inside a room: participant key and which of its two PCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PcKey {
    pub participant: u64,
    pub subscriber: bool,
}

/// A datagram on its way to a room.
pub(crate) struct Datagram {
    pub pc: PcKey,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub received_at: Instant,
    pub data: BytesMut,
}

/// What the media sockets hand a room.
pub(crate) enum RoomInput {
    Datagram(Datagram),
    /// A frame from another node serving a part of the room (`span.rs`).
    Span(SpanFrame),
}

/// A frame that arrived over the link from another node.
pub(crate) struct SpanFrame {
    pub from: std::sync::Arc<str>,
    pub frame: bytes::Bytes,
}

/// Where the datagrams of one peer connection go.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub room: mpsc::Sender<RoomInput>,
    pub pc: PcKey,
}

/// A change to a socket reader's routing table.
pub(crate) enum RouteUpdate {
    Register { ufrag: String, route: Route },
    Unregister { ufrag: String },
}

/// Datagrams a room produced while handling one input, not yet on the wire. The room sends
/// them together when it has finished with the input (`MediaSockets::send_all`): a video
/// packet for 30 subscribers costs one system call instead of 30.
#[derive(Default)]
pub(crate) struct Outgoing {
    pub datagrams: Vec<OutgoingDatagram>,
}

/// One datagram waiting in [`Outgoing`].
pub(crate) struct OutgoingDatagram {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub data: BytesMut,
}

impl Outgoing {
    pub fn push(&mut self, local: SocketAddr, peer: SocketAddr, data: BytesMut) {
        self.datagrams.push(OutgoingDatagram { local, peer, data });
    }
}

/// One datagram a room driven by hand sent.
#[derive(Debug, Clone)]
pub struct SentDatagram {
    /// The room's address.
    pub from: SocketAddr,
    /// The client's address, as its connection last saw it.
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// What a room driven by hand sent: counted always, kept when asked to.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub keep: bool,
    pub kept: Vec<SentDatagram>,
    pub datagrams: u64,
    pub bytes: u64,
}

impl Outbox {
    pub(crate) fn push(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.datagrams += 1;
        self.bytes += data.len() as u64;
        if self.keep {
            self.kept.push(SentDatagram {
                from,
                to,
                data: data.to_vec(),
            });
        }
    }
}
