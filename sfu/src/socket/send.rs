//! Sending media datagrams: what a room's turn produced leaves through one socket in as few
//! system calls, and as few trips down the kernel's network stack, as the platform allows.
//! On Linux one `sendmmsg(2)` call takes up to [`BATCH`] messages, and where several datagrams
//! in a row go to the same peer with the same size (a video frame's packets to one subscriber:
//! a frame is cut into equal packets and a shorter last one), they go as one UDP GSO message
//! (`UDP_SEGMENT`), which the kernel (or the network card) cuts back into exactly those
//! datagrams. Elsewhere, one `send_to` per datagram.
//!
//! It never waits (a full socket buffer drops the rest of the batch, as a congested network
//! would), never copies a payload (a message gathers its datagrams' buffers where they are),
//! and never joins datagrams a receiver could tell from separate ones.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UdpSocket;
use tracing::{debug, warn};

use crate::io::OutgoingDatagram;

/// Whether the kernel takes GSO messages on a socket: probed when it is bound, and given up
/// for good if the kernel refuses one as a whole (a device that cannot checksum the pieces).
pub(super) struct Gso(AtomicBool);

impl Gso {
    /// Asks the kernel whether `socket` takes `UDP_SEGMENT` (Linux 4.18 and later).
    #[cfg(target_os = "linux")]
    pub(super) fn probe(socket: &UdpSocket) -> Gso {
        // A per-socket segment size of 0 leaves every message whole unless it says otherwise;
        // the call only succeeds where the option exists.
        Gso(AtomicBool::new(super::udp_option::set(
            socket,
            libc::UDP_SEGMENT,
            0,
            "UDP GSO",
        )))
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn probe(_socket: &UdpSocket) -> Gso {
        Gso(AtomicBool::new(false))
    }

    fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn give_up(&self, error: &io::Error) {
        if self.0.swap(false, Ordering::Relaxed) {
            warn!(%error, "the kernel refused a UDP GSO message; sending media datagrams one by one from now on");
        }
    }
}

/// Messages one `sendmmsg` call takes at most.
#[cfg(target_os = "linux")]
const BATCH: usize = 32;
/// Datagrams one call takes at most, over all its messages.
#[cfg(target_os = "linux")]
const IOVECS: usize = 128;
/// Datagrams one GSO message takes at most (the kernel's `UDP_MAX_SEGMENTS`, 64 on the oldest
/// kernels that have GSO).
const MAX_SEGMENTS: usize = 64;
/// Bytes one GSO message holds at most: under a UDP payload's 65,507 with room to spare.
const MAX_GSO_BYTES: usize = 60_000;

/// How many datagrams from the front of `datagrams` go as one message. With `gso`: a run to one
/// peer in which every datagram has the first one's size except a shorter last one (GSO cuts a
/// message into pieces of one size, the last may be shorter), up to [`MAX_SEGMENTS`] and
/// [`MAX_GSO_BYTES`]. Without: one. Zero only for no datagrams.
fn message_len(datagrams: &[OutgoingDatagram], gso: bool) -> usize {
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let size = first.data.len();
    if !gso || size == 0 {
        return 1;
    }
    let mut len = 1;
    let mut bytes = size;
    for next in &datagrams[1..] {
        let next_size = next.data.len();
        if len == MAX_SEGMENTS
            || next.peer != first.peer
            || next_size == 0
            || next_size > size
            || bytes + next_size > MAX_GSO_BYTES
        {
            break;
        }
        len += 1;
        bytes += next_size;
        if next_size < size {
            break;
        }
    }
    len
}

/// Sends `datagrams` (all from `socket`'s address) on `socket`. A datagram the kernel refuses
/// (unreachable, say) is dropped, as the network would, and the rest still go; a full buffer
/// drops what is left of the call.
#[cfg(target_os = "linux")]
pub(super) fn send_batch(socket: &UdpSocket, gso: &Gso, datagrams: &[OutgoingDatagram]) {
    let mut rest = datagrams;
    while !rest.is_empty() {
        let covered = send_call(socket, gso, rest);
        rest = &rest[covered..];
    }
}

/// A `GSO` message's control message: `UDP_SEGMENT` and the size of the pieces.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Clone, Copy)]
struct SegmentSize {
    header: libc::cmsghdr,
    size: u16,
}

// The kernel reads the control buffer as `CMSG_SPACE(2)` bytes with the value right after the
// header: exactly this struct's layout.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // CMSG_SPACE is a const computation on integers.
const _: () =
    assert!(std::mem::size_of::<SegmentSize>() == unsafe { libc::CMSG_SPACE(2) } as usize);

#[cfg(target_os = "linux")]
impl SegmentSize {
    #[allow(unsafe_code)] // See SAFETY below.
    fn new(size: usize) -> SegmentSize {
        // SAFETY: cmsghdr is a plain C struct of integers, for which all zeroes is valid.
        let mut header: libc::cmsghdr = unsafe { std::mem::zeroed() };
        header.cmsg_level = libc::SOL_UDP;
        header.cmsg_type = libc::UDP_SEGMENT;
        // SAFETY: CMSG_LEN is arithmetic on its argument.
        header.cmsg_len = unsafe { libc::CMSG_LEN(2) } as _;
        SegmentSize {
            header,
            size: size as u16,
        }
    }
}

/// One `sendmmsg(2)` call (retried after an interruption or past a refused message) for as many
/// messages from the front of `datagrams` as it takes. Returns how many datagrams it covered,
/// sent or dropped.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // The one system call neither std nor tokio offers; see SAFETY below.
fn send_call(socket: &UdpSocket, gso: &Gso, datagrams: &[OutgoingDatagram]) -> usize {
    use std::os::fd::AsRawFd;

    let gso_on = gso.enabled();
    // Each message as (first datagram, datagrams), both counted from the call's first.
    let mut messages = [(0usize, 0usize); BATCH];
    let mut count = 0;
    let mut covered = 0;
    while count < BATCH && covered < IOVECS {
        let len = message_len(&datagrams[covered..], gso_on).min(IOVECS - covered);
        if len == 0 {
            break;
        }
        messages[count] = (covered, len);
        count += 1;
        covered += len;
    }
    let call = &datagrams[..covered];
    let addresses: [Option<socket2::SockAddr>; BATCH] = std::array::from_fn(|i| {
        (i < count).then(|| socket2::SockAddr::from(call[messages[i].0].peer))
    });
    let mut buffers: [libc::iovec; IOVECS] = std::array::from_fn(|i| libc::iovec {
        iov_base: call
            .get(i)
            .map_or(std::ptr::null_mut(), |d| d.data.as_ptr().cast_mut().cast()),
        iov_len: call.get(i).map_or(0, |d| d.data.len()),
    });
    let mut controls: [SegmentSize; BATCH] = std::array::from_fn(|i| {
        SegmentSize::new(call.get(messages[i].0).map_or(0, |d| d.data.len()))
    });
    let buffers_at = buffers.as_mut_ptr();
    let mut headers: [libc::mmsghdr; BATCH] = std::array::from_fn(|i| {
        // SAFETY: msghdr and mmsghdr are plain C structs of integers and pointers, for which
        // all zeroes is a valid (empty) value.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        if let Some(address) = &addresses[i] {
            let (first, len) = messages[i];
            header.msg_hdr.msg_name = address.as_ptr().cast_mut().cast();
            header.msg_hdr.msg_namelen = address.len();
            // SAFETY: `first + len <= covered <= IOVECS`, inside `buffers`.
            header.msg_hdr.msg_iov = unsafe { buffers_at.add(first) };
            header.msg_hdr.msg_iovlen = len as _;
            if len > 1 {
                header.msg_hdr.msg_control = std::ptr::from_mut(&mut controls[i]).cast();
                header.msg_hdr.msg_controllen = std::mem::size_of::<SegmentSize>() as _;
            }
        }
        header
    });
    let mut sent = 0;
    while sent < count {
        // SAFETY: the first `count` headers point at addresses, iovecs, control messages and
        // payloads that live until the end of this function and are not moved; the kernel reads
        // them and writes only each header's `msg_len`.
        let result = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers[sent..count].as_mut_ptr(),
                (count - sent) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if result > 0 {
            sent += result as usize;
            continue;
        }
        let error = io::Error::last_os_error();
        let (first, len) = messages[sent];
        match error.kind() {
            io::ErrorKind::Interrupted => continue,
            // The socket's buffer is full: the rest of this call would be refused too, one
            // failing call each. Drop it, as a congested network would.
            io::ErrorKind::WouldBlock => return covered,
            // Refused as one message: its datagrams go one by one (and they meet the same
            // fate if the peer is what the kernel refused). EIO is a device that cannot do
            // GSO on this path: stop asking.
            _ if len > 1 => {
                if error.raw_os_error() == Some(libc::EIO) {
                    gso.give_up(&error);
                }
                send_each(socket, &call[first..first + len]);
            }
            _ => debug!(peer = %call[first].peer, %error, "media send failed"),
        }
        sent += 1;
    }
    covered
}

