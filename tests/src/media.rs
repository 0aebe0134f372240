//! Media probes for the simulcast, speaker and screen-share tests in real call pages: a page's
//! inbound video per server track, client events recorded with wall-clock times, a video
//! element's pixels, and screenshots saved under target/test-output. Helpers only: the tests
//! decide what must hold. They never change what a page sends or shows.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use fantoccini::Client;
use serde_json::{Value, json};

use crate::browser::wait_for_script;
use crate::wait::wait_for;

/// Join and media start on a busy two-core machine: generous on purpose.
pub const START: Duration = Duration::from_secs(30);

/// This machine's first non-loopback IPv4 address, leaving out the lossy links other tests
/// create and delete (`sy-*`): an address Firefox, which gathers no loopback candidates, can
/// reach the SFU on, and that does not vanish during the test.
pub fn machine_ipv4() -> IpAddr {
    if_addrs::get_if_addrs()
        .expect("the machine's interfaces")
        .into_iter()
        .filter(|i| !i.name.starts_with("sy-"))
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .expect("this machine has a non-loopback IPv4 address")
}

/// Runs `script` in `page` with `args` (`arguments[0]`, ...); a returned promise is awaited.
pub async fn run(page: &Client, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
    page.execute(script, args)
        .await
        .with_context(|| format!("script failed in the page: {script}"))
}

/// Waits until the call page is connected and has joined; returns its participant id.
pub async fn wait_connected(page: &Client) -> String {
    let id = wait_for_script(
        page,
        "the call page to connect",
        START,
        "const s = window.switchyard; \
         return s && s.state() === 'connected' && s.client.you ? s.client.you.id : null",
    )
    .await;
    id.as_str().expect("a participant id").to_owned()
}

/// Waits until `page` lists participant `owner`'s video track from `source` ('camera' or
/// 'screen'); returns its TrackInfo (`id`, `codec`, `source`, `layers`, ...).
pub async fn wait_video_track(page: &Client, owner: &str, source: &str) -> Value {
    let script = format!(
        "const p = window.switchyard.client.participants.get({owner}); \
         return (p && p.tracks.find(t => t.kind === 'video' && t.source === {source})) || null",
        owner = json!(owner),
        source = json!(source)
    );
    let what = format!("{owner}'s {source} track to be listed");
    wait_for_script(page, &what, START, &script).await
}

/// The page's inbound statistics of server track `track_id` (an entry of
/// `window.switchyard.stats()`), or `None` while it receives no such track.
pub async fn track_stats(page: &Client, track_id: &str) -> Option<Value> {
    let script = "return window.switchyard.stats().then(all => all.find(s => s.trackId === arguments[0]) || null)";
    run(page, script, vec![json!(track_id)])
        .await
        .ok()
        .filter(|v| !v.is_null())
}

/// A number out of a stats entry (0 when absent).
pub fn num(stats: &Value, key: &str) -> f64 {
    stats[key].as_f64().unwrap_or(0.0)
}

/// Waits until `page` has decoded `more` frames of `track_id` beyond `since` (its
/// framesDecoded before); returns the stats at that moment.
pub async fn wait_frames(
    page: &Client,
    track_id: &str,
    since: f64,
    more: f64,
    timeout: Duration,
) -> Value {
    wait_for(
        &format!("{more} more decoded frames of {track_id}"),
        timeout,
        async || match track_stats(page, track_id).await {
            Some(s) if num(&s, "framesDecoded") >= since + more => Ok(s),
            Some(s) => Err(format!("stats now {s}; {}", downlink(page).await)),
            None => Err("no such inbound track yet".to_owned()),
        },
    )
    .await
}

/// What the server last told the page about its downlink (`downlinkChanged`: estimate and
/// layer per track), as text for failure messages.
pub async fn downlink(page: &Client) -> String {
    match run(page, "return window.switchyard.downlink()", vec![]).await {
        Ok(d) => format!("downlink {d}"),
        Err(e) => format!("downlink unknown: {e:#}"),
    }
}

/// What the page's camera sends, layer by layer (`outbound-rtp` of the publisher connection:
/// rid, picture width, frames per second, what limits its quality), as text for failure
/// messages: a layer the sender scaled down or stopped explains a receiver that never gets it.
pub async fn sending_layers(page: &Client) -> String {
    let script = "const pc = window.switchyard.client.publisherPc; if (!pc) return null; \
                  const out = []; (await pc.getStats()).forEach((s) => { \
                    if (s.type === 'outbound-rtp' && s.kind === 'video') out.push({ \
                      rid: s.rid ?? null, width: s.frameWidth ?? 0, fps: s.framesPerSecond ?? 0, \
                      limit: s.qualityLimitationReason ?? null, active: s.active ?? null }); }); \
                  return out;";
    match run(page, script, vec![]).await {
        Ok(layers) => format!("sending {layers}"),
        Err(e) => format!("sending unknown: {e:#}"),
    }
}

