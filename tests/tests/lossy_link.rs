//! Proves the userspace netem of `switchyard_tests::lossy_link` with real traffic: UDP echoes
//! through a link with loss and delay, with a rate limit, and unimpaired; then a call between
//! a Chromium page on this machine and one inside the namespace. Traffic never leaves the machine.

use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use switchyard_tests::browser::media_stats;
use switchyard_tests::lossy_link::{DirectionStats, Impairment, LossyCall, LossyLink};
use switchyard_tests::wait_for;
use tokio::net::UdpSocket;

/// A UDP echo inside the namespace: prints its port, then returns every datagram to its sender.
/// Its 4 MiB receive buffer (SO_RCVBUFFORCE, as root) rides out a busy machine's stalls.
const ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"#;

struct Echo {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts [`ECHO`] in the link's namespace and waits for its port.
fn start_echo(link: &LossyLink) -> Echo {
    let mut child = link
        .command("python3")
        .args(["-c", ECHO, &link.namespace_ip.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs inside the namespace");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the echo prints its port");
    let port: u16 = line.trim().parse().expect("a port number");
    Echo {
        child,
        addr: SocketAddr::from((link.namespace_ip, port)),
    }
}

/// Packets dropped by the kernel rather than by the bridge, for failure messages: the TUN
/// devices' queues, UDP receive buffers inside the namespace, and on this machine (where every
/// process counts).
fn kernel_drops(link: &LossyLink) -> [u64; 4] {
    let read = |command: &mut std::process::Command| {
        let out = command.output().map(|o| o.stdout).unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    };
    let rcvbuf_errors = |snmp: String| {
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
        let (names, values) = (udp.next().unwrap_or(""), udp.next().unwrap_or(""));
        let at = names.split_whitespace().position(|n| n == "RcvbufErrors");
        at.and_then(|i| values.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or(0)
    };
    let tx_dropped = |text: String| text.trim().parse().unwrap_or(0);
    let stat = |dev: &str| format!("/sys/class/net/{dev}/statistics/tx_dropped");
    [
        tx_dropped(std::fs::read_to_string(stat(&link.host_tun)).unwrap_or_default()),
        tx_dropped(read(link.command("cat").arg(stat(&link.namespace_tun)))),
        rcvbuf_errors(read(link.command("cat").arg("/proc/net/snmp"))),
        rcvbuf_errors(std::fs::read_to_string("/proc/net/snmp").unwrap_or_default()),
    ]
}

/// What came back from one burst of numbered datagrams.
struct Probe {
    sent: usize,
    rtts: Vec<Duration>,
    /// IP bytes of one datagram (payload + 28).
    ip_size: usize,
    first_arrival: Option<Instant>,
    last_arrival: Option<Instant>,
}

impl Probe {
    fn loss_percent(&self) -> f64 {
        100.0 * (self.sent - self.rtts.len()) as f64 / self.sent as f64
    }

    fn rtt_ms(&self, quantile: f64) -> f64 {
        let mut rtts = self.rtts.clone();
        rtts.sort();
        let i = ((rtts.len() as f64 - 1.0) * quantile).round() as usize;
        rtts.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    /// The rate at which echoes arrived, in kbit/s of IP bytes.
    fn arrival_kbit(&self) -> f64 {
        let (Some(first), Some(last)) = (self.first_arrival, self.last_arrival) else {
            return 0.0;
        };
        let bits = ((self.rtts.len() - 1) * self.ip_size * 8) as f64;
        bits / (last - first).as_secs_f64() / 1000.0
    }

    fn summary(&self) -> String {
        format!(
            "{} sent, {} back ({:.2} % lost), RTT min {:.2} ms, median {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms",
            self.sent,
            self.rtts.len(),
            self.loss_percent(),
            self.rtt_ms(0.0),
            self.rtt_ms(0.5),
            self.rtt_ms(0.99),
            self.rtt_ms(1.0)
        )
    }
}

/// Sends `count` datagrams of `size` bytes to `echo`, one every `interval`, from this
/// machine's end of the link, and collects the echoes until none has come for a second.
async fn probe(
    from: Ipv4Addr,
    echo: SocketAddr,
    count: usize,
    size: usize,
    interval: Duration,
) -> Probe {
    let socket = std::net::UdpSocket::bind((from, 0)).expect("bind the link's host end");
    // 4 MiB (beyond rmem_max, as root): a test process left without a core for a few hundred
    // ms on a busy machine must not lose echoes the link delivered.
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &(4 << 20))
        .expect("SO_RCVBUFFORCE (needs root)");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = UdpSocket::from_std(socket).expect("a tokio socket");
    let base = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    let mut out = Probe {
        sent: 0,
        rtts: Vec::new(),
        ip_size: size + 28,
        first_arrival: None,
        last_arrival: None,
    };
    let mut payload = vec![0u8; size];
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            _ = ticker.tick(), if out.sent < count => {
                let nanos = base.elapsed().as_nanos() as u64;
                payload[..8].copy_from_slice(&nanos.to_be_bytes());
                socket.send_to(&payload, echo).await.expect("send to the echo");
                out.sent += 1;
            }
            got = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)) => {
                match got {
                    Ok(Ok((n, _))) if n == size => {
                        let now = Instant::now();
                        let sent_at = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                        out.rtts.push(now - base - Duration::from_nanos(sent_at));
                        out.first_arrival.get_or_insert(now);
                        out.last_arrival = Some(now);
                    }
                    Ok(Ok((n, from))) => panic!("a {n}-byte datagram from {from}"),
                    Ok(Err(e)) => panic!("receive from the echo: {e}"),
                    Err(_) if out.sent == count => return out,
                    Err(_) => {}
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_through_the_link_is_lost_delayed_and_rate_limited_as_set() {
    let link = LossyLink::create().expect("a lossy link (needs root and /dev/net/tun)");
    let echo = start_echo(&link);
    println!(
        "namespace {} at {}, echo {}",
        link.namespace, link.namespace_ip, echo.addr
    );

    // 5 % loss and 50 ms delay towards the namespace; the echo's way back is clean.
    link.set_downlink(Impairment::lossy(5.0, 50));
    let before = link.downlink_stats();
    let kernel_before = kernel_drops(&link);
    let lossy = probe(link.host_ip, echo.addr, 2000, 200, Duration::from_millis(1)).await;
    let after = link.downlink_stats();
    let kernel = kernel_drops(&link);
    let kernel: Vec<u64> = kernel
        .iter()
        .zip(kernel_before)
        .map(|(a, b)| a - b)
        .collect();
    println!("loss 5 %, delay 50 ms: {}", lossy.summary());
    println!("downlink counters: {before:?} -> {after:?}");
    println!(
        "dropped by the kernel meanwhile (host TUN, namespace TUN, namespace UDP buffers, this \
         machine's UDP buffers): {kernel:?}"
    );
    let loss = lossy.loss_percent();
    assert!((3.0..=7.0).contains(&loss), "{loss:.2} % lost, not 3-7 %");
    assert!(
        lossy.rtt_ms(0.0) >= 50.0,
        "an echo came back early: {}",
        lossy.summary()
    );
    assert_eq!(
        after.lost - before.lost,
        (lossy.sent - lossy.rtts.len()) as u64,
        "every missing echo is one the link dropped; the kernel dropped (host TUN, namespace \
         TUN, namespace UDP buffers, this machine's UDP buffers) {kernel:?}"
    );
    assert_eq!(
        after.udp_forwarded - before.udp_forwarded,
        lossy.rtts.len() as u64
    );

    // A 2000 kbit/s link offered about 4100 kbit/s: half arrives, at the link's rate, and the
    // rest is dropped at the tail of the 100 ms queue.
    link.set_downlink(Impairment {
        rate_kbit: Some(2000),
        ..Impairment::default()
    });
    let before = link.downlink_stats();
    let limited = probe(
        link.host_ip,
        echo.addr,
        1000,
        1000,
        Duration::from_millis(2),
    )
    .await;
    let after = link.downlink_stats();
    let kbit = limited.arrival_kbit();
    println!(
        "rate 2000 kbit/s: {}, arriving at {kbit:.0} kbit/s, {} tail-dropped",
        limited.summary(),
        after.queue_dropped - before.queue_dropped
    );
    assert!(
        (1800.0..=2200.0).contains(&kbit),
        "arrival rate {kbit:.0} kbit/s"
    );
    assert!(
        after.queue_dropped - before.queue_dropped > 300,
        "{before:?} -> {after:?}"
    );
    // Once the queue is full, a packet waits about 100 ms (the limit) plus its own 4 ms on
    // the link; an unbounded queue would grow to a second by the end of the burst. Margin above:
    // this busy machine's scheduling delays of the echo and of this test.
    let median = limited.rtt_ms(0.5);
    assert!(
        (90.0..=150.0).contains(&median),
        "queue not bounded at 100 ms: {}",
        limited.summary()
    );

    // Cleared: nothing lost, and the bridge adds next to nothing.
    link.clear();
    let clean = probe(link.host_ip, echo.addr, 2000, 200, Duration::from_millis(1)).await;
    println!("cleared: {}", clean.summary());
    println!(
        "downlink {:?}\nuplink {:?}",
        link.downlink_stats(),
        link.uplink_stats()
    );
    assert_eq!(clean.rtts.len(), clean.sent, "{}", clean.summary());
    // The median: the tail holds this busy machine's scheduling delays (browsers of other
    // tests decoding video on the same two cores), not the bridge's.
    assert!(clean.rtt_ms(0.5) < 5.0, "{}", clean.summary());
}

/// The most video frames `page` has decoded from a participant whose identity starts with
/// `name` (lower case).
async fn frames_from(page: &fantoccini::Client, name: &str) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video")
        .filter(|s| {
            s["identity"]
                .as_str()
                .is_some_and(|id| id.to_lowercase().starts_with(name))
        })
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_one_page_behind_a_lossy_link_decodes_video_both_ways() {
    let call = LossyCall::start()
        .await
        .expect("a call across a lossy link");
    let link = &call.link;
    let alice = call
        .host_pages("lossy-link", &["Alice"])
        .await
        .expect("Alice's page loads")
        .remove(0);
    let bob = call
        .inside_page("lossy-link", "Bob")
        .await
        .expect("Bob's page loads inside the namespace");

    let started = Instant::now();
    let frames = async || {
        (
            frames_from(&alice, "bob").await,
            frames_from(&bob, "alice").await,
        )
    };
    let first = wait_for(
        "60 frames decoded each way",
        Duration::from_secs(60),
        async || match frames().await {
            (a, b) if a >= 60 && b >= 60 => Ok((a, b)),
            seen => Err(format!(
                "(Alice from Bob, Bob from Alice) = {seen:?}; Bob's streams: {:?}; link: {:?}",
                media_stats(&bob).await,
                link.downlink_stats()
            )),
        },
    )
    .await;
    println!(
        "60 frames each way after {:?}: {first:?}",
        started.elapsed()
    );

    // Then Bob's downlink loses 5 % and takes 50 ms: video keeps being decoded both ways. (The
    // call is set up first: its handshakes under loss are another test's subject.)
    link.set_downlink(Impairment::lossy(5.0, 50));
    let (down, up) = (link.downlink_stats(), link.uplink_stats());
    let since = Instant::now();
    let later = wait_for(
        "90 more frames each way",
        Duration::from_secs(30),
        async || match frames().await {
            (a, b) if a >= first.0 + 90 && b >= first.1 + 90 => Ok((a, b)),
            seen => Err(format!("{first:?} -> {seen:?}")),
        },
    )
    .await;
    let (down2, up2) = (link.downlink_stats(), link.uplink_stats());
    println!("{first:?} -> {later:?} frames in {:?}", since.elapsed());
    // Impaired packets: every forwarded one but chromedriver's.
    let impaired = |s: &DirectionStats| s.forwarded - s.exempt_forwarded;
    println!(
        "through the bridge meanwhile: downlink {} packets ({} UDP), {} lost; uplink {} packets \
         ({} UDP)",
        impaired(&down2) - impaired(&down),
        down2.udp_forwarded - down.udp_forwarded,
        down2.lost - down.lost,
        impaired(&up2) - impaired(&up),
        up2.udp_forwarded - up.udp_forwarded
    );
    println!("downlink {down2:?}\nuplink {up2:?}");
    assert!(
        impaired(&down2) - impaired(&down) > 100,
        "{down:?} -> {down2:?}"
    );
    assert!(impaired(&up2) - impaired(&up) > 100, "{up:?} -> {up2:?}");
    assert!(
        down2.lost > down.lost,
        "no loss on the downlink: {down:?} -> {down2:?}"
    );
    let _ = alice.close().await;
    let _ = bob.close().await;
}
