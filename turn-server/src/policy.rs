//! Which peer addresses the relay may reach: canonicalisation and the deny list.
//!
//! A TURN relay sends UDP on behalf of authenticated clients to any address
//! they name (RFC 8656 CreatePermission, ChannelBind and Send). Left
//! unchecked, that turns the relay into a proxy onto the network it runs in:
//! loopback services, the private LAN, the cloud metadata endpoint
//! (169.254.169.254), multicast groups. RFC 8656's security considerations ask
//! the server to refuse such peers; this module decides which peers are
//! allowed.
//!
//! # Canonicalisation
//!
//! Several IPv6 forms carry an IPv4 address and may end up delivered to that
//! IPv4 host (by the dual-stack socket, a NAT64 gateway, or a 6to4 relay). So
//! every peer address is first reduced by [`canonicalize`], and every check,
//! including allow rules, looks only at the canonical address:
//!
//! | form                      | prefix            | IPv4 taken from      |
//! |---------------------------|-------------------|----------------------|
//! | IPv4-mapped               | `::ffff:0:0/96`   | last 32 bits         |
//! | IPv4-compatible           | `::/96` (not `::`, `::1`) | last 32 bits |
//! | NAT64 well-known prefix   | `64:ff9b::/96`    | last 32 bits         |
//! | NAT64 local-use prefix    | `64:ff9b:1::/48`  | last 32 bits         |
//! | 6to4                      | `2002::/16`       | bits 16..48          |
//!
//! Teredo (`2001::/32`) addresses are refused outright
//! ([`Refusal::Teredo`]): the IPv4 endpoint they encode is obfuscated and the
//! relay has no business tunnelling through Teredo.
//!
//! # Modes
//!
//! * [`PeerPolicy::allow_list_only`] (bundled with the SFU): only the
//!   addresses the allow list names may be reached.
//! * [`PeerPolicy::public`] (standalone relay): any public address may be
//!   reached; the special-purpose ranges of the deny list are refused unless
//!   an allow rule covers the address.
//!
//! The check functions do not allocate: [`PeerPolicy::check_addr`] runs on
//! every Send indication.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

// ---------------------------------------------------------------------------
// Canonicalisation
// ---------------------------------------------------------------------------

/// `::ffff:0:0/96`, IPv4-mapped addresses (RFC 4291 §2.5.5.2).
const V4_MAPPED: u128 = 0xffff_u128 << 32;
/// `64:ff9b::/96`, the NAT64 well-known prefix (RFC 6052).
const NAT64_WELL_KNOWN: u128 = 0x0064_ff9b_u128 << 96;
/// `64:ff9b:1::/48`, the NAT64 local-use prefix (RFC 8215).
const NAT64_LOCAL: u128 = 0x0064_ff9b_0001_u128 << 80;
/// `2002::/16`, 6to4 (RFC 3056).
const SIX_TO_FOUR: u128 = 0x2002_u128 << 112;
/// `2001::/32`, Teredo (RFC 4380).
const TEREDO: u128 = 0x2001_0000_u128 << 96;

/// Network mask of an IPv4 prefix of `len` bits (`len` above 32 means 32).
const fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        u32::MAX
    } else {
        u32::MAX << (32 - len)
    }
}

/// Network mask of an IPv6 prefix of `len` bits (`len` above 128 means 128).
const fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else if len >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - len)
    }
}

/// Whether `bits` lies in the IPv6 prefix `net/len`.
const fn in_v6(bits: u128, net: u128, len: u8) -> bool {
    bits & mask_v6(len) == net
}

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

// ---------------------------------------------------------------------------
// Deny list
// ---------------------------------------------------------------------------

/// Why the relay refuses to reach a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer is a Teredo address (`2001::/32`); always refused.
    #[error("peer address is a Teredo address (2001::/32), which the relay never reaches")]
    Teredo,
    /// The (canonical) peer lies in a special-purpose range, named here
    /// (e.g. `"loopback"`, `"private"`), and no allow rule covers it.
    #[error("peer address is in a special-purpose range ({0}) that no allow rule covers")]
    SpecialPurpose(&'static str),
    /// Allow-list-only mode: no allow rule covers the peer.
    #[error("peer address is not on the relay's allow list")]
    NotAllowed,
}

/// One range of the IPv4 deny list, as network bits and mask.
struct V4Range {
    net: u32,
    mask: u32,
    name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str) -> V4Range {
    V4Range {
        net: u32::from_be_bytes([a, b, c, d]),
        mask: mask_v4(len),
        name,
    }
}

