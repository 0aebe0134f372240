//! Entry points for the fuzz targets (`sfu/fuzz`, `signaling/fuzz`) and for the test that
//! replays their corpora. Not a stable API: it exists for fuzzing only, and the service never
//! calls it. Nothing here binds a socket except [`loopback`], which stays on 127.0.0.1.
//!
//! [`room_datagram`] hands one input to a room as a datagram from a participant whose ICE
//! binding, DTLS handshake and SRTP keys are all done: a real call ([`MemoryRoom`], no sockets)
//! with a publisher and a subscriber whose clients are real `rtc` peer connections. The input's
//! first byte picks how it arrives (`mode`); the rest is the datagram or what the client sends:
//!
//! | mode (byte % 7) | the rest of the input | reaches |
//! |---|---|---|
//! | 0 | a raw datagram to the publisher's connection, from its address | the media socket's routing by STUN USERNAME, demultiplexing, ICE (unauthenticated STUN), DTLS records, SRTP/SRTCP authentication |
//! | 1 | the same on the subscriber's connection | the same |
//! | 2 | an RTP packet, sent by the publisher client through its SRTP (SSRC and payload type set to its video's; sent again without header extensions if the client refuses it) | the interceptors, keyframe detection, the forwarder, the subscriber's down-track |
//! | 3 | RTCP packets from the publisher client, through its SRTCP | the room's RTCP handling on a publisher connection |
//! | 4 | RTCP packets from the subscriber client, through its SRTCP; the publisher's SSRC `5eed0001` in them is replaced by the subscriber's down-track SSRC | keyframe requests (PLI, FIR) routed to the publisher |
//! | 5 | a STUN message with valid credentials: message type (2 bytes), transaction id (12), then attributes as `type(2) length(1) value`, signed with MESSAGE-INTEGRITY and FINGERPRINT | the ICE agent's request and response handling past authentication |
//! | 6 | a binary message on the publisher's `reliable` data channel | SCTP, the data relay's frame parser and its delivery |
//!
//! Not reached: the socket task's receive call and its channel to the room task (the in-memory
//! room is handed each datagram directly, as the room task hands it over).
//!
//! After each input the harness carries every datagram and signaling message both ways until
//! nothing moves. Modes 0 and 1 come from someone who merely knows a participant's address, so
//! if one of them breaks the call that is a finding and the harness panics. Modes 2 to 6 come from
//! the participant itself, which may legitimately end its own call (an ICE role conflict, a
//! BYE): then the call is connected again and the next input goes on.
//!
//! [`MemoryRoom`]: crate::memory::MemoryRoom

mod call;
mod client;
pub mod loopback;

use std::cell::RefCell;
use std::time::Instant;

use bytes::BytesMut;
use rtc::shared::marshal::Unmarshal;
use rtc::stun::attributes::{ATTR_USERNAME, AttrType};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, MessageType, Setter, TransactionId};
use rtc::stun::textattrs::Username;

use call::Call;
use client::VP8_PAYLOAD_TYPE;

/// How an input of [`room_datagram`] arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RawToPublisher,
    RawToSubscriber,
    Rtp,
    RtcpFromPublisher,
    RtcpFromSubscriber,
    AuthenticatedStun,
    DataMessage,
}

impl Mode {
    fn from_byte(byte: u8) -> Mode {
        match byte % 7 {
            0 => Mode::RawToPublisher,
            1 => Mode::RawToSubscriber,
            2 => Mode::Rtp,
            3 => Mode::RtcpFromPublisher,
            4 => Mode::RtcpFromSubscriber,
            5 => Mode::AuthenticatedStun,
            _ => Mode::DataMessage,
        }
    }

    /// Whether only someone who knows the participant's address, not its keys, can send it.
    fn unauthenticated(self) -> bool {
        matches!(self, Mode::RawToPublisher | Mode::RawToSubscriber)
    }
}

thread_local! {
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

/// Hands one input to a connected call's room (see the module documentation for the format).
///
/// # Panics
///
/// When the call cannot be set up, and when an input from someone who only knows a participant's
/// address (modes 0 and 1) ends that participant's call.
pub fn room_datagram(input: &[u8]) {
    let Some((&mode, payload)) = input.split_first() else {
        return;
    };
    let mode = Mode::from_byte(mode);
    CALL.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|call| call.broken().is_some()) {
            *slot = None;
            *slot = Some(Call::connect().unwrap_or_else(|e| panic!("fuzzing setup: {e}")));
        }
        let Some(call) = slot.as_mut() else {
            return;
        };
        feed(call, mode, payload);
        call.settle();
        if let Some(why) = call.broken() {
            assert!(
                !mode.unauthenticated(),
                "a datagram from a participant's address, without its keys ({mode:?}), broke the \
                 call: {why}"
            );
        }
    });
}

