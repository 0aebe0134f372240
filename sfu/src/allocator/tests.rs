//! Table tests of the bandwidth allocator: the greedy fit, the hysteresis,
//! and simulated links that fail and recover. Test code only; nothing here runs in the SFU.

use std::time::{Duration, Instant};

use protocol::Layer::{self, F, H, Q};
use protocol::TrackSource;

use super::{Allocation, Allocator, AllocatorParams, Priority, VideoDemand, needed_layers};

const SCREEN: Priority = Priority::Screen;
const SPEAKER: Priority = Priority::ActiveSpeakerCamera;
const OTHER: Priority = Priority::OtherCamera;
const TICK: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A simulcast subscription (q, h, f sent, not measured yet).
fn sub(key: u64, priority: Priority, max_layer: Option<Layer>) -> VideoDemand<u64> {
    VideoDemand {
        key,
        priority,
        bitrates: [Some(0); 3],
        max_layer,
        current: None,
    }
}

/// A single-layer subscription (only f sent, not measured yet).
fn single(key: u64, priority: Priority, max_layer: Option<Layer>) -> VideoDemand<u64> {
    VideoDemand {
        bitrates: [None, None, Some(0)],
        ..sub(key, priority, max_layer)
    }
}

/// The default rate of a layer.
fn rate(layer: Option<Layer>) -> u64 {
    match layer {
        None => 0,
        Some(Q) => 150_000,
        Some(H) => 500_000,
        Some(F) => 1_500_000,
    }
}

/// An allocator with its clock and its receiver's subscriptions; the forwarders switch to each
/// target at once.
struct Rig {
    alloc: Allocator<u64>,
    now: Instant,
    demands: Vec<VideoDemand<u64>>,
    audio: u64,
}

impl Rig {
    fn new(estimate: u64, demands: Vec<VideoDemand<u64>>) -> Rig {
        let now = Instant::now();
        let mut alloc = Allocator::new(AllocatorParams::default(), now);
        alloc.on_estimate(estimate, now);
        Rig {
            alloc,
            now,
            demands,
            audio: 0,
        }
    }

    fn estimate(&mut self, bps: u64) {
        self.alloc.on_estimate(bps, self.now);
    }

    fn allocate(&mut self) -> Allocation<u64> {
        let out = self.alloc.allocate(self.audio, &self.demands, self.now);
        for (d, (key, target)) in self.demands.iter_mut().zip(&out.targets) {
            assert_eq!(d.key, *key, "targets come in input order");
            d.current = *target;
        }
        out
    }

