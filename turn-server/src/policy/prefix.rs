//! Prefix arithmetic for the policy: network masks and prefix membership.
//! Plain `const fn`s on address bits; it knows no address ranges and no policy.

/// Network mask of an IPv4 prefix of `len` bits (`len` above 32 means 32).
pub(super) const fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        u32::MAX
    } else {
        u32::MAX << (32 - len)
    }
}

/// Network mask of an IPv6 prefix of `len` bits (`len` above 128 means 128).
pub(super) const fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else if len >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - len)
    }
}

/// Whether `bits` lies in the IPv6 prefix `net/len`.
pub(super) const fn in_v6(bits: u128, net: u128, len: u8) -> bool {
    bits & mask_v6(len) == net
}
