//! Sequence numbers and timestamps for one down-track: maps each run of a publisher's packets
//! (one source from the packet the forwarder switched on) into one continuous output, closing
//! the gaps left by packets the forwarder drops. No I/O and no clock (time is passed in); memory
//! is bounded and nothing is allocated per packet.

use std::time::Instant;

/// How many offset changes (drops) a run remembers, to map late packets from before them.
const RANGES: usize = 64;
/// The most a switch advances the output timestamp, so that it still compares as "later".
const MAX_ADVANCE: u32 = 1 << 30;

/// Where a packet falls relative to the newest one of its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// At or before the newest: a reordered packet, a retransmission or a duplicate.
    Late,
    /// Right after the newest.
    Next,
    /// Ahead of the newest with packets missing in between.
    AfterGap,
}

/// A packet placed in its run: its sequence number extended past wraps, and its arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub ext: i64,
    pub arrival: Arrival,
}

/// From input `start` on (until the next range), output = input + `offset`; the `dropped`
/// inputs right before `start` were dropped and have no output number.
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    start: i64,
    offset: u16,
    dropped: u32,
}

#[derive(Debug, Clone)]
struct Run {
    highest: i64,
    /// A ring, `count` pushed in total; the newest is at `(count - 1) % RANGES`.
    ranges: [Range; RANGES],
    count: usize,
    ts_offset: u32,
}

impl Run {
    fn newest(&self) -> Range {
        self.ranges[(self.count - 1) % RANGES]
    }

    /// The output offset for `ext`; `None` when it predates the run or the remembered ranges,
    /// or was itself dropped.
    fn offset_for(&self, ext: i64) -> Option<u16> {
        let kept = self.count.min(RANGES);
        let range = (0..kept)
            .map(|k| self.ranges[(self.count - 1 - k) % RANGES])
            .find(|r| r.start - i64::from(r.dropped) <= ext)?;
        (ext >= range.start).then_some(range.offset)
    }
}

/// Rewrites sequence numbers and timestamps across runs.
///
/// At a switch the new run's first packet gets the next output sequence number (no gap, so the
/// subscriber NACKs nothing that never existed) and a timestamp that advances by the wall-clock
/// time since the last forwarded packet at the codec's clock rate (at least one tick). We chose
/// elapsed time over mediasoup's sender-report alignment: it needs no RTCP state, keeps the
/// output monotone, and keeps its pace with real time, which the SFU's own sender reports
/// assume. A dropped packet ahead of the newest lowers the offset of every later one (LiveKit's
/// `PacketDropped`); late packets keep the offset of their time through a ring of ranges.
#[derive(Debug, Clone)]
pub struct RtpMunger {
    clock_rate: u32,
    run: Option<Run>,
    /// The output number for the first packet of the next run when no run exists yet.
    first_seq: u16,
    newest_ts: u32,
    newest_at: Option<Instant>,
    started: bool,
}

impl RtpMunger {
    /// Output starts at `first_seq` / `first_ts`; `clock_rate` (Hz) turns time into ticks.
    pub fn new(first_seq: u16, first_ts: u32, clock_rate: u32) -> Self {
        RtpMunger {
            clock_rate,
            run: None,
            first_seq,
            newest_ts: first_ts.wrapping_sub(1),
            newest_at: None,
            started: false,
        }
    }

    /// True once a packet has been mapped.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The output sequence number the next new packet gets.
    pub fn next_sequence_number(&self) -> u16 {
        match &self.run {
            Some(run) => (run.highest.wrapping_add(1) as u16).wrapping_add(run.newest().offset),
            None => self.first_seq,
        }
    }

    /// Begins a run whose first packet (`seq`, `ts`) continues the output seamlessly. `now`
    /// `None` advances the timestamp by one tick.
    pub fn start_run(&mut self, seq: u16, ts: u32, now: Option<Instant>) {
        let next = self.next_sequence_number();
        let out_ts = self.newest_ts.wrapping_add(self.ticks_since(now));
        let first = i64::from(seq);
        let mut ranges = [Range::default(); RANGES];
        ranges[0] = Range {
            start: first,
            offset: next.wrapping_sub(seq),
            dropped: 0,
        };
        self.run = Some(Run {
            highest: first - 1,
            ranges,
            count: 1,
            ts_offset: out_ts.wrapping_sub(ts),
        });
    }

