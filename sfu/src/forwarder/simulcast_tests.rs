//! Table tests for the simulcast side of the forwarder: a simulated three-layer VP8 publisher,
//! layer switches with continuous sequence numbers, timestamps and picture ids, pause and
//! resume, padding, temporal layers, reordering, wraps, malformed payloads and other codecs.

use std::time::Duration;

use super::*;

const FRAME: Duration = Duration::from_millis(40);
/// 40 ms at 90 kHz.
const TICKS: u32 = 3_600;

/// One simulcast layer of the simulated publisher.
#[derive(Debug, Clone)]
struct Layer {
    ssrc: u32,
    seq: u16,
    ts: u32,
    pid: u16,
    long_pid: bool,
    tl0: u8,
    keyidx: u8,
    frame: u32,
}

#[derive(Debug, Clone)]
struct Packet {
    layer: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    key: bool,
    padding: bool,
    marker: bool,
    payload: Vec<u8>,
}

/// What the subscriber got, read back from the rewritten payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Got {
    layer: u8,
    seq: u16,
    ts: u32,
    pid: Option<u16>,
    tl0: Option<u8>,
    tid: Option<u8>,
    keyidx: Option<u8>,
    frame_start: bool,
    key: bool,
}

struct Sim {
    layers: Vec<Layer>,
    fwd: Forwarder,
    now: Instant,
    got: Vec<Got>,
    needs: Vec<u8>,
    drops: Vec<DropReason>,
    /// Forwarded packets whose payload had to be rewritten.
    rewritten: usize,
}

/// Publisher bases per layer: unrelated numbering, some of it about to wrap.
const BASES: [(u16, u32, u16, u8, u8); 3] = [
    (100, 1_000, 10, 5, 1),
    (30_000, 2_000_000_000, 20_000, 100, 20),
    (65_530, u32::MAX - 5_000, 32_760, 250, 30),
];

impl Sim {
    fn new(codec: VideoCodec, target: Option<u8>, long_pid: bool) -> Sim {
        let layers = BASES
            .iter()
            .enumerate()
            .map(|(i, &(seq, ts, pid, tl0, keyidx))| Layer {
                ssrc: 1_000 + i as u32,
                seq,
                ts,
                pid: if long_pid { pid } else { pid & 0x7f },
                long_pid,
                tl0,
                keyidx,
                frame: 0,
            })
            .collect();
        let fwd = Forwarder::with_params(ForwarderParams {
            codec: Some(codec),
            first_seq: 65_534,
            first_ts: u32::MAX - 1_000,
            clock_rate: 90_000,
            target_layer: target,
        });
        Sim {
            layers,
            fwd,
            now: Instant::now(),
            got: Vec::new(),
            needs: Vec::new(),
            drops: Vec::new(),
            rewritten: 0,
        }
    }

    /// The packets of the next frame of `layer`: temporal pattern TL0 TL2 TL1 TL2 from each
    /// keyframe on, with layer sync on the first TL2 and TL1 after a TL0.
    fn frame(&mut self, layer: u8, key: bool, packets: usize) -> Vec<Packet> {
        let l = &mut self.layers[usize::from(layer)];
        if key {
            l.frame = 0;
            l.keyidx = (l.keyidx + 1) & 0x1f;
        }
        let tid = [0, 2, 1, 2][(l.frame % 4) as usize];
        let sync = matches!(l.frame % 4, 1 | 2);
        if tid == 0 {
            l.tl0 = l.tl0.wrapping_add(1);
        }
        l.pid = (l.pid + 1) & if l.long_pid { 0x7fff } else { 0x7f };
        l.ts = l.ts.wrapping_add(TICKS);
        l.frame += 1;
        (0..packets)
            .map(|k| {
                l.seq = l.seq.wrapping_add(1);
                Packet {
                    layer,
                    ssrc: l.ssrc,
                    seq: l.seq,
                    ts: l.ts,
                    key: key && k == 0,
                    padding: false,
                    marker: k + 1 == packets,
                    payload: vp8_payload(l, tid, sync, k == 0, key),
                }
            })
            .collect()
    }

    /// A padding-only packet of `layer` (next sequence number, no payload).
    fn padding(&mut self, layer: u8) -> Packet {
        let l = &mut self.layers[usize::from(layer)];
        l.seq = l.seq.wrapping_add(1);
        Packet {
            layer,
            ssrc: l.ssrc,
            seq: l.seq,
            ts: l.ts,
            key: false,
            padding: true,
            marker: false,
            payload: Vec::new(),
        }
    }