/// One range of the IPv6 deny list, as network bits and mask.
struct V6Range {
    net: u128,
    mask: u128,
    name: &'static str,
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
const V4_DENY: &[V4Range] = &[
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
/// get here (see [`canonicalize`]).
const V6_DENY: &[V6Range] = &[
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
/// [`Refusal::SpecialPurpose`] reports for it (in [`PeerPolicy::public`]
/// mode, with no allow rules). Combine the IPv4 ones with [`encodings`] to
/// sweep every encoding trick.
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
fn special_purpose(ip: IpAddr) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------
// Allow rules
// ---------------------------------------------------------------------------

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
    fn has_canonical_address(&self) -> bool {
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

/// A peer the policy lets the relay reach even if it is not public.
///
/// Rules match canonical peer addresses (see [`canonicalize`]), so they
/// should name canonical addresses: parsing rejects rules that could never
/// match, and [`PeerPolicy`]'s constructors canonicalise the address of
/// `Exact` and `Host` rules built directly.
///
/// Text form (see [`FromStr`] and [`Display`](fmt::Display)):
/// `127.0.0.1:3480`, `[::1]:3480` (exact), `10.1.2.3`, `2001:db8::1` (host),
/// `10.0.0.0/8`, `fd00::/8` (network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// This address and port only (for [`PeerPolicy::check_ip`], the IP).
    Exact(SocketAddr),
    /// Every port of this IP.
    Host(IpAddr),
    /// Every port of every address in this network.
    Net(Network),
}

impl AllowRule {
    /// Whether the rule allows some port of the canonical address `ip`.
    pub fn covers_ip(&self, ip: IpAddr) -> bool {
        match self {
            AllowRule::Exact(a) => a.ip() == ip,
            AllowRule::Host(h) => *h == ip,
            AllowRule::Net(n) => n.contains(ip),
        }
    }

    /// Whether the rule allows the canonical socket address `addr`.
    pub fn covers_addr(&self, addr: SocketAddr) -> bool {
        match self {
            AllowRule::Exact(a) => a.ip() == addr.ip() && a.port() == addr.port(),
            AllowRule::Host(h) => *h == addr.ip(),
            AllowRule::Net(n) => n.contains(addr.ip()),
        }
    }

    /// The rule with the address of an `Exact` or `Host` rule canonicalised
    /// (Teredo addresses are left alone: they are refused before rules are
    /// consulted).
    fn canonical(self) -> Self {
        match self {
            AllowRule::Exact(a) => AllowRule::Exact(canonicalize_addr(a).unwrap_or(a)),
            AllowRule::Host(h) => AllowRule::Host(canonicalize(h).unwrap_or(h)),
            AllowRule::Net(n) => AllowRule::Net(n),
        }
    }
}

/// Why an allow rule's text was rejected; every variant names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowRuleError {
    /// Not an address, socket address or network at all.
    #[error(
        "invalid allow rule {text:?}: expected ip:port, [ipv6]:port, an IP address, or ip/prefix-length"
    )]
    Syntax {
        /// The rejected text.
        text: String,
    },
    /// The prefix length is too long for the address family.
    #[error("invalid allow rule {text:?}: prefix length {len} exceeds {max}")]
    PrefixLength {
        /// The rejected text.
        text: String,
        /// The prefix length given.
        len: u16,
        /// The longest prefix for the address family.
        max: u8,
    },
    /// The network address has bits set past the prefix.
    #[error(
        "invalid allow rule {text:?}: address has bits set past the prefix (did you mean {network}?)"
    )]
    HostBits {
        /// The rejected text.
        text: String,
        /// The network with those bits cleared.
        network: Network,
    },
    /// An exact rule with port 0, which no peer can use.
    #[error(
        "invalid allow rule {text:?}: port 0 is not a peer port (a host rule, {ip}, allows every port)"
    )]
    PortZero {
        /// The rejected text.
        text: String,
        /// The rule's address.
        ip: IpAddr,
    },
    /// The address is not canonical, so the rule as written could never
    /// match; the canonical form is suggested.
    #[error(
        "allow rule {text:?} would never match: peers are checked in canonical form, write {canonical} instead"
    )]
    NotCanonical {
        /// The rejected text.
        text: String,
        /// The rule written with the canonical address.
        canonical: String,
    },
    /// Every address the rule names is reduced to IPv4 or refused as Teredo
    /// before rules are consulted, so it could never match.
    #[error(
        "allow rule {text:?} would never match: every address in it is reduced to IPv4 (IPv4-mapped, IPv4-compatible, NAT64, 6to4) or refused as Teredo before rules are checked"
    )]
    NeverMatches {
        /// The rejected text.
        text: String,
    },
}

impl FromStr for AllowRule {
    type Err = AllowRuleError;

