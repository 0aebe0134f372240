//! Allow rules: the peers (`ip:port`, `ip`, `ip/len`) a policy lets the relay reach, and
//! their text form. Matching canonical addresses only; it never canonicalises a peer itself.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::canonical::{canonicalize, canonicalize_addr};
use super::network::Network;
use super::refusal::Refusal;

/// A peer the policy lets the relay reach even if it is not public.
///
/// Rules match canonical peer addresses (see [`canonicalize`]), so they
/// should name canonical addresses: parsing rejects rules that could never
/// match, and `PeerPolicy`'s constructors canonicalise the address of
/// `Exact` and `Host` rules built directly.
///
/// Text form (see [`FromStr`] and [`Display`](fmt::Display)):
/// `127.0.0.1:3480`, `[::1]:3480` (exact), `10.1.2.3`, `2001:db8::1` (host),
/// `10.0.0.0/8`, `fd00::/8` (network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// This address and port only (for `PeerPolicy::check_ip`, the IP).
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
    pub(super) fn canonical(self) -> Self {
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
