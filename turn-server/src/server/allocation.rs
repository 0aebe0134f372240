//! One allocation: the state its listener owns, its relayed socket, and the task that relays
//! peer→client packets. It never parses client requests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::link::ClientLink;
use super::shared::Shared;
use crate::config::TurnConfig;
use crate::limits::{QuotaTicket, TokenBucket};
use crate::stats::RelayStats;
use crate::wire;

/// How long a permission lives (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel bindings the relay task mirrors before it drops expired ones (every number in
/// the channel range, twice).
const MIRRORED_CHANNELS: usize = 2 * (wire::MAX_CHANNEL - wire::MIN_CHANNEL + 1) as usize;

/// A change the relay task mirrors.
#[derive(Debug)]
pub(super) enum RelayUpdate {
    Permission(IpAddr, Instant),
    Channel(SocketAddr, u16, Instant),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ChannelBinding {
    pub(super) peer: SocketAddr,
    pub(super) expires: Instant,
}

/// One allocation, owned by the listener (or connection) its client talks to.
pub(super) struct Allocation {
    pub(super) username: String,
    pub(super) relay: Arc<UdpSocket>,
    pub(super) relayed: SocketAddr,
    pub(super) expires: Instant,
    pub(super) permissions: HashMap<IpAddr, Instant>,
    pub(super) channels: HashMap<u16, ChannelBinding>,
    pub(super) peer_channels: HashMap<SocketAddr, u16>,
    pub(super) updates: mpsc::UnboundedSender<RelayUpdate>,
    pub(super) allocate_transaction: [u8; 12],
    pub(super) allocate_response: Vec<u8>,
    pub(super) bucket: TokenBucket,
    pub(super) stop: CancellationToken,
    pub(super) _quota: QuotaTicket,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Allocation {
    pub(super) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .get(&ip)
            .is_some_and(|expires| *expires > now)
    }

    pub(super) fn install_permission(&mut self, ip: IpAddr, now: Instant) {
        let expires = now + PERMISSION_LIFETIME;
        self.permissions.insert(ip, expires);
        let _ = self.updates.send(RelayUpdate::Permission(ip, expires));
    }

    pub(super) fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|_, expires| *expires > now);
        let peer_channels = &mut self.peer_channels;
        self.channels.retain(|_, binding| {
            let live = binding.expires > now;
            if !live {
                peer_channels.remove(&binding.peer);
            }
            live
        });
    }
}

/// Binds a relayed socket on a random port of the configured range.
pub(super) fn bind_relay_socket(config: &TurnConfig, even: bool) -> Option<UdpSocket> {
    let (low, high) = config.relay_ports;
    for _ in 0..64 {
        let mut port = rand::random_range(low..=high);
        if even {
            port &= !1;
            if port < low {
                continue;
            }
        }
        let bind_ip = config.relay_bind_ip.unwrap_or(config.relay_ip);
        let Ok(socket) = std::net::UdpSocket::bind((bind_ip, port)) else {
            continue;
        };
        if socket.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(socket) = UdpSocket::from_std(socket) {
            return Some(socket);
        }
    }
    warn!(low, high, "no free relay port");
    None
}

/// Peer→client: reads the relayed socket and frames what it may pass on.
pub(super) async fn relay_to_client(
    relay: Arc<UdpSocket>,
    link: ClientLink,
    mut updates: mpsc::UnboundedReceiver<RelayUpdate>,
    stop: CancellationToken,
    shared: Arc<Shared>,
) {
    let stats = &shared.stats;
    let mut permissions: HashMap<IpAddr, Instant> = HashMap::new();
    let mut channels: HashMap<SocketAddr, (u16, Instant)> = HashMap::new();
    let headroom = wire::DATA_INDICATION_HEADROOM;
    let mut buf = vec![0u8; headroom + wire::MAX_UDP_PAYLOAD + 4];
    let mut ids = wire::TransactionIds::new();
    let mut bucket = TokenBucket::new(shared.config.max_bandwidth_per_allocation, Instant::now());
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let received = tokio::select! {
            biased;
            _ = &mut stopped => break,
            update = updates.recv() => {
                match update {
                    Some(RelayUpdate::Permission(ip, expires)) => {
                        permissions.insert(ip, expires);
                    }
                    Some(RelayUpdate::Channel(peer, channel, expires)) => {
                        channels.insert(peer, (channel, expires));
                    }
                    None => break,
                }
                if permissions.len() > 2 * shared.config.max_permissions_per_allocation
                    || channels.len() > MIRRORED_CHANNELS
                {
                    let now = Instant::now();
                    permissions.retain(|_, expires| *expires > now);
                    channels.retain(|_, (_, expires)| *expires > now);
                }
                continue;
            }
            received = relay.recv_from(&mut buf[headroom..headroom + wire::MAX_UDP_PAYLOAD]) => received,
        };
        let Ok((len, peer)) = received else {
            // ICMP errors surface here on some systems; the socket stays usable.
            continue;
        };
        let now = Instant::now();
        if permissions.get(&peer.ip()).is_none_or(|e| *e <= now) || !bucket.take(len, now) {
            RelayStats::count(&stats.dropped_packets);
            continue;
        }
        let frame = match channels.get(&peer) {
            Some((channel, expires)) if *expires > now => {
                let start = headroom - wire::CHANNEL_HEADER_LEN;
                wire::write_channel_header(&mut buf[start..], *channel, len);
                let mut end = headroom + len;
                if link.is_stream() {
                    let padded = start + wire::CHANNEL_HEADER_LEN + len.next_multiple_of(4);
                    buf[end..padded].fill(0);
                    end = padded;
                }
                start..end
            }
            _ => {
                let start = headroom - wire::data_indication_header_len(peer);
                match wire::write_data_indication(&mut buf[start..], peer, ids.next_id(), len) {
                    Some(total) => start..start + total,
                    None => {
                        RelayStats::count(&stats.dropped_packets);
                        continue;
                    }
                }
            }
        };
        if link.send(&buf[frame]) {
            RelayStats::add(&stats.packets_to_clients, &stats.bytes_to_clients, len);
        } else {
            RelayStats::count(&stats.dropped_packets);
        }
    }
}
