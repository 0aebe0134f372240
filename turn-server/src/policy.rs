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

mod allow;
mod canonical;
mod deny;
mod network;
mod prefix;
mod refusal;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

pub use allow::{AllowRule, AllowRuleError};
pub use canonical::{canonicalize, canonicalize_addr, encodings};
pub use deny::DENY_SAMPLES;
use deny::special_purpose;
pub use network::Network;
pub use refusal::Refusal;

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
