//! The relay's own wire code (`turn_server::wire`), which runs without stun-rs.
//!
//! 1. The input as a TCP/TLS byte stream: split into frames with `stream_frame_len` and
//!    check each frame with `classify` and `parse_channel_data`.
//! 2. The input as a peer address and a datagram from that peer: written back to the
//!    client as a Data indication and as ChannelData, in a buffer laid out as the relay's
//!    peer loop lays it out, then decoded again (stun-rs for the indication).

#![no_main]

use std::cell::RefCell;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libfuzzer_sys::fuzz_target;
use stun_rs::attributes::turn::{Data, XorPeerAddress};
use stun_rs::{MessageClass, MessageDecoderBuilder, methods};
use turn_server::wire::{
    CHANNEL_HEADER_LEN, DATA_INDICATION_HEADROOM, FramingError, MAX_CHANNEL, MAX_UDP_PAYLOAD,
    MIN_CHANNEL, PacketKind, STUN_HEADER_LEN, classify, data_indication_header_len,
    parse_channel_data, stream_frame_len, write_channel_header, write_data_indication,
};

/// What the relay leaves in its buffer from earlier datagrams: never zero, so padding
/// that is not written shows.
const STALE: u8 = 0xEE;

fn declared_len(bytes: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))
}

fn check_channel_data(packet: &[u8]) {
    let parsed = parse_channel_data(packet);
    if packet.len() < CHANNEL_HEADER_LEN {
        assert_eq!(parsed, None);
        return;
    }
    let channel = u16::from_be_bytes([packet[0], packet[1]]);
    let len = declared_len(packet);
    let sound =
        (MIN_CHANNEL..=MAX_CHANNEL).contains(&channel) && CHANNEL_HEADER_LEN + len <= packet.len();
    match parsed {
        Some((parsed_channel, payload)) => {
            assert!(sound, "accepted unsound ChannelData");
            assert_eq!(parsed_channel, channel);
            assert_eq!(payload.len(), len);
            assert!(payload.len() <= packet.len() - CHANNEL_HEADER_LEN);
            assert_eq!(
                payload,
                &packet[CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + len]
            );
        }
        None => assert!(!sound, "rejected sound ChannelData"),
    }
}

fn split_stream(stream: &[u8]) {
    let mut rest = stream;
    loop {
        match stream_frame_len(rest) {
            Ok(Some(frame_len)) => {
                assert!(
                    frame_len <= rest.len(),
                    "frame of {frame_len} in {} bytes",
                    rest.len()
                );
                assert!(frame_len >= CHANNEL_HEADER_LEN);
                let frame = &rest[..frame_len];
                let len = declared_len(frame);
                match classify(frame) {
                    PacketKind::Stun => {
                        assert_eq!(len % 4, 0);
                        assert_eq!(frame_len, STUN_HEADER_LEN + len);
                    }
                    PacketKind::ChannelData => {
                        assert_eq!(frame_len % 4, 0, "unpadded ChannelData frame on a stream");
                        assert_eq!(frame_len, CHANNEL_HEADER_LEN + len.next_multiple_of(4));
                        check_channel_data(frame);
                        if let Some((_, payload)) = parse_channel_data(frame) {
                            assert!(CHANNEL_HEADER_LEN + payload.len() <= frame_len);
                        }
                    }
                    PacketKind::Other => {
                        panic!("framed a packet that is neither STUN nor ChannelData")
                    }
                }
                rest = &rest[frame_len..];
            }
            Ok(None) => {
                // Only an incomplete frame may ask for more bytes.
                if rest.len() >= CHANNEL_HEADER_LEN {
                    let len = declared_len(rest);
                    let needed = match classify(rest) {
                        PacketKind::Stun => STUN_HEADER_LEN + len,
                        PacketKind::ChannelData => CHANNEL_HEADER_LEN + len.next_multiple_of(4),
                        PacketKind::Other => {
                            panic!("waiting for more of a stream that is not TURN")
                        }
                    };
                    assert!(rest.len() < needed, "a complete frame was left waiting");
                }
                return;
            }
            Err(FramingError::NotTurn(byte)) => {
                assert_eq!(byte, rest[0]);
                assert_eq!(classify(rest), PacketKind::Other);
                return;
            }
            Err(FramingError::UnalignedStun) => {
                assert_eq!(classify(rest), PacketKind::Stun);
                assert_ne!(declared_len(rest) % 4, 0);
                return;
            }
        }
    }
}

/// A peer and a datagram from the input: a flags byte (bit 0: IPv6, bit 1: take the
/// datagram's length from two bytes and fill it by repeating the rest, so that lengths up
/// to MAX_UDP_PAYLOAD are reached with small inputs), the port, the address, a transaction
/// id, a channel number, then the payload.
struct Datagram {
    peer: SocketAddr,
    transaction_id: [u8; 12],
    channel: u16,
    payload: Vec<u8>,
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = input.split_at_checked(n)?;
    *input = tail;
    Some(head)
}