    /// Parses `ip:port` / `[ipv6]:port` (exact), `ip` (host) or
    /// `ip/prefix-length` (network), ignoring surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = || s.to_owned();
        let t = s.trim();
        if let Some((addr, len)) = t.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| AllowRuleError::Syntax { text: text() })?;
            if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AllowRuleError::Syntax { text: text() });
            }
            let len: u16 = len
                .parse()
                .map_err(|_| AllowRuleError::Syntax { text: text() })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let net = u8::try_from(len)
                .ok()
                .and_then(|l| Network::new(addr, l))
                .ok_or(AllowRuleError::PrefixLength {
                    text: text(),
                    len,
                    max,
                })?;
            if net.addr() != addr {
                return Err(AllowRuleError::HostBits {
                    text: text(),
                    network: net,
                });
            }
            if !net.has_canonical_address() {
                return Err(AllowRuleError::NeverMatches { text: text() });
            }
            Ok(AllowRule::Net(net))
        } else if let Ok(addr) = t.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(AllowRuleError::PortZero {
                    text: text(),
                    ip: addr.ip(),
                });
            }
            match canonicalize_addr(addr) {
                Err(Refusal::Teredo) => Err(AllowRuleError::NeverMatches { text: text() }),
                Ok(c) if c.ip() != addr.ip() => Err(AllowRuleError::NotCanonical {
                    text: text(),
                    canonical: AllowRule::Exact(c).to_string(),
                }),
                _ => Ok(AllowRule::Exact(addr)),
            }
        } else if let Ok(ip) = t.parse::<IpAddr>() {
            match canonicalize(ip) {
                Err(_) => Err(AllowRuleError::NeverMatches { text: text() }),
                Ok(c) if c != ip => Err(AllowRuleError::NotCanonical {
                    text: text(),
                    canonical: c.to_string(),
                }),
                Ok(_) => Ok(AllowRule::Host(ip)),
            }
        } else {
            Err(AllowRuleError::Syntax { text: text() })
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowRule::Exact(a) => write!(f, "{a}"),
            AllowRule::Host(h) => write!(f, "{h}"),
            AllowRule::Net(n) => write!(f, "{n}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AllowListOnly,
    Public,
}

/// The relay's peer-address policy: a mode plus allow rules.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    mode: Mode,
    allow: Vec<AllowRule>,
}

impl PeerPolicy {
    /// Bundled mode: only what the allow list names (e.g. the SFU's own media address:port); nothing else, public or not.
    ///
    /// `Exact` and `Host` rules are stored with canonical addresses.
    pub fn allow_list_only(allow: Vec<AllowRule>) -> Self {
        Self::new(Mode::AllowListOnly, allow)
    }

    /// Standalone mode: public addresses allowed; special-purpose ranges refused unless an allow rule names them.
    ///
    /// `Exact` and `Host` rules are stored with canonical addresses.
    pub fn public(allow: Vec<AllowRule>) -> Self {
        Self::new(Mode::Public, allow)
    }

    fn new(mode: Mode, allow: Vec<AllowRule>) -> Self {
        let allow = allow.into_iter().map(AllowRule::canonical).collect();
        PeerPolicy { mode, allow }
    }

    /// For CreatePermission (RFC 8656 permissions are per IP, port ignored): Ok(canonical ip) if some port on this IP could be allowed (i.e. the canonical IP is allowed outright, or some Exact/Host/Net allow rule covers that IP).
    ///
    /// # Errors
    ///
    /// The [`Refusal`] explaining why no port of `ip` may be reached.
    pub fn check_ip(&self, ip: IpAddr) -> Result<IpAddr, Refusal> {
        let ip = canonicalize(ip)?;
        self.decide(ip, || self.allow.iter().any(|r| r.covers_ip(ip)))?;
        Ok(ip)
    }

