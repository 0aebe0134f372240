//! Address canonicalisation: IPv6 forms that carry an IPv4 address reduced to it.
//! Pure functions on addresses; it never decides whether a peer is allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::prefix::in_v6;
use super::refusal::Refusal;

/// `::ffff:0:0/96`, IPv4-mapped addresses (RFC 4291 §2.5.5.2).
pub(super) const V4_MAPPED: u128 = 0xffff_u128 << 32;
/// `64:ff9b::/96`, the NAT64 well-known prefix (RFC 6052).
pub(super) const NAT64_WELL_KNOWN: u128 = 0x0064_ff9b_u128 << 96;
/// `64:ff9b:1::/48`, the NAT64 local-use prefix (RFC 8215).
pub(super) const NAT64_LOCAL: u128 = 0x0064_ff9b_0001_u128 << 80;
/// `2002::/16`, 6to4 (RFC 3056).
pub(super) const SIX_TO_FOUR: u128 = 0x2002_u128 << 112;
/// `2001::/32`, Teredo (RFC 4380).
pub(super) const TEREDO: u128 = 0x2001_0000_u128 << 96;

/// Reduces `ip` to the address the relay would really talk to.
///
/// IPv4 addresses are returned unchanged. IPv6 addresses that embed an IPv4
/// address (IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96` other than
/// `::` and `::1`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
/// `2002::/16`) are reduced to that IPv4 address; other IPv6 addresses are
/// returned unchanged.
///
/// # Errors
///
/// [`Refusal::Teredo`] for Teredo addresses (`2001::/32`).
pub fn canonicalize(ip: IpAddr) -> Result<IpAddr, Refusal> {
    let v6 = match ip {
        IpAddr::V4(_) => return Ok(ip),
        IpAddr::V6(v6) => v6,
    };
    let bits = v6.to_bits();
    // Truncation is the point: these forms carry the IPv4 address in the low
    // 32 bits (or, for 6to4, in bits 16..48, shifted down first).
    let low32 = Ipv4Addr::from_bits(bits as u32);
    if in_v6(bits, V4_MAPPED, 96)
        || (in_v6(bits, 0, 96) && bits > 1)
        || in_v6(bits, NAT64_WELL_KNOWN, 96)
        || in_v6(bits, NAT64_LOCAL, 48)
    {
        Ok(IpAddr::V4(low32))
    } else if in_v6(bits, SIX_TO_FOUR, 16) {
        Ok(IpAddr::V4(Ipv4Addr::from_bits((bits >> 80) as u32)))
    } else if in_v6(bits, TEREDO, 32) {
        Err(Refusal::Teredo)
    } else {
        Ok(ip)
    }
}

/// [`canonicalize`] for a socket address: the port is kept, and so are the
/// IPv6 flow label and scope id when the address stays IPv6.
///
/// # Errors
///
/// [`Refusal::Teredo`] for Teredo addresses.
pub fn canonicalize_addr(addr: SocketAddr) -> Result<SocketAddr, Refusal> {
    match addr {
        SocketAddr::V4(_) => Ok(addr),
        SocketAddr::V6(v6) => Ok(match canonicalize(IpAddr::V6(*v6.ip()))? {
            IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(
                ip,
                v6.port(),
                v6.flowinfo(),
                v6.scope_id(),
            )),
        }),
    }
}

/// Every way of writing `v4` that [`canonicalize`] reduces back to `v4`,
/// labelled: `"plain"`, `"ipv4-mapped"`, `"ipv4-compatible"`, `"nat64"`,
/// `"nat64-local"`, `"6to4"`.
///
/// `"ipv4-compatible"` is left out for `0.0.0.0` and `0.0.0.1`, whose
/// IPv4-compatible forms are `::` and `::1` (IPv6 unspecified and loopback,
/// which stay IPv6). Meant for tests that sweep the deny list.
pub fn encodings(v4: Ipv4Addr) -> Vec<(&'static str, IpAddr)> {
    let bits = u128::from(v4.to_bits());
    let v6 = |b: u128| IpAddr::V6(Ipv6Addr::from_bits(b));
    let mut out = vec![
        ("plain", IpAddr::V4(v4)),
        ("ipv4-mapped", v6(V4_MAPPED | bits)),
    ];
    if bits > 1 {
        out.push(("ipv4-compatible", v6(bits)));
    }
    out.extend([
        ("nat64", v6(NAT64_WELL_KNOWN | bits)),
        ("nat64-local", v6(NAT64_LOCAL | bits)),
        ("6to4", v6(SIX_TO_FOUR | (bits << 80))),
    ]);
    out
}
