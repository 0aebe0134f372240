//! One packet from a client: classified, then a STUN request checked, authenticated and
//! dispatched to its method. It never touches a socket; replies go back to the caller.

use std::net::SocketAddr;
use std::time::Instant;

use stun_rs::attributes::stun::{Fingerprint, UnknownAttributes, XorMappedAddress};
use stun_rs::{MessageClass, MessageDecoderBuilder, StunMessage, StunMessageBuilder, methods};
use tracing::debug;

use super::auth::Authenticated;
use super::link::LinkSource;
use super::reply::software;
use super::table::AllocationTable;
use crate::stats::RelayStats;
use crate::wire::{self, PacketKind};

/// Requests larger than this are dropped unparsed: no legitimate request comes near it, and
/// parsing costs grow with the number of attributes.
const MAX_REQUEST_LEN: usize = 4096;
/// UNKNOWN-ATTRIBUTES lists at most this many types.
const MAX_UNKNOWN_LISTED: usize = 16;

impl AllocationTable {
    /// Handles one packet from `client`; returns a reply to send back, if any.
    pub(super) fn handle(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<&[u8]> {
        match wire::classify(packet) {
            PacketKind::ChannelData => {
                self.relay_channel_data(client, packet, now);
                None
            }
            PacketKind::Stun => {
                let len = self.handle_stun(client, packet, source, now)?;
                Some(&self.out[..len])
            }
            PacketKind::Other => {
                RelayStats::count(&self.shared.stats.malformed);
                None
            }
        }
    }

    fn handle_stun(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        source: &LinkSource<'_>,
        now: Instant,
    ) -> Option<usize> {
        // Only indications (Send, carrying data) may be large; a request never is.
        let is_indication = packet.len() >= 2 && packet[0] & 0x01 == 0 && packet[1] & 0x10 != 0;
        if packet.len() > MAX_REQUEST_LEN && !is_indication {
            RelayStats::count(&self.shared.stats.malformed);
            return None;
        }
        let message = match MessageDecoderBuilder::default().build().decode(packet) {
            Ok((message, _)) => message,
            Err(error) => {
                RelayStats::count(&self.shared.stats.malformed);
                debug!(%client, %error, "malformed STUN message");
                if !self.may_answer_unauthenticated(client, now) {
                    return None;
                }
                return self.bad_request_from_raw(packet);
            }
        };
        match message.class() {
            MessageClass::Request => {}
            MessageClass::Indication => {
                if message.method() == methods::SEND {
                    self.relay_send_indication(client, &message, now);
                }
                return None;
            }
            // Responses have no business arriving at a server.
            _ => return None,
        }
        let method = message.method();
        // (401s and 438s are counted where they are built.)
        let unauthenticated_reply =
            method == methods::BINDING || unknown_required(&message).is_some();
        if unauthenticated_reply && !self.may_answer_unauthenticated(client, now) {
            return None;
        }
        if let Some(unknown) = unknown_required(&message) {
            return self.reply_error(&message, 420, "Unknown Attribute", None, |b| {
                b.with_attribute(unknown)
            });
        }
        if method == methods::BINDING {
            let reply = StunMessageBuilder::new(methods::BINDING, MessageClass::SuccessResponse)
                .with_transaction_id(*message.transaction_id())
                .with_attribute(XorMappedAddress::from(client))
                .with_attribute(software())
                .with_attribute(Fingerprint::default())
                .build();
            return self.encode(&reply);
        }
        if ![
            methods::ALLOCATE,
            methods::REFRESH,
            methods::CREATE_PERMMISSION,
            methods::CHANNEL_BIND,
        ]
        .contains(&method)
        {
            return self.reply_error(&message, 400, "Unsupported method", None, |b| b);
        }
        // A retransmitted Allocate gets the same answer and is not charged twice.
        if method == methods::ALLOCATE
            && let Some(existing) = self.allocations.get(&client)
            && existing.allocate_transaction == *message.transaction_id().as_bytes()
        {
            let len = existing.allocate_response.len();
            self.out[..len].copy_from_slice(&existing.allocate_response);
            return Some(len);
        }
        let (username, key) = match self.authenticate(client, packet, &message, now) {
            Authenticated::Yes { username, key } => (username, key),
            Authenticated::Replied(reply) => return reply,
        };
        if method == methods::ALLOCATE {
            self.allocate(client, &message, username, key, source, now)
        } else {
            match self.allocations.get(&client) {
                None => self.reply_error(&message, 437, "Allocation Mismatch", Some(&key), |b| b),
                Some(allocation) if allocation.username != username => {
                    self.reply_error(&message, 441, "Wrong Credentials", Some(&key), |b| b)
                }
                Some(_) if method == methods::REFRESH => self.refresh(client, &message, key, now),
                Some(_) if method == methods::CREATE_PERMMISSION => {
                    self.create_permission(client, &message, key, now)
                }
                Some(_) => self.channel_bind(client, &message, key, now),
            }
        }
    }
}

/// An UNKNOWN-ATTRIBUTES listing comprehension-required attributes we do not know.
fn unknown_required(message: &StunMessage) -> Option<UnknownAttributes> {
    let mut unknown: Vec<u16> = Vec::new();
    for attribute in message.attributes() {
        let kind = attribute.attribute_type();
        if attribute.is_unknown()
            && kind.is_comprehension_required()
            && !unknown.contains(&kind.as_u16())
        {
            unknown.push(kind.as_u16());
            if unknown.len() == MAX_UNKNOWN_LISTED {
                break;
            }
        }
    }
    (!unknown.is_empty()).then(|| UnknownAttributes::from(&unknown[..]))
}