fn datagram(mut input: &[u8]) -> Option<Datagram> {
    let input = &mut input;
    let flags = take(input, 1)?[0];
    let port = u16::from_be_bytes(take(input, 2)?.try_into().ok()?);
    let peer = if flags & 1 == 0 {
        let ip: [u8; 4] = take(input, 4)?.try_into().ok()?;
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
    } else {
        let ip: [u8; 16] = take(input, 16)?.try_into().ok()?;
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
    };
    let transaction_id: [u8; 12] = take(input, 12)?.try_into().ok()?;
    let raw_channel = u16::from_be_bytes(take(input, 2)?.try_into().ok()?);
    let channel = MIN_CHANNEL + raw_channel % (MAX_CHANNEL - MIN_CHANNEL + 1);
    let payload = if flags & 2 == 0 {
        input.get(..MAX_UDP_PAYLOAD.min(input.len()))?.to_vec()
    } else {
        let len = usize::from(u16::from_be_bytes(take(input, 2)?.try_into().ok()?));
        let len = len.min(MAX_UDP_PAYLOAD);
        if input.is_empty() {
            vec![0; len]
        } else {
            input.iter().copied().cycle().take(len).collect()
        }
    };
    Some(Datagram {
        peer,
        transaction_id,
        channel,
        payload,
    })
}

thread_local! {
    /// The relay's buffer: headroom, a maximal datagram, and room for padding.
    static BUF: RefCell<Vec<u8>> =
        RefCell::new(vec![STALE; DATA_INDICATION_HEADROOM + MAX_UDP_PAYLOAD + 4]);
}

fn check_data_indication(d: &Datagram) {
    let len = d.payload.len();
    let headroom = DATA_INDICATION_HEADROOM;
    BUF.with_borrow_mut(|buf| {
        let used = (headroom + len.next_multiple_of(4) + 4).min(buf.len());
        buf[..used].fill(STALE);
        buf[headroom..headroom + len].copy_from_slice(&d.payload);

        let header = data_indication_header_len(d.peer);
        assert!(
            header <= headroom,
            "header of {header} bytes, headroom {headroom}"
        );
        let start = headroom - header;
        let Some(total) = write_data_indication(&mut buf[start..], d.peer, d.transaction_id, len)
        else {
            // Refused only when the body cannot fit STUN's 16-bit length, and then untouched.
            assert!(header + len.next_multiple_of(4) - 20 > usize::from(u16::MAX));
            assert!(
                buf[..start].iter().all(|&b| b == STALE),
                "wrote before refusing"
            );
            return;
        };
        assert_eq!(total, header + len.next_multiple_of(4));
        assert_eq!(total % 4, 0);
        assert!(
            buf[..start].iter().all(|&b| b == STALE),
            "wrote in front of the header"
        );
        assert!(
            buf[start + total..used].iter().all(|&b| b == STALE),
            "wrote past the padding"
        );
        assert!(
            buf[headroom + len..start + total].iter().all(|&b| b == 0),
            "padding not zeroed"
        );

        let message = &buf[start..start + total];
        let (decoded, consumed) = MessageDecoderBuilder::default()
            .build()
            .decode(message)
            .unwrap_or_else(|error| panic!("our Data indication does not decode: {error:?}"));
        assert_eq!(consumed, total);
        assert_eq!(decoded.method(), methods::DATA);
        assert_eq!(decoded.class(), MessageClass::Indication);
        assert_eq!(decoded.transaction_id().as_bytes(), &d.transaction_id);
        let address = decoded
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .expect("XOR-PEER-ADDRESS");
        assert_eq!(*address.socket_address(), d.peer);
        let data = decoded
            .get::<Data>()
            .and_then(|a| a.as_data().ok())
            .expect("DATA");
        assert_eq!(data.as_bytes(), &d.payload[..]);
    });
}

fn check_channel_data_out(d: &Datagram) {
    let len = d.payload.len();
    let headroom = DATA_INDICATION_HEADROOM;
    BUF.with_borrow_mut(|buf| {
        let used = (headroom + len.next_multiple_of(4) + 4).min(buf.len());
        buf[..used].fill(STALE);
        buf[headroom..headroom + len].copy_from_slice(&d.payload);
        // As the peer loop does it for a bound channel, padded as on a stream.
        let start = headroom - CHANNEL_HEADER_LEN;
        write_channel_header(&mut buf[start..], d.channel, len);
        let end = headroom + len;
        let padded = start + CHANNEL_HEADER_LEN + len.next_multiple_of(4);
        buf[end..padded].fill(0);

        // Over UDP, the datagram as it is.
        assert_eq!(
            parse_channel_data(&buf[start..end]),
            Some((d.channel, &d.payload[..]))
        );
        // Over a stream, one whole frame, followed by anything.
        let frame = &buf[start..padded];
        assert_eq!(stream_frame_len(frame), Ok(Some(frame.len())));
        assert_eq!(stream_frame_len(&buf[start..used]), Ok(Some(frame.len())));
        assert_eq!(parse_channel_data(frame), Some((d.channel, &d.payload[..])));
    });
}

fuzz_target!(|data: &[u8]| {
    split_stream(data);
    check_channel_data(data);
    if let Some(datagram) = datagram(data) {
        check_data_indication(&datagram);
        check_channel_data_out(&datagram);
    }
});