    fn send(&mut self, p: &Packet) -> LayerDecision {
        let input = LayerPacket {
            layer: p.layer,
            ssrc: p.ssrc,
            sequence_number: p.seq,
            timestamp: p.ts,
            keyframe_start: p.key,
            padding_only: p.padding,
            marker: p.marker,
            payload: &p.payload,
        };
        let decision = self.fwd.forward_layer(&input, self.now);
        match decision {
            LayerDecision::Forward {
                sequence_number,
                timestamp,
                vp8,
            } => {
                let mut payload = p.payload.clone();
                if let Some(rewrite) = vp8 {
                    self.rewritten += 1;
                    rewrite
                        .apply(&mut payload)
                        .expect("a rewrite fits its packet");
                    assert_eq!(payload.len(), p.payload.len());
                }
                let d = Vp8Descriptor::parse(&payload).unwrap_or_default();
                self.got.push(Got {
                    layer: p.layer,
                    seq: sequence_number,
                    ts: timestamp,
                    pid: d.picture_id.map(|i| i.value),
                    tl0: d.tl0picidx,
                    tid: d.temporal_id,
                    keyidx: d.keyidx,
                    frame_start: d.start_of_partition,
                    key: p.key,
                });
            }
            LayerDecision::Drop(reason) => self.drops.push(reason),
            LayerDecision::NeedKeyframe { layer } => self.needs.push(layer),
        }
        decision
    }

    /// One frame interval: every layer sends a two-packet frame, a keyframe where `keys` says.
    fn step(&mut self, keys: [bool; 3]) {
        self.now += FRAME;
        for layer in 0..3u8 {
            for p in self.frame(layer, keys[usize::from(layer)], 2) {
                self.send(&p);
            }
        }
    }

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step([false; 3]);
        }
    }

    fn last(&self) -> Got {
        *self.got.last().expect("something was forwarded")
    }
}

fn vp8_payload(l: &Layer, tid: u8, sync: bool, start: bool, key: bool) -> Vec<u8> {
    let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0xf0];
    if l.long_pid {
        p.extend((0x8000 | l.pid).to_be_bytes());
    } else {
        p.push(l.pid as u8);
    }
    p.push(l.tl0);
    p.push((tid << 6) | (u8::from(sync) << 5) | l.keyidx);
    p.push(u8::from(!key)); // frame tag: P bit clear on keyframes
    p
}

/// The subscriber's view is one continuous stream: sequence numbers one apart, timestamps never
/// going back, picture ids +1 per picture, TL0PICIDX +1 per base-layer picture, KEYIDX +1 per
/// keyframe. `vp8` false checks sequence numbers and timestamps only.
fn assert_continuous(got: &[Got], vp8: bool, pid_mask: u16) {
    for (i, w) in got.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let at = format!("output {} -> {}: {a:?} {b:?}", i, i + 1);
        assert_eq!(b.seq, a.seq.wrapping_add(1), "{at}");
        assert!(b.ts.wrapping_sub(a.ts) as i32 >= 0, "{at}");
        if !vp8 {
            continue;
        }
        let step = u16::from(b.frame_start);
        assert_eq!(
            b.pid,
            a.pid.map(|p| p.wrapping_add(step) & pid_mask),
            "{at}"
        );
        assert_eq!(b.ts != a.ts, b.frame_start, "{at}");
        let tl0 = u8::from(b.frame_start && b.tid == Some(0));
        assert_eq!(b.tl0, a.tl0.map(|t| t.wrapping_add(tl0)), "{at}");
        let key = u8::from(b.key);
        assert_eq!(
            b.keyidx,
            a.keyidx.map(|k| k.wrapping_add(key) & 0x1f),
            "{at}"
        );
    }
}

