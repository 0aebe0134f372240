//! The deny list: special-purpose IPv4 and IPv6 ranges (RFC 6890) a public relay refuses.
//! Tables and lookups on canonical addresses; it never canonicalises and never reads allow rules.

use std::net::IpAddr;

use super::prefix::{mask_v4, mask_v6};

/// One range of the IPv4 deny list, as network bits and mask.
pub(super) struct V4Range {
    pub(super) net: u32,
    pub(super) mask: u32,
    pub(super) name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str) -> V4Range {
    V4Range {
        net: u32::from_be_bytes([a, b, c, d]),
        mask: mask_v4(len),
        name,
    }
}

/// One range of the IPv6 deny list, as network bits and mask.
pub(super) struct V6Range {
    pub(super) net: u128,
    pub(super) mask: u128,
    pub(super) name: &'static str,
}

const fn v6(net: u128, len: u8, name: &'static str) -> V6Range {
    V6Range {
        net,
        mask: mask_v6(len),
        name,
    }
}

/// IPv4 special-purpose ranges (RFC 6890 and the IANA registry). The ranges
/// do not overlap.
pub(super) const V4_DENY: &[V4Range] = &[
    v4(0, 0, 0, 0, 8, "unspecified"),
    v4(10, 0, 0, 0, 8, "private"),
    v4(100, 64, 0, 0, 10, "CGNAT"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, "private"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments"),
    v4(192, 0, 2, 0, 24, "documentation"),
    v4(192, 88, 99, 0, 24, "6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, "private"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, "documentation"),
    v4(203, 0, 113, 0, 24, "documentation"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
];

/// IPv6 special-purpose ranges; the first match wins, so `::` and `::1`
/// come before the `::/8` catch-all. IPv4-embedding and Teredo forms never
/// get here (see [`canonicalize`](super::canonical::canonicalize)).
pub(super) const V6_DENY: &[V6Range] = &[
    v6(0, 128, "unspecified"),
    v6(1, 128, "loopback"),
    v6(0x0100_u128 << 112, 64, "discard-only"),
    v6(0x2001_u128 << 112, 23, "IETF protocol assignments"),
    v6(0x2001_0db8_u128 << 96, 32, "documentation"),
    v6(0x3fff_u128 << 112, 20, "documentation"),
    v6(0x5f00_u128 << 112, 16, "SRv6 SIDs"),
    v6(0xfc00_u128 << 112, 7, "unique local"),
    v6(0xfe80_u128 << 112, 10, "link-local"),
    v6(0xfec0_u128 << 112, 10, "site-local"),
    v6(0xff00_u128 << 112, 8, "multicast"),
    v6(0, 8, "reserved"),
];

/// One representative address of every deny-list range, with the range name
/// [`Refusal::SpecialPurpose`](super::refusal::Refusal::SpecialPurpose) reports
/// for it (in `PeerPolicy::public` mode, with no allow rules). Combine the IPv4
/// ones with [`encodings`](super::canonical::encodings) to sweep every encoding
/// trick.
pub const DENY_SAMPLES: &[(&str, &str)] = &[
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.1.2.3", "private"),
    ("100.64.0.1", "CGNAT"),
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),
    ("172.16.0.1", "private"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("100::1", "discard-only"),
    ("2001:2::1", "IETF protocol assignments"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "SRv6 SIDs"),
    ("fd00::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::1:2:3:4", "reserved"),
];

/// The deny-list range a canonical address lies in, if any.
pub(super) fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => {
            let bits = ip.to_bits();
            V4_DENY
                .iter()
                .find(|r| bits & r.mask == r.net)
                .map(|r| r.name)
        }
        IpAddr::V6(ip) => {
            let bits = ip.to_bits();
            V6_DENY
                .iter()
                .find(|r| bits & r.mask == r.net)
                .map(|r| r.name)
        }
    }
}