/// Records the client's events `names` in the page from now on, each as
/// `{type, at: Date.now(), detail}` (wall-clock ms: comparable between pages of one machine).
pub async fn record_events(page: &Client, names: &[&str]) {
    let script = r#"
const names = arguments[0], c = window.switchyard.client;
window.__events = window.__events || [];
const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) => (x instanceof MediaStreamTrack ? x.id : x)));
for (const name of names) {
  c.addEventListener(name, (e) => window.__events.push({ type: name, at: Date.now(), detail: plain(e.detail) }));
}
return true;
"#;
    run(page, script, vec![json!(names)])
        .await
        .expect("event recorder installed");
}

/// The events recorded so far by [`record_events`].
pub async fn recorded(page: &Client) -> Vec<Value> {
    run(page, "return window.__events || []", vec![])
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// What the page's video element showing server track `track_id` looks like now, scaled down
/// to 64x36: `{videoWidth, videoHeight, mean: [r, g, b], spread}` where `spread` is the
/// standard deviation of the luma (0 for a uniform picture: black, or green decoder garbage).
/// `None` while no element shows the track or it has no picture yet.
pub async fn video_pixels(page: &Client, track_id: &str) -> Option<Value> {
    let script = r#"
const track = window.switchyard.client.remoteTrack(arguments[0]);
const v = track && [...document.querySelectorAll('#remote-grid video')]
  .find((v) => v.srcObject && v.srcObject.getVideoTracks()[0] === track);
if (!v || !v.videoWidth) return null;
const c = document.createElement('canvas');
c.width = 64; c.height = 36;
const g = c.getContext('2d', { willReadFrequently: true });
g.drawImage(v, 0, 0, 64, 36);
const d = g.getImageData(0, 0, 64, 36).data;
let r = 0, gr = 0, b = 0, sum = 0, sq = 0;
const n = d.length / 4;
for (let i = 0; i < d.length; i += 4) {
  r += d[i]; gr += d[i + 1]; b += d[i + 2];
  const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  sum += y; sq += y * y;
}
const mean = sum / n;
return { videoWidth: v.videoWidth, videoHeight: v.videoHeight,
         mean: [r / n, gr / n, b / n].map(Math.round), spread: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
"#;
    run(page, script, vec![json!(track_id)])
        .await
        .ok()
        .filter(|v| !v.is_null())
}

/// The folder for files a person may look at after a run: target/test-output (never the
/// source tree); created when missing.
pub fn output_dir() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .join("target")
        .join("test-output");
    std::fs::create_dir_all(&dir).expect("target/test-output can be created");
    dir
}

/// Saves a screenshot of `page` as `<name>.png` in [`output_dir`]; returns its path and size.
pub async fn save_screenshot(page: &Client, name: &str) -> (PathBuf, usize) {
    let png = page.screenshot().await.expect("screenshot");
    let path = output_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png).expect("screenshot written");
    (path, png.len())
}

/// Draws an animated 1280x720 picture (moving bars, a counter) on a canvas and returns
/// nothing; `window.__canvasTrack` is its `captureStream(15)` video track, ready to share.
pub const CANVAS_SCREEN: &str = r#"
const c = document.createElement('canvas');
c.width = 1280; c.height = 720;
const g = c.getContext('2d');
let n = 0;
const draw = () => {
  n++;
  g.fillStyle = '#f4f4f4'; g.fillRect(0, 0, 1280, 720);
  for (let i = 0; i < 16; i++) {
    g.fillStyle = `hsl(${(i * 23 + n * 3) % 360}, 70%, 45%)`;
    g.fillRect(((i * 80 + n * 4) % 1360) - 80, 80 + i * 36, 120, 28);
  }
  g.fillStyle = '#111'; g.font = '64px sans-serif'; g.fillText(`slide ${n}`, 40, 680);
};
draw();
window.__canvasTimer = setInterval(draw, 1000 / 15);
window.__canvas = c;
window.__canvasTrack = c.captureStream(15).getVideoTracks()[0];
return window.__canvasTrack.id;
"#;