#[test]
fn up_and_down_switches_are_seamless() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.step([false, false, true]);
    assert!(s.got.is_empty() && s.needs.iter().all(|&l| l == 0));
    s.step([true, false, false]);
    assert_eq!(s.fwd.current_layer(), Some(0));
    assert_eq!(
        s.got[0].seq, 65_534,
        "the first packet gets the first number"
    );
    s.steps(3);
    // Up to 2: layer 0 keeps flowing, layer 2's delta frames ask for a keyframe on 2.
    s.fwd.set_target_layer(Some(2));
    assert_eq!(s.fwd.wanted_keyframe(), Some(2));
    s.needs.clear();
    s.steps(2);
    assert_eq!(s.fwd.current_layer(), Some(0));
    assert!(!s.needs.is_empty() && s.needs.iter().all(|&l| l == 2));
    let before = s.last();
    s.step([false, false, true]);
    assert_eq!(s.fwd.current_layer(), Some(2));
    assert_eq!(s.fwd.wanted_keyframe(), None);
    let switched = s.got[s.got.iter().position(|g| g.layer == 2).unwrap()];
    // Layer 0's frame went out at the same instant: one tick later.
    assert_eq!(switched.ts, before.ts.wrapping_add(TICKS + 1));
    s.steps(5);
    // Down to 0: layer 2 flows until layer 0's keyframe.
    s.fwd.set_target_layer(Some(0));
    s.steps(2);
    assert_eq!(s.fwd.current_layer(), Some(2));
    let before = s.last();
    s.step([true, false, false]);
    assert_eq!(s.fwd.current_layer(), Some(0));
    let first_down = s.got.iter().rposition(|g| g.layer == 2).unwrap() + 1;
    assert_eq!(
        s.got[first_down].ts,
        before.ts.wrapping_add(TICKS),
        "40 ms later"
    );
    s.steps(5);
    assert_continuous(&s.got, true, 0x7fff);
    assert!(s.got.len() > 40);
}

