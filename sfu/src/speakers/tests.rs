//! Table tests of active speaker detection, fed with simulated packet streams: speech, Chromium's
//! fake microphone, muted tracks, noise and clicks. Test code only; nothing here runs in the SFU.

use std::time::{Duration, Instant};

use super::{SpeakerParams, Speakers};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one participant sends in the packet at time `t`: (RFC 6464 value, voice-activity bit).
type Source = fn(Duration) -> (u8, bool);

fn silent(_: Duration) -> (u8, bool) {
    (127, false)
}

/// Chromium mutes by sending digital silence; some stacks still set the bit.
fn muted_with_bit(_: Duration) -> (u8, bool) {
    (127, true)
}

fn room_noise(_: Duration) -> (u8, bool) {
    (60, true)
}

fn loud_hum_without_bit(_: Duration) -> (u8, bool) {
    (45, false)
}

/// One loud packet at 1 s, the rest silence.
fn click(t: Duration) -> (u8, bool) {
    if t == ms(1000) {
        (10, true)
    } else {
        (127, false)
    }
}

/// Talking from 1 s to 3 s, with the level wandering between -25 and -35 dBov.
fn talk_1s_to_3s(t: Duration) -> (u8, bool) {
    let ms = t.as_millis() as u64;
    if (1000..3000).contains(&ms) {
        (25 + (ms / 20 % 11) as u8, true)
    } else {
        (127, false)
    }
}

/// Chromium's fake microphone: a 20 ms beep (a loud square wave, no voice bit) every `period` ms,
/// digital silence in between; `wide` beeps straddle two packets.
fn beeper(t: Duration, period: u64, wide: bool) -> (u8, bool) {
    let phase = t.as_millis() as u64 % period;
    if phase < 20 || (wide && phase < 40) {
        (6, false)
    } else {
        (127, false)
    }
}

fn beep_500(t: Duration) -> (u8, bool) {
    beeper(t, 500, false)
}

fn beep_510_wide(t: Duration) -> (u8, bool) {
    beeper(t, 510, true)
}

/// Feeds one 20 ms packet per participant and ticks every `tick`, for `span`; returns every list
/// the detector reported, with its time.
fn simulate(
    sources: &[(u64, Source)],
    span: Duration,
    tick: Duration,
) -> Vec<(Duration, Vec<u64>)> {
    let t0 = Instant::now();
    let mut speakers = Speakers::new(SpeakerParams::default());
    let mut reports = Vec::new();
    let mut t = Duration::ZERO;
    while t <= span {
        if t.as_millis().is_multiple_of(20) {
            for &(key, source) in sources {
                let (level, voice) = source(t);
                speakers.observe(key, level, voice, t0 + t);
            }
        }
        if t.as_millis().is_multiple_of(tick.as_millis())
            && let Some(list) = speakers.tick(t0 + t)
        {
            assert_eq!(speakers.current(), list.as_slice());
            reports.push((t, list.into_iter().map(|(k, _)| k).collect()));
        }
        t += ms(10);
    }
    reports
}

#[test]
fn speech_is_detected_within_300ms_and_dropped_after_the_hangover() {
    for tick in [ms(50), ms(100)] {
        let reports = simulate(&[(7, talk_1s_to_3s), (8, silent)], ms(5000), tick);
        assert_eq!(reports.len(), 2, "{reports:?}");
        let (start, ref list) = reports[0];
        assert_eq!(list, &[7]);
        assert!(
            start >= ms(1000) && start <= ms(1300),
            "detected at {start:?}"
        );
        let (stop, ref list) = reports[1];
        assert!(list.is_empty());
        // The last loud packet is at 2980 ms: 700 ms of hangover, plus up to one tick.
        assert!(
            stop >= ms(3600) && stop <= ms(3780) + tick,
            "dropped at {stop:?}"
        );
    }
}

#[test]
fn chromiums_fake_microphone_is_a_steady_speaker() {
    for source in [beep_500 as Source, beep_510_wide] {
        let reports = simulate(&[(1, source), (2, muted_with_bit)], ms(10_000), ms(100));
        assert_eq!(
            reports.len(),
            1,
            "joined once, never flickered: {reports:?}"
        );
        let (start, ref list) = reports[0];
        assert_eq!(list, &[1]);
        assert!(start <= ms(1100), "detected at {start:?}");
    }
}

#[test]
fn silence_muted_tracks_noise_and_clicks_never_speak() {
    let table: [(&str, Source); 5] = [
        ("silent", silent),
        ("muted with the voice bit", muted_with_bit),
        ("room noise at -60 dBov", room_noise),
        ("-45 dBov without the voice bit", loud_hum_without_bit),
        ("a lone click", click),
    ];
    for (name, source) in table {
        let reports = simulate(&[(1, source)], ms(5000), ms(100));
        assert!(reports.is_empty(), "{name}: {reports:?}");
    }
}

#[test]
fn loudness_thresholds_depend_on_the_voice_bit() {
    let table: [(u8, bool, bool); 8] = [
        (0, false, true),
        (40, false, true),
        (41, false, false),
        (50, true, true),
        (51, true, false),
        (127, true, false),
        // Out of the 7-bit range: silence.
        (200, true, false),
        (255, false, false),
    ];
    for (level, voice, want) in table {
        let t0 = Instant::now();
        let mut speakers = Speakers::new(SpeakerParams::default());
        for i in 0..5 {
            speakers.observe(9, level, voice, t0 + ms(20 * i));
        }
        let list = speakers.tick(t0 + ms(100)).unwrap_or_default();
        assert_eq!(!list.is_empty(), want, "level {level}, voice bit {voice}");
    }
}

