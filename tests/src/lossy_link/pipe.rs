//! One direction of a lossy link: a thread reads IPv4 packets from one TUN device, drops,
//! queues and delays them as its [`Impairment`] says, and a second thread writes them to the
//! other TUN device on time. It never forwards a packet to an address outside its allow-list.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tun_rs::{InterruptEvent, SyncDevice};

/// What a direction does to its packets, of every protocol (UDP media, TURN over TCP, the
/// WebSocket), except the test's own control connections (TCP on an exempt port, such as
/// chromedriver's). In order: random loss, then a rate limit with a bounded queue (tail drop),
/// then a fixed delay plus a uniform jitter. Packets are never reordered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Chance, in percent (0 to 100), that a packet is dropped at random.
    pub loss_percent: f64,
    /// Added to every packet's transit time.
    pub delay: Duration,
    /// Each packet's delay varies uniformly within `delay ± jitter` (never below zero).
    pub jitter: Duration,
    /// The link's rate in kbit/s (IP bytes); `None` for no limit.
    pub rate_kbit: Option<u32>,
    /// With a rate: a packet that would wait longer than this for the link is dropped.
    pub queue_limit: Duration,
    /// With a rate: a packet arriving while this many wait for the link is dropped.
    pub queue_packets: usize,
}

impl Default for Impairment {
    /// No loss, no delay, no rate limit; a 100 ms / 1000-packet queue once a rate is set.
    fn default() -> Self {
        Impairment {
            loss_percent: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_kbit: None,
            queue_limit: Duration::from_millis(100),
            queue_packets: 1000,
        }
    }
}

impl Impairment {
    /// `loss_percent` random loss and a fixed `delay_ms`, no rate limit.
    pub fn lossy(loss_percent: f64, delay_ms: u64) -> Impairment {
        Impairment {
            loss_percent,
            delay: Duration::from_millis(delay_ms),
            ..Impairment::default()
        }
    }
}

/// What one direction has done since the link was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Packets written to the far side, of every protocol.
    pub forwarded: u64,
    /// Their IP bytes.
    pub forwarded_bytes: u64,
    /// UDP packets among `forwarded`.
    pub udp_forwarded: u64,
    /// Packets among `forwarded` that passed unimpaired: TCP on an exempt port.
    pub exempt_forwarded: u64,
    /// Packets dropped at random (`loss_percent`).
    pub lost: u64,
    /// Packets dropped because the rate queue was full.
    pub queue_dropped: u64,
    /// Packets refused: not IPv4, or addressed outside the link (never forwarded).
    pub refused: u64,
    /// Packets the far TUN device did not take.
    pub write_errors: u64,
}

/// Packets waiting for their time, in delivery order.
struct DelayLine {
    packets: VecDeque<(Instant, Vec<u8>)>,
    /// When the rate-limited link finishes sending what it already holds.
    link_free_at: Instant,
    /// When each packet still waiting for the rate-limited link gets onto it.
    on_link: VecDeque<Instant>,
    /// Delivery time of the last packet queued: later packets never overtake it.
    last_delivery: Instant,
}

struct Shared {
    impairment: Mutex<Impairment>,
    line: Mutex<DelayLine>,
    queued: Condvar,
    stats: Mutex<DirectionStats>,
    /// TCP ports whose packets pass unimpaired (the test's control connections).
    exempt_tcp_ports: Mutex<Vec<u16>>,
    stop: AtomicBool,
}

