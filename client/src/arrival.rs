//! When a datagram really arrived: the kernel's receive timestamp (`SO_TIMESTAMPNS`), not the
//! moment this process got round to reading it. A load test runs many clients in one process on
//! a busy machine, and the transport-wide feedback they send must carry arrival times the SFU's
//! bandwidth estimator can trust. It only reads sockets; it never sends.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Asks the kernel to stamp every datagram `socket` receives.
pub(crate) fn stamp_arrivals(socket: &UdpSocket) -> io::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Receives one datagram into `buf`: its length, sender and arrival (the kernel's stamp, or now
/// when there is none).
pub(crate) async fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Instant)> {
    socket
        .async_io(Interest::READABLE, || {
            let mut iov = [io::IoSliceMut::new(buf)];
            let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
            let msg = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            let from = msg
                .address
                .and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| SocketAddr::V4((*v4).into()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
                })
                .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
            let mut arrival = None;
            for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
                    let stamp = UNIX_EPOCH
                        + Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().max(0) as u32);
                    arrival = Some(instant_of(stamp));
                }
            }
            Ok((msg.bytes, from, arrival.unwrap_or_else(Instant::now)))
        })
        .await
}

/// The `Instant` of a wall-clock time in the recent past (never later than now).
fn instant_of(stamp: SystemTime) -> Instant {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let age = wall.duration_since(stamp).unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel turns receive stamping on lazily (a deferred static key), so the first
    /// datagrams after the very first `SO_TIMESTAMPNS` on a machine may carry no stamp and get
    /// the read time instead. The test sends until stamping is on, at most a few times.
    #[tokio::test]
    async fn a_datagram_carries_the_time_it_arrived_not_the_time_it_was_read() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        stamp_arrivals(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut late_by = Vec::new();
        for _ in 0..10 {
            tx.send_to(b"hello", rx.local_addr().unwrap())
                .await
                .unwrap();
            let sent = Instant::now();
            // Read it 200 ms late, as a busy process would.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut buf = [0u8; 64];
            let (n, from, arrival) = recv_stamped(&rx, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from, tx.local_addr().unwrap());
            let read_at = Instant::now();
            // Unstamped, a datagram gets its read time: it counts as a try, not a failure.
            let late = read_at.duration_since(arrival);
            if late >= Duration::from_millis(150) {
                assert!(
                    arrival <= sent + Duration::from_millis(50)
                        && arrival + Duration::from_millis(50) >= sent,
                    "arrival {:?} after the send, {:?} before it",
                    arrival.saturating_duration_since(sent),
                    sent.saturating_duration_since(arrival)
                );
                return;
            }
            late_by.push(late);
        }
        panic!(
            "no datagram carried the kernel's stamp; each was stamped this long before its read: {late_by:?}"
        );
    }
}