/// Five packets at `level` from `key`, 20 ms apart from `at`.
fn burst(speakers: &mut Speakers, key: u64, level: u8, at: Instant) {
    for i in 0..5 {
        speakers.observe(key, level, true, at + ms(20 * i));
    }
}

#[test]
fn loudest_first_with_a_sticky_order_and_no_report_for_levels_alone() {
    let t0 = Instant::now();
    let mut speakers = Speakers::new(SpeakerParams::default());
    let keys = |list: Option<Vec<(u64, f32)>>| {
        list.map(|l| l.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
    };
    // Same start: loudest first (-20 dBov before -30), equal levels by key.
    burst(&mut speakers, 1, 30, t0);
    burst(&mut speakers, 2, 20, t0);
    burst(&mut speakers, 3, 30, t0);
    assert_eq!(keys(speakers.tick(t0 + ms(100))), Some(vec![2, 1, 3]));
    // 1 gets louder than 2 (-18 dBov, 1.26x), but not 1.5x louder: no change, no report.
    for step in 1..=5 {
        let at = t0 + ms(100 * step);
        burst(&mut speakers, 1, 18, at);
        burst(&mut speakers, 2, 20, at);
        burst(&mut speakers, 3, 30, at);
        assert_eq!(keys(speakers.tick(at + ms(100))), None);
    }
    let level = |s: &Speakers, key| s.current().iter().find(|e| e.0 == key).map(|e| e.1);
    assert!(
        level(&speakers, 1) > level(&speakers, 2),
        "{:?}",
        speakers.current()
    );
    // 1 gets much louder (-5 dBov): it moves first.
    for step in 0..5 {
        let at = t0 + ms(600 + 100 * step);
        burst(&mut speakers, 1, 5, at);
        burst(&mut speakers, 2, 20, at);
        burst(&mut speakers, 3, 30, at);
    }
    assert_eq!(keys(speakers.tick(t0 + ms(1100))), Some(vec![1, 2, 3]));
    let levels: Vec<f32> = speakers.current().iter().map(|&(_, l)| l).collect();
    assert!(
        levels[0] > 0.5 && levels[0] <= 1.0,
        "-5 dBov is 0.56 linear: {levels:?}"
    );
    assert!(
        (levels[1] - 0.1).abs() < 0.001,
        "-20 dBov is 0.1 linear: {levels:?}"
    );
    // Levels wander, membership and order stay: nothing to report.
    for step in 0..10 {
        let at = t0 + ms(1100 + 100 * step);
        burst(&mut speakers, 1, 3 + (step % 4) as u8, at);
        burst(&mut speakers, 2, 18 + (step % 5) as u8, at);
        burst(&mut speakers, 3, 28 + (step % 3) as u8, at);
        assert_eq!(keys(speakers.tick(at + ms(100))), None);
    }
}

#[test]
fn speakers_who_start_together_are_listed_loudest_first_then_by_key() {
    // Levels within 1.5x of each other (-20 to -25 dBov): only the entry order sorts them.
    let levels = [
        (1, 25),
        (2, 20),
        (3, 23),
        (4, 21),
        (5, 24),
        (6, 22),
        (7, 20),
    ];
    for round in 0..3 {
        let t0 = Instant::now();
        let mut speakers = Speakers::new(SpeakerParams::default());
        for (key, level) in levels {
            burst(&mut speakers, key + round * 100, level, t0);
        }
        let list = speakers.tick(t0 + ms(100)).expect("seven speakers");
        let keys: Vec<u64> = list.iter().map(|&(k, _)| k - round * 100).collect();
        assert_eq!(keys, [2, 7, 4, 6, 3, 5, 1]);
    }
}

#[test]
fn a_participant_who_leaves_is_reported_gone() {
    let t0 = Instant::now();
    let mut speakers = Speakers::new(SpeakerParams::default());
    burst(&mut speakers, 1, 20, t0);
    burst(&mut speakers, 2, 30, t0);
    speakers.observe(3, 127, false, t0);
    assert!(speakers.tick(t0 + ms(100)).is_some());
    speakers.remove(3);
    assert_eq!(speakers.tick(t0 + ms(150)), None, "3 was not speaking");
    speakers.remove(1);
    assert_eq!(
        speakers
            .current()
            .iter()
            .map(|&(k, _)| k)
            .collect::<Vec<_>>(),
        [2]
    );
    let list = speakers
        .tick(t0 + ms(200))
        .expect("the departure is reported");
    assert_eq!(list.iter().map(|&(k, _)| k).collect::<Vec<_>>(), [2]);
    speakers.remove(2);
    assert_eq!(speakers.tick(t0 + ms(250)), Some(Vec::new()));
    assert_eq!(speakers.tick(t0 + ms(300)), None);
}

#[test]
fn time_going_backwards_is_taken_as_no_time_passing() {
    let t0 = Instant::now() + Duration::from_secs(10);
    let mut speakers = Speakers::new(SpeakerParams::default());
    burst(&mut speakers, 1, 20, t0);
    speakers.observe(1, 20, true, t0 - Duration::from_secs(5));
    let list = speakers
        .tick(t0 - Duration::from_secs(9))
        .expect("speaking");
    assert_eq!(list.len(), 1);
    // The stale sample did not move its last loud time back: it stops on time.
    assert_eq!(speakers.tick(t0 + ms(80 + 700)), None);
    assert_eq!(speakers.tick(t0 + ms(80 + 701)), Some(Vec::new()));
}