    fn layers(&mut self) -> Vec<Option<Layer>> {
        self.allocate()
            .targets
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Allocates every 100 ms for `span`; returns how many allocations changed something.
    fn run(&mut self, span: Duration) -> usize {
        let mut changes = 0;
        for _ in 0..span.as_millis() / TICK.as_millis() {
            self.now += TICK;
            changes += usize::from(self.allocate().changed);
        }
        changes
    }

    /// The layers after 10 s at a steady estimate.
    fn settle(&mut self) -> Vec<Option<Layer>> {
        self.run(Duration::from_secs(10));
        self.layers()
    }

    fn media_bps(&self) -> u64 {
        self.demands.iter().map(|d| rate(d.current)).sum::<u64>() + self.audio
    }
}

fn three() -> Vec<VideoDemand<u64>> {
    vec![
        sub(1, SCREEN, Some(F)),
        sub(2, SPEAKER, Some(F)),
        sub(3, OTHER, Some(F)),
    ]
}

#[test]
fn steady_state_gives_lowest_layers_first_then_upgrades_in_priority_order() {
    // Upgrades fit in 85 % of the estimate. Grant order and running totals (kbps): screen q 150,
    // speaker q 300, other q 450, screen h 800, screen f 1800, speaker h 2150, other h 2500,
    // speaker f 3500, other f 4500.
    let table: [(u64, [Option<Layer>; 3]); 11] = [
        (100_000, [None, None, None]),
        (200_000, [Some(Q), None, None]),
        (400_000, [Some(Q), Some(Q), None]),
        (600_000, [Some(Q), Some(Q), Some(Q)]),
        (1_000_000, [Some(H), Some(Q), Some(Q)]),
        // Screen f does not fit; the room left goes to the speaker's h (the screen stops at h).
        (1_500_000, [Some(H), Some(H), Some(Q)]),
        (2_200_000, [Some(F), Some(Q), Some(Q)]),
        (2_600_000, [Some(F), Some(H), Some(Q)]),
        (3_000_000, [Some(F), Some(H), Some(H)]),
        (4_200_000, [Some(F), Some(F), Some(H)]),
        (5_400_000, [Some(F), Some(F), Some(F)]),
    ];
    for (estimate, want) in table {
        let mut rig = Rig::new(estimate, three());
        assert_eq!(rig.settle(), want, "estimate {estimate}");
    }
}

#[test]
fn tile_caps_are_never_exceeded_and_hidden_tiles_are_paused() {
    type Layers = [Option<Layer>; 3];
    let table: [(Layers, Layers); 4] = [
        ([None, Some(Q), Some(H)], [None, Some(Q), Some(H)]),
        ([Some(H), Some(H), Some(H)], [Some(H), Some(H), Some(H)]),
        ([Some(Q), None, Some(F)], [Some(Q), None, Some(F)]),
        ([None, None, None], [None, None, None]),
    ];
    for (caps, want) in table {
        let demands = three()
            .into_iter()
            .zip(caps)
            .map(|(d, max_layer)| VideoDemand { max_layer, ..d });
        let mut rig = Rig::new(50_000_000, demands.collect());
        assert_eq!(rig.settle(), want, "caps {caps:?}");
        let out = rig.allocate();
        assert!(!out.deficient, "at their caps: not deficient ({caps:?})");
    }
}

#[test]
fn audio_is_reserved_before_video() {
    // 85 % of 600 kbps = 510 kbps: three q layers (450) fit, but not with 100 kbps of audio.
    let mut rig = Rig::new(600_000, three());
    assert_eq!(rig.settle(), [Some(Q), Some(Q), Some(Q)]);
    let mut rig = Rig::new(600_000, three());
    rig.audio = 100_000;
    assert_eq!(rig.settle(), [Some(Q), Some(Q), None]);
}

#[test]
fn measured_rates_are_used_and_unmeasured_layers_count_with_defaults() {
    // A static scene: f measured at 400 kbps fits in 850 kbps where the 1.5 Mbps default cannot.
    let measured = VideoDemand {
        bitrates: [Some(100_000), Some(200_000), Some(400_000)],
        ..sub(1, OTHER, Some(F))
    };
    let mut rig = Rig::new(1_000_000, vec![measured]);
    assert_eq!(rig.settle(), [Some(F)]);
    let mut rig = Rig::new(1_000_000, vec![sub(1, OTHER, Some(F))]);
    assert_eq!(
        rig.settle(),
        [Some(H)],
        "defaults: f (1.5 Mbps) does not fit in 850 kbps"
    );
}

#[test]
fn a_single_layer_track_flows_while_a_third_of_it_fits() {
    // The default f is 1.5 Mbps: it keeps flowing while 500 kbps are left at its turn.
    let table: [(u64, Option<Layer>); 4] = [
        (400_000, None),
        (580_000, None),
        (600_000, Some(F)),
        (3_000_000, Some(F)),
    ];
    for (estimate, want) in table {
        let mut rig = Rig::new(estimate, vec![single(1, SCREEN, Some(F))]);
        assert_eq!(rig.settle(), [want], "estimate {estimate}");
        assert_eq!(
            rig.run(Duration::from_secs(20)),
            0,
            "no flapping at {estimate}"
        );
    }
    // A small tile of a single-layer track still gets f: there is nothing lower.
    let mut rig = Rig::new(3_000_000, vec![single(1, OTHER, Some(Q))]);
    assert_eq!(rig.settle(), [Some(F)]);
}

#[test]
fn layers_the_publisher_lacks_are_skipped() {
    let q_and_f = |max| VideoDemand {
        bitrates: [Some(0), None, Some(0)],
        ..sub(1, OTHER, max)
    };
    let h_and_f = |max| VideoDemand {
        bitrates: [None, Some(0), Some(0)],
        ..sub(1, OTHER, max)
    };
    let table: [(VideoDemand<u64>, u64, Option<Layer>); 5] = [
        (q_and_f(Some(H)), 50_000_000, Some(Q)),
        (q_and_f(Some(F)), 1_000_000, Some(Q)),
        (q_and_f(Some(F)), 2_000_000, Some(F)),
        (h_and_f(Some(F)), 700_000, Some(H)),
        // Nothing at or below the cap: the lowest layer sent.
        (h_and_f(Some(Q)), 50_000_000, Some(H)),
    ];
    for (demand, estimate, want) in table {
        let mut rig = Rig::new(estimate, vec![demand]);
        assert_eq!(rig.settle(), [want], "{:?} at {estimate}", demand.bitrates);
    }
}

#[test]
fn a_layer_that_stops_arriving_is_replaced_at_once() {
    let mut rig = Rig::new(50_000_000, three());
    assert_eq!(rig.settle(), [Some(F); 3]);
    rig.demands[1].bitrates[F.index()] = None;
    rig.now += TICK;
    assert_eq!(rig.layers(), [Some(F), Some(H), Some(F)]);
    rig.demands[1].bitrates = [None; 3];
    assert_eq!(rig.layers(), [Some(F), None, Some(F)]);
}

#[test]
fn downgrades_are_immediate_and_fit_the_estimate() {
    let mut rig = Rig::new(5_400_000, three());
    assert_eq!(rig.settle(), [Some(F); 3]);
    // 95 % of 2.6 Mbps = 2.47 Mbps: screen f, speaker h and other q (2.15 Mbps) are kept.
    rig.now += ms(10);
    rig.estimate(2_600_000);
    assert_eq!(rig.layers(), [Some(F), Some(H), Some(Q)]);
    assert!(rig.media_bps() <= 2_470_000);
    rig.estimate(300_000);
    assert_eq!(rig.layers(), [Some(Q), None, None]);
}

#[test]
fn upgrades_wait_for_a_held_estimate_and_the_interval() {
    let mut rig = Rig::new(1_000_000, three());
    assert_eq!(rig.settle(), [Some(H), Some(Q), Some(Q)]);
    rig.estimate(5_400_000);
    let start = rig.now;
    while rig.layers() != [Some(F); 3] {
        assert!(
            rig.now - start <= ms(1000),
            "upgraded within the hold window"
        );
        rig.now += TICK;
        rig.estimate(5_400_000);
    }
    assert!(
        rig.now - start >= ms(500),
        "a spike of the estimate upgrades nothing"
    );

    // A drop is followed at once; it undid the upgrade just made (the link could not carry it),
    // so the next try waits twice the 1.5 s interval.
    rig.now += TICK;
    rig.estimate(1_000_000);
    assert_eq!(rig.layers(), [Some(H), Some(Q), Some(Q)]);
    let dropped = rig.now;
    rig.now += TICK;
    rig.estimate(5_400_000);
    while rig.layers() != [Some(F); 3] {
        assert!(rig.now - dropped <= ms(3500), "upgraded again within 3.5 s");
        rig.now += TICK;
        rig.estimate(5_400_000);
    }
    assert!(
        rig.now - dropped >= ms(3000),
        "upgraded {:?} after a downgrade",
        rig.now - dropped
    );
}

#[test]
fn upgrades_are_at_least_1_5_s_apart() {
    let mut rig = Rig::new(1_000_000, three());
    assert_eq!(rig.settle(), [Some(H), Some(Q), Some(Q)]);
    rig.estimate(2_600_000);
    while rig.layers() == [Some(H), Some(Q), Some(Q)] {
        rig.now += TICK;
        rig.estimate(2_600_000);
    }
    assert_eq!(rig.layers(), [Some(F), Some(H), Some(Q)]);
    let first = rig.now;
    rig.estimate(5_400_000);
    while rig.layers() != [Some(F); 3] {
        assert!(rig.now - first <= ms(2000), "upgraded again within 2 s");
        rig.now += TICK;
        rig.estimate(5_400_000);
    }
    assert!(
        rig.now - first >= ms(1500),
        "upgraded again after {:?}",
        rig.now - first
    );
}

/// A deterministic noise source (a linear congruential generator) in `-spread..=spread`.
fn noise(seed: &mut u64, spread: u64) -> i64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((*seed >> 33) % (2 * spread + 1)) as i64 - spread as i64
}

