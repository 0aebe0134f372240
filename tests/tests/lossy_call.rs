//! Issue 13's loss point with real Chromium pages: in a three-page call, the page inside a
//! namespace loses 5 % of its downlink at random and gets it 50 ms late for 30 s, yet decodes
//! both cameras with no gap over 0.5 s, and so do the two pages on this machine. It never
//! impairs those two pages, nor fakes a browser or the SFU.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_tests::browser::{eval, wait_for_script};
use switchyard_tests::lossy_link::{DirectionStats, Impairment, LossyCall};
use switchyard_tests::media::{downlink, num};

/// How long the downlink stays impaired.
const WINDOW: Duration = Duration::from_secs(30);
/// The longest allowed gap between two decoded frames of one remote camera.
const MAX_GAP_MS: f64 = 500.0;
/// The least frame rate a remote camera keeps being decoded at.
const MIN_FPS: f64 = 10.0;
/// Join and first frames of three pages on a busy two-core machine.
const START: Duration = Duration::from_secs(60);

/// Installs, in a page, a sampler of its subscriber PC's video inbound-rtp every 50 ms, per
/// `trackIdentifier` (summed over its RTP streams): the report times (Chromium caches a report
/// for 50 ms, so they are accurate) at which framesDecoded rose, the longest gap between two
/// rises, every gap over 200 ms, and the first and last counters; also the longest wait
/// between two of its own ticks (a page starved of CPU). Resolves after one sample.
const RECORDER: &str = r#"
const client = window.switchyard.client;
if (window.__gaps) clearInterval(window.__gaps.timer);
const FIELDS = ['framesDecoded', 'freezeCount', 'totalFreezesDuration', 'packetsLost',
  'packetsReceived', 'nackCount', 'pliCount', 'keyFramesDecoded'];
const rec = { streams: {}, busy: false, samples: 0, origin: null, tick: performance.now(), maxTick: 0 };
rec.sample = async () => {
  const now = performance.now();
  rec.maxTick = Math.max(rec.maxTick, now - rec.tick);
  rec.tick = now;
  if (rec.busy) return;
  rec.busy = true;
  try {
    const report = await client.subscriberPc.getStats();
    const sums = {};
    report.forEach((x) => {
      if (x.type !== 'inbound-rtp' || x.kind !== 'video') return;
      const a = sums[x.trackIdentifier] ||= { t: x.timestamp, width: 0, height: 0 };
      for (const f of FIELDS) a[f] = (a[f] || 0) + (x[f] ?? 0);
      a.width = x.frameWidth ?? a.width;
      a.height = x.frameHeight ?? a.height;
    });
    rec.samples++;
    for (const [k, a] of Object.entries(sums)) {
      rec.origin ??= a.t;
      const r = rec.streams[k];
      if (!r) {
        rec.streams[k] = { first: a, last: a, lastRise: a.t, maxGap: 0, maxGapAt: null, gaps: [] };
        continue;
      }
      if (a.framesDecoded > r.last.framesDecoded) {
        const gap = a.t - r.lastRise, at = Math.round((r.lastRise - rec.origin) / 100) / 10;
        if (gap > r.maxGap) { r.maxGap = gap; r.maxGapAt = at; }
        if (gap > 200) r.gaps.push([at, Math.round(gap)]);
        r.lastRise = a.t;
      }
      r.last = a;
    }
  } finally {
    rec.busy = false;
  }
};
await rec.sample();
rec.timer = setInterval(rec.sample, 50);
window.__gaps = rec;
return Object.keys(rec.streams).length;
"#;

