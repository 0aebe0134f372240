//! Bytes on the wire that the relay handles itself, without `stun-rs`: telling STUN from
//! ChannelData, ChannelData framing (RFC 8656 §12.4), stream framing over TCP and TLS
//! (§12.5), and the one STUN message built on the per-packet path, the Data indication,
//! written in place so that relaying a packet allocates nothing. Nothing here does I/O, and its
//! parsers never panic on short or malformed input.

use std::net::SocketAddr;

/// Size of a STUN message header.
pub const STUN_HEADER_LEN: usize = 20;
/// Size of a ChannelData header (channel number and length).
pub const CHANNEL_HEADER_LEN: usize = 4;
/// The STUN magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Lowest channel number a client may bind.
pub const MIN_CHANNEL: u16 = 0x4000;
/// Highest channel number a client may bind. RFC 8656 narrowed the range to 0x4FFF, but
/// RFC 5766 clients (coturn's among them) still use numbers up to 0x7FFE, so we accept them.
pub const MAX_CHANNEL: u16 = 0x7FFE;
/// Largest UDP payload the relay forwards (the IPv4 maximum; datagrams are read into
/// buffers of this size plus headroom).
pub const MAX_UDP_PAYLOAD: usize = 65_507;
/// Room in front of a relayed payload for the longest header the relay writes there:
/// a Data indication for an IPv6 peer (header, XOR-PEER-ADDRESS, DATA attribute header).
pub const DATA_INDICATION_HEADROOM: usize = STUN_HEADER_LEN + 4 + 20 + 4;

const METHOD_DATA_INDICATION: u16 = 0x0017;
const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
const ATTR_DATA: u16 = 0x0013;

/// What a packet from a client is, judged by its first bytes (RFC 7983 demultiplexing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// A STUN message (first two bits zero).
    Stun,
    /// A ChannelData message (first byte 0x40..=0x7F).
    ChannelData,
    /// Anything else: dropped.
    Other,
}

/// Classifies a packet by its first byte.
pub fn classify(packet: &[u8]) -> PacketKind {
    match packet.first() {
        Some(0x00..=0x03) => PacketKind::Stun,
        Some(0x40..=0x7F) => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// A ChannelData message's channel number and application data, if the framing is sound:
/// a channel in the bindable range and a length that fits the packet. Trailing bytes
/// (padding) are allowed, as RFC 8656 §12.5 requires over UDP too.
pub fn parse_channel_data(packet: &[u8]) -> Option<(u16, &[u8])> {
    if packet.len() < CHANNEL_HEADER_LEN {
        return None;
    }
    let channel = u16::from_be_bytes([packet[0], packet[1]]);
    if !(MIN_CHANNEL..=MAX_CHANNEL).contains(&channel) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    packet
        .get(CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + len)
        .map(|data| (channel, data))
}

/// Length of the first complete frame in a TCP/TLS byte stream, if `stream` holds one.
/// `Ok(None)` means "read more"; `Err` means the stream is not TURN and must be closed.
/// ChannelData frames over a stream are padded to a multiple of four (RFC 8656 §12.5).
pub fn stream_frame_len(stream: &[u8]) -> Result<Option<usize>, FramingError> {
    if stream.len() < CHANNEL_HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([stream[2], stream[3]]));
    let frame = match classify(stream) {
        PacketKind::Stun => {
            if len % 4 != 0 {
                return Err(FramingError::UnalignedStun);
            }
            STUN_HEADER_LEN + len
        }
        PacketKind::ChannelData => CHANNEL_HEADER_LEN + len.next_multiple_of(4),
        PacketKind::Other => return Err(FramingError::NotTurn(stream[0])),
    };
    Ok((stream.len() >= frame).then_some(frame))
}

/// Why a byte stream cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The first byte is neither STUN nor ChannelData.
    #[error("byte {0:#04x} starts neither a STUN message nor ChannelData")]
    NotTurn(u8),
    /// A STUN length that is not a multiple of four.
    #[error("STUN message length is not a multiple of 4")]
    UnalignedStun,
}