#[test]
fn a_noisy_estimate_does_not_make_layers_flap() {
    // Around 2.6 Mbps the kept layers need 2.26 Mbps (at 95 %) and the next upgrade 2.94 Mbps (at
    // 85 %): +-4 % of noise moves nothing. Around 2.3 Mbps the noise crosses the downgrade line:
    // one downgrade, then nothing, since the upgrade back needs 2.53 Mbps.
    for (centre, most) in [(2_600_000u64, 0), (2_300_000, 1)] {
        let mut rig = Rig::new(centre, three());
        rig.settle();
        let mut seed = centre;
        let mut changes = 0;
        for _ in 0..300 {
            rig.now += TICK;
            rig.estimate(centre.saturating_add_signed(noise(&mut seed, centre / 25)));
            changes += usize::from(rig.allocate().changed);
        }
        assert!(changes <= most, "{changes} changes in 30 s around {centre}");
    }
}

#[test]
fn a_new_or_newly_visible_tile_starts_at_once() {
    let mut rig = Rig::new(3_000_000, vec![sub(1, OTHER, Some(H))]);
    assert_eq!(rig.settle(), [Some(H)]);
    rig.now += TICK;
    rig.demands.push(sub(2, OTHER, Some(H)));
    assert_eq!(
        rig.layers(),
        [Some(H), Some(H)],
        "no wait for the upgrade interval"
    );
    rig.demands[1].max_layer = None;
    rig.now += TICK;
    assert_eq!(rig.layers(), [Some(H), None]);
    rig.demands[1].max_layer = Some(Q);
    rig.now += TICK;
    assert_eq!(rig.layers(), [Some(H), Some(Q)]);
}