/// Stops [`RECORDER`] after a last sample and resolves with one entry per stream: its owner's
/// `name` (null when the track has no owner any more), `seconds` sampled, `maxGap` (ms, the
/// time since the last rise included), `maxGapAt` (s from the first sample), `gaps` over
/// 200 ms as `[at s, ms]`, `first` and `last` counters, the number of samples and `maxTick`.
const RECORDED: &str = r#"
const rec = window.__gaps, client = window.switchyard.client;
clearInterval(rec.timer);
while (rec.busy) await new Promise((r) => setTimeout(r, 10));
await rec.sample();
const receivers = client.subscriberPc.getReceivers();
return Object.entries(rec.streams).map(([k, r]) => {
  const receiver = receivers.find((x) => x.track && x.track.id === k);
  const trackId = receiver ? client.remoteTrackId(receiver.track) : null;
  const owner = [...client.participants.values()].find((p) => p.tracks.some((t) => t.id === trackId));
  return { name: owner ? owner.name : null, trackId, seconds: (r.last.t - r.first.t) / 1000,
           maxGap: Math.max(r.maxGap, r.last.t - r.lastRise), maxGapAt: r.maxGapAt, gaps: r.gaps,
           first: r.first, last: r.last, samples: rec.samples, maxTick: Math.round(rec.maxTick) };
});
"#;

/// A script for [`wait_for_script`]: the frames the page decoded from each of `names`
/// (participant names), once every one is over 30; null until then.
fn decoding_from(names: &[&str]) -> String {
    format!(
        "const names = {}; if (!window.switchyard) return null; \
         return window.switchyard.stats().then(all => {{ \
           const f = names.map(n => Math.max(0, ...all.filter(s => s.kind === 'video' && \
             (s.identity || '').toLowerCase().startsWith(n.toLowerCase())).map(s => s.framesDecoded))); \
           return f.every(x => x > 30) ? f : null; }})",
        json!(names)
    )
}

/// Prints one line per stream `page` decoded over the window (an entry of [`RECORDED`]) and
/// returns (owner name, frames decoded, longest gap ms, freezes) for each.
fn report(page: &str, recorded: &Value) -> Vec<(String, f64, f64, f64)> {
    let mut out = Vec::new();
    for s in recorded.as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or("(gone)").to_owned();
        let delta = |key: &str| num(&s["last"], key) - num(&s["first"], key);
        let (secs, frames, gap) = (num(s, "seconds"), delta("framesDecoded"), num(s, "maxGap"));
        println!(
            "  {page} <- {name}: {frames} frames in {secs:.1} s ({:.1} fps), {}x{}, longest gap \
             {gap:.0} ms at {} s, gaps over 200 ms [at s, ms] {}, {} freezes, {:.3} s frozen, \
             {} packets received, {} lost, {} NACKs, {} PLIs, {} key frames; {} samples, \
             longest tick {} ms",
            frames / secs.max(0.001),
            num(&s["last"], "width"),
            num(&s["last"], "height"),
            s["maxGapAt"],
            s["gaps"],
            delta("freezeCount"),
            delta("totalFreezesDuration"),
            delta("packetsReceived"),
            delta("packetsLost"),
            delta("nackCount"),
            delta("pliCount"),
            delta("keyFramesDecoded"),
            s["samples"],
            s["maxTick"],
        );
        out.push((name, frames, gap, delta("freezeCount")));
    }
    out
}

