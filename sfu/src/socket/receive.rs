//! Receiving media datagrams in batches: on Linux one `recvmmsg(2)` call fills up to
//! [`BATCH`] reused buffers with whatever the socket holds, so a busy socket costs one system
//! call and one wake-up per batch instead of per datagram. Elsewhere, one `recv_from` a call.
//! It only receives: routing the datagrams is the reader's job, and it never blocks (the
//! socket is non-blocking and readiness comes from tokio).

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams one call takes at most.
pub(super) const BATCH: usize = 32;
/// Room for the largest datagram we accept (WebRTC keeps datagrams under the path MTU); a
/// longer one is dropped.
const DATAGRAM_BYTES: usize = 2048;

/// Reused receive buffers and what the last call put in them.
pub(super) struct Batch {
    buffers: Vec<[u8; DATAGRAM_BYTES]>,
    received: Vec<(usize, SocketAddr)>,
}

impl Batch {
    pub(super) fn new() -> Self {
        Batch {
            buffers: vec![[0; DATAGRAM_BYTES]; BATCH],
            received: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last [`Batch::receive`]: payload and sender.
    pub(super) fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.received
            .iter()
            .zip(&self.buffers)
            .map(|(&(len, peer), buffer)| (&buffer[..len], peer))
    }

    /// Takes what the socket holds now, up to [`BATCH`] datagrams; `Ok(0)` when it holds
    /// nothing (tokio's readiness is cleared then, so the next `readable()` waits).
    pub(super) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
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
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.buffers[i].as_mut_ptr().cast(),
            iov_len: DATAGRAM_BYTES,
        });
        let mut headers: [libc::mmsghdr; BATCH] = std::array::from_fn(|i| {
            // SAFETY: as above, mmsghdr is plain data; all zeroes is an empty header.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = std::ptr::addr_of_mut!(addresses[i]).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            header.msg_hdr.msg_iov = &mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            header
        });
        // SAFETY: every header points at an address slot, an iovec and a buffer of
        // DATAGRAM_BYTES that outlive the call and are not moved during it; the kernel writes
        // at most that much into each and sets msg_len and msg_namelen.
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
            // A datagram without an IP sender (cannot happen on a UDP/IP socket) is skipped
            // by giving it no bytes.
            // So is a datagram cut short (longer than our buffer: not WebRTC's).
            let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let (len, peer) = match ip_address(address) {
                Some(peer) if !truncated => (header.msg_len as usize, peer),
                _ => (0, SocketAddr::from(([0, 0, 0, 0], 0))),
            };
            self.received.push((len.min(DATAGRAM_BYTES), peer));
        }
        Ok(self.received.len())
    }

    #[cfg(not(target_os = "linux"))]
    fn receive_now(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (len, peer) = socket.try_recv_from(&mut self.buffers[0])?;
        self.received.push((len, peer));
        Ok(1)
    }
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
        let mut batch = Batch::new();
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
}
