//! An IP network (address and prefix length), the target of `ip/len` allow rules.
//! Membership and text form only; it never decides whether a peer is allowed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::canonical::{NAT64_LOCAL, NAT64_WELL_KNOWN, SIX_TO_FOUR, TEREDO, V4_MAPPED};
use super::prefix::{in_v6, mask_v4, mask_v6};

/// An IP network: an address and a prefix length, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    len: u8,
}

impl Network {
    /// The network of `addr` with a `len`-bit prefix; bits of `addr` past
    /// the prefix are cleared. `None` if `len` exceeds 32 (IPv4) or 128
    /// (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => {
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask_v4(len)))
            }
            IpAddr::V6(a) if len <= 128 => {
                IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask_v6(len)))
            }
            _ => return None,
        };
        Some(Network { addr, len })
    }

    /// The network address (host bits clear).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in this network (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => ip.to_bits() & mask_v4(self.len) == net.to_bits(),
            (IpAddr::V6(net), IpAddr::V6(ip)) => ip.to_bits() & mask_v6(self.len) == net.to_bits(),
            _ => false,
        }
    }

    /// Whether some address in this network is canonical, i.e. whether a
    /// rule naming this network could ever match a checked peer.
    pub(super) fn has_canonical_address(&self) -> bool {
        let IpAddr::V6(net) = self.addr else {
            return true;
        };
        let (bits, len) = (net.to_bits(), self.len);
        let inside = |p: u128, plen: u8| len >= plen && in_v6(bits, p, plen);
        let translated = inside(V4_MAPPED, 96)
            || inside(NAT64_WELL_KNOWN, 96)
            || inside(NAT64_LOCAL, 48)
            || inside(SIX_TO_FOUR, 16)
            || inside(TEREDO, 32)
            || (inside(0, 96)
                && !self.contains(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
                && !self.contains(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        !translated
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}