/// Writes a ChannelData header into `buf[..4]` for `len` bytes of data that follow it.
pub fn write_channel_header(buf: &mut [u8], channel: u16, len: usize) {
    buf[..2].copy_from_slice(&channel.to_be_bytes());
    // Callers pass payloads read into buffers of at most MAX_UDP_PAYLOAD bytes.
    buf[2..4].copy_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

/// Header length of a Data indication for `peer`, i.e. where the payload starts.
pub fn data_indication_header_len(peer: SocketAddr) -> usize {
    let address_len = if peer.is_ipv4() { 8 } else { 20 };
    STUN_HEADER_LEN + 4 + address_len + 4
}

/// Writes a Data indication (XOR-PEER-ADDRESS, DATA) around a payload already in place.
///
/// `buf[header..header + len]` must hold the payload, where `header` is
/// [`data_indication_header_len`]`(peer)`; the header is written in front of it and the
/// DATA attribute's padding after it. Returns the message's total length, or `None` (and
/// writes nothing) when the payload is too large for a STUN message's 16-bit length: a
/// datagram of over 65,504 bytes from an IPv6 peer cannot be carried in a Data indication.
pub fn write_data_indication(
    buf: &mut [u8],
    peer: SocketAddr,
    transaction_id: [u8; 12],
    len: usize,
) -> Option<usize> {
    let header = data_indication_header_len(peer);
    let padded = len.next_multiple_of(4);
    let total = header + padded;
    if total - STUN_HEADER_LEN > usize::from(u16::MAX) {
        return None;
    }
    buf[header + len..total].fill(0);
    let body_len = (total - STUN_HEADER_LEN) as u16;
    buf[0..2].copy_from_slice(&METHOD_DATA_INDICATION.to_be_bytes());
    buf[2..4].copy_from_slice(&body_len.to_be_bytes());
    buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    buf[8..20].copy_from_slice(&transaction_id);
    let mut at = STUN_HEADER_LEN;
    let xor_port = peer.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match peer {
        SocketAddr::V4(v4) => {
            buf[at..at + 2].copy_from_slice(&ATTR_XOR_PEER_ADDRESS.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&8u16.to_be_bytes());
            buf[at + 4] = 0;
            buf[at + 5] = 0x01;
            buf[at + 6..at + 8].copy_from_slice(&xor_port.to_be_bytes());
            let ip = u32::from(*v4.ip()) ^ MAGIC_COOKIE;
            buf[at + 8..at + 12].copy_from_slice(&ip.to_be_bytes());
            at += 12;
        }
        SocketAddr::V6(v6) => {
            buf[at..at + 2].copy_from_slice(&ATTR_XOR_PEER_ADDRESS.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&20u16.to_be_bytes());
            buf[at + 4] = 0;
            buf[at + 5] = 0x02;
            buf[at + 6..at + 8].copy_from_slice(&xor_port.to_be_bytes());
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(&transaction_id);
            for (i, byte) in v6.ip().octets().iter().enumerate() {
                buf[at + 8 + i] = byte ^ mask[i];
            }
            at += 24;
        }
    }
    buf[at..at + 2].copy_from_slice(&ATTR_DATA.to_be_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());
    Some(total)
}

/// A cheap generator of transaction ids for indications (xorshift; ids of indications
/// only need to differ, not to be secret).
#[derive(Debug, Clone)]
pub struct TransactionIds(u64);

impl TransactionIds {
    /// Starts from a random seed.
    pub fn new() -> Self {
        Self(rand::random::<u64>() | 1)
    }

    /// The next id.
    pub fn next_id(&mut self) -> [u8; 12] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&x.to_le_bytes());
        id[8..].copy_from_slice(&(x >> 17).to_le_bytes()[..4]);
        id
    }
}