fn feed(call: &mut Call, mode: Mode, payload: &[u8]) {
    let now = Instant::now();
    match mode {
        Mode::RawToPublisher | Mode::RawToSubscriber => {
            // What the media socket reads first from an address it does not know yet.
            let _ = crate::socket::stun_local_ufrag(payload);
            call.deliver(mode == Mode::RawToSubscriber, payload);
        }
        Mode::Rtp => {
            let Ok(mut packet) = rtc::rtp::Packet::unmarshal(&mut &payload[..]) else {
                return;
            };
            packet.header.ssrc = call.source.ssrc;
            packet.header.payload_type = VP8_PAYLOAD_TYPE;
            if call.write_rtp(packet.clone()).is_err() {
                packet.header.extension = false;
                packet.header.extensions.clear();
                let _ = call.write_rtp(packet);
            }
        }
        Mode::RtcpFromPublisher => {
            let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &payload[..]) else {
                return;
            };
            if let Some(mut sender) = call.publisher.pc.rtp_sender(call.sender) {
                let _ = sender.write_rtcp(now, packets);
            }
        }
        Mode::RtcpFromSubscriber => {
            // The subscriber knows the publisher's video by the SSRC the room gave its
            // down-track: the publisher's SSRC in the input stands for it.
            let payload = replace_ssrc(payload, call.source.ssrc, call.subscriber.remote_ssrc);
            let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &payload[..]) else {
                return;
            };
            let receiver = call.subscriber.receiver;
            if let Some(mut receiver) = receiver.and_then(|id| call.subscriber.pc.rtp_receiver(id))
            {
                let _ = receiver.write_rtcp(now, packets);
            }
        }
        Mode::AuthenticatedStun => {
            if let Some(message) = signed_stun(call, payload) {
                call.deliver(false, &message);
            }
        }
        Mode::DataMessage => {
            if let Some(mut channel) = call
                .publisher
                .reliable
                .and_then(|id| call.publisher.pc.data_channel(id))
            {
                let _ = channel.send(now, BytesMut::from(payload));
            }
        }
    }
}

/// `input` with every occurrence of `from` (4 bytes, network order) replaced by `to`.
fn replace_ssrc(input: &[u8], from: u32, to: u32) -> Vec<u8> {
    let (from, to) = (from.to_be_bytes(), to.to_be_bytes());
    let mut out = input.to_vec();
    let mut i = 0;
    while i + 4 <= out.len() {
        if out[i..i + 4] == from {
            out[i..i + 4].copy_from_slice(&to);
            i += 4;
        } else {
            i += 1;
        }
    }
    out
}

/// A STUN message built from `input`, with the USERNAME, MESSAGE-INTEGRITY and FINGERPRINT the
/// publisher's client would put on it.
fn signed_stun(call: &Call, input: &[u8]) -> Option<Vec<u8>> {
    let (typ, rest) = input.split_first_chunk::<2>()?;
    let (id, mut attributes) = rest.split_first_chunk::<12>()?;
    let mut typ_value = MessageType::default();
    typ_value.read_value(u16::from_be_bytes(*typ) & 0x3fff);
    let ice = &call.ice;
    let mut message = Message::new();
    message
        .build(&[
            Box::new(typ_value),
            Box::new(TransactionId(*id)),
            Box::new(Username::new(
                ATTR_USERNAME,
                format!("{}:{}", ice.room_ufrag, ice.client_ufrag),
            )),
        ])
        .ok()?;
    while let Some((header, rest)) = attributes.split_first_chunk::<3>() {
        let len = usize::from(header[2]).min(rest.len());
        message.add(
            AttrType(u16::from_be_bytes([header[0], header[1]])),
            &rest[..len],
        );
        attributes = &rest[len..];
    }
    let provider = rtc::crypto::default_provider().ok()?;
    MessageIntegrity::new_short_term_integrity_with_provider(
        ice.room_pwd.clone(),
        provider.crypto(),
    )
    .add_to(&mut message)
    .ok()?;
    FINGERPRINT.add_to(&mut message).ok()?;
    Some(message.raw)
}