/// Sends `datagrams` on `socket` one by one, each refusal dropping that datagram only.
fn send_each(socket: &UdpSocket, datagrams: &[OutgoingDatagram]) {
    for d in datagrams {
        if let Err(e) = socket.try_send_to(&d.data, d.peer)
            && e.kind() != io::ErrorKind::WouldBlock
        {
            debug!(peer = %d.peer, error = %e, "media send failed");
        }
    }
}

/// Sends `datagrams` on `socket` one by one.
#[cfg(not(target_os = "linux"))]
pub(super) fn send_batch(socket: &UdpSocket, _gso: &Gso, datagrams: &[OutgoingDatagram]) {
    send_each(socket, datagrams);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::BytesMut;

    use super::*;
    use crate::io::Outgoing;

    async fn receive_all(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while got.len() < count {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .expect("every datagram arrives")
                .unwrap();
            got.push(buf[..n].to_vec());
        }
        got
    }

    /// `n` bytes, each the datagram's number, so that a datagram run into another shows.
    fn datagram(number: u8, n: usize) -> BytesMut {
        BytesMut::from(&vec![number; n][..])
    }

    fn planned(datagrams: &[OutgoingDatagram], gso: bool) -> Vec<usize> {
        let mut lens = Vec::new();
        let mut rest = datagrams;
        while !rest.is_empty() {
            let len = message_len(rest, gso);
            lens.push(len);
            rest = &rest[len..];
        }
        lens
    }

    #[test]
    fn a_frame_to_one_peer_is_one_message_and_anything_else_ends_it() {
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:3".parse().unwrap();
        let mut out = Outgoing::default();
        // A frame: four full packets and a shorter last one.
        for i in 0..4 {
            out.push(local, a, datagram(i, 1200));
        }
        out.push(local, a, datagram(4, 700));
        // Another peer.
        out.push(local, b, datagram(5, 1200));
        out.push(local, b, datagram(6, 1200));
        // Back to the first, a larger one after a smaller one.
        out.push(local, a, datagram(7, 300));
        out.push(local, a, datagram(8, 1200));
        // Empty datagrams never join a message.
        out.push(local, a, datagram(9, 0));
        out.push(local, a, datagram(10, 0));
        assert_eq!(planned(&out.datagrams, true), [5, 2, 1, 1, 1, 1]);
        assert_eq!(planned(&out.datagrams, false), [1; 11]);
    }

    #[test]
    fn a_message_stops_at_the_kernels_limits() {
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut out = Outgoing::default();
        for i in 0..100 {
            out.push(local, a, datagram(i, 100));
        }
        assert_eq!(planned(&out.datagrams, true), [64, 36]);
        let mut out = Outgoing::default();
        for i in 0..60 {
            out.push(local, a, datagram(i, 1400));
        }
        // 42 × 1,400 = 58,800 bytes; one more would pass 60,000.
        assert_eq!(planned(&out.datagrams, true), [42, 18]);
    }

    #[tokio::test]
    async fn this_kernel_takes_gso_on_the_media_socket() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(
            Gso::probe(&socket).enabled(),
            "UDP_SEGMENT is in every Linux since 4.18"
        );
    }

    /// Frames to two receivers, interleaved as a room's turn leaves them: every datagram arrives
    /// on its own, whole and in order, with GSO and without.
    #[tokio::test]
    async fn frames_arrive_as_the_datagrams_they_were() {
        for gso in [true, false] {
            let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let local = sender.local_addr().unwrap();
            let mut out = Outgoing::default();
            let mut expect_a = Vec::new();
            let mut expect_b = Vec::new();
            let mut number = 0u8;
            // 20 frames of 1-6 packets each way: more messages and datagrams than one call takes
            // (small enough that the receivers' default buffers hold them all).
            for frame in 0..20usize {
                for (to, expect) in [(&a, &mut expect_a), (&b, &mut expect_b)] {
                    let packets = 1 + frame % 6;
                    for p in 0..packets {
                        let size = if p + 1 == packets { 200 + frame } else { 500 };
                        number = number.wrapping_add(1);
                        out.push(local, to.local_addr().unwrap(), datagram(number, size));
                        expect.push(vec![number; size]);
                    }
                }
            }
            let flag = Gso(AtomicBool::new(gso));
            send_batch(&sender, &flag, &out.datagrams);
            assert_eq!(receive_all(&a, expect_a.len()).await, expect_a, "gso {gso}");
            assert_eq!(receive_all(&b, expect_b.len()).await, expect_b, "gso {gso}");
        }
    }

    /// A destination the kernel refuses (port 0) costs its own datagrams only, whether they
    /// went alone or as one GSO message.
    #[tokio::test]
    async fn what_the_kernel_refuses_is_dropped_and_the_rest_still_go() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = sender.local_addr().unwrap();
        let good = receiver.local_addr().unwrap();
        let refused: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut out = Outgoing::default();
        out.push(local, good, datagram(1, 10));
        out.push(local, refused, datagram(20, 10));
        out.push(local, good, datagram(2, 10));
        out.push(local, refused, datagram(21, 10));
        out.push(local, refused, datagram(22, 10));
        out.push(local, refused, datagram(23, 5));
        out.push(local, good, datagram(3, 10));
        out.push(local, good, datagram(4, 10));
        let gso = Gso::probe(&sender);
        send_batch(&sender, &gso, &out.datagrams);
        assert_eq!(
            receive_all(&receiver, 4).await,
            [1u8, 2, 3, 4].map(|n| vec![n; 10])
        );
        assert!(gso.enabled(), "a refused peer is no reason to give GSO up");
    }
}
