//! Receiving media datagrams in batches: on Linux one `recvmmsg(2)` call fills up to
//! [`BATCH`] reused buffers with whatever the socket holds, so a busy socket costs one system
//! call and one wake-up per batch instead of per datagram. Where the kernel offers UDP GRO
//! (Linux 5.0 and later), it may join a run of equal datagrams from one sender (a video frame's
//! packets sent with GSO, or a burst a network card coalesced) into one read, which the batch
//! hands on as the datagrams they were. Elsewhere, one `recv_from` a call.
//! It only receives: routing the datagrams is the reader's job, and it never blocks (the
//! socket is non-blocking and readiness comes from tokio).

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Reads one call takes at most.
pub(super) const BATCH: usize = 32;
/// Room for the largest datagram we accept (WebRTC keeps datagrams under the path MTU); a
/// longer one is dropped.
const DATAGRAM_BYTES: usize = 2048;
/// Room for one read with GRO: the kernel joins datagrams up to one UDP payload (65,535 bytes).
/// The buffers are only touched as far as the kernel writes.
const GRO_BYTES: usize = 65_536;

/// Asks the kernel to join runs of equal datagrams from one sender on `socket` (`UDP_GRO`);
/// whether it will. A socket that says yes must be read with a batch made with `gro` set, whose
/// buffers hold a joined read.
#[cfg(target_os = "linux")]
pub(super) fn enable_gro(socket: &UdpSocket) -> bool {
    super::udp_option::set(socket, libc::UDP_GRO, 1, "UDP GRO")
}

#[cfg(not(target_os = "linux"))]
pub(super) fn enable_gro(_socket: &UdpSocket) -> bool {
    false
}

/// One read of the last call: where it came from, its length, and the size of the datagrams
/// the kernel joined in it (0: one datagram).
#[derive(Clone, Copy)]
struct Read {
    len: usize,
    peer: SocketAddr,
    segment: usize,
}

/// Reused receive buffers and what the last call put in them.
pub(super) struct Batch {
    /// [`BATCH`] buffers of `slot` bytes each, one after the other.
    buffers: Vec<u8>,
    slot: usize,
    reads: Vec<Read>,
}

impl Batch {
    /// Buffers for a socket without GRO (`gro` false: one datagram a read) or with it.
    pub(super) fn new(gro: bool) -> Self {
        let slot = if gro { GRO_BYTES } else { DATAGRAM_BYTES };
        Batch {
            buffers: vec![0; slot * BATCH],
            slot,
            reads: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last [`Batch::receive`], a joined read taken apart: payload and
    /// sender.
    pub(super) fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.reads
            .iter()
            .zip(self.buffers.chunks(self.slot))
            .flat_map(|(read, buffer)| {
                let piece = if read.segment == 0 {
                    read.len.max(1)
                } else {
                    read.segment
                };
                buffer[..read.len].chunks(piece).map(|d| (d, read.peer))
            })
    }

    /// Takes what the socket holds now, up to [`BATCH`] reads; `Ok(0)` when it holds nothing
    /// (tokio's readiness is cleared then, so the next `readable()` waits). The count is of
    /// reads, each one datagram or, with GRO, several.
    pub(super) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.reads.clear();
        match socket.try_io(Interest::READABLE, || self.receive_now(socket)) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)] // recvmmsg(2): neither std nor tokio offers it; see SAFETY below.
    fn receive_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        // SAFETY: sockaddr_storage is a plain C struct for which all zeroes is valid.
        let mut addresses: [libc::sockaddr_storage; BATCH] =
            std::array::from_fn(|_| unsafe { std::mem::zeroed() });
        let mut controls = [Control([0; CONTROL_BYTES]); BATCH];
        let slot = self.slot;
        let mut buffers = self.buffers.chunks_mut(slot);
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: buffers
                .next()
                .map_or(std::ptr::null_mut(), |b| b.as_mut_ptr().cast()),
            iov_len: slot,
        });
        let mut headers: [libc::mmsghdr; BATCH] = std::array::from_fn(|i| {
            // SAFETY: as above, mmsghdr is plain data; all zeroes is an empty header.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = std::ptr::addr_of_mut!(addresses[i]).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            header.msg_hdr.msg_iov = &mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = controls[i].0.as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = CONTROL_BYTES as _;
            header
        });
        // SAFETY: every header points at an address slot, a control buffer of CONTROL_BYTES,
        // an iovec and a buffer of `slot` bytes (BATCH of them in `self.buffers`), all of which
        // outlive the call and are not moved during it; the kernel writes at most that much
        // into each and sets msg_len, msg_namelen, msg_controllen and msg_flags.
        let count = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        for (header, address) in headers.iter().zip(&addresses).take(count as usize) {
            let segment = gro_segment(&header.msg_hdr);
            let len = header.msg_len as usize;
            // A read without an IP sender (cannot happen on a UDP/IP socket) is skipped by
            // giving it no bytes. So is one cut short (longer than the buffer), and one whose
            // datagrams are longer than we accept (not WebRTC's).
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let longest = if segment == 0 { len } else { segment };
            let read = match ip_address(address) {
                Some(peer) if !truncated && longest <= DATAGRAM_BYTES => Read {
                    len: len.min(slot),
                    peer,
                    segment,
                },
                _ => Read {
                    len: 0,
                    peer: SocketAddr::from(([0, 0, 0, 0], 0)),
                    segment: 0,
                },
            };
            self.reads.push(read);
        }
        Ok(self.reads.len())
    }

    #[cfg(not(target_os = "linux"))]
    fn receive_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (len, peer) = socket.try_recv_from(&mut self.buffers[..self.slot])?;
        self.reads.push(Read {
            len,
            peer,
            segment: 0,
        });
        Ok(1)
    }
}

