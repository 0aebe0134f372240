//! How replies and relayed packets reach one client: a UDP datagram or a frame queued for a
//! TCP/TLS connection's writer. Sending never waits; it never reads from a client.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Frames queued for one stream client before more are dropped.
const STREAM_QUEUE: usize = 1024;
/// Bytes queued for one stream client before relayed packets are dropped.
const STREAM_QUEUE_BYTES: usize = 1024 * 1024;

/// How replies and relayed packets reach one client.
#[derive(Debug, Clone)]
pub(super) enum ClientLink {
    /// Datagrams from the shared listener socket.
    Udp {
        socket: Arc<UdpSocket>,
        client: SocketAddr,
    },
    /// Frames queued for the connection's writer task.
    Stream { frames: StreamQueue },
}

/// The frames waiting for one TCP/TLS client's writer task, bounded in bytes.
#[derive(Debug, Clone)]
pub(super) struct StreamQueue {
    frames: mpsc::Sender<Bytes>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl StreamQueue {
    pub(super) fn new() -> (Self, mpsc::Receiver<Bytes>) {
        let (frames, receiver) = mpsc::channel(STREAM_QUEUE);
        let queue = Self {
            frames,
            queued_bytes: Arc::default(),
        };
        (queue, receiver)
    }

    /// Queues a copy of `frame`; `false` (dropped) if the client is this far behind.
    pub(super) fn push(&self, frame: &[u8]) -> bool {
        use std::sync::atomic::Ordering;
        if self.queued_bytes.load(Ordering::Relaxed) + frame.len() > STREAM_QUEUE_BYTES {
            return false;
        }
        self.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed);
        let sent = self.frames.try_send(Bytes::copy_from_slice(frame)).is_ok();
        if !sent {
            self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        }
        sent
    }

    /// The counter the writer lowers as it takes frames off the queue.
    pub(super) fn byte_counter(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        Arc::clone(&self.queued_bytes)
    }
}

impl ClientLink {
    pub(super) fn is_stream(&self) -> bool {
        matches!(self, ClientLink::Stream { .. })
    }

    /// Sends without waiting; `false` if the packet had to be dropped.
    pub(super) fn send(&self, frame: &[u8]) -> bool {
        match self {
            ClientLink::Udp { socket, client } => socket.try_send_to(frame, *client).is_ok(),
            ClientLink::Stream { frames } => frames.push(frame),
        }
    }
}

/// Where a listener's packets come from, to make a [`ClientLink`] when one is needed.
pub(super) enum LinkSource<'a> {
    Udp(&'a Arc<UdpSocket>),
    Stream(&'a StreamQueue),
}

impl LinkSource<'_> {
    pub(super) fn link(&self, client: SocketAddr) -> ClientLink {
        match self {
            LinkSource::Udp(socket) => ClientLink::Udp {
                socket: Arc::clone(socket),
                client,
            },
            LinkSource::Stream(frames) => ClientLink::Stream {
                frames: (*frames).clone(),
            },
        }
    }
}
