//! Unit tests of the peer policy: every deny range in every encoding, both modes, allow
//! rules and their text form. Tests only; nothing here is built into the relay.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use super::canonical::{NAT64_LOCAL, NAT64_WELL_KNOWN, SIX_TO_FOUR, TEREDO, V4_MAPPED};
use super::deny::{V4_DENY, V6_DENY};
use super::prefix::mask_v6;
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
