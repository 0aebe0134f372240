//! Switching on one UDP option of a media socket (`setsockopt(SOL_UDP, …)`): the one unsafe
//! call the GSO probe and the GRO switch share, and whether the kernel took it. It only sets an
//! option; it never reads or writes a datagram, and it refers to no other file of the SFU.

use tokio::net::UdpSocket;

/// Sets UDP option `option` (e.g. `libc::UDP_GRO`) on `socket` to `value`; whether the kernel
/// took it. A refusal is logged at debug level as "no {what} on the media socket".
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // setsockopt: see SAFETY below.
pub(super) fn set(socket: &UdpSocket, option: libc::c_int, value: libc::c_int, what: &str) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the option value is a live c_int and the length says so; the kernel only reads it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            option,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "no {what} on the media socket");
    }
    result == 0
}
