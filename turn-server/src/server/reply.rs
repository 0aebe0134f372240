//! STUN replies encoded into the table's output buffer: signed successes, error responses,
//! and the 400 for undecodable requests. It never decides what to answer.

use stun_rs::attributes::stun::{ErrorCode, Fingerprint, MessageIntegrity, Software};
use stun_rs::{
    HMACKey, MessageClass, MessageEncoderBuilder, MessageMethod, StunMessage, StunMessageBuilder,
};
use tracing::warn;

use super::table::AllocationTable;
use crate::wire;

/// The SOFTWARE attribute on responses.
const SOFTWARE: &str = "Switchyard TURN";

impl AllocationTable {
    /// A signed success response carrying what `extra` adds.
    pub(super) fn success(
        &mut self,
        request: &StunMessage,
        key: HMACKey,
        extra: impl FnOnce(StunMessageBuilder) -> StunMessageBuilder,
    ) -> Option<usize> {
        let builder = StunMessageBuilder::new(request.method(), MessageClass::SuccessResponse)
            .with_transaction_id(*request.transaction_id());
        let reply = extra(builder)
            .with_attribute(software())
            .with_attribute(MessageIntegrity::new(key))
            .with_attribute(Fingerprint::default())
            .build();
        self.encode(&reply)
    }

    pub(super) fn reply_error(
        &mut self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        key: Option<&HMACKey>,
        extra: impl FnOnce(StunMessageBuilder) -> StunMessageBuilder,
    ) -> Option<usize> {
        let error = stun_rs::ErrorCode::new(code, reason).ok()?;
        let mut builder = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id())
            .with_attribute(ErrorCode::from(error));
        builder = extra(builder).with_attribute(software());
        if let Some(key) = key {
            builder = builder.with_attribute(MessageIntegrity::new(key.clone()));
        }
        let reply = builder.with_attribute(Fingerprint::default()).build();
        self.encode(&reply)
    }

    /// A 400 for a request that `stun-rs` could not decode, built from its raw header.
    pub(super) fn bad_request_from_raw(&mut self, packet: &[u8]) -> Option<usize> {
        if packet.len() < wire::STUN_HEADER_LEN {
            return None;
        }
        let message_type = u16::from_be_bytes([packet[0], packet[1]]);
        let cookie = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        // Only a request (class bits 0b00) with the magic cookie gets an answer.
        if message_type & 0x0110 != 0 || cookie != wire::MAGIC_COOKIE {
            return None;
        }
        let method = (message_type & 0x000F)
            | ((message_type & 0x00E0) >> 1)
            | ((message_type & 0x3E00) >> 2);
        let method = MessageMethod::try_from(method).ok()?;
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&packet[8..20]);
        let error = stun_rs::ErrorCode::new(400, "Bad Request").ok()?;
        let reply = StunMessageBuilder::new(method, MessageClass::ErrorResponse)
            .with_transaction_id(transaction.into())
            .with_attribute(ErrorCode::from(error))
            .with_attribute(software())
            .build();
        self.encode(&reply)
    }

    pub(super) fn encode(&mut self, message: &StunMessage) -> Option<usize> {
        match MessageEncoderBuilder::default()
            .build()
            .encode(&mut self.out, message)
        {
            Ok(len) => Some(len),
            Err(error) => {
                warn!(?error, "cannot encode a STUN reply");
                None
            }
        }
    }
}

pub(super) fn software() -> Software {
    Software::new(SOFTWARE).expect("the SOFTWARE text is a valid STUN string")
}
