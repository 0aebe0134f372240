//! One packet from a client through the relay's whole per-packet path, and the same bytes
//! through stun-rs's decoder.
//!
//! Invariants: nothing panics; a reply, when the server sends one, is a well-formed STUN
//! response (it decodes with stun-rs, fills exactly the bytes sent, and answers the
//! request's method and transaction id).

#![no_main]

use libfuzzer_sys::fuzz_target;
use stun_rs::{MessageClass, MessageDecoderBuilder, MessageEncoderBuilder};
use turn_server::fuzzing::handle_client_packet;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The method bits of a raw STUN message type (class bits C0 and C1 removed).
fn raw_method(message_type: u16) -> u16 {
    (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2)
}

fuzz_target!(|data: &[u8]| {
    let decoder = MessageDecoderBuilder::default().build();

    // The parser on its own. Whatever it accepts it must be able to encode again.
    if let Ok((message, used)) = decoder.decode(data) {
        assert!(
            used >= 20 && used <= data.len(),
            "decoder consumed {used} of {}",
            data.len()
        );
        let mut out = vec![0u8; 2 * data.len() + 64];
        let _ = MessageEncoderBuilder::default()
            .build()
            .encode(&mut out, &message);
    }

    // The server's path: classification, ChannelData, decode, authentication, replies.
    let Some(reply) = handle_client_packet(data) else {
        return;
    };
    let (message, used) = decoder.decode(&reply).unwrap_or_else(|error| {
        panic!(
            "the server replied with bytes stun-rs cannot decode: {error:?}\nrequest: {}\nreply: {}",
            hex(data),
            hex(&reply)
        )
    });
    assert_eq!(
        used,
        reply.len(),
        "trailing bytes after the reply: {}",
        hex(&reply)
    );
    assert!(
        matches!(
            message.class(),
            MessageClass::SuccessResponse | MessageClass::ErrorResponse
        ),
        "the server sent a {:?}, not a response",
        message.class()
    );
    // Only a request can be answered, so the input holds at least a STUN header.
    assert!(data.len() >= 20, "a reply to a {}-byte packet", data.len());
    assert_eq!(
        message.transaction_id().as_bytes()[..],
        data[8..20],
        "the reply's transaction id is not the request's"
    );
    assert_eq!(
        message.method().as_u16(),
        raw_method(u16::from_be_bytes([data[0], data[1]])),
        "the reply's method is not the request's"
    );
});
