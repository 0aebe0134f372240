//! What the SFU measures about a published track as its packets arrive: counts, loss from
//! sequence gaps, RFC 3550 interarrival jitter, and once a second the bitrate and frame
//! rate. Plain arithmetic on the per-packet path: no allocation, no lock.

use std::time::{Duration, Instant};

/// Receive-side statistics of one RTP stream.
#[derive(Debug, Clone)]
pub(crate) struct ReceiveStats {
    clock_rate: f64,
    epoch: Instant,
    packets: u64,
    bytes: u64,
    first_seq: Option<u64>,
    highest_seq: u64,
    last_transit: Option<f64>,
    /// In RTP timestamp units.
    jitter: f64,
    window_start: Instant,
    window_bytes: u64,
    window_frames: u64,
    bitrate: u64,
    fps: f64,
    dimensions: Option<(u32, u32)>,
}

/// A copy of a stream's statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StreamStats {
    pub packets: u64,
    pub bytes: u64,
    pub lost: u64,
    pub loss_rate: f64,
    pub jitter_ms: f64,
    pub bitrate: u64,
    pub fps: f64,
    pub dimensions: Option<(u32, u32)>,
}

impl ReceiveStats {
    pub(crate) fn new(clock_rate: u32, now: Instant) -> Self {
        Self {
            clock_rate: f64::from(clock_rate.max(1)),
            epoch: now,
            packets: 0,
            bytes: 0,
            first_seq: None,
            highest_seq: 0,
            last_transit: None,
            jitter: 0.0,
            window_start: now,
            window_bytes: 0,
            window_frames: 0,
            bitrate: 0,
            fps: 0.0,
            dimensions: None,
        }
    }

    /// Accounts one packet. `end_of_frame` is the RTP marker bit of a video packet.
    pub(crate) fn on_packet(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        end_of_frame: bool,
        len: usize,
        arrival: Instant,
    ) {
        self.packets += 1;
        self.bytes += len as u64;
        self.window_bytes += len as u64;
        self.window_frames += u64::from(end_of_frame);
        match self.first_seq {
            None => {
                self.first_seq = Some(u64::from(sequence_number));
                self.highest_seq = u64::from(sequence_number);
            }
            Some(_) => {
                let delta = sequence_number.wrapping_sub(self.highest_seq as u16) as i16;
                if delta > 0 {
                    self.highest_seq += delta as u64;
                }
            }
        }
        let arrival_units =
            arrival.saturating_duration_since(self.epoch).as_secs_f64() * self.clock_rate;
        let transit = arrival_units - f64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // A jump of over a minute is a timestamp wrap or a new source, not jitter.
            if d < 60.0 * self.clock_rate {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// Remembers the picture size a keyframe announced.
    pub(crate) fn set_dimensions(&mut self, dimensions: (u32, u32)) {
        self.dimensions = Some(dimensions);
    }

    /// Closes the rate window once at least a second has passed.
    pub(crate) fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        self.bitrate = (self.window_bytes as f64 * 8.0 / seconds) as u64;
        self.fps = self.window_frames as f64 / seconds;
        self.window_bytes = 0;
        self.window_frames = 0;
        self.window_start = now;
    }

    pub(crate) fn snapshot(&self) -> StreamStats {
        let expected = self
            .first_seq
            .map(|first| self.highest_seq - first + 1)
            .unwrap_or(0);
        let lost = expected.saturating_sub(self.packets);
        StreamStats {
            packets: self.packets,
            bytes: self.bytes,
            lost,
            loss_rate: if expected == 0 {
                0.0
            } else {
                lost as f64 / expected as f64
            },
            jitter_ms: self.jitter / self.clock_rate * 1000.0,
            bitrate: self.bitrate,
            fps: self.fps,
            dimensions: self.dimensions,
        }
    }
}

/// Bytes sent, with a rate over the last second.
#[derive(Debug, Clone)]
pub(crate) struct SendRate {
    window_start: Instant,
    window_bytes: u64,
    bitrate: u64,
}

impl SendRate {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            window_bytes: 0,
            bitrate: 0,
        }
    }

    pub(crate) fn on_bytes(&mut self, len: usize) {
        self.window_bytes += len as u64;
    }

    pub(crate) fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= Duration::from_secs(1) {
            self.bitrate = (self.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            self.window_bytes = 0;
            self.window_start = now;
        }
    }

    pub(crate) fn bitrate(&self) -> u64 {
        self.bitrate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_across_wraparound() {
        let start = Instant::now();
        let mut stats = ReceiveStats::new(90_000, start);
        // 65530..=65535, then 0..=9 with 3 and 4 missing: 16 expected, 14 received.
        for seq in (65530u16..=65535).chain((0..=9).filter(|s| *s != 3 && *s != 4)) {
            stats.on_packet(seq, 0, false, 100, start);
        }
        let s = stats.snapshot();
        assert_eq!(s.packets, 14);
        assert_eq!(s.lost, 2);
        assert!((s.loss_rate - 2.0 / 16.0).abs() < 1e-9);
        // Reordered and duplicate packets do not count as loss.
        stats.on_packet(3, 0, false, 100, start);
        stats.on_packet(4, 0, false, 100, start);
        stats.on_packet(4, 0, false, 100, start);
        assert_eq!(stats.snapshot().lost, 0);
    }

    #[test]
    fn jitter_is_zero_for_a_steady_stream_and_grows_with_variation() {
        let start = Instant::now();
        let mut steady = ReceiveStats::new(48_000, start);
        for i in 0..100u32 {
            let arrival = start + Duration::from_millis(u64::from(i) * 20);
            steady.on_packet(i as u16, i * 960, false, 100, arrival);
        }
        assert!(steady.snapshot().jitter_ms < 0.01);
        let mut shaky = ReceiveStats::new(48_000, start);
        for i in 0..100u32 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            let arrival = start + Duration::from_millis(u64::from(i) * 20 + wobble);
            shaky.on_packet(i as u16, i * 960, false, 100, arrival);
        }
        let jitter = shaky.snapshot().jitter_ms;
        assert!((5.0..=10.0).contains(&jitter), "{jitter}");
    }

    #[test]
    fn bitrate_and_frame_rate_per_second() {
        let start = Instant::now();
        let mut stats = ReceiveStats::new(90_000, start);
        for i in 0..300u16 {
            // 30 frames of 10 packets, 1000 bytes each, over one second.
            stats.on_packet(i, 0, i % 10 == 9, 1000, start);
        }
        stats.tick(start + Duration::from_millis(500));
        assert_eq!(stats.snapshot().bitrate, 0, "the window is not over yet");
        stats.tick(start + Duration::from_secs(1));
        let s = stats.snapshot();
        assert_eq!(s.bitrate, 2_400_000);
        assert!((s.fps - 30.0).abs() < 1e-9);
        let mut sent = SendRate::new(start);
        sent.on_bytes(125_000);
        sent.tick(start + Duration::from_secs(1));
        assert_eq!(sent.bitrate(), 1_000_000);
    }
}