/// This machine's CPU time counters (the `cpu` line of /proc/stat): (busy, total) jiffies.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).unwrap_or(&0) + fields.get(4).unwrap_or(&0);
    (total - idle, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss_and_50ms_delay_on_a_downlink_cause_no_freeze_over_half_a_second() {
    let call = LossyCall::start()
        .await
        .expect("a call across a lossy link");
    let link = &call.link;
    let mut hosts = call
        .host_pages("lossy-call", &["Alice", "Bob"])
        .await
        .expect("Alice's and Bob's pages load");
    let (bob, alice) = (hosts.remove(1), hosts.remove(0));
    let carol = call
        .inside_page("lossy-call", "Carol")
        .await
        .expect("Carol's page loads inside the namespace");

    // The call is up first (a handshake under loss is another subject): every page decodes
    // both others' cameras.
    let started = Instant::now();
    for (page, who, others) in [
        (&carol, "Carol", ["Alice", "Bob"]),
        (&alice, "Alice", ["Bob", "Carol"]),
        (&bob, "Bob", ["Alice", "Carol"]),
    ] {
        let frames = wait_for_script(
            page,
            &format!("{who} to decode 30 frames of {others:?}"),
            START,
            &decoding_from(&others),
        )
        .await;
        println!(
            "{who} decodes {others:?}: {frames} frames after {:?}",
            started.elapsed()
        );
    }
    // Every page records its decoding: the two on this machine are the control group.
    for page in [&carol, &alice, &bob] {
        let streams = eval(page, RECORDER).await.expect("recorder installed");
        assert_eq!(streams, json!(2), "every page receives two videos");
    }

    // Only now: 5 % random loss and 50 ms delay on Carol's downlink, for 30 s. The window is
    // the test's subject (how the call lives through it), not a stand-in for a condition.
    link.set_downlink(Impairment::lossy(5.0, 50));
    println!("impairment on: 5 % loss, 50 ms delay");
    let (down_before, cpu_before) = (link.downlink_stats(), cpu_jiffies());
    tokio::time::sleep(WINDOW).await;
    let (down_after, cpu_after) = (link.downlink_stats(), cpu_jiffies());
    link.clear();
    println!("impairment off");
    let mut recorded = Vec::new();
    for page in [&carol, &alice, &bob] {
        recorded.push(eval(page, RECORDED).await.expect("recorder read"));
    }

    // Impaired packets: every forwarded one but chromedriver's.
    let impaired = |s: &DirectionStats| s.forwarded - s.exempt_forwarded;
    let (passed, lost) = (
        impaired(&down_after) - impaired(&down_before),
        down_after.lost - down_before.lost,
    );
    let drop_percent = 100.0 * lost as f64 / passed.max(1) as f64;
    println!(
        "Carol's downlink over {WINDOW:?}: {passed} packets passed ({} UDP), {lost} dropped \
         ({drop_percent:.2} % of those passed), {} queue-dropped, {} write errors",
        down_after.udp_forwarded - down_before.udp_forwarded,
        down_after.queue_dropped - down_before.queue_dropped,
        down_after.write_errors - down_before.write_errors,
    );
    println!("Carol's {}", downlink(&carol).await);

    let busy =
        100.0 * (cpu_after.0 - cpu_before.0) as f64 / (cpu_after.1 - cpu_before.1).max(1) as f64;
    println!(
        "this machine's CPUs were {busy:.0} % busy over the window; load average now {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    let mut failures = Vec::new();
    let least = MIN_FPS * WINDOW.as_secs_f64();
    let lossy = report("Carol (lossy)", &recorded[0]);
    for name in ["Alice", "Bob"] {
        let Some((_, frames, gap, _)) = lossy.iter().find(|(n, ..)| n == name) else {
            failures.push(format!("Carol no longer receives {name}'s camera"));
            continue;
        };
        if *gap > MAX_GAP_MS {
            failures.push(format!("{name}'s camera stopped for {gap:.0} ms at Carol"));
        }
        if *frames < least {
            failures.push(format!(
                "Carol decoded {frames} frames of {name}, not {least}"
            ));
        }
    }
    // The pages on this machine meet the same bar. Not freezeCount == 0: Chromium counts a
    // 200 ms gap at 20 fps as a freeze, and this busy machine's stalls of that size hit every
    // page at once, lossless (0 lost, 0 NACKs), with or without the impairment.
    for (page, recorded) in [("Alice", &recorded[1]), ("Bob", &recorded[2])] {
        for (name, _, gap, _) in report(page, recorded) {
            if gap > MAX_GAP_MS {
                failures.push(format!("{name}'s camera stopped for {gap:.0} ms at {page}"));
            }
        }
    }
    if !(3.0..=8.0).contains(&drop_percent) {
        failures.push(format!(
            "the link dropped {drop_percent:.2} % of Carol's downlink, not about 5 %"
        ));
    }
    for page in [alice, bob, carol] {
        let _ = page.close().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
}