#[test]
fn a_first_keyframe_of_a_layer_in_between_switches_first() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.step([true, false, false]);
    s.fwd.set_target_layer(Some(2));
    s.step([false, true, false]);
    assert_eq!(s.fwd.current_layer(), Some(1));
    assert_eq!(s.fwd.wanted_keyframe(), Some(2));
    s.steps(2);
    s.step([false, false, true]);
    assert_eq!(s.fwd.current_layer(), Some(2));
    // Starting (or resuming) takes the first keyframe of any layer up to the target.
    let mut t = Sim::new(VideoCodec::Vp8, Some(1), true);
    t.step([false, false, true]);
    assert_eq!(t.fwd.current_layer(), None);
    t.step([true, false, false]);
    assert_eq!(t.fwd.current_layer(), Some(0));
    s.steps(2);
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn pause_stops_at_once_and_resume_waits_for_a_keyframe() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(1), true);
    s.step([false, true, false]);
    s.steps(3);
    let before = s.last();
    let sent = s.got.len();
    s.fwd.set_target_layer(None);
    s.drops.clear();
    s.steps(50);
    assert_eq!(s.got.len(), sent, "nothing forwarded while paused");
    assert!(s.drops.iter().all(|&d| d == DropReason::Paused) && s.drops.len() == 300);
    assert_eq!(
        (s.fwd.current_layer(), s.fwd.wanted_keyframe()),
        (None, None)
    );
    s.fwd.set_target_layer(Some(1));
    s.needs.clear();
    s.steps(1);
    assert_eq!(s.got.len(), sent, "resuming waits for a keyframe");
    assert!(!s.needs.is_empty() && s.needs.iter().all(|&l| l == 1));
    s.step([false, true, false]);
    let resumed = s.got[sent];
    assert_eq!(resumed.layer, 1);
    assert_eq!(resumed.seq, before.seq.wrapping_add(1));
    // 52 frame intervals (2.08 s) since the last forwarded packet.
    assert_eq!(resumed.ts, before.ts.wrapping_add(52 * TICKS));
    s.steps(3);
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn padding_leaves_no_gap_and_late_packets_keep_their_numbers() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.step([true, false, false]);
    let frame = s.frame(0, false, 3);
    s.send(&frame[0]);
    // frame[1] is late; frame[2], then three padding packets, then the next frame.
    s.send(&frame[2]);
    for _ in 0..3 {
        let pad = s.padding(0);
        assert_eq!(s.send(&pad), LayerDecision::Drop(DropReason::Padding));
    }
    let next = s.frame(0, false, 2);
    for p in &next {
        s.send(p);
    }
    let first = s.got[2].seq;
    let seqs: Vec<u16> = s.got[2..].iter().map(|g| g.seq).collect();
    let want: Vec<u16> = [0, 2, 3, 4]
        .iter()
        .map(|&d| first.wrapping_add(d))
        .collect();
    assert_eq!(seqs, want, "the padding left no gap");
    // The late packet fills its slot; a retransmission of an earlier one gets its old number.
    s.send(&frame[1]);
    assert_eq!(s.last().seq, first.wrapping_add(1));
    s.send(&frame[0]);
    assert_eq!(s.last().seq, first);
    // A late copy of a dropped padding packet is stale, not renumbered.
    let mut pad = s.padding(0);
    pad.seq = pad.seq.wrapping_sub(3);
    assert_eq!(s.send(&pad), LayerDecision::Drop(DropReason::Stale));
    s.layers[0].seq = s.layers[0].seq.wrapping_sub(1); // that number was never really used
    let mut got: Vec<Got> = s.got.clone();
    got.truncate(got.len() - 2);
    got.insert(3, s.got[s.got.len() - 2]);
    s.got = got;
    s.steps(2);
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn dropped_temporal_layers_leave_no_sequence_or_picture_id_gap() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.fwd.set_max_temporal_layer(Some(0));
    s.step([true, false, false]);
    s.steps(8);
    assert!(s.got.iter().all(|g| g.tid == Some(0)));
    assert!(s.drops.contains(&DropReason::TemporalLayer));
    // Switching with the cap on keeps it on the new layer.
    s.fwd.set_target_layer(Some(2));
    s.step([false, false, true]);
    s.steps(6);
    assert_eq!(s.fwd.current_layer(), Some(2));
    assert!(s.got.iter().all(|g| g.tid == Some(0)));
    // Raising the cap lets TL1 in from its layer-sync picture on, then TL2 from its own.
    s.fwd.set_max_temporal_layer(Some(2));
    s.steps(8);
    let tids: Vec<u8> = s.got.iter().filter_map(|g| g.tid).collect();
    assert!(tids.contains(&1) && tids.contains(&2));
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn reordering_around_a_switch() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.step([true, false, false]);
    s.steps(2);
    s.fwd.set_target_layer(Some(1));
    s.now += FRAME;
    let old = s.frame(0, false, 2);
    let before = s.frame(1, false, 2);
    let key = s.frame(1, true, 3);
    let sent = s.got.len();
    // The keyframe's packets arrive 0, 2, 1: the switch happens on the first.
    s.send(&key[0]);
    s.send(&key[2]);
    s.send(&key[1]);
    let seqs: Vec<u16> = s.got[sent..].iter().map(|g| g.seq).collect();
    let base = s.got[sent - 1].seq;
    assert_eq!(seqs, [1, 3, 2].map(|d| base.wrapping_add(d)));
    // Old-layer stragglers and new-layer packets from before the keyframe are not mixed in.
    for p in &old {
        assert_eq!(s.send(p), LayerDecision::Drop(DropReason::OtherLayer));
    }
    for p in &before {
        assert_eq!(s.send(p), LayerDecision::Drop(DropReason::Stale));
    }
    s.got.swap(sent + 1, sent + 2);
    s.steps(3);
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn wraps_of_every_counter_across_switches() {
    // Layer 2 starts at seq 65,530, ts near u32::MAX, picture id 32,760, TL0PICIDX 250,
    // KEYIDX 30; the output starts at seq 65,534 and ts u32::MAX - 1,000.
    let mut s = Sim::new(VideoCodec::Vp8, Some(2), true);
    s.step([false, false, true]);
    s.steps(12);
    s.fwd.set_target_layer(Some(0));
    s.step([true, false, false]);
    s.steps(2);
    s.fwd.set_target_layer(Some(2));
    s.step([false, false, true]);
    s.steps(2);
    let pids: Vec<u16> = s.got.iter().filter_map(|g| g.pid).collect();
    assert!(pids.contains(&32_767) && pids.contains(&0));
    assert!(s.got.iter().any(|g| g.seq == 0) && s.got.iter().any(|g| g.ts < 1_000_000));
    assert!(s.got.iter().any(|g| g.tl0 == Some(0)) && s.got.iter().any(|g| g.keyidx == Some(0)));
    assert_continuous(&s.got, true, 0x7fff);
}

#[test]
fn seven_bit_picture_ids_map_modulo_128() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(1), false);
    s.step([false, true, false]);
    s.steps(140);
    s.fwd.set_target_layer(Some(0));
    s.step([true, false, false]);
    s.steps(3);
    assert!(s.got.iter().all(|g| g.pid.is_some_and(|p| p < 128)));
    assert_continuous(&s.got, true, 0x7f);
}

