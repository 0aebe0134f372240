//! Which address an HTTP request really comes from, for per-client limits: the peer's own
//! address, or, when the peer is a configured trusted proxy, the client address the proxy wrote
//! into `X-Forwarded-For`. A leaf: it imports nothing from its siblings. It never trusts the
//! header from a peer that is not a trusted proxy, so a client cannot pick its own address.

use std::net::IpAddr;

use axum::http::HeaderMap;
use turn_server::policy::Network;

/// Reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses `ip` or `ip/prefix` entries (`127.0.0.1`, `10.0.0.0/8`, `::1`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        let mut networks = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let (ip, len) = match entry.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (entry, None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("{entry:?} is not an IP address or ip/prefix"))?;
            let full = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(len) => len
                    .parse::<u8>()
                    .map_err(|_| format!("{entry:?}: the prefix length is not a number"))?,
                None => full,
            };
            let network = Network::new(ip, len)
                .ok_or_else(|| format!("{entry:?}: the prefix length is over {full}"))?;
            networks.push(network);
        }
        Ok(TrustedProxies(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind a request from `peer`: `peer` itself, unless `peer` is a trusted proxy;
    /// then the right-most address in `X-Forwarded-For` that is not a trusted proxy (the one the
    /// first trusted proxy saw), or `peer` when the header is missing or malformed.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let forwarded = headers(&["203.0.113.7"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &forwarded),
            ip("203.0.113.7")
        );
        assert_eq!(
            trusted.client_ip(ip("10.1.2.3"), &forwarded),
            ip("203.0.113.7")
        );
        // Anyone else's header is ignored: a client cannot choose its own address.
        assert_eq!(
            trusted.client_ip(ip("198.51.100.9"), &forwarded),
            ip("198.51.100.9")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &forwarded),
            ip("127.0.0.1")
        );
        // An IPv4-mapped peer address is the IPv4 one.
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &forwarded),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        // The client claimed 1.1.1.1 itself; the first trusted proxy saw 203.0.113.7.
        let chain = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &chain),
            ip("203.0.113.7")
        );
        // Only trusted hops, a missing header or garbage: the peer itself.
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers(&["10.0.0.1"])),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers(&["203.0.113.7, not-an-ip"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn entries_are_checked() {
        assert!(TrustedProxies::parse(&["::1", "fd00::/8", "192.168.0.0/16"]).is_ok());
        for bad in ["localhost", "10.0.0.0/33", "10.0.0.0/x", "::/129", ""] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad} accepted");
        }
    }
}