    fn ticks_since(&self, now: Option<Instant>) -> u32 {
        let (Some(now), Some(at)) = (now, self.newest_at) else {
            return 1;
        };
        let nanos = now.saturating_duration_since(at).as_nanos();
        let ticks = nanos.saturating_mul(u128::from(self.clock_rate)) / 1_000_000_000;
        u32::try_from(ticks)
            .unwrap_or(MAX_ADVANCE)
            .clamp(1, MAX_ADVANCE)
    }

    /// Places `seq` in the current run; `None` when there is no run or it cannot be mapped
    /// (before the run, beyond the remembered ranges, or a late copy of a dropped packet).
    pub fn classify(&self, seq: u16) -> Option<Seen> {
        let run = self.run.as_ref()?;
        // Nearest to the highest so far: up to 32,767 ahead or 32,768 behind.
        let delta = i64::from(seq.wrapping_sub(run.highest as u16) as i16);
        let ext = run.highest + delta;
        run.offset_for(ext)?;
        let arrival = match delta {
            ..=0 => Arrival::Late,
            1 => Arrival::Next,
            _ => Arrival::AfterGap,
        };
        Some(Seen { ext, arrival })
    }

    /// Drops the packet `ext`: when it is the newest so far, later packets close its gap.
    pub fn drop_packet(&mut self, ext: i64) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if ext <= run.highest {
            return; // Later packets already have their numbers: its slot stays empty.
        }
        run.highest = ext;
        let newest = run.newest();
        if newest.start == ext {
            // Consecutive drops (a padding burst, a whole dropped frame) share one range.
            let slot = (run.count - 1) % RANGES;
            run.ranges[slot] = Range {
                start: ext + 1,
                offset: newest.offset.wrapping_sub(1),
                dropped: newest.dropped.saturating_add(1),
            };
        } else {
            run.ranges[run.count % RANGES] = Range {
                start: ext + 1,
                offset: newest.offset.wrapping_sub(1),
                dropped: 1,
            };
            run.count += 1;
        }
    }

    /// Takes the next output sequence number for a packet of our own (padding), after the
    /// newest packet: every later publisher packet moves up by one, late ones keep their
    /// numbers. Returns it with the newest output timestamp; `None` before the first packet.
    pub fn insert(&mut self) -> Option<(u16, u32)> {
        if !self.started {
            return None;
        }
        let seq = self.next_sequence_number();
        let run = self.run.as_mut()?;
        let next = run.highest + 1;
        let newest = run.newest();
        if newest.start == next {
            // Nothing newer has come since the last change: it moves up by one more.
            let slot = (run.count - 1) % RANGES;
            run.ranges[slot].offset = newest.offset.wrapping_add(1);
        } else {
            run.ranges[run.count % RANGES] = Range {
                start: next,
                offset: newest.offset.wrapping_add(1),
                dropped: 0,
            };
            run.count += 1;
        }
        Some((seq, self.newest_ts))
    }

    /// The output sequence number and timestamp of the packet `ext` (from [`Self::classify`])
    /// with input timestamp `ts`, forwarded at `now`.
    pub fn map(&mut self, ext: i64, ts: u32, now: Option<Instant>) -> Option<(u16, u32)> {
        let run = self.run.as_mut()?;
        let offset = run.offset_for(ext)?;
        let seq = (ext as u16).wrapping_add(offset);
        let out_ts = ts.wrapping_add(run.ts_offset);
        run.highest = run.highest.max(ext);
        if out_ts.wrapping_sub(self.newest_ts) as i32 >= 0 {
            self.newest_ts = out_ts;
            self.newest_at = now.or(self.newest_at);
        }
        self.started = true;
        Some((seq, out_ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn forward(m: &mut RtpMunger, seq: u16, ts: u32) -> Option<(u16, u32)> {
        let seen = m.classify(seq)?;
        m.map(seen.ext, ts, None)
    }

    fn drop(m: &mut RtpMunger, seq: u16) {
        let seen = m.classify(seq).expect("a mappable packet");
        m.drop_packet(seen.ext);
    }

    #[test]
    fn arrivals_are_classified() {
        let mut m = RtpMunger::new(0, 0, 90_000);
        assert_eq!(m.classify(5), None, "no run yet");
        m.start_run(10, 0, None);
        assert_eq!(m.classify(10).map(|s| s.arrival), Some(Arrival::Next));
        assert_eq!(m.classify(9), None, "before the run");
        forward(&mut m, 10, 0);
        let table = [
            (10, Some(Arrival::Late)),
            (11, Some(Arrival::Next)),
            (13, Some(Arrival::AfterGap)),
        ];
        for (seq, want) in table {
            assert_eq!(m.classify(seq).map(|s| s.arrival), want, "{seq}");
        }
    }

    #[test]
    fn drops_close_the_gap_and_late_packets_keep_their_numbers() {
        let mut m = RtpMunger::new(100, 0, 90_000);
        m.start_run(1000, 0, None);
        assert_eq!(forward(&mut m, 1000, 0), Some((100, 0)));
        // 1001 is lost upstream for now; 1002-1004 are dropped (padding); 1005 follows.
        drop(&mut m, 1002);
        drop(&mut m, 1003);
        drop(&mut m, 1004);
        assert_eq!(forward(&mut m, 1005, 0), Some((102, 0)));
        assert_eq!(m.next_sequence_number(), 103);
        // The lost packet arrives late and takes the slot it had.
        assert_eq!(forward(&mut m, 1001, 0), Some((101, 0)));
        // A late copy of a dropped packet cannot be mapped (it would collide).
        assert_eq!(m.classify(1003), None);
        // A dropped packet behind the newest cannot close anything: its slot stays.
        drop(&mut m, 1001);
        assert_eq!(forward(&mut m, 1006, 0), Some((103, 0)));
    }

    #[test]
    fn inserted_packets_take_numbers_and_late_packets_keep_theirs() {
        let mut m = RtpMunger::new(100, 500, 90_000);
        assert_eq!(m.insert(), None, "nothing forwarded yet");
        m.start_run(1000, 0, None);
        assert_eq!(forward(&mut m, 1000, 0), Some((100, 500)));
        // 1001 is late; two paddings after 1002.
        assert_eq!(forward(&mut m, 1002, 3000), Some((102, 3500)));
        assert_eq!(m.insert(), Some((103, 3500)));
        assert_eq!(m.insert(), Some((104, 3500)));
        assert_eq!(forward(&mut m, 1003, 6000), Some((105, 6500)));
        assert_eq!(forward(&mut m, 1001, 0), Some((101, 500)));
        // A drop right after an insert closes its own gap only.
        assert_eq!(m.insert(), Some((106, 6500)));
        drop(&mut m, 1004);
        assert_eq!(forward(&mut m, 1005, 9000), Some((107, 9500)));
        assert_eq!(m.next_sequence_number(), 108);
        assert_eq!(forward(&mut m, 1003, 6000), Some((105, 6500)));
    }

    #[test]
    fn history_is_bounded_and_old_packets_become_unmappable() {
        let mut m = RtpMunger::new(0, 0, 90_000);
        m.start_run(0, 0, None);
        let mut seq = 0u16;
        let mut out = 0u16;
        for _ in 0..(RANGES + 10) {
            assert_eq!(forward(&mut m, seq, 0), Some((out, 0)));
            drop(&mut m, seq + 1);
            seq += 2;
            out += 1;
        }
        assert_eq!(m.classify(0), None, "forgotten");
        // The newest remembered ranges still map.
        assert_eq!(forward(&mut m, seq - 2, 0), Some((out - 1, 0)));
        assert_eq!(forward(&mut m, seq - 40, 0), Some((out - 20, 0)));
    }

    #[test]
    fn a_new_run_advances_the_timestamp_by_elapsed_time() {
        let t0 = Instant::now();
        let mut m = RtpMunger::new(65_535, u32::MAX - 100, 90_000);
        m.start_run(500, 1_000, Some(t0));
        assert_eq!(m.map(500, 1_000, Some(t0)), Some((65_535, u32::MAX - 100)));
        let s = m.classify(501).unwrap();
        let second = (u32::MAX - 100).wrapping_add(3_000);
        assert_eq!(m.map(s.ext, 4_000, Some(t0)), Some((0, second)));
        // 50 ms later another source starts: 4,500 ticks after the last timestamp, wrapped.
        m.start_run(7, 123, Some(t0 + Duration::from_millis(50)));
        let s = m.classify(7).unwrap();
        let want = second.wrapping_add(4_500);
        assert_eq!(m.map(s.ext, 123, None), Some((1, want)));
        // No time passed (or none given): one tick.
        m.start_run(9_000, 5, None);
        let s = m.classify(9_000).unwrap();
        assert_eq!(m.map(s.ext, 5, None), Some((2, want.wrapping_add(1))));
        // A huge pause is capped so the output still moves forward.
        m.start_run(1, 1, Some(t0 + Duration::from_secs(1_000_000)));
        let s = m.classify(1).unwrap();
        let ts = m.map(s.ext, 1, None).unwrap().1;
        assert_eq!(ts.wrapping_sub(want.wrapping_add(1)), MAX_ADVANCE);
    }
}