/// Room for a read's control messages: the one we ask for (`UDP_GRO`, an int) takes 24 bytes
/// on 64-bit Linux; anything more is cut off by the kernel, not written past.
#[cfg(target_os = "linux")]
const CONTROL_BYTES: usize = 64;

/// A read's control-message buffer, aligned as `cmsghdr` needs.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CONTROL_BYTES]);

/// The size of the datagrams the kernel joined into this read (its `UDP_GRO` control message),
/// or 0 when it holds one datagram.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // Walking the control messages the kernel wrote.
fn gro_segment(message: &libc::msghdr) -> usize {
    // SAFETY: msg_control points at this read's control buffer and msg_controllen says how
    // much of it the kernel filled; CMSG_FIRSTHDR and CMSG_NXTHDR stay within that length and
    // return null past it, and CMSG_DATA of a UDP_GRO message points at the int it carries.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).unwrap_or(0);
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
    0
}

/// The IPv4 or IPv6 address the kernel wrote into `storage`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // Reading the sockaddr variant that ss_family names.
fn ip_address(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let v4 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::from((
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_what_is_waiting_in_one_call_with_each_sender() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        for i in 0..40u8 {
            let from = if i % 2 == 0 { &a } else { &b };
            from.send_to(&vec![i; usize::from(i) + 1], to)
                .await
                .unwrap();
        }
        let mut batch = Batch::new(false);
        let mut got = Vec::new();
        while got.len() < 40 {
            receiver.readable().await.unwrap();
            let n = batch.receive(&receiver).unwrap();
            if n == 0 {
                continue;
            }
            if cfg!(target_os = "linux") && got.is_empty() {
                assert_eq!(n, BATCH, "the first call takes a whole batch");
            }
            got.extend(batch.datagrams().map(|(d, peer)| (d.to_vec(), peer)));
        }
        for (i, (data, peer)) in got.iter().enumerate() {
            assert_eq!(data, &vec![i as u8; i + 1]);
            let from = if i % 2 == 0 { &a } else { &b };
            assert_eq!(*peer, from.local_addr().unwrap());
        }
        // Nothing left: no datagram, and no error.
        assert_eq!(batch.receive(&receiver).unwrap(), 0);
    }

    async fn receive_until(
        batch: &mut Batch,
        socket: &UdpSocket,
        count: usize,
    ) -> (usize, Vec<(Vec<u8>, SocketAddr)>) {
        let mut reads = 0;
        let mut got = Vec::new();
        while got.len() < count {
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.readable())
                .await
                .expect("every datagram arrives")
                .unwrap();
            reads += batch.receive(socket).unwrap();
            got.extend(batch.datagrams().map(|(d, peer)| (d.to_vec(), peer)));
        }
        (reads, got)
    }

    /// A video frame sent with GSO (our own send path: ten equal packets and a shorter last
    /// one), and a datagram from another sender: with GRO the kernel hands the frame over in
    /// fewer reads than datagrams, and the batch gives back each datagram as it was sent.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_joined_read_comes_apart_into_the_datagrams_sent() {
        use crate::io::Outgoing;
        use crate::socket::send::{Gso, send_batch};

        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(enable_gro(&receiver), "UDP_GRO is in every Linux since 5.0");
        let frame_sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = receiver.local_addr().unwrap();
        let from = frame_sender.local_addr().unwrap();
        let mut out = Outgoing::default();
        let mut expected = Vec::new();
        for i in 0..11u8 {
            let size = if i == 10 { 500 } else { 1200 };
            out.push(from, to, bytes::BytesMut::from(&vec![i; size][..]));
            expected.push((vec![i; size], from));
        }
        send_batch(&frame_sender, &Gso::probe(&frame_sender), &out.datagrams);
        other.send_to(&[99; 300], to).await.unwrap();
        expected.push((vec![99; 300], other.local_addr().unwrap()));

        let mut batch = Batch::new(true);
        let (reads, got) = receive_until(&mut batch, &receiver, expected.len()).await;
        assert_eq!(got, expected);
        assert!(
            reads < got.len(),
            "the kernel joined the frame: {reads} reads for {} datagrams",
            got.len()
        );
    }

    /// Joined datagrams longer than we accept are dropped as a longer single one would be,
    /// and the reads after them still arrive.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn joined_datagrams_longer_than_we_accept_are_dropped() {
        use crate::io::Outgoing;
        use crate::socket::send::{Gso, send_batch};

        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(enable_gro(&receiver));
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (from, to) = (sender.local_addr().unwrap(), receiver.local_addr().unwrap());
        let mut out = Outgoing::default();
        for i in 0..3u8 {
            out.push(from, to, bytes::BytesMut::from(&vec![i; 3000][..]));
        }
        send_batch(&sender, &Gso::probe(&sender), &out.datagrams);
        sender.send_to(&[7; 100], to).await.unwrap();

        let mut batch = Batch::new(true);
        let (_, got) = receive_until(&mut batch, &receiver, 1).await;
        assert_eq!(got, vec![(vec![7; 100], from)]);
    }
}
