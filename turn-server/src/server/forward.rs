//! Client→peer forwarding: ChannelData and Send indications, relayed from the allocation's
//! socket when a permission and the bandwidth budget allow. It never answers the client.

use std::net::SocketAddr;
use std::time::Instant;

use stun_rs::StunMessage;
use stun_rs::attributes::turn::{Data, XorPeerAddress};

use super::table::AllocationTable;
use crate::stats::RelayStats;
use crate::wire;

impl AllocationTable {
    /// The client→peer fast path: no allocation, no lock.
    pub(super) fn relay_channel_data(&mut self, client: SocketAddr, packet: &[u8], now: Instant) {
        let stats = &self.shared.stats;
        let Some((channel, data)) = wire::parse_channel_data(packet) else {
            RelayStats::count(&stats.malformed);
            return;
        };
        let Some(allocation) = self.allocations.get_mut(&client) else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        let Some(binding) = allocation.channels.get(&channel).copied() else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        if binding.expires <= now
            || !allocation.permitted(binding.peer.ip(), now)
            || !allocation.bucket.take(data.len(), now)
        {
            RelayStats::count(&stats.dropped_packets);
            return;
        }
        match allocation.relay.try_send_to(data, binding.peer) {
            Ok(_) => RelayStats::add(&stats.packets_to_peers, &stats.bytes_to_peers, data.len()),
            Err(_) => RelayStats::count(&stats.dropped_packets),
        }
    }

    /// Send indications: relayed if the policy and a permission allow, else dropped
    /// silently (indications get no answer).
    pub(super) fn relay_send_indication(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        now: Instant,
    ) {
        let stats = &self.shared.stats;
        let Some(allocation) = self.allocations.get_mut(&client) else {
            RelayStats::count(&stats.dropped_packets);
            return;
        };
        let peer = message
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let data = message.get::<Data>().and_then(|a| a.as_data().ok());
        let (Some(peer), Some(data)) = (peer, data) else {
            RelayStats::count(&stats.malformed);
            return;
        };
        let peer = match self.shared.config.policy.check_addr(peer) {
            Ok(peer) => peer,
            Err(_) => {
                RelayStats::count(&stats.refused_peers);
                return;
            }
        };
        let data = data.as_bytes();
        if !allocation.permitted(peer.ip(), now) || !allocation.bucket.take(data.len(), now) {
            RelayStats::count(&stats.dropped_packets);
            return;
        }
        match allocation.relay.try_send_to(data, peer) {
            Ok(_) => RelayStats::add(&stats.packets_to_peers, &stats.bytes_to_peers, data.len()),
            Err(_) => RelayStats::count(&stats.dropped_packets),
        }
    }
}