    /// For ChannelBind and Send indications: Ok(canonical socket addr) if this exact address:port may be reached.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] explaining why `addr` may not be reached.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<SocketAddr, Refusal> {
        let addr = canonicalize_addr(addr)?;
        self.decide(addr.ip(), || self.allow.iter().any(|r| r.covers_addr(addr)))?;
        Ok(addr)
    }

    /// The allow rules, as stored (see the constructors).
    pub fn allow_rules(&self) -> &[AllowRule] {
        &self.allow
    }

    /// Whether this is the bundled, allow-list-only policy.
    pub fn is_allow_list_only(&self) -> bool {
        self.mode == Mode::AllowListOnly
    }

    /// The verdict for canonical `ip`; `covered` says whether an allow rule
    /// covers the address being checked and is only asked when it matters.
    fn decide(&self, ip: IpAddr, covered: impl FnOnce() -> bool) -> Result<(), Refusal> {
        match (special_purpose(ip), self.mode) {
            (None, Mode::Public) => Ok(()),
            _ if covered() => Ok(()),
            (Some(name), _) => Err(Refusal::SpecialPurpose(name)),
            (None, Mode::AllowListOnly) => Err(Refusal::NotAllowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rules(list: &[&str]) -> Vec<AllowRule> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn sp(name: &'static str) -> Result<IpAddr, Refusal> {
        Err(Refusal::SpecialPurpose(name))
    }

    /// IPv4 deny ranges: (first address, last address, name).
    const V4_RANGES: &[(&str, &str, &str)] = &[
        ("0.0.0.0", "0.255.255.255", "unspecified"),
        ("10.0.0.0", "10.255.255.255", "private"),
        ("172.16.0.0", "172.31.255.255", "private"),
        ("192.168.0.0", "192.168.255.255", "private"),
        ("127.0.0.0", "127.255.255.255", "loopback"),
        ("169.254.0.0", "169.254.255.255", "link-local"),
        ("100.64.0.0", "100.127.255.255", "CGNAT"),
        ("198.18.0.0", "198.19.255.255", "benchmarking"),
        ("192.0.0.0", "192.0.0.255", "IETF protocol assignments"),
        ("192.0.2.0", "192.0.2.255", "documentation"),
        ("198.51.100.0", "198.51.100.255", "documentation"),
        ("203.0.113.0", "203.0.113.255", "documentation"),
        ("192.88.99.0", "192.88.99.255", "6to4 relay anycast"),
        ("224.0.0.0", "239.255.255.255", "multicast"),
        ("240.0.0.0", "255.255.255.255", "reserved"),
    ];

    /// IPv6 deny ranges: (first address, last address, name).
    const V6_RANGES: &[(&str, &str, &str)] = &[
        ("::", "::", "unspecified"),
        ("::1", "::1", "loopback"),
        (
            "fc00::",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "unique local",
        ),
        (
            "fec0::",
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "site-local",
        ),
        (
            "fe80::",
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "link-local",
        ),
        (
            "ff00::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "multicast",
        ),
        (
            "2001:db8::",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "documentation",
        ),
        (
            "3fff::",
            "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            "documentation",
        ),
        ("100::", "100::ffff:ffff:ffff:ffff", "discard-only"),
        (
            "2001:1::",
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "IETF protocol assignments",
        ),
        (
            "5f00::",
            "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "SRv6 SIDs",
        ),
        ("::1:0:0:0", "::ffff:ffff:ffff:ffff", "reserved"),
        ("::1:2:3:4", "::fffe:ffff:ffff", "reserved"),
        ("1::", "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"),
        (
            "64:ff9b:2::",
            "64:ff9b:ffff:ffff:ffff:ffff:ffff:ffff",
            "reserved",
        ),
    ];

    /// Addresses just outside deny ranges, and other public ones.
    const PUBLIC: &[&str] = &[
        "1.0.0.0",
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",
        "2001:db7:ffff::1",
        "2001:db9::1",
        "3ffe:ffff::1",
        "3fff:1000::1",
        "100:0:0:1::",
        "5eff::1",
        "5f01::1",
        "fbff::1",
        "fe00::1",
        "2400:cb00::1",
    ];

    fn mode_policies() -> [PeerPolicy; 2] {
        [
            PeerPolicy::public(vec![]),
            PeerPolicy::allow_list_only(vec![]),
        ]
    }

    #[test]
    fn v4_ranges_in_every_encoding() {
        for &(first, last, name) in V4_RANGES {
            for text in [first, last] {
                let IpAddr::V4(v4) = ip(text) else { panic!() };
                for (enc, addr) in encodings(v4) {
                    let ctx = format!("{text} as {enc} ({addr})");
                    assert_eq!(canonicalize(addr), Ok(IpAddr::V4(v4)), "{ctx}");
                    for policy in mode_policies() {
                        assert_eq!(policy.check_ip(addr), sp(name), "{ctx}");
                        assert_eq!(
                            policy.check_addr(SocketAddr::new(addr, 3478)),
                            Err(Refusal::SpecialPurpose(name)),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn encodings_cover_every_trick() {
        let labels: Vec<_> = encodings(Ipv4Addr::new(127, 0, 0, 1))
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(
            labels,
            [
                "plain",
                "ipv4-mapped",
                "ipv4-compatible",
                "nat64",
                "nat64-local",
                "6to4"
            ]
        );
        for v4 in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(0, 0, 0, 1)] {
            assert!(encodings(v4).iter().all(|(l, _)| *l != "ipv4-compatible"));
        }
    }

    #[test]
    fn literal_encodings_of_loopback() {
        for text in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:abcd:1234:5678:7f00:1",
            "2002:7f00:1::",
            "2002:7f00:1:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(canonicalize(ip(text)), Ok(ip("127.0.0.1")), "{text}");
            for policy in mode_policies() {
                assert_eq!(policy.check_ip(ip(text)), sp("loopback"), "{text}");
            }
        }
    }

    #[test]
    fn v6_ranges() {
        for &(first, last, name) in V6_RANGES {
            for text in [first, last] {
                assert_eq!(canonicalize(ip(text)), Ok(ip(text)), "{text}");
                for policy in mode_policies() {
                    assert_eq!(policy.check_ip(ip(text)), sp(name), "{text}");
                    let addr = SocketAddr::new(ip(text), 443);
                    assert_eq!(
                        policy.check_addr(addr),
                        Err(Refusal::SpecialPurpose(name)),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn unspecified_and_loopback_v6_stay_v6() {
        assert_eq!(canonicalize(ip("::")), Ok(ip("::")));
        assert_eq!(canonicalize(ip("::1")), Ok(ip("::1")));
        assert_eq!(canonicalize(ip("::2")), Ok(ip("0.0.0.2")));
        assert_eq!(canonicalize(ip("::ffff:0.0.0.0")), Ok(ip("0.0.0.0")));
    }

    #[test]
    fn public_addresses() {
        let policy = PeerPolicy::public(vec![]);
        for &text in PUBLIC {
            assert_eq!(policy.check_ip(ip(text)), Ok(ip(text)), "{text}");
            let addr = SocketAddr::new(ip(text), 5000);
            assert_eq!(policy.check_addr(addr), Ok(addr), "{text}");
            assert_eq!(
                PeerPolicy::allow_list_only(vec![]).check_ip(ip(text)),
                Err(Refusal::NotAllowed),
                "{text}"
            );
            if let IpAddr::V4(v4) = ip(text) {
                for (enc, addr) in encodings(v4) {
                    assert_eq!(policy.check_ip(addr), Ok(ip(text)), "{text} as {enc}");
                }
            }
        }
        assert_eq!(policy.check_ip(ip("::ffff:8.8.8.8")), Ok(ip("8.8.8.8")));
        assert_eq!(
            policy.check_addr(sa("[::ffff:8.8.8.8]:53")),
            Ok(sa("8.8.8.8:53"))
        );
        assert_eq!(
            policy.check_addr(sa("[2606:4700::1111]:443")),
            Ok(sa("[2606:4700::1111]:443"))
        );
    }

    #[test]
    fn teredo_refused_always() {
        let teredo = [
            "2001::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        let allow_all = rules(&["::/0", "2001::/16", "0.0.0.0/0"]);
        for policy in [
            PeerPolicy::public(vec![]),
            PeerPolicy::public(allow_all.clone()),
            PeerPolicy::allow_list_only(allow_all.clone()),
        ] {
            for text in teredo {
                assert_eq!(canonicalize(ip(text)), Err(Refusal::Teredo), "{text}");
                assert_eq!(policy.check_ip(ip(text)), Err(Refusal::Teredo), "{text}");
                let addr = SocketAddr::new(ip(text), 3478);
                assert_eq!(policy.check_addr(addr), Err(Refusal::Teredo), "{text}");
            }
        }
        // Just outside Teredo, still in 2001::/23.
        assert_eq!(canonicalize(ip("2001:1::1")), Ok(ip("2001:1::1")));
    }

    #[test]
    fn allow_rules_in_public_mode() {
        let policy = PeerPolicy::public(rules(&[
            "127.0.0.1:3480",
            "10.1.2.3",
            "192.168.0.0/16",
            "[::1]:3480",
            "fd00::1",
            "fe80::/16",
        ]));
        let ok_addr = |s: &str| assert_eq!(policy.check_addr(sa(s)), Ok(sa(s)), "{s}");
        let refused = |s: &str, name| {
            assert_eq!(
                policy.check_addr(sa(s)),
                Err(Refusal::SpecialPurpose(name)),
                "{s}"
            );
        };
        // Exact, v4 and v6.
        ok_addr("127.0.0.1:3480");
        refused("127.0.0.1:3481", "loopback");
        refused("127.0.0.2:3480", "loopback");
        ok_addr("[::1]:3480");
        refused("[::1]:3481", "loopback");
        assert_eq!(policy.check_ip(ip("127.0.0.1")), Ok(ip("127.0.0.1")));
        assert_eq!(policy.check_ip(ip("::1")), Ok(ip("::1")));
        assert_eq!(policy.check_ip(ip("127.0.0.2")), sp("loopback"));
        // Host.
        ok_addr("10.1.2.3:1");
        ok_addr("10.1.2.3:65535");
        refused("10.1.2.4:1", "private");
        ok_addr("[fd00::1]:9");
        refused("[fd00::2]:9", "unique local");
        // Net.
        ok_addr("192.168.0.1:80");
        ok_addr("192.168.255.255:80");
        assert_eq!(policy.check_ip(ip("192.168.7.7")), Ok(ip("192.168.7.7")));
        refused("172.16.0.1:80", "private");
        ok_addr("[fe80::abcd]:80");
        refused("[fe81::1]:80", "link-local");
        // Rules see canonical peers.
        assert_eq!(
            policy.check_addr(sa("[::ffff:127.0.0.1]:3480")),
            Ok(sa("127.0.0.1:3480"))
        );
        assert_eq!(
            policy.check_addr(sa("[64:ff9b::a01:203]:7")),
            Ok(sa("10.1.2.3:7"))
        );
        assert_eq!(
            policy.check_addr(sa("[2002:c0a8:101::1]:7")),
            Ok(sa("192.168.1.1:7"))
        );
        // Public still fine.
        ok_addr("8.8.8.8:53");
    }

    #[test]
    fn allow_list_only_with_sfu_address() {
        let policy = PeerPolicy::allow_list_only(rules(&["127.0.0.1:7882"]));
        assert!(policy.is_allow_list_only());
        assert_eq!(
            policy.check_addr(sa("127.0.0.1:7882")),
            Ok(sa("127.0.0.1:7882"))
        );
        assert_eq!(
            policy.check_addr(sa("127.0.0.1:8080")),
            Err(Refusal::SpecialPurpose("loopback"))
        );
        assert_eq!(
            policy.check_addr(sa("[::ffff:127.0.0.1]:7882")),
            Ok(sa("127.0.0.1:7882"))
        );
        assert_eq!(
            policy.check_addr(sa("8.8.8.8:7882")),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(policy.check_ip(ip("127.0.0.1")), Ok(ip("127.0.0.1")));
        assert_eq!(policy.check_ip(ip("::ffff:127.0.0.1")), Ok(ip("127.0.0.1")));
        assert_eq!(policy.check_ip(ip("8.8.8.8")), Err(Refusal::NotAllowed));
        assert_eq!(policy.check_ip(ip("10.0.0.1")), sp("private"));
        assert_eq!(policy.check_ip(ip("::1")), sp("loopback"));
    }

    #[test]
    fn allow_list_only_host_and_net() {
        let policy = PeerPolicy::allow_list_only(rules(&["203.0.113.5", "2606:4700::/32"]));
        assert_eq!(
            policy.check_addr(sa("203.0.113.5:1")),
            Ok(sa("203.0.113.5:1"))
        );
        assert_eq!(
            policy.check_addr(sa("203.0.113.6:1")),
            Err(Refusal::SpecialPurpose("documentation"))
        );
        assert_eq!(
            policy.check_addr(sa("[2606:4700::1111]:443")),
            Ok(sa("[2606:4700::1111]:443"))
        );
        assert_eq!(
            policy.check_addr(sa("[2606:4701::1]:443")),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(policy.check_ip(ip("1.1.1.1")), Err(Refusal::NotAllowed));
    }

    #[test]
    fn directly_built_rules_are_canonicalised() {
        let policy = PeerPolicy::allow_list_only(vec![
            AllowRule::Exact(sa("[::ffff:127.0.0.1]:7882")),
            AllowRule::Host(ip("64:ff9b::a00:1")),
        ]);
        assert_eq!(
            policy.allow_rules(),
            &[
                AllowRule::Exact(sa("127.0.0.1:7882")),
                AllowRule::Host(ip("10.0.0.1"))
            ]
        );
        assert_eq!(
            policy.check_addr(sa("127.0.0.1:7882")),
            Ok(sa("127.0.0.1:7882"))
        );
        assert_eq!(policy.check_ip(ip("10.0.0.1")), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn v6_scope_and_flowinfo_kept() {
        let addr = SocketAddr::V6(SocketAddrV6::new(ip6("fe80::1"), 9, 7, 3));
        let policy = PeerPolicy::public(rules(&["fe80::1"]));
        assert_eq!(policy.check_addr(addr), Ok(addr));
        let mapped = SocketAddr::V6(SocketAddrV6::new(ip6("::ffff:1.2.3.4"), 9, 7, 3));
        assert_eq!(policy.check_addr(mapped), Ok(sa("1.2.3.4:9")));
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_samples_match_tables() {
        let policy = PeerPolicy::public(vec![]);
        for &(text, name) in DENY_SAMPLES {
            let addr: IpAddr = text.parse().unwrap();
            assert_eq!(policy.check_ip(addr), sp(name), "{text}");
            if let IpAddr::V4(v4) = addr {
                for (enc, e) in encodings(v4) {
                    assert_eq!(policy.check_ip(e), sp(name), "{text} as {enc}");
                }
            }
        }
        // Every deny range has a sample.
        for r in V4_DENY {
            assert!(
                DENY_SAMPLES
                    .iter()
                    .any(|(t, n)| matches!(t.parse(), Ok(IpAddr::V4(a))
                    if a.to_bits() & r.mask == r.net && *n == r.name)),
                "no sample for {}",
                r.name
            );
        }
        for r in V6_DENY {
            assert!(
                DENY_SAMPLES
                    .iter()
                    .any(|(t, n)| matches!(t.parse(), Ok(IpAddr::V6(a))
                    if a.to_bits() & r.mask == r.net && *n == r.name)),
                "no sample for {}",
                r.name
            );
        }
    }

    #[test]
    fn tables_are_well_formed() {
        for r in V4_DENY {
            assert_eq!(r.net & !r.mask, 0, "{}", r.name);
        }
        for r in V6_DENY {
            assert_eq!(r.net & !r.mask, 0, "{}", r.name);
        }
        // IPv4 ranges are disjoint (so order does not matter).
        for (i, a) in V4_DENY.iter().enumerate() {
            for b in &V4_DENY[i + 1..] {
                let m = a.mask & b.mask;
                assert_ne!(a.net & m, b.net & m, "{} / {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn rule_text_round_trips() {
        for (text, want) in [
            ("127.0.0.1:3480", AllowRule::Exact(sa("127.0.0.1:3480"))),
            ("[::1]:3480", AllowRule::Exact(sa("[::1]:3480"))),
            ("10.1.2.3", AllowRule::Host(ip("10.1.2.3"))),
            ("2001:db8::1", AllowRule::Host(ip("2001:db8::1"))),
            ("::1", AllowRule::Host(ip("::1"))),
            ("::", AllowRule::Host(ip("::"))),
            (
                "10.0.0.0/8",
                AllowRule::Net(Network::new(ip("10.0.0.0"), 8).unwrap()),
            ),
            (
                "fd00::/8",
                AllowRule::Net(Network::new(ip("fd00::"), 8).unwrap()),
            ),
            (
                "0.0.0.0/0",
                AllowRule::Net(Network::new(ip("0.0.0.0"), 0).unwrap()),
            ),
            ("::/0", AllowRule::Net(Network::new(ip("::"), 0).unwrap())),
            (
                "8.8.8.8/32",
                AllowRule::Net(Network::new(ip("8.8.8.8"), 32).unwrap()),
            ),
            (
                "2606:4700::1111/128",
                AllowRule::Net(Network::new(ip("2606:4700::1111"), 128).unwrap()),
            ),
            ("::/96", AllowRule::Net(Network::new(ip("::"), 96).unwrap())),
        ] {
            let parsed: AllowRule = text.parse().unwrap();
            assert_eq!(parsed, want, "{text}");
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.to_string().parse::<AllowRule>(), Ok(parsed));
        }
        assert_eq!(
            " 10.0.0.0/8\n".parse::<AllowRule>(),
            Ok(AllowRule::Net(Network::new(ip("10.0.0.0"), 8).unwrap()))
        );
    }

    #[test]
    fn bad_rule_text() {
        use AllowRuleError as E;
        let syntax = |t: &str| E::Syntax { text: t.into() };
        for (text, want) in [
            ("", syntax("")),
            ("   ", syntax("   ")),
            ("foo", syntax("foo")),
            ("10.0.0.0/", syntax("10.0.0.0/")),
            ("/8", syntax("/8")),
            ("10.0.0.0/+8", syntax("10.0.0.0/+8")),
            ("10.0.0.0/-1", syntax("10.0.0.0/-1")),
            ("10.0.0.0/1000", syntax("10.0.0.0/1000")),
            ("10.0.0.0/8/8", syntax("10.0.0.0/8/8")),
            ("10.0.0.0 /8", syntax("10.0.0.0 /8")),
            ("1.2.3.4:99999", syntax("1.2.3.4:99999")),
            ("1.2.3.4:", syntax("1.2.3.4:")),
            ("[::1]", syntax("[::1]")),
            ("256.0.0.1", syntax("256.0.0.1")),
            ("127.0.0.1:3480/8", syntax("127.0.0.1:3480/8")),
            (
                "10.0.0.0/33",
                E::PrefixLength {
                    text: "10.0.0.0/33".into(),
                    len: 33,
                    max: 32,
                },
            ),
            (
                "fd00::/129",
                E::PrefixLength {
                    text: "fd00::/129".into(),
                    len: 129,
                    max: 128,
                },
            ),
            (
                "fd00::/999",
                E::PrefixLength {
                    text: "fd00::/999".into(),
                    len: 999,
                    max: 128,
                },
            ),
            (
                "10.0.0.1/8",
                E::HostBits {
                    text: "10.0.0.1/8".into(),
                    network: Network::new(ip("10.0.0.0"), 8).unwrap(),
                },
            ),
            (
                "127.0.0.1:0",
                E::PortZero {
                    text: "127.0.0.1:0".into(),
                    ip: ip("127.0.0.1"),
                },
            ),
            (
                "::ffff:127.0.0.1",
                E::NotCanonical {
                    text: "::ffff:127.0.0.1".into(),
                    canonical: "127.0.0.1".into(),
                },
            ),
            (
                "[64:ff9b::7f00:1]:7882",
                E::NotCanonical {
                    text: "[64:ff9b::7f00:1]:7882".into(),
                    canonical: "127.0.0.1:7882".into(),
                },
            ),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                E::NeverMatches {
                    text: "2001:0:4136:e378:8000:63bf:3fff:fdd2".into(),
                },
            ),
            (
                "[2001::1]:80",
                E::NeverMatches {
                    text: "[2001::1]:80".into(),
                },
            ),
        ] {
            let err = text.parse::<AllowRule>().unwrap_err();
            assert_eq!(err, want, "{text:?}");
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
        for text in [
            "::ffff:0:0/96",
            "::ffff:10.0.0.0/104",
            "64:ff9b::/96",
            "64:ff9b:1::/48",
            "64:ff9b:1::/64",
            "2002::/16",
            "2002:7f00::/24",
            "2001::/32",
            "::100:0/104",
            "::2/127",
        ] {
            assert_eq!(
                text.parse::<AllowRule>(),
                Err(E::NeverMatches { text: text.into() }),
                "{text}"
            );
        }
        // Partly canonical networks are fine.
        for text in ["::/95", "::/127", "2000::/3", "64:ff9b::/32", "2001::/16"] {
            assert!(text.parse::<AllowRule>().is_ok(), "{text}");
        }
    }

    #[test]
    fn network_edges() {
        assert_eq!(Network::new(ip("10.1.2.3"), 33), None);
        assert_eq!(Network::new(ip("::1"), 129), None);
        let n = Network::new(ip("10.1.2.3"), 8).unwrap();
        assert_eq!((n.addr(), n.prefix_len()), (ip("10.0.0.0"), 8));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("::ffff:10.0.0.1")));
        let all = Network::new(ip("::"), 0).unwrap();
        assert!(all.contains(ip("ffff::1")));
        assert!(!all.contains(ip("1.2.3.4")));
    }

    #[test]
    fn refusal_messages() {
        assert!(Refusal::Teredo.to_string().contains("Teredo"));
        assert!(
            Refusal::SpecialPurpose("link-local")
                .to_string()
                .contains("(link-local)")
        );
        assert!(Refusal::NotAllowed.to_string().contains("allow list"));
    }

    /// Pseudo-random sweep: no panics, and results are canonical fixed points.
    #[test]
    fn sweep_is_total_and_idempotent() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let prefixes = [
            (V4_MAPPED, 96),
            (0, 96),
            (NAT64_WELL_KNOWN, 96),
            (NAT64_LOCAL, 48),
            (SIX_TO_FOUR, 16),
            (TEREDO, 32),
            (0, 0),
            (0xfe80_u128 << 112, 10),
        ];
        let policies = [
            PeerPolicy::public(rules(&["10.0.0.0/8", "[::1]:1"])),
            PeerPolicy::allow_list_only(rules(&["127.0.0.1:7882", "fd00::/8"])),
        ];
        for i in 0..20_000_u32 {
            let raw = (u128::from(next()) << 64) | u128::from(next());
            let (p, len) = prefixes[i as usize % prefixes.len()];
            let bits = p | (raw & !mask_v6(len));
            let addrs = [
                IpAddr::V6(Ipv6Addr::from_bits(bits)),
                IpAddr::V4(Ipv4Addr::from_bits(raw as u32)),
            ];
            for a in addrs {
                if let Ok(c) = canonicalize(a) {
                    assert_eq!(canonicalize(c), Ok(c), "{a}");
                    if let IpAddr::V6(v6) = c {
                        assert!(v6.to_ipv4_mapped().is_none(), "{a}");
                    }
                }
                for policy in &policies {
                    let port = (raw >> 64) as u16;
                    let by_ip = policy.check_ip(a);
                    let by_addr = policy.check_addr(SocketAddr::new(a, port));
                    if let Ok(sa) = by_addr {
                        assert_eq!(by_ip, Ok(sa.ip()), "{a}");
                    }
                }
            }
        }
    }
}
