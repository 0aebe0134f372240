//! What the simulated participants observe: per received track, packets, bytes, sequence gaps
//! (loss) and interarrival jitter (RFC 3550); per packet, the forwarding latency read from its
//! stamp; per second, totals for the live status line and the plot. Each participant keeps its
//! own [`ParticipantStats`]; they are merged at the end. Live totals go through [`Live`]'s
//! atomics. It does no I/O and never takes a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Totals for the status line, shared by every participant.
#[derive(Default)]
pub struct Live {
    pub joined: AtomicU64,
    pub packets: AtomicU64,
    pub lost: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One received track.
#[derive(Debug, Clone, Default)]
pub struct TrackStats {
    pub video: bool,
    pub packets: u64,
    pub bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Extended highest sequence number and the first one.
    highest: Option<u64>,
    base: u64,
    /// RFC 3550 interarrival jitter, in RTP units.
    jitter: f64,
    transit: Option<f64>,
}

impl TrackStats {
    fn clock_rate(&self) -> f64 {
        if self.video { 90_000.0 } else { 48_000.0 }
    }

    fn record(&mut self, now: Instant, start: Instant, sequence: u16, timestamp: u32, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
        self.first.get_or_insert(now);
        self.last = Some(now);
        let extended = match self.highest {
            None => {
                self.base = u64::from(sequence);
                u64::from(sequence)
            }
            Some(highest) => {
                let delta = sequence.wrapping_sub(highest as u16);
                if delta < 0x8000 {
                    highest + u64::from(delta)
                } else {
                    highest.saturating_sub(u64::from(delta.wrapping_neg()))
                }
            }
        };
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        // Transit = arrival (in RTP units) − RTP timestamp; jitter smooths its changes.
        let arrival = now.duration_since(start).as_secs_f64() * self.clock_rate();
        let transit = arrival - f64::from(timestamp);
        if let Some(previous) = self.transit {
            let d = (transit - previous).abs();
            // Skip timestamp wraps and clip loops.
            if d < self.clock_rate() {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.transit = Some(transit);
    }

    /// Packets expected from the sequence numbers seen.
    pub fn expected(&self) -> u64 {
        self.highest.map_or(0, |h| h - self.base + 1)
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    pub fn jitter_ms(&self) -> f64 {
        self.jitter / self.clock_rate() * 1000.0
    }

    pub fn bitrate_kbps(&self) -> f64 {
        match (self.first, self.last) {
            (Some(first), Some(last)) if last > first => {
                self.bytes as f64 * 8.0 / last.duration_since(first).as_secs_f64() / 1000.0
            }
            _ => 0.0,
        }
    }
}

/// Per-second totals (index = second since the run started).
#[derive(Debug, Clone, Default)]
pub struct Second {
    pub packets: u64,
    pub bytes: u64,
    pub latencies_us: Vec<u32>,
}

/// What one simulated participant saw.
#[derive(Debug, Default)]
pub struct ParticipantStats {
    /// WebSocket open to first media packet received.
    pub join_time: Option<Duration>,
    pub tracks: HashMap<(String, bool), TrackStats>,
    /// Forwarding latency of each stamped packet received inside the measured window.
    pub latencies_us: Vec<u32>,
    /// Packets received inside the measured window.
    pub window_packets: u64,
    pub seconds: Vec<Second>,
    pub error: Option<String>,
    /// The participant's identity (`pub-0-0`, `sub-0-3`, ...).
    pub identity: String,
    /// The video it received, track by track (layers, pictures, bitrate).
    pub downlink: crate::downlink::DownlinkView,
    /// Whether its join was redirected to the room's node (a cluster).
    pub redirected: bool,
}

impl ParticipantStats {
    /// Records one received packet. `window` says whether it falls in the measured window.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        run_start: Instant,
        now: Instant,
        from: &str,
        video: bool,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
        window: bool,
        live: &Live,
    ) {
        let track = match self.tracks.get_mut(&(from.to_owned(), video)) {
            Some(t) => t,
            None => self
                .tracks
                .entry((from.to_owned(), video))
                .or_insert_with(|| TrackStats {
                    video,
                    ..Default::default()
                }),
        };
        let lost_before = track.lost();
        track.record(now, run_start, sequence, timestamp, payload.len());
        let lost_now = track.lost();
        if lost_now > lost_before {
            Live::add(&live.lost, lost_now - lost_before);
        }
        Live::add(&live.packets, 1);
        let second = now.duration_since(run_start).as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Second::default);
        }
        let bucket = &mut self.seconds[second];
        bucket.packets += 1;
        bucket.bytes += payload.len() as u64;
        if let Some(age) = crate::media::stamp_age(payload, now) {
            let micros = age.as_micros().min(u128::from(u32::MAX)) as u32;
            bucket.latencies_us.push(micros);
            if window {
                self.latencies_us.push(micros);
            }
        }
        if window {
            self.window_packets += 1;
        }
    }
}

/// Percentile (0–100) of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_comes_from_sequence_gaps_across_wraps() {
        let start = Instant::now();
        let mut t = TrackStats::default();
        for (i, seq) in [65533u16, 65534, 65535, 1, 2].into_iter().enumerate() {
            t.record(
                start + Duration::from_millis(20 * i as u64),
                start,
                seq,
                960 * i as u32,
                100,
            );
        }
        assert_eq!(t.expected(), 6);
        assert_eq!(t.lost(), 1, "sequence 0 is missing");
        // A late packet fills the gap.
        t.record(start, start, 0, 0, 100);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn steady_arrivals_have_no_jitter() {
        let start = Instant::now();
        let mut t = TrackStats::default();
        for i in 0..50u32 {
            t.record(
                start + Duration::from_millis(20 * u64::from(i)),
                start,
                i as u16,
                960 * i,
                80,
            );
        }
        assert!(t.jitter_ms() < 0.01, "{}", t.jitter_ms());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(51));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