#[test]
fn a_new_screen_share_takes_bandwidth_from_cameras() {
    // 85 % of 2.6 Mbps = 2.21 Mbps: both cameras at h and f (2 Mbps) ...
    let cams = vec![sub(2, SPEAKER, Some(F)), sub(3, OTHER, Some(F))];
    let mut rig = Rig::new(2_600_000, cams);
    assert_eq!(rig.settle(), [Some(F), Some(H)]);
    // ... until a screen is shared: it goes to f before any camera leaves q.
    rig.demands.insert(0, sub(1, SCREEN, Some(F)));
    rig.now += TICK;
    assert_eq!(rig.layers(), [Some(F), Some(H), Some(Q)]);
    assert_eq!(rig.run(Duration::from_secs(20)), 0, "and it stays so");
}

#[test]
fn deficiency_means_below_the_cap_for_lack_of_bandwidth() {
    let table: [(u64, [Option<Layer>; 3], bool); 5] = [
        (50_000_000, [Some(F), Some(F), Some(F)], false),
        (1_000_000, [Some(F), Some(F), Some(F)], true),
        (1_000_000, [Some(Q), Some(Q), Some(Q)], false),
        (1_000_000, [None, None, Some(H)], false),
        (100_000, [None, None, Some(Q)], true),
    ];
    for (estimate, caps, want) in table {
        let demands = three()
            .into_iter()
            .zip(caps)
            .map(|(d, max_layer)| VideoDemand { max_layer, ..d });
        let mut rig = Rig::new(estimate, demands.collect());
        rig.settle();
        assert_eq!(
            rig.allocate().deficient,
            want,
            "{estimate} with caps {caps:?}"
        );
    }
}

#[test]
fn changed_reports_new_removed_and_moved_subscriptions() {
    let mut rig = Rig::new(50_000_000, vec![sub(1, OTHER, Some(H))]);
    assert!(rig.allocate().changed, "first allocation");
    assert!(!rig.allocate().changed, "same again");
    rig.demands.push(sub(2, OTHER, None));
    assert!(rig.allocate().changed, "a new (paused) subscription");
    assert!(!rig.allocate().changed);
    rig.demands[0].max_layer = Some(Q);
    assert!(rig.allocate().changed, "a lower cap");
    rig.demands.remove(0);
    assert!(rig.allocate().changed, "a removed subscription");
    assert!(!rig.allocate().changed);
}

#[test]
fn needed_layers_are_every_receivers_target_and_the_lowest_as_their_fallback() {
    let table: [(&[Option<Layer>], [bool; 3]); 6] = [
        (&[], [false; 3]),
        (&[None, None], [false; 3]),
        (&[Some(H)], [true, true, false]),
        (&[Some(Q), None], [true, false, false]),
        (&[Some(Q), Some(F), None], [true, false, true]),
        (&[Some(F), Some(H), Some(Q), Some(H)], [true; 3]),
    ];
    for (targets, want) in table {
        assert_eq!(needed_layers(targets.iter().copied()), want, "{targets:?}");
    }
}

