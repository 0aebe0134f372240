//! The authenticated TURN requests: Allocate, Refresh, CreatePermission and ChannelBind,
//! each checked against the peer policy and the limits. It never authenticates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::attributes::turn::{
    ChannelNumber, EvenPort, LifeTime, RequestedAddressFamily, RequestedTrasport, ReservationToken,
    XorPeerAddress, XorRelayedAddress,
};
use stun_rs::{AddressFamily, HMACKey, StunAttribute, StunMessage};
use tokio::sync::mpsc;
use tracing::debug;

use super::allocation::{
    Allocation, ChannelBinding, RelayUpdate, bind_relay_socket, relay_to_client,
};
use super::link::LinkSource;
use super::table::AllocationTable;
use crate::config::TurnConfig;
use crate::credentials::RestUsername;
use crate::limits::TokenBucket;
use crate::stats::RelayStats;
use crate::wire;

/// How long a channel binding lives (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

impl AllocationTable {
    pub(super) fn allocate(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        username: String,
        key: HMACKey,
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        if self.allocations.contains_key(&client) {
            return self.reply_error(message, 437, "Allocation Mismatch", Some(&key), |b| b);
        }
        let transport = message
            .get::<RequestedTrasport>()
            .and_then(|a| a.as_requested_trasport().ok());
        match transport {
            None => {
                return self.reply_error(
                    message,
                    400,
                    "Missing REQUESTED-TRANSPORT",
                    Some(&key),
                    |b| b,
                );
            }
            Some(t) if t.protocol().as_u8() != 17 => {
                return self.reply_error(
                    message,
                    442,
                    "Unsupported Transport Protocol",
                    Some(&key),
                    |b| b,
                );
            }
            Some(_) => {}
        }
        if let Some(family) = message
            .get::<RequestedAddressFamily>()
            .and_then(|a| a.as_requested_address_family().ok())
        {
            let wanted_v6 = family.family() == AddressFamily::IPv6;
            if wanted_v6 != shared.config.relay_ip.is_ipv6() {
                return self.reply_error(
                    message,
                    440,
                    "Address Family not Supported",
                    Some(&key),
                    |b| b,
                );
            }
        }
        if message.get::<ReservationToken>().is_some() {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        let even_port = message.get::<EvenPort>().is_some();
        let identity = RestUsername::parse(&username)
            .map(|rest| rest.identity.to_owned())
            .unwrap_or_else(|_| username.clone());
        let ticket = match shared.quotas.acquire(&identity) {
            Ok(ticket) => ticket,
            Err(error) => {
                RelayStats::count(&shared.stats.quota_refusals);
                debug!(%client, %error, "allocation refused");
                return self.reply_error(
                    message,
                    486,
                    "Allocation Quota Reached",
                    Some(&key),
                    |b| b,
                );
            }
        };
        let Some(relay) = bind_relay_socket(&shared.config, even_port) else {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        };
        // Advertised as relay_ip, which differs from the bound address behind 1:1 NAT.
        let relayed = match relay.local_addr() {
            Ok(addr) => SocketAddr::new(shared.config.relay_ip, addr.port()),
            Err(_) => {
                return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
            }
        };
        let lifetime = requested_lifetime(message, &shared.config);
        let relay = Arc::new(relay);
        let (updates, updates_rx) = mpsc::unbounded_channel();
        let stop = shared.cancel.child_token();
        tokio::spawn(relay_to_client(
            Arc::clone(&relay),
            source.link(client),
            updates_rx,
            stop.clone(),
            Arc::clone(&shared),
        ));
        let len = self.success(message, key, |b| {
            b.with_attribute(XorRelayedAddress::from(relayed))
                .with_attribute(LifeTime::new(lifetime.as_secs() as u32))
                .with_attribute(XorMappedAddress::from(client))
        })?;
        RelayStats::count(&shared.stats.allocations_created);
        debug!(%client, %relayed, %username, "allocation created");
        self.allocations.insert(
            client,
            Allocation {
                username,
                relay,
                relayed,
                expires: now + lifetime,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                peer_channels: HashMap::new(),
                updates,
                allocate_transaction: *message.transaction_id().as_bytes(),
                allocate_response: self.out[..len].to_vec(),
                bucket: TokenBucket::new(shared.config.max_bandwidth_per_allocation, now),
                stop,
                _quota: ticket,
            },
        );
        Some(len)
    }

    pub(super) fn refresh(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let requested = message
            .get::<LifeTime>()
            .and_then(|a| a.as_life_time().ok())
            .map(|l| l.as_u32());
        let lifetime = if requested == Some(0) {
            self.allocations.remove(&client);
            debug!(%client, "allocation deleted by refresh");
            Duration::ZERO
        } else {
            let lifetime = requested_lifetime(message, &self.shared.config);
            if let Some(allocation) = self.allocations.get_mut(&client) {
                allocation.expires = now + lifetime;
            }
            lifetime
        };
        self.success(message, key, |b| {
            b.with_attribute(LifeTime::new(lifetime.as_secs() as u32))
        })
    }

    pub(super) fn create_permission(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        let mut peers = Vec::new();
        for attribute in message.attributes() {
            if let StunAttribute::XorPeerAddress(peer) = attribute {
                match shared.config.policy.check_ip(peer.socket_address().ip()) {
                    Ok(ip) if peers.contains(&ip) => {}
                    Ok(ip) => peers.push(ip),
                    Err(refusal) => {
                        RelayStats::count(&shared.stats.refused_peers);
                        debug!(%client, peer = %peer.socket_address(), %refusal, "permission refused");
                        return self.reply_error(message, 403, "Forbidden", Some(&key), |b| b);
                    }
                }
            }
        }
        if peers.is_empty() {
            return self.reply_error(message, 400, "Missing XOR-PEER-ADDRESS", Some(&key), |b| b);
        }
        let allocation = self.allocations.get_mut(&client)?;
        let new = peers
            .iter()
            .filter(|ip| !allocation.permissions.contains_key(ip))
            .count();
        if allocation.permissions.len() + new > shared.config.max_permissions_per_allocation {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        for ip in peers {
            allocation.install_permission(ip, now);
        }
        self.success(message, key, |b| b)
    }

    pub(super) fn channel_bind(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        key: HMACKey,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        let channel = message
            .get::<ChannelNumber>()
            .and_then(|a| a.as_channel_number().ok())
            .map(|c| c.number());
        let peer = message
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let (Some(channel), Some(peer)) = (channel, peer) else {
            return self.reply_error(
                message,
                400,
                "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS",
                Some(&key),
                |b| b,
            );
        };
        if !(wire::MIN_CHANNEL..=wire::MAX_CHANNEL).contains(&channel) {
            return self.reply_error(message, 400, "Bad channel number", Some(&key), |b| b);
        }
        let peer = match shared.config.policy.check_addr(peer) {
            Ok(peer) => peer,
            Err(refusal) => {
                RelayStats::count(&shared.stats.refused_peers);
                debug!(%client, %peer, %refusal, "channel bind refused");
                return self.reply_error(message, 403, "Forbidden", Some(&key), |b| b);
            }
        };
        let allocation = self.allocations.get_mut(&client)?;
        let channel_taken = allocation
            .channels
            .get(&channel)
            .is_some_and(|b| b.peer != peer && b.expires > now);
        let peer_taken = allocation.peer_channels.get(&peer).is_some_and(|c| {
            *c != channel && allocation.channels.get(c).is_some_and(|b| b.expires > now)
        });
        if channel_taken || peer_taken {
            return self.reply_error(
                message,
                400,
                "Channel or peer already bound",
                Some(&key),
                |b| b,
            );
        }
        if !allocation.permissions.contains_key(&peer.ip())
            && allocation.permissions.len() >= shared.config.max_permissions_per_allocation
        {
            return self.reply_error(message, 508, "Insufficient Capacity", Some(&key), |b| b);
        }
        // Expired bindings that the sweep has not reached yet give way.
        if let Some(old) = allocation.channels.get(&channel).copied()
            && old.peer != peer
        {
            allocation.peer_channels.remove(&old.peer);
        }
        if let Some(old) = allocation.peer_channels.get(&peer).copied()
            && old != channel
        {
            allocation.channels.remove(&old);
        }
        let expires = now + CHANNEL_LIFETIME;
        allocation
            .channels
            .insert(channel, ChannelBinding { peer, expires });
        allocation.peer_channels.insert(peer, channel);
        let _ = allocation
            .updates
            .send(RelayUpdate::Channel(peer, channel, expires));
        allocation.install_permission(peer.ip(), now);
        self.success(message, key, |b| b)
    }
}

fn requested_lifetime(message: &StunMessage, config: &TurnConfig) -> Duration {
    let requested = message
        .get::<LifeTime>()
        .and_then(|a| a.as_life_time().ok())
        .map(|l| Duration::from_secs(u64::from(l.as_u32())));
    match requested {
        Some(asked) => asked.clamp(config.default_lifetime, config.max_lifetime),
        None => config.default_lifetime,
    }
}
