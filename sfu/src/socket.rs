//! The media sockets: one UDP port shared by every peer connection of every room.
//!
//! One socket is bound per announced address (all on the same port), and one task reads each
//! socket, in batches, with UDP GRO where the kernel has it (`receive.rs`); rooms send through
//! them, with UDP GSO where the kernel has it (`send.rs`). The reader routes a datagram by its
//! remote address to the room that owns the peer connection; an unknown address is learned
//! from the USERNAME of an ICE connectivity check, whose first half is the local ufrag we gave
//! that peer connection.
//! Routing tables belong to the reading task alone (no lock per packet); rooms register and
//! unregister ufrags through a channel. Datagrams go to rooms with `try_send`: a busy room
//! loses a datagram (UDP semantics), the socket task never blocks.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::io::{Datagram, Outbox, Outgoing, RoomInput, Route, RouteUpdate};

mod receive;
mod send;
#[cfg(target_os = "linux")]
mod udp_option;

use send::{Gso, send_batch};

/// One bound media socket.
struct Bound {
    /// The address announced in candidates and used as the ICE local address.
    announced: SocketAddr,
    socket: Arc<UdpSocket>,
    /// Whether it sends runs of equal datagrams to one peer as one GSO message.
    gso: Gso,
}

/// The bound sockets, shared by rooms for sending. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct MediaSockets {
    sockets: Arc<Vec<Bound>>,
    updates: Arc<Vec<mpsc::UnboundedSender<RouteUpdate>>>,
    /// Set instead of sockets for a room driven by hand (the in-memory driver): the address it
    /// announces, and where what it sends is kept.
    memory: Option<(SocketAddr, Arc<Mutex<Outbox>>)>,
}

impl MediaSockets {
    /// Binds `port` on each announced address (or on 0.0.0.0 for an announced address that is
    /// not local, such as a public IP in front of a NAT) and starts one reader per socket.
    pub async fn bind(
        port: u16,
        announce: Option<IpAddr>,
        cancel: CancellationToken,
    ) -> io::Result<Self> {
        let mut bound = Vec::new();
        let targets: Vec<(SocketAddr, SocketAddr)> = match announce {
            Some(ip) => {
                let local = local_ipv4s().contains(&ip);
                let bind_ip = if local {
                    ip
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                vec![(SocketAddr::new(bind_ip, port), SocketAddr::new(ip, port))]
            }
            None => local_ipv4s()
                .into_iter()
                .map(|ip| (SocketAddr::new(ip, port), SocketAddr::new(ip, port)))
                .collect(),
        };
        for (bind_addr, announced) in targets {
            let socket = bind_media(bind_addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind the media port on {bind_addr}: {e}"),
                )
            })?;
            let announced = if port == 0 {
                SocketAddr::new(announced.ip(), socket.local_addr()?.port())
            } else {
                announced
            };
            let gso = Gso::probe(&socket);
            bound.push(Bound {
                announced,
                socket: Arc::new(socket),
                gso,
            });
        }
        if bound.is_empty() {
            return Err(io::Error::other(
                "no IPv4 interface to bind the media port on",
            ));
        }
        let mut updates = Vec::new();
        for b in &bound {
            let (tx, rx) = mpsc::unbounded_channel();
            updates.push(tx);
            tokio::spawn(read_loop(b.socket.clone(), b.announced, rx, cancel.clone()));
        }
        Ok(MediaSockets {
            sockets: Arc::new(bound),
            updates: Arc::new(updates),
            memory: None,
        })
    }

    /// No socket: `announced` is the one address announced, and what is sent goes to `outbox`.
    /// Routes need no registering, since whoever drives the room says where a datagram is for.
    pub(crate) fn in_memory(announced: SocketAddr, outbox: Arc<Mutex<Outbox>>) -> Self {
        MediaSockets {
            sockets: Arc::new(Vec::new()),
            updates: Arc::new(Vec::new()),
            memory: Some((announced, outbox)),
        }
    }

    /// The addresses to announce as host candidates.
    pub fn announced(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets
            .iter()
            .map(|b| b.announced)
            .chain(self.memory.iter().map(|(a, _)| *a))
    }

    /// Sends what a room queued, without waiting: consecutive datagrams from the same address
    /// go out in batches, one system call each where the platform allows it, and a run of
    /// equal datagrams to one peer as one GSO message (`send.rs`). A full socket buffer drops a
    /// datagram like the network would.
    pub fn send_all(&self, outgoing: &mut Outgoing) {
        if outgoing.datagrams.is_empty() {
            return;
        }
        if let Some((_, outbox)) = &self.memory {
            let mut outbox = outbox
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for d in &outgoing.datagrams {
                outbox.push(d.local, d.peer, &d.data);
            }
            outgoing.datagrams.clear();
            return;
        }
        let mut rest = &outgoing.datagrams[..];
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|d| d.local == first.local).count();
            let bound = self
                .sockets
                .iter()
                .find(|b| b.announced == first.local)
                .or_else(|| self.sockets.first());
            if let Some(b) = bound {
                send_batch(&b.socket, &b.gso, &rest[..run]);
            }
            rest = &rest[run..];
        }
        outgoing.datagrams.clear();
    }

    pub fn register(&self, ufrag: &str, route: Route) {
        for tx in self.updates.iter() {
            let _ = tx.send(RouteUpdate::Register {
                ufrag: ufrag.to_owned(),
                route: route.clone(),
            });
        }
    }

    pub fn unregister(&self, ufrag: &str) {
        for tx in self.updates.iter() {
            let _ = tx.send(RouteUpdate::Unregister {
                ufrag: ufrag.to_owned(),
            });
        }
    }
}