/// A running direction; [`Pipe::stop`] (or drop) ends both of its threads.
pub struct Pipe {
    shared: Arc<Shared>,
    interrupt: Arc<InterruptEvent>,
    threads: Vec<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pipe {
    /// Moves packets from `from` to `to`, forwarding only IPv4 packets addressed to one of
    /// `allowed`. `interrupt` wakes the reader when the pipe stops.
    pub fn start(
        name: &str,
        from: Arc<SyncDevice>,
        to: Arc<SyncDevice>,
        allowed: Vec<Ipv4Addr>,
        interrupt: Arc<InterruptEvent>,
    ) -> std::io::Result<Pipe> {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            impairment: Mutex::new(Impairment::default()),
            line: Mutex::new(DelayLine {
                packets: VecDeque::new(),
                link_free_at: now,
                on_link: VecDeque::new(),
                last_delivery: now,
            }),
            queued: Condvar::new(),
            stats: Mutex::new(DirectionStats::default()),
            exempt_tcp_ports: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let reader = {
            let (shared, to, interrupt) = (shared.clone(), to.clone(), interrupt.clone());
            std::thread::Builder::new()
                .name(format!("{name}-in"))
                .spawn(move || read_loop(&shared, &from, &to, &allowed, &interrupt))?
        };
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("{name}-out"))
                .spawn(move || write_loop(&shared, &to))?
        };
        Ok(Pipe {
            shared,
            interrupt,
            threads: vec![reader, writer],
        })
    }

    /// Applies `impairment` to the packets arriving from now on.
    pub fn set(&self, impairment: Impairment) {
        *lock(&self.shared.impairment) = impairment;
    }

    /// Lets TCP packets from or to `port` pass unimpaired from now on.
    pub fn exempt_tcp_port(&self, port: u16) {
        lock(&self.shared.exempt_tcp_ports).push(port);
    }

    /// The impairment in force.
    pub fn impairment(&self) -> Impairment {
        *lock(&self.shared.impairment)
    }

    /// The counters so far.
    pub fn stats(&self) -> DirectionStats {
        *lock(&self.shared.stats)
    }

    /// Stops both threads and waits for them; packets still queued are dropped.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.interrupt.trigger();
        // Taken so that the writer is either before its stop check or waiting: no lost wake-up.
        drop(lock(&self.shared.line));
        self.shared.queued.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_loop(
    shared: &Shared,
    from: &SyncDevice,
    to: &SyncDevice,
    allowed: &[Ipv4Addr],
    interrupt: &InterruptEvent,
) {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::SeqCst) {
        let n = match from.recv_intr(&mut buf, interrupt) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {
                continue;
            }
            Err(_) => break,
        };
        let packet = &buf[..n];
        let Some(header) = Ipv4Header::parse(packet) else {
            lock(&shared.stats).refused += 1;
            continue;
        };
        if !allowed.contains(&header.destination) {
            lock(&shared.stats).refused += 1;
            continue;
        }
        let exempt = header.protocol == TCP
            && lock(&shared.exempt_tcp_ports)
                .iter()
                .any(|p| header.has_port(*p));
        if exempt {
            write(shared, to, packet, true);
        } else {
            admit(shared, packet, Instant::now());
        }
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// What the pipe reads of an IPv4 packet.
struct Ipv4Header {
    protocol: u8,
    destination: Ipv4Addr,
    /// (source, destination) ports of TCP and UDP.
    ports: Option<(u16, u16)>,
}

impl Ipv4Header {
    /// `None` for anything but a whole IPv4 header.
    fn parse(packet: &[u8]) -> Option<Ipv4Header> {
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let protocol = packet[9];
        let ports = match (protocol, packet.get(header_len..header_len + 4)) {
            (TCP | UDP, Some(p)) => Some((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )),
            _ => None,
        };
        Some(Ipv4Header {
            protocol,
            destination: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
            ports,
        })
    }

    fn has_port(&self, port: u16) -> bool {
        self.ports.is_some_and(|(s, d)| s == port || d == port)
    }
}

/// Decides a packet's fate: dropped, or queued for delivery at its time.
fn admit(shared: &Shared, packet: &[u8], now: Instant) {
    let impairment = *lock(&shared.impairment);
    if impairment.loss_percent > 0.0 && rand::random::<f64>() * 100.0 < impairment.loss_percent {
        lock(&shared.stats).lost += 1;
        return;
    }
    let mut line = lock(&shared.line);
    let onto_link = match impairment.rate_kbit {
        Some(kbit) if kbit > 0 => {
            while line.on_link.front().is_some_and(|t| *t <= now) {
                line.on_link.pop_front();
            }
            let start = line.link_free_at.max(now);
            if start - now > impairment.queue_limit
                || line.on_link.len() >= impairment.queue_packets
            {
                drop(line);
                lock(&shared.stats).queue_dropped += 1;
                return;
            }
            let bits = packet.len() as f64 * 8.0;
            let done = start + Duration::from_secs_f64(bits / (f64::from(kbit) * 1000.0));
            line.link_free_at = done;
            line.on_link.push_back(start);
            done
        }
        _ => now,
    };
    let jitter = impairment.jitter.as_secs_f64() * (rand::random::<f64>() * 2.0 - 1.0);
    let delay = (impairment.delay.as_secs_f64() + jitter).max(0.0);
    let delivery = (onto_link + Duration::from_secs_f64(delay)).max(line.last_delivery);
    line.last_delivery = delivery;
    line.packets.push_back((delivery, packet.to_vec()));
    drop(line);
    shared.queued.notify_one();
}

fn write_loop(shared: &Shared, to: &SyncDevice) {
    let mut line = lock(&shared.line);
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        match line.packets.front() {
            Some((at, _)) if *at <= now => {
                let (_, packet) = line.packets.pop_front().expect("a front packet");
                drop(line);
                write(shared, to, &packet, false);
                line = lock(&shared.line);
            }
            Some((at, _)) => {
                let wait = *at - now;
                line = shared
                    .queued
                    .wait_timeout(line, wait)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
            None => {
                line = shared
                    .queued
                    .wait(line)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
    }
}

fn write(shared: &Shared, to: &SyncDevice, packet: &[u8], exempt: bool) {
    let sent = to.send(packet);
    let mut stats = lock(&shared.stats);
    match sent {
        Ok(_) => {
            stats.forwarded += 1;
            stats.forwarded_bytes += packet.len() as u64;
            stats.udp_forwarded += u64::from(packet.get(9) == Some(&UDP));
            stats.exempt_forwarded += u64::from(exempt);
        }
        Err(_) => stats.write_errors += 1,
    }
}
