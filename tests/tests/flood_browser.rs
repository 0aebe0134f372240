//! End to end through the web demo: of three Chromium participants, one floods the server with
//! mute toggles and pings over its own signaling WebSocket (at least 50,000 in 10 s). It is told
//! `rate_limited` and disconnected (1008); the other two stay in the room with the same ids and
//! keep decoding each other's video at 15 fps or more, during the flood and after it.

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval, media_stats, wait_for_script};
use switchyard_tests::start_server;

/// Frames a second each bystander must keep decoding from the other, during the flood and after
/// it (Chromium's fake camera sends 20).
const MIN_FPS: f64 = 15.0;
/// The least in any one window: a stall would show as nearly 0 (the machine's two cores are
/// shared by three browsers, so single windows wobble).
const MIN_WINDOW_FPS: f64 = 8.0;
/// How long the flood lasts at most, and the least it must send.
const FLOOD: Duration = Duration::from_secs(10);
const MIN_FLOOD_MESSAGES: u64 = 50_000;
/// How long the bystanders are watched after the flood.
const AFTER: Duration = Duration::from_secs(6);
/// The window fps are measured over.
const WINDOW: Duration = Duration::from_secs(2);

/// Records, in a bystander's page, every state change and every `participantLeft`; returns its
/// participant id.
const WATCH: &str = r#"
const c = window.switchyard.client;
const w = window.__watch = { id: c.you.id, states: [], left: [], muted: 0 };
c.addEventListener('state', (e) => w.states.push(e.detail.state));
c.addEventListener('participantLeft', (e) => w.left.push(e.detail.identity));
c.addEventListener('trackMuted', () => { w.muted += 1; });
return w.id;
"#;

/// In the flooder's page: sends raw `mute` toggles (and a `ping` after every fifth) on the
/// client's own WebSocket as fast as the page can, for up to 10 s or until the socket closes;
/// records the `error` codes it gets and the close code. The first batch alone is over 50,000
/// frames, all handed to the socket while it is open. Returns at once; results land in
/// `window.__flood`.
const FLOOD_SCRIPT: &str = r#"
const ws = window.switchyard.client._ws;
if (!ws || ws.readyState !== WebSocket.OPEN) return 'no open socket';
const f = window.__flood = { sent: 0, mutes: 0, pings: 0, errors: [], closeCode: null,
                             closedAfterMs: null, elapsedMs: null, done: false };
const started = performance.now();
ws.addEventListener('message', (ev) => {
  try {
    const m = JSON.parse(ev.data);
    if (m.type === 'error') f.errors.push(m.code);
  } catch {}
});
ws.addEventListener('close', (ev) => {
  f.closeCode = ev.code;
  f.closedAfterMs = performance.now() - started;
});
(async () => {
  let muted = false;
  let batch = 60000;
  while (ws.readyState === WebSocket.OPEN && performance.now() - started < 10000) {
    for (let i = 0; i < batch; i++) {
      muted = !muted;
      ws.send(muted ? '{"type":"mute","kind":"audio","muted":true}'
                    : '{"type":"mute","kind":"audio","muted":false}');
      f.mutes += 1;
      if (i % 5 === 4) {
        ws.send(`{"type":"ping","ts":${i}}`);
        f.pings += 1;
      }
    }
    f.sent = f.mutes + f.pings;
    f.elapsedMs = performance.now() - started;
    batch = 5000;
    await new Promise((r) => setTimeout(r, 0));
  }
  f.done = true;
})();
return 'flooding';
"#;

/// Video frames `page` has decoded from the participant whose identity starts with `from`.
async fn frames_from(page: &Client, from: &str) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video")
        .filter(|s| s["identity"].as_str().is_some_and(|i| i.starts_with(from)))
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

/// User plus system CPU seconds of this process, which runs the server.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    // utime and stime (fields 14 and 15), in clock ticks of 1/100 s.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// One measurement window of both bystanders: (seconds, Alice's frames from Bob, Bob's from
/// Alice) at its end.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    alice: u64,
    bob: u64,
}

async fn sample(alice: &Client, bob: &Client, since: Instant) -> Sample {
    let (a, b) = tokio::join!(frames_from(alice, "bob"), frames_from(bob, "alice"));
    Sample {
        at: since.elapsed().as_secs_f64(),
        alice: a,
        bob: b,
    }
}