impl Default for TransactionIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_rs::MessageDecoderBuilder;

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[0x40, 0x00]), PacketKind::ChannelData);
        assert_eq!(classify(&[0x7F]), PacketKind::ChannelData);
        assert_eq!(classify(&[0x80]), PacketKind::Other);
        assert_eq!(classify(&[0x16]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
    }

    #[test]
    fn channel_data_framing() {
        assert_eq!(
            parse_channel_data(&[0x40, 0x01, 0, 3, 1, 2, 3, 0]),
            Some((0x4001, &[1u8, 2, 3][..]))
        );
        assert_eq!(parse_channel_data(&[0x40, 0x01, 0, 5, 1, 2, 3]), None);
        assert_eq!(parse_channel_data(&[0x7F, 0xFF, 0, 0]), None);
        assert_eq!(parse_channel_data(&[0x3F, 0xFF, 0, 0]), None);
        assert_eq!(parse_channel_data(&[0x40]), None);
        assert_eq!(
            parse_channel_data(&[0x7F, 0xFE, 0, 0]),
            Some((0x7FFE, &[][..]))
        );
    }

    #[test]
    fn stream_framing() {
        assert_eq!(stream_frame_len(&[0x00, 0x01, 0x00]), Ok(None));
        let mut stun = vec![0x00, 0x01, 0x00, 0x08];
        stun.resize(27, 0);
        assert_eq!(stream_frame_len(&stun), Ok(None));
        stun.push(0);
        assert_eq!(stream_frame_len(&stun), Ok(Some(28)));
        assert_eq!(
            stream_frame_len(&[0x00, 0x01, 0x00, 0x03]),
            Err(FramingError::UnalignedStun)
        );
        // ChannelData of 5 bytes is padded to 8 on a stream.
        let mut channel = vec![0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5];
        assert_eq!(stream_frame_len(&channel), Ok(None));
        channel.extend([0, 0, 0]);
        assert_eq!(stream_frame_len(&channel), Ok(Some(12)));
        assert_eq!(
            stream_frame_len(&[0x16, 0x03, 0x01, 0x00]),
            Err(FramingError::NotTurn(0x16))
        );
    }

    #[test]
    fn data_indication_decodes_with_stun_rs() {
        for peer in [
            "203.0.113.7:5000".parse::<SocketAddr>().unwrap(),
            "[2001:db8::7]:6000".parse().unwrap(),
        ] {
            for payload in [&b""[..], b"a", b"hello", b"12345678"] {
                let header = data_indication_header_len(peer);
                let mut buf = vec![0xEEu8; header + payload.len() + 8];
                buf[header..header + payload.len()].copy_from_slice(payload);
                let mut ids = TransactionIds::new();
                let total = write_data_indication(&mut buf, peer, ids.next_id(), payload.len())
                    .expect("small payloads fit");
                assert_eq!(total % 4, 0);
                let (msg, used) = MessageDecoderBuilder::default()
                    .build()
                    .decode(&buf[..total])
                    .expect("our Data indication must decode");
                assert_eq!(used, total);
                assert_eq!(msg.method(), stun_rs::methods::DATA);
                assert_eq!(msg.class(), stun_rs::MessageClass::Indication);
                let address = msg
                    .get::<stun_rs::attributes::turn::XorPeerAddress>()
                    .and_then(|a| a.as_xor_peer_address().ok())
                    .expect("XOR-PEER-ADDRESS");
                assert_eq!(*address.socket_address(), peer);
                let data = msg
                    .get::<stun_rs::attributes::turn::Data>()
                    .and_then(|a| a.as_data().ok())
                    .expect("DATA");
                assert_eq!(data.as_bytes(), payload);
            }
        }
    }

    #[test]
    fn oversized_data_indications_are_refused_not_wrapped() {
        let v6: SocketAddr = "[2001:db8::7]:6000".parse().unwrap();
        let v4: SocketAddr = "203.0.113.7:6000".parse().unwrap();
        let mut buf = vec![0u8; DATA_INDICATION_HEADROOM + MAX_UDP_PAYLOAD + 4];
        assert!(write_data_indication(&mut buf, v6, [1; 12], 65_504).is_some());
        assert_eq!(write_data_indication(&mut buf, v6, [1; 12], 65_505), None);
        assert!(write_data_indication(&mut buf, v4, [1; 12], MAX_UDP_PAYLOAD).is_some());
    }

    #[test]
    fn transaction_ids_differ() {
        let mut ids = TransactionIds::new();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
    }
}
