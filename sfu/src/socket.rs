//! The media sockets: one UDP port shared by every peer connection of every room.
//!
//! One socket is bound per announced address (all on the same port), and one task reads each
//! socket. It routes a datagram by its remote address to the room that owns the peer connection;
//! an unknown address is learned from the USERNAME of an ICE connectivity check, whose first half
//! is the local ufrag we gave that peer connection. Routing tables belong to the reading task
//! alone (no lock per packet); rooms register and unregister ufrags through a channel.
//! Datagrams go to rooms with `try_send`: a busy room loses a datagram (UDP semantics), the
//! socket task never blocks.

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

use crate::memory::Outbox;
use crate::room::RoomInput;

/// Identifies one peer connection inside a room: participant key and which of its two PCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PcKey {
    pub participant: u64,
    pub subscriber: bool,
}

/// Where the datagrams of one peer connection go.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub room: mpsc::Sender<RoomInput>,
    pub pc: PcKey,
}

pub(crate) enum RouteUpdate {
    Register { ufrag: String, route: Route },
    Unregister { ufrag: String },
}

/// A datagram on its way to a room.
pub(crate) struct Datagram {
    pub pc: PcKey,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub received_at: Instant,
    pub data: BytesMut,
}

/// The bound sockets, shared by rooms for sending. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct MediaSockets {
    /// (address announced in candidates and used as the ICE local address, socket)
    sockets: Arc<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    updates: Arc<Vec<mpsc::UnboundedSender<RouteUpdate>>>,
    /// Set instead of sockets for a room driven by hand ([`crate::memory`]): the address it
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
            let socket = UdpSocket::bind(bind_addr).await.map_err(|e| {
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
            bound.push((announced, Arc::new(socket)));
        }
        if bound.is_empty() {
            return Err(io::Error::other(
                "no IPv4 interface to bind the media port on",
            ));
        }
        let mut updates = Vec::new();
        for (announced, socket) in &bound {
            let (tx, rx) = mpsc::unbounded_channel();
            updates.push(tx);
            tokio::spawn(read_loop(socket.clone(), *announced, rx, cancel.clone()));
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
            .map(|(a, _)| *a)
            .chain(self.memory.iter().map(|(a, _)| *a))
    }

    /// Sends without waiting; a full socket buffer drops the datagram like the network would.
    pub fn send(&self, local: SocketAddr, peer: SocketAddr, data: &[u8]) {
        if let Some((_, outbox)) = &self.memory {
            outbox
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(local, peer, data);
            return;
        }
        let socket = self
            .sockets
            .iter()
            .find(|(a, _)| *a == local)
            .or_else(|| self.sockets.first())
            .map(|(_, s)| s);
        if let Some(socket) = socket
            && let Err(e) = socket.try_send_to(data, peer)
            && e.kind() != io::ErrorKind::WouldBlock
        {
            debug!(%peer, error = %e, "media send failed");
        }
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

async fn read_loop(
    socket: Arc<UdpSocket>,
    announced: SocketAddr,
    mut updates: mpsc::UnboundedReceiver<RouteUpdate>,
    cancel: CancellationToken,
) {
    let mut by_ufrag: HashMap<String, Route> = HashMap::new();
    let mut by_peer: HashMap<SocketAddr, Route> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut dropped: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            update = updates.recv() => match update {
                Some(RouteUpdate::Register { ufrag, route }) => {
                    by_ufrag.insert(ufrag, route);
                }
                Some(RouteUpdate::Unregister { ufrag }) => {
                    if let Some(route) = by_ufrag.remove(&ufrag) {
                        by_peer.retain(|_, r| !(r.pc == route.pc && r.room.same_channel(&route.room)));
                    }
                }
                None => break,
            },
            received = socket.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(v) => v,
                    Err(e) => {
                        // ICMP errors surface here on some systems; keep serving.
                        debug!(error = %e, "media socket receive error");
                        continue;
                    }
                };
                let packet = &buf[..n];
                let route = match by_peer.get(&peer) {
                    Some(r) => r.clone(),
                    None => {
                        let Some(route) = stun_local_ufrag(packet).and_then(|u| by_ufrag.get(u)) else {
                            continue;
                        };
                        by_peer.insert(peer, route.clone());
                        route.clone()
                    }
                };
                let datagram = Datagram {
                    pc: route.pc,
                    local: announced,
                    peer,
                    received_at: Instant::now(),
                    data: BytesMut::from(packet),
                };
                match route.room.try_send(RoomInput::Datagram(datagram)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            warn!(%peer, dropped, "a room is behind; dropping media datagrams");
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        by_peer.remove(&peer);
                    }
                }
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
