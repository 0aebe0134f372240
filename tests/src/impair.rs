//! Impaired networks for the end-to-end tests, made with `tc` on loopback (as root): only the
//! ports a test names are touched, and everything is undone when the value is dropped. It never
//! touches any interface but `lo`.

/// Cuts one page off the SFU: drops every UDP packet to or from the SFU's `media_ports` on
/// loopback, except those of the other page's `keep` ports, while it lives. An ICE restart's new
/// ports are cut too, as in a real outage. The drop is an HTB class of 8 bit/s with a one-packet
/// queue (netem is not in every kernel; HTB and pfifo are).
pub struct UdpCut;

impl UdpCut {
    pub fn start(keep: &[u16], media_ports: &[u16]) -> UdpCut {
        let cut = UdpCut;
        tc(&[
            "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10",
        ]);
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit",
        ]);
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", "8bit",
            "ceil", "8bit", "burst", "1b", "cburst", "1b",
        ]);
        tc(&[
            "qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "pfifo", "limit", "1",
        ]);
        for (ports, prio, class) in [(keep, "1", "1:10"), (media_ports, "2", "1:20")] {
            for port in ports {
                for side in ["dport", "sport"] {
                    let port = port.to_string();
                    tc(&[
                        "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio",
                        prio, "u32", "match", "ip", "protocol", "17", "0xff", "match", "ip", side,
                        &port, "0xffff", "flowid", class,
                    ]);
                }
            }
        }
        cut
    }
}

impl Drop for UdpCut {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tc")
            .args(["qdisc", "del", "dev", "lo", "root"])
            .status();
    }
}

/// The buffer in front of a thin link: tail drop beyond it, like a home router's.
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    /// At most this many packets, whatever their size (`pfifo`).
    Packets(u32),
    /// At most this many bytes (`bfifo`): a buffer of so many milliseconds at the link's rate.
    Bytes(u32),
}

/// A thin downlink: every UDP packet *to* the given ports on loopback (a page's own ports, so
/// what the SFU sends it) goes through an HTB class of `kbit` kbit/s behind `queue`, while it
/// lives. Other traffic is untouched.
pub struct ThinLink;

impl ThinLink {
    pub fn start(ports: &[u16], kbit: u32, queue: Queue) -> ThinLink {
        let link = ThinLink;
        let rate = format!("{kbit}kbit");
        let (fifo, limit) = match queue {
            Queue::Packets(n) => ("pfifo", n.to_string()),
            Queue::Bytes(n) => ("bfifo", n.to_string()),
        };
        tc(&[
            "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10",
        ]);
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit",
        ]);
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", &rate,
            "ceil", &rate,
        ]);
        tc(&[
            "qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", fifo, "limit", &limit,
        ]);
        for port in ports {
            let port = port.to_string();
            tc(&[
                "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                "match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", &port, "0xffff",
                "flowid", "1:20",
            ]);
        }
        link
    }
}

impl Drop for ThinLink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tc")
            .args(["qdisc", "del", "dev", "lo", "root"])
            .status();
    }
}

fn tc(args: &[&str]) {
    let out = std::process::Command::new("tc")
        .args(args)
        .output()
        .expect("tc runs");
    assert!(
        out.status.success(),
        "tc {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