/// What the media socket asks the kernel to buffer each way (the kernel caps it at
/// `net.core.wmem_max` / `rmem_max`). Every peer's datagrams share one socket, and a datagram
/// counts against the socket's send buffer until it leaves the machine: with the default
/// 212 KB, a local queue in front of one thin receiver (a traffic shaper on this host holding
/// a thousand of its packets) filled the buffer and every other receiver's datagrams were
/// refused with it.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Binds one media socket, non-blocking, with `SOCKET_BUFFER_BYTES` asked for each way.
fn bind_media(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    for (what, result) in [
        ("send", socket.set_send_buffer_size(SOCKET_BUFFER_BYTES)),
        ("receive", socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES)),
    ] {
        if let Err(error) = result {
            warn!(%error, "the media socket keeps the kernel's default {what} buffer");
        }
    }
    debug!(
        send = socket.send_buffer_size().ok(),
        receive = socket.recv_buffer_size().ok(),
        "media socket buffers"
    );
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Every IPv4 address of this machine's interfaces, loopback included (browsers on the same
/// machine use it, other machines use the others).
pub(crate) fn local_ipv4s() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4())
                .collect()
        })
        .unwrap_or_default();
    if ips.is_empty() {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ips.sort();
    ips.dedup();
    ips
}

/// Batches one reader takes per wake-up before it looks at route updates and cancellation
/// again: a socket that never runs dry cannot starve them.
const BATCHES_PER_WAKE: usize = 8;