#[test]
fn priority_follows_the_source_and_speaking() {
    assert_eq!(Priority::of(TrackSource::Screen, false), SCREEN);
    assert_eq!(Priority::of(TrackSource::Camera, true), SPEAKER);
    assert_eq!(Priority::of(TrackSource::Camera, false), OTHER);
    assert!(SCREEN > SPEAKER && SPEAKER > OTHER);
}

#[test]
fn absurd_inputs_neither_panic_nor_exceed_caps() {
    let huge = VideoDemand {
        bitrates: [Some(u64::MAX); 3],
        ..sub(1, SCREEN, Some(F))
    };
    let duplicate = sub(2, OTHER, Some(Q));
    for estimate in [0, 1, u64::MAX] {
        for audio in [0, u64::MAX] {
            let mut rig = Rig::new(
                estimate,
                vec![huge, duplicate, duplicate, single(3, OTHER, None)],
            );
            rig.audio = audio;
            rig.settle();
            let out = rig.allocate();
            assert!(
                out.targets[1].1 <= Some(Q) && out.targets[3].1.is_none(),
                "{out:?}"
            );
            // Time going backwards is taken as no time passing.
            rig.now -= Duration::from_secs(5);
            rig.estimate(estimate / 2);
            rig.allocate();
        }
    }
    let mut rig = Rig::new(1_000_000, Vec::new());
    let out = rig.allocate();
    assert!(out.targets.is_empty() && !out.deficient);
}

/// A downlink for the simulations, as `downlink_estimator.rs` behaves: sending more than the
/// capacity brings the estimate down to 90 % of the capacity; otherwise it climbs 5 % a step
/// (about 50 % a second), up to three times what is sent plus 1 Mbit/s.
struct Link {
    capacity: u64,
    estimate: u64,
}

impl Link {
    fn carry(&mut self, sent: u64) {
        self.estimate = if sent > self.capacity {
            self.estimate.min(self.capacity / 10 * 9)
        } else {
            let ceiling = sent.saturating_mul(3).saturating_add(1_000_000);
            (self.estimate / 20 * 21).min(ceiling.max(self.estimate))
        };
    }
}

/// One 100 ms step of a receiver on `link`: media goes out, the estimate follows.
fn step(rig: &mut Rig, link: &mut Link) {
    rig.now += TICK;
    link.carry(rig.media_bps());
    rig.estimate(link.estimate);
    rig.allocate();
}

#[test]
fn recovered_link_climbs_back_to_full_within_12s() {
    for offset in [0, 300, 700, 1100, 1500, 1900, 2300, 2700] {
        let mut link = Link {
            capacity: 600_000,
            estimate: 1_000_000,
        };
        let mut rig = Rig::new(1_000_000, three());
        rig.audio = 40_000;
        for _ in 0..(20_000 + offset) / 100 {
            step(&mut rig, &mut link);
        }
        link.capacity = 20_000_000;
        let recovered = rig.now;
        while rig.layers() != [Some(F); 3] {
            assert!(
                rig.now - recovered <= Duration::from_secs(12),
                "offset {offset}: {:?}",
                rig.layers()
            );
            step(&mut rig, &mut link);
        }
    }
}

#[test]
fn congested_link_is_relieved_at_the_next_allocation() {
    let mut link = Link {
        capacity: 20_000_000,
        estimate: 6_000_000,
    };
    let mut rig = Rig::new(6_000_000, three());
    rig.audio = 40_000;
    assert_eq!(rig.settle(), [Some(F); 3]);
    link.capacity = 1_000_000;
    step(&mut rig, &mut link);
    assert_eq!(rig.layers(), [Some(H), Some(Q), Some(Q)]);
    // Each upgrade tests the link: an overshoot is allowed, relieved at the next allocation,
    // and rare (upgrades wait for the estimate to climb back).
    let mut over = 0;
    for _ in 0..300 {
        step(&mut rig, &mut link);
        if rig.media_bps() > link.capacity {
            over += 1;
            step(&mut rig, &mut link);
            assert!(
                rig.media_bps() <= link.capacity,
                "an overshoot was not relieved: {}",
                rig.media_bps()
            );
        }
    }
    assert!(over <= 30, "{over} overshoots in 30 s");
}