#[test]
fn malformed_vp8_payloads_go_out_untouched_and_nothing_panics() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.step([true, false, false]);
    let mut bad = s.frame(0, false, 1).remove(0);
    bad.payload.truncate(3);
    let d = s.send(&bad);
    assert!(
        matches!(d, LayerDecision::Forward { vp8: None, .. }),
        "{d:?}"
    );
    let mut empty = s.frame(0, false, 1).remove(0);
    empty.payload.clear();
    assert!(matches!(
        s.send(&empty),
        LayerDecision::Forward { vp8: None, .. }
    ));
    let seqs: Vec<u16> = s.got.iter().map(|g| g.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    // Garbage of every kind: random layers, flags, numbers and payload bytes.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u32 {
        let r = next();
        let len = (r % 9) as usize;
        let payload = next().to_be_bytes()[..len].to_vec();
        let p = Packet {
            layer: (r >> 8) as u8 % 4,
            ssrc: 1_000 + (r >> 16) as u32 % 4,
            seq: (r >> 24) as u16,
            ts: (r >> 32) as u32,
            key: r & 1 == 0,
            padding: r & 6 == 0,
            marker: r & 8 == 0,
            payload,
        };
        if r & 0x30 == 0 {
            // Probes interleaved anywhere: never a panic, never a number taken twice.
            let _ = s.fwd.padding();
        }
        if i % 1_000 == 0 {
            s.fwd
                .set_target_layer([None, Some(0), Some(2)][(r % 3) as usize]);
            s.fwd
                .set_max_temporal_layer([None, Some(0)][(r % 2) as usize]);
        }
        s.now += Duration::from_millis(r % 50);
        s.send(&p);
    }
}

#[test]
fn h264_and_vp9_switch_without_payload_rewrites() {
    for codec in [VideoCodec::H264, VideoCodec::Vp9] {
        let mut s = Sim::new(codec, Some(0), true);
        s.step([true, false, false]);
        s.steps(3);
        s.fwd.set_target_layer(Some(2));
        s.step([false, false, true]);
        s.steps(3);
        s.fwd.set_max_temporal_layer(Some(0));
        s.fwd.set_target_layer(Some(1));
        s.step([false, true, false]);
        s.steps(3);
        assert_eq!(s.fwd.current_layer(), Some(1), "{codec:?}");
        // The VP8-looking payloads were never rewritten nor filtered by temporal layer.
        assert!(s.got.iter().any(|g| g.tid == Some(2)), "{codec:?}");
        assert_eq!(s.rewritten, 0, "{codec:?}");
        assert_continuous(&s.got, false, 0);
    }
}

#[test]
fn the_first_run_passes_the_publishers_vp8_values_without_a_copy() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), true);
    s.now += FRAME;
    for p in s.frame(0, true, 2) {
        assert!(matches!(
            s.send(&p),
            LayerDecision::Forward { vp8: None, .. }
        ));
    }
    s.fwd.set_target_layer(Some(1));
    s.now += FRAME;
    let key = s.frame(1, true, 1).remove(0);
    assert!(matches!(
        s.send(&key),
        LayerDecision::Forward { vp8: Some(_), .. }
    ));
}

#[test]
fn probe_padding_goes_between_frames_and_the_numbers_stay_continuous() {
    let mut s = Sim::new(VideoCodec::Vp8, Some(0), false);
    assert_eq!(s.fwd.padding(), None, "nothing forwarded yet");
    s.step([true, false, false]);
    let mut seqs: Vec<u16> = s.got.iter().map(|g| g.seq).collect();
    // Between two frames: three paddings in a row, at the last frame's timestamp.
    for _ in 0..3 {
        let (seq, ts) = s.fwd.padding().expect("room for padding after a frame");
        assert_eq!(ts, s.last().ts);
        seqs.push(seq);
    }
    // Mid-frame: none.
    let frame = s.frame(0, false, 3);
    s.send(&frame[0]);
    seqs.push(s.last().seq);
    assert_eq!(s.fwd.padding(), None, "padding inside a frame");
    for p in &frame[1..] {
        s.send(p);
        seqs.push(s.last().seq);
    }
    assert!(s.fwd.padding().is_some());
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{seqs:?}");
    }
    // Paused: none.
    s.fwd.set_target_layer(None);
    s.step([false; 3]);
    assert_eq!(s.fwd.padding(), None, "padding while paused");
}