async fn read_loop(
    socket: Arc<UdpSocket>,
    announced: SocketAddr,
    mut updates: mpsc::UnboundedReceiver<RouteUpdate>,
    cancel: CancellationToken,
) {
    let mut routes = Routes::default();
    let mut batch = receive::Batch::new(receive::enable_gro(&socket));
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            update = updates.recv() => match update {
                Some(update) => routes.update(update),
                None => break,
            },
            ready = socket.readable() => {
                if let Err(e) = ready {
                    warn!(error = %e, "media socket readiness error");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
                for _ in 0..BATCHES_PER_WAKE {
                    match batch.receive(&socket) {
                        Ok(0) => break,
                        Ok(n) => {
                            let received_at = Instant::now();
                            for (packet, peer) in batch.datagrams() {
                                routes.deliver(announced, packet, peer, received_at);
                            }
                            if n < receive::BATCH {
                                break;
                            }
                        }
                        Err(e) => {
                            // ICMP errors surface here on some systems; keep serving.
                            debug!(error = %e, "media socket receive error");
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// A reader's routing tables: by remote address, learned from the ufrag of a connectivity
/// check. Owned by the reading task alone.
#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, Route>,
    by_peer: HashMap<SocketAddr, Route>,
    dropped: u64,
}

impl Routes {
    fn update(&mut self, update: RouteUpdate) {
        match update {
            RouteUpdate::Register { ufrag, route } => {
                self.by_ufrag.insert(ufrag, route);
            }
            RouteUpdate::Unregister { ufrag } => {
                if let Some(route) = self.by_ufrag.remove(&ufrag) {
                    self.by_peer
                        .retain(|_, r| !(r.pc == route.pc && r.room.same_channel(&route.room)));
                }
            }
        }
    }

    /// Hands one datagram to the room of its peer connection, without waiting: a room that is
    /// behind loses it.
    fn deliver(&mut self, local: SocketAddr, packet: &[u8], peer: SocketAddr, at: Instant) {
        if packet.is_empty() {
            return;
        }
        let route = match self.by_peer.get(&peer) {
            Some(r) => r,
            None => {
                let Some(route) = stun_local_ufrag(packet).and_then(|u| self.by_ufrag.get(u))
                else {
                    return;
                };
                self.by_peer.entry(peer).or_insert_with(|| route.clone())
            }
        };
        let datagram = Datagram {
            pc: route.pc,
            local,
            peer,
            received_at: at,
            data: BytesMut::from(packet),
        };
        match route.room.try_send(RoomInput::Datagram(datagram)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    warn!(%peer, dropped = self.dropped, "a room is behind; dropping media datagrams");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.by_peer.remove(&peer);
            }
        }
    }
}

/// For a STUN Binding request, the first half of its USERNAME (`local:remote`), which is the
/// ufrag we chose for the peer connection. `None` for anything else or anything malformed.
pub(crate) fn stun_local_ufrag(packet: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if packet.len() < 20 || packet[0] & 0xc0 != 0 || packet[4..8] != MAGIC_COOKIE {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let body = packet.get(20..20 + body_len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[i], body[i + 1]]);
        let len = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
        let value = body.get(i + 4..i + 4 + len)?;
        if typ == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&0x0006u16.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut p = vec![0x00, 0x01];
        p.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        p.extend_from_slice(&[7; 12]);
        p.extend_from_slice(&attrs);
        p
    }

    #[tokio::test]
    async fn the_media_socket_asks_for_large_buffers() {
        let socket = bind_media("127.0.0.1:0".parse().unwrap()).unwrap();
        let sock = socket2::SockRef::from(&socket);
        let granted = sock.send_buffer_size().unwrap();
        // The kernel doubles what it grants, capped by net.core.wmem_max.
        let cap = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(SOCKET_BUFFER_BYTES);
        assert!(
            granted >= SOCKET_BUFFER_BYTES.min(cap),
            "send buffer {granted} (cap {cap})"
        );
    }

    #[test]
    fn finds_the_local_ufrag_in_a_binding_request() {
        let p = binding_request(b"srvufrag:cli");
        assert_eq!(stun_local_ufrag(&p), Some("srvufrag"));
    }

    #[test]
    fn ignores_non_stun_and_truncated_packets() {
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&[]), None);
        let mut p = binding_request(b"abc:def");
        p.truncate(26);
        assert_eq!(stun_local_ufrag(&p), None);
        // Length field larger than the packet.
        let mut p = binding_request(b"abc:def");
        p[3] = 0xff;
        assert_eq!(stun_local_ufrag(&p), None);
    }
}