/// Frames a second between consecutive samples: (window end, Alice's fps, Bob's fps).
fn rates(samples: &[Sample]) -> Vec<(f64, f64, f64)> {
    samples
        .windows(2)
        .map(|w| {
            let dt = w[1].at - w[0].at;
            (
                w[1].at,
                (w[1].alice as f64 - w[0].alice as f64) / dt,
                (w[1].bob as f64 - w[0].bob as f64) / dt,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_page_is_cut_off_and_the_others_keep_their_call() {
    let server = start_server(None, |_| {}).await;
    let driver = Driver::start().await.expect("chromedriver");
    let pages = driver
        .call_pages(
            server.http_addr.port(),
            "flood",
            &["Alice", "Bob", "Flooder"],
            "",
        )
        .await
        .expect("pages load");
    let (alice, bob, flooder) = (&pages[0], &pages[1], &pages[2]);

    // The call runs: Alice and Bob decode each other, and they see the flooder's audio track
    // (so that each toggle that got through would reach them).
    let started = Instant::now();
    loop {
        let (a, b) = (
            frames_from(alice, "bob").await,
            frames_from(bob, "alice").await,
        );
        if a >= 60 && b >= 60 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the call did not start: Alice decoded {a} frames of Bob, Bob {b} of Alice"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sees_flooder_audio = r#"
        const c = window.switchyard.client;
        return [...c.participants.values()].some((p) => p.identity.startsWith('flooder')
            && p.tracks.some((t) => t.kind === 'audio'));
    "#;
    for page in [alice, bob] {
        wait_for_script(
            page,
            "the flooder's audio track",
            Duration::from_secs(30),
            sees_flooder_audio,
        )
        .await;
    }
    wait_for_script(
        flooder,
        "the flooder's publisher connection",
        Duration::from_secs(30),
        "return window.switchyard.client._published && window.switchyard.state() === 'connected'",
    )
    .await;
    let alice_id = eval(alice, WATCH).await.expect("watch Alice");
    let bob_id = eval(bob, WATCH).await.expect("watch Bob");
    println!("call running after {:?}", started.elapsed());

    // The flood, watched from both bystanders every window.
    let cpu_before = cpu_seconds();
    let flood_started = Instant::now();
    let mut samples = vec![sample(alice, bob, flood_started).await];
    assert_eq!(
        eval(flooder, FLOOD_SCRIPT).await.expect("start the flood"),
        Value::from("flooding")
    );
    let mut flood = Value::Null;
    while flood_started.elapsed() < FLOOD + WINDOW {
        tokio::time::sleep_until((flood_started + WINDOW * samples.len() as u32).into()).await;
        samples.push(sample(alice, bob, flood_started).await);
        flood = eval(flooder, "return window.__flood")
            .await
            .unwrap_or(Value::Null);
        if flood["done"] == true && flood_started.elapsed() >= FLOOD {
            break;
        }
    }
    let flood_wall = flood_started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "server CPU during flood: {cpu:.2} s over {flood_wall:.1} s ({:.0} %)",
        100.0 * cpu / flood_wall
    );
    let during = samples.len();
    while flood_started.elapsed().as_secs_f64() < flood_wall + AFTER.as_secs_f64() {
        tokio::time::sleep_until((flood_started + WINDOW * samples.len() as u32).into()).await;
        samples.push(sample(alice, bob, flood_started).await);
    }
    println!("flood: {flood}");

    // The bystanders: still in the room under the same ids, never left or reconnecting, and
    // never told that the other left.
    for (name, page, id, other) in [
        ("Alice", alice, &alice_id, &bob_id),
        ("Bob", bob, &bob_id, &alice_id),
    ] {
        let watch = eval(
            page,
            r#"const c = window.switchyard.client, w = window.__watch;
               return { id: c.you.id, state: c.state, states: w.states, left: w.left,
                        muted: w.muted, others: [...c.participants.keys()] };"#,
        )
        .await
        .expect("read the watch");
        println!("{name}: {watch}");
        assert_eq!(&watch["id"], id, "{name}'s participant id changed");
        assert_eq!(watch["state"], "connected", "{name}: {watch}");
        assert_eq!(watch["states"], Value::Array(vec![]), "{name}: {watch}");
        let left: Vec<String> = serde_json::from_value(watch["left"].clone()).unwrap_or_default();
        assert!(
            left.iter().all(|identity| identity.starts_with("flooder")),
            "{name} saw {left:?} leave"
        );
        let others: Vec<Value> = serde_json::from_value(watch["others"].clone()).unwrap();
        assert!(others.contains(other), "{name} lost the other: {watch}");
    }

    // The flooder sent its flood, was told `rate_limited`, then disconnected with 1008.
    let sent = flood["sent"].as_u64().unwrap_or(0);
    let elapsed_ms = flood["elapsedMs"].as_f64().unwrap_or(f64::MAX);
    assert!(
        sent >= MIN_FLOOD_MESSAGES && elapsed_ms <= FLOOD.as_millis() as f64,
        "the flood was {sent} messages in {elapsed_ms} ms"
    );
    let errors: Vec<String> = serde_json::from_value(flood["errors"].clone()).unwrap_or_default();
    assert_eq!(
        errors.first().map(String::as_str),
        Some("rate_limited"),
        "errors the flooder got: {errors:?}"
    );
    assert_eq!(
        flood["closeCode"],
        Value::from(1008),
        "the flooder's socket: {flood}"
    );

    // Both kept decoding each other at 15 fps or more, during the flood and after it, with no
    // stall in any window.
    let average = |from: usize, to: usize| {
        let (a, b) = (&samples[from], &samples[to]);
        let dt = b.at - a.at;
        (
            (b.alice as f64 - a.alice as f64) / dt,
            (b.bob as f64 - a.bob as f64) / dt,
        )
    };
    let flood_fps = average(0, during - 1);
    let after_fps = average(during - 1, samples.len() - 1);
    println!(
        "fps during the flood (Alice from Bob, Bob from Alice): {:.1} / {:.1}; after it: {:.1} / \
         {:.1}",
        flood_fps.0, flood_fps.1, after_fps.0, after_fps.1
    );
    let rates = rates(&samples);
    println!(
        "fps (window end s, Alice from Bob, Bob from Alice): {}",
        rates
            .iter()
            .map(|(t, a, b)| format!("{t:.1}s {a:.1}/{b:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (phase, (a, b)) in [("during", flood_fps), ("after", after_fps)] {
        assert!(
            a >= MIN_FPS && b >= MIN_FPS,
            "{phase} the flood, Alice decoded {a:.1} fps of Bob, Bob {b:.1} fps of Alice \
             (windows: {rates:?})"
        );
    }
    for (at, a, b) in &rates {
        assert!(
            *a >= MIN_WINDOW_FPS && *b >= MIN_WINDOW_FPS,
            "video stalled in the window ending at {at:.1} s: Alice decoded {a:.1} fps of Bob, \
             Bob {b:.1} fps of Alice (windows: {rates:?})"
        );
    }
    assert!(rates.len() > during, "no window after the flood");

    for page in pages {
        let _ = page.close().await;
    }
}
