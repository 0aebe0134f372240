//! Issue 15's broadcast acceptance with real parts: a three-person Chromium call (two call
//! pages and a page that publishes a clock over WHIP) is broadcast through the API; the
//! multivariant playlist lists every rendition with `BANDWIDTH` and `RESOLUTION`; each
//! rendition's parts and segments keep within their targets, blocking reload answers when the
//! part exists, and ffprobe reads each rendition's codec and size; the watch page (hls.js, low
//! latency) plays it live, its delay behind the call is measured by reading the clock back out
//! of the picture, its quality menu switches renditions, and behind a link capped at 1.5 Mbit/s
//! (the viewer's browser runs in a network namespace behind a userspace-shaped link) hls.js
//! switches down a rendition by itself.
//! Then a private broadcast with the speaker layout refuses viewers without a token.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::wait_call;
use fantoccini::Client as Page;
use protocol::Grants;
use serde_json::{Value, json};
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::lossy_link::{Impairment, LossyLink};
use switchyard_tests::{start_server, whip};

const RECORDER: &str = env!("CARGO_BIN_EXE_switchyard-recorder");
const ROOM: &str = "broadcast";

/// What the WHIP publisher sends: a clock, 32 cells (4 rows of 8) of a 1280x720 canvas,
/// the first 24 the bits of `Date.now() mod 2^24` (white = 1), the last 8 a fixed pattern to
/// find it by.
const CLOCK: &str = r#"
  const canvas = document.createElement('canvas');
  canvas.width = 1280; canvas.height = 720;
  const g = canvas.getContext('2d');
  const guard = [1, 0, 1, 0, 1, 1, 0, 0];
  const draw = () => {
    const t = Date.now() % 16777216;
    for (let i = 0; i < 32; i++) {
      const bit = i < 24 ? (Math.floor(t / 2 ** i) % 2) : guard[i - 24];
      g.fillStyle = bit ? '#fff' : '#000';
      g.fillRect((i % 8) * 160, Math.floor(i / 8) * 180, 160, 180);
    }
  };
  draw();
  setInterval(draw, 20);
  return canvas.captureStream(30);
"#;

/// Reads the clock out of the watch page's current picture: each tile of a 2x2 grid (three
/// participants) is tried; returns how far the picture is behind now, in ms, or null.
const READ_CLOCK: &str = r#"
const video = document.getElementById('watch-video');
if (!video || !video.videoWidth) return null;
const c = window.clockCanvas || (window.clockCanvas = document.createElement('canvas'));
c.width = 640; c.height = 360;
const g = c.getContext('2d', { willReadFrequently: true });
g.drawImage(video, 0, 0, 640, 360);
const now = Date.now();
const data = g.getImageData(0, 0, 640, 360).data;
const lum = (x, y) => {
  const i = (Math.round(y) * 640 + Math.round(x)) * 4;
  return (data[i] + data[i + 1] + data[i + 2]) / 3;
};
const guard = [1, 0, 1, 0, 1, 1, 0, 0];
for (const [x0, y0] of [[0, 0], [320, 0], [160, 180], [0, 180], [320, 180]]) {
  const bits = [];
  for (let i = 0; i < 32; i++) {
    bits.push(lum(x0 + ((i % 8) + 0.5) * 40, y0 + (Math.floor(i / 8) + 0.5) * 45) > 128 ? 1 : 0);
  }
  if (!guard.every((b, k) => bits[24 + k] === b)) continue;
  let t = 0;
  for (let i = 0; i < 24; i++) t += bits[i] * 2 ** i;
  return ((now % 16777216) - t + 16777216) % 16777216;
}
return null;
"#;

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

async fn api(port: u16, token: &str, method: reqwest::Method, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/api/rooms/{ROOM}/broadcast", base(port)))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_text(url: &str, token: Option<&str>) -> (u16, String, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap_or_default(), headers)
}

async fn get_bytes(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.expect("the server answers");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("a body").to_vec()
}

async fn wait_state(port: u16, token: &str, state: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (_, info) = api(port, token, reqwest::Method::GET, None).await;
        if info["state"] == state {
            return info;
        }
        assert!(
            start.elapsed() < within,
            "the broadcast is not {state}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (attribute value) of `key=` in a playlist tag line.
fn attribute<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[at..];
    let rest = rest.strip_prefix('"').map_or(rest, |r| r);
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Checks one rendition's live media playlist; returns the newest complete segment's number
/// and the preload hint's (msn, part).
fn check_media_playlist(name: &str, text: &str) -> (u64, (u64, u64)) {
    assert!(text.contains("#EXT-X-TARGETDURATION:2\n"), "{name}: {text}");
    assert!(
        text.contains("#EXT-X-PART-INF:PART-TARGET=0.500"),
        "{name}: {text}"
    );
    assert!(text.contains("CAN-BLOCK-RELOAD=YES"), "{name}: {text}");
    assert!(
        text.contains("#EXT-X-MAP:URI=\"init.mp4\""),
        "{name}: {text}"
    );
    let mut parts = Vec::new();
    let mut segments = Vec::new();
    let mut last_complete = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(tag) = line.strip_prefix("#EXT-X-PART:") {
            parts.push(attribute(tag, "DURATION").unwrap().parse::<f64>().unwrap());
        } else if let Some(extinf) = line.strip_prefix("#EXTINF:") {
            segments.push(extinf.trim_end_matches(',').parse::<f64>().unwrap());
            let uri = lines.next().unwrap();
            last_complete = Some(uri[1..uri.len() - 4].parse::<u64>().unwrap());
        }
    }
    assert!(parts.len() >= 5, "{name}: too few parts listed: {text}");
    assert!(
        segments.len() >= 2,
        "{name}: too few segments listed: {text}"
    );
    for part in &parts {
        assert!(
            *part <= 0.5 && *part > 0.0,
            "{name}: a part of {part} s: {text}"
        );
    }
    for segment in &segments {
        assert!(
            segment.round() <= 2.0 && *segment > 1.0,
            "{name}: a segment of {segment} s: {text}"
        );
    }
    println!(
        "{name}: {} segments listed ({:.3}-{:.3} s), {} parts ({:.3}-{:.3} s)",
        segments.len(),
        segments.iter().cloned().fold(f64::MAX, f64::min),
        segments.iter().cloned().fold(0.0, f64::max),
        parts.len(),
        parts.iter().cloned().fold(f64::MAX, f64::min),
        parts.iter().cloned().fold(0.0, f64::max),
    );
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:"))
        .unwrap_or_else(|| panic!("{name}: no preload hint: {text}"));
    let uri = attribute(hint, "URI").unwrap();
    let (msn, part) = uri[1..uri.len() - 4].split_once(".p").unwrap();
    (
        last_complete.unwrap(),
        (msn.parse().unwrap(), part.parse().unwrap()),
    )
}

/// ffprobe's streams of a file: (codec_type, codec_name, width, height).
fn probe(path: &std::path::Path) -> Vec<(String, String, u64, u64)> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("ffprobe's JSON");
    parsed["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Polls the watch page's state until `done` holds, at most `within_secs`; returns that state
/// and how long it took. Fails the test, naming `what`, with the last state otherwise.
async fn wait_watch(
    page: &Page,
    what: &str,
    within_secs: u64,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let state = watch_state(page).await;
        if done(&state) {
            return (state, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(within_secs),
            "not within {within_secs} s: {what}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The height hls.js says it plays, when the picture has that height too; 0 otherwise.
fn playing_height(state: &Value) -> u64 {
    let height = state["videoHeight"].as_u64().unwrap_or(0);
    if state["height"] == height { height } else { 0 }
}

async fn watch_state(page: &Page) -> Value {
    eval(
        page,
        "return window.watchState ? window.watchState() : null",
    )
    .await
    .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_broadcast_as_low_latency_adaptive_hls() {
    let recorder = std::env::var("SWITCHYARD_TEST_RECORDER").unwrap_or_else(|_| RECORDER.into());
    // The viewer watches from a namespace behind a link whose rate the test caps later; the
    // server listens on the link's end too (media is announced there only).
    let link = LossyLink::create().expect("a network namespace behind a link (needs root)");
    let server = start_server(Some(link.host_ip.into()), |config| {
        config.http_bind = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        config.insecure_dev = true;
        config.recorder = Some(PathBuf::from(recorder));
    })
    .await;
    let port = server.http_addr.port();
    let admin = server.tokens.mint(
        "admin",
        "Admin",
        "",
        Grants {
            room_admin: true,
            ..Grants::default()
        },
        3600,
    );
    let driver = Driver::start().await.expect("chromedriver");
    let pages = driver
        .call_pages(port, ROOM, &["Alice", "Bob"], "")
        .await
        .expect("pages load");
    wait_call(&pages, 1).await;
    // The third person: a clock published over WHIP.
    let clock = driver.browser().await.expect("a browser");
    clock
        .goto(&format!("{}/healthz", base(port)))
        .await
        .expect("a page");
    let clock_token = server
        .tokens
        .mint("clock", "Clock", ROOM, Grants::default(), 3600);
    let script = whip::publish_script(CLOCK, &clock_token, &format!("{}/whip/{ROOM}", base(port)));
    let published = eval(&clock, &script).await.expect("the WHIP script runs");
    assert_eq!(published["status"], 201, "{published}");
    wait_call(&pages, 2).await;

    // Start: 201, then live; a second start is refused.
    let (status, started) = api(
        port,
        &admin,
        reqwest::Method::POST,
        Some(json!({"public": true})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["watchUrl"], format!("/watch/{ROOM}"));
    let (status, again) = api(port, &admin, reqwest::Method::POST, None).await;
    assert_eq!(status, 409, "{again}");
    let t0 = Instant::now();
    wait_state(port, &admin, "live", Duration::from_secs(20)).await;
    println!("live after {:?}", t0.elapsed());

    // The multivariant playlist: every rendition with BANDWIDTH and RESOLUTION.
    let master_url = format!("{}/watch/{ROOM}/live.m3u8", base(port));
    let (status, master, headers) = get_text(&master_url, None).await;
    assert_eq!(status, 200, "{master}");
    println!("{master}");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=2")
    );
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 4, "{master}");
    let mut expected_sizes = vec![
        Some((1920, 1080)),
        Some((1280, 720)),
        Some((640, 360)),
        None,
    ];
    for ((tag, _), size) in variants.iter().zip(expected_sizes.drain(..)) {
        assert!(attribute(tag, "BANDWIDTH").unwrap().parse::<u64>().unwrap() > 50_000);
        match size {
            Some((w, h)) => {
                assert_eq!(
                    attribute(tag, "RESOLUTION"),
                    Some(format!("{w}x{h}").as_str())
                );
                assert!(
                    attribute(tag, "CODECS").unwrap().starts_with("avc1."),
                    "{tag}"
                );
            }
            None => assert!(!tag.contains("RESOLUTION"), "{tag}"),
        }
    }

    // Let a few segments pass, then check each rendition.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let scratch = switchyard_tests::scratch_dir("broadcast");
    std::fs::create_dir_all(&scratch).unwrap();
    for (i, (_, uri)) in variants.iter().enumerate() {
        let name = uri.split('/').nth(1).unwrap();
        let dir = format!(
            "{}/watch/{ROOM}/{}",
            base(port),
            uri.trim_end_matches("/index.m3u8")
        );
        let (status, text, headers) = get_text(&format!("{dir}/index.m3u8"), None).await;
        assert_eq!(status, 200, "{text}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=1")
        );
        let (complete, (msn, part)) = check_media_playlist(name, &text);
        // Blocking reload: the request for the hinted part waits until it exists.
        let asked = Instant::now();
        let (status, blocked, _) = get_text(
            &format!("{dir}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{blocked}");
        assert!(
            blocked.contains(&format!("s{msn}.p{part}.m4s"))
                || blocked.contains(&format!("s{msn}.m4s")),
            "{name}: the blocking reload came back without s{msn}.p{part}: {blocked}"
        );
        println!(
            "{name}: blocking reload for s{msn}.p{part} answered in {:?}",
            asked.elapsed()
        );
        // The init segment and the newest complete segment, as a player would fetch them.
        let init = get_bytes(&format!("{dir}/init.mp4")).await;
        let segment = get_bytes(&format!("{dir}/s{complete}.m4s")).await;
        let file = scratch.join(format!("{name}.mp4"));
        std::fs::write(&file, [init, segment].concat()).unwrap();
        let streams = probe(&file);
        println!("{name}: ffprobe {streams:?}");
        assert!(
            streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
            "{name}: {streams:?}"
        );
        let video = streams.iter().find(|s| s.0 == "video");
        match LADDER_SIZES[i] {
            Some((w, h)) => {
                let video = video.unwrap_or_else(|| panic!("{name}: no video: {streams:?}"));
                assert_eq!(
                    (video.1.as_str(), video.2, video.3),
                    ("h264", w, h),
                    "{name}"
                );
            }
            None => assert!(video.is_none(), "{name}: {streams:?}"),
        }
    }

    // The watch page plays it live; how far behind the call, read from the clock's picture.
    let inside = link.driver().await.expect("chromedriver in the namespace");
    let viewer = inside.browser().await.expect("a browser in the namespace");
    viewer
        .goto(&format!("http://{}:{port}/watch/{ROOM}", link.host_ip))
        .await
        .expect("the watch page");
    let (state, after) = wait_watch(&viewer, "the watch page plays", 40, |state| {
        state["playing"] == true && state["currentTime"].as_f64().unwrap_or(0.0) > 2.0
    })
    .await;
    println!("the watch page plays after {after:?}: {state}");
    let mut delays = Vec::new();
    let start = Instant::now();
    while delays.len() < 20 && start.elapsed() < Duration::from_secs(30) {
        if let Some(ms) = eval(&viewer, READ_CLOCK)
            .await
            .ok()
            .and_then(|v| v.as_u64())
        {
            delays.push(ms);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    delays.sort_unstable();
    assert!(
        delays.len() >= 5,
        "the clock could not be read from the broadcast: {delays:?}"
    );
    let state = watch_state(&viewer).await;
    println!(
        "behind the call (clock read back from the picture, {} samples): median {} ms, \
         min {} ms, max {} ms; hls.js's own latency estimate {} s, playing {}p",
        delays.len(),
        delays[delays.len() / 2],
        delays[0],
        delays[delays.len() - 1],
        state["latency"],
        state["height"],
    );
    assert!(delays[delays.len() / 2] < 20_000, "{delays:?}");
    // Where the delay comes from: how far behind a part already is when the server has it.
    let dir_360 = format!(
        "{}/watch/{ROOM}/{}",
        base(port),
        variants[2].1.trim_end_matches("/index.m3u8")
    );
    let mut packaged = Vec::new();
    for _ in 0..4 {
        if let Some(ms) = delay_at_packaging(&dir_360, &scratch).await {
            packaged.push(ms);
        }
    }
    packaged.sort_unstable();
    println!(
        "behind the call when the server has the part (last picture of a part, 360p): {packaged:?} ms"
    );

    // The quality menu: the viewer picks 1080p, then 360p, and gets each.
    for (value, height) in [("2", 1080), ("0", 360)] {
        eval(
            &viewer,
            &format!(
                "const q = document.getElementById('watch-quality'); q.value = '{value}'; \
                 q.dispatchEvent(new Event('change')); return q.value"
            ),
        )
        .await
        .expect("the quality menu");
        let what = format!("picking {height}p in the quality menu plays it");
        let (_, after) = wait_watch(&viewer, &what, 30, |state| {
            state["height"] == height && state["videoHeight"] == height
        })
        .await;
        println!("picked {height}p: playing it after {after:?}");
    }

    // Adaptive: back on Auto it climbs to 720p or more; then the viewer's link is capped at
    // 1.5 Mbit/s (720p needs 2.9) and hls.js switches down by itself.
    eval(
        &viewer,
        "const q = document.getElementById('watch-quality'); q.value = '-1'; \
         q.dispatchEvent(new Event('change')); return q.value",
    )
    .await
    .expect("the quality menu");
    let what = "on Auto, hls.js climbs to 720p or more on an open link";
    let (state, after) = wait_watch(&viewer, what, 60, |state| {
        state["autoLevel"] == true && playing_height(state) >= 720
    })
    .await;
    let top = playing_height(&state);
    println!("Auto: playing {top}p after {after:?}");
    link.set_downlink(Impairment {
        rate_kbit: Some(1500),
        queue_limit: Duration::from_millis(300),
        ..Impairment::default()
    });
    let what = "hls.js switches down behind a 1.5 Mbit/s link";
    let (down, after) = wait_watch(&viewer, what, 60, |state| {
        (1..top).contains(&playing_height(state))
    })
    .await;
    println!(
        "capped at 1.5 Mbit/s: switched down to {}p after {after:?} (its estimate {:.2} Mbit/s)",
        down["height"],
        down["bandwidthEstimate"].as_f64().unwrap_or(0.0) / 1e6
    );
    link.clear();

    // Stop: the playlists end; what it cost.
    let (status, stopping) = api(port, &admin, reqwest::Method::DELETE, None).await;
    assert_eq!(status, 200, "{stopping}");
    let broadcast_seconds = t0.elapsed().as_secs_f64();
    let ended = wait_state(port, &admin, "ended", Duration::from_secs(30)).await;
    let (_, last, _) = get_text(
        &format!("{}/watch/{ROOM}/{}", base(port), variants[1].1),
        None,
    )
    .await;
    assert!(last.trim_end().ends_with("#EXT-X-ENDLIST"), "{last}");
    let cpu = ended["cpuSeconds"].as_f64().expect("the cost is reported");
    let memory = ended["peakMemoryBytes"]
        .as_u64()
        .expect("the peak memory is reported");
    println!(
        "broadcast of a three-person call for {broadcast_seconds:.0} s: {cpu:.1} s of CPU \
         ({:.1} s per minute), peak memory {} MiB (sidecar + ffmpeg)",
        cpu * 60.0 / broadcast_seconds,
        memory / (1024 * 1024)
    );

    // A private broadcast with the speaker layout: no token, no playlist.
    let (status, private) = api(
        port,
        &admin,
        reqwest::Method::POST,
        Some(json!({"public": false, "layout": "speaker"})),
    )
    .await;
    assert_eq!(status, 201, "{private}");
    assert_eq!(private["layout"], "speaker");
    wait_state(port, &admin, "live", Duration::from_secs(20)).await;
    let (status, refused, _) = get_text(&master_url, None).await;
    assert_eq!(status, 401, "{refused}");
    println!("without a token: {status} {}", refused.trim());
    let viewer_token = server
        .tokens
        .mint("viewer", "Viewer", ROOM, Grants::default(), 600);
    let (status, allowed, headers) = get_text(&master_url, Some(&viewer_token)).await;
    assert_eq!(status, 200, "{allowed}");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let other_room = server
        .tokens
        .mint("viewer", "Viewer", "elsewhere", Grants::default(), 600);
    let (status, _, _) = get_text(&master_url, Some(&other_room)).await;
    assert_eq!(status, 403);
    let (status, _) = api(port, &admin, reqwest::Method::DELETE, None).await;
    assert_eq!(status, 200);
    wait_state(port, &admin, "ended", Duration::from_secs(30)).await;

    for page in pages.into_iter().chain([clock, viewer]) {
        let _ = page.close().await;
    }
}

/// The clock in a 640x360 grey picture (as READ_CLOCK reads it), in ms mod 2^24.
fn read_clock(luma: &[u8]) -> Option<u64> {
    let guard = [1, 0, 1, 0, 1, 1, 0, 0];
    for (x0, y0) in [(0, 0), (320, 0), (160, 180), (0, 180), (320, 180)] {
        let bits: Vec<u64> = (0..32)
            .map(|i| {
                let x = x0 + (i % 8) * 40 + 20;
                let y = y0 + (i / 8) * 45 + 22;
                u64::from(luma[y * 640 + x] > 128)
            })
            .collect();
        if guard.iter().zip(&bits[24..]).all(|(g, b)| g == b) {
            return Some((0..24).map(|i| bits[i] << i).sum());
        }
    }
    None
}

fn now_mod() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now.as_millis() % (1 << 24)) as u64
}

/// How far behind the call a part is when the server has it: the next segment's first part is
/// fetched as soon as it exists (a blocking preload request), its last picture decoded with
/// ffmpeg and the clock read from it.
async fn delay_at_packaging(dir: &str, scratch: &std::path::Path) -> Option<u64> {
    let (_, text, _) = get_text(&format!("{dir}/index.m3u8"), None).await;
    let (_, (msn, _)) = check_media_playlist("360p", &text);
    let part = reqwest::get(format!("{dir}/s{}.p0.m4s", msn + 1))
        .await
        .ok()?;
    if part.status() != 200 {
        return None;
    }
    let part = part.bytes().await.ok()?;
    let arrived = now_mod();
    let init = get_bytes(&format!("{dir}/init.mp4")).await;
    let file = scratch.join("part.mp4");
    std::fs::write(&file, [init, part.to_vec()].concat()).ok()?;
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args([
            "-f", "rawvideo", "-pix_fmt", "gray", "-s", "640x360", "pipe:1",
        ])
        .output()
        .ok()?;
    let last = out.stdout.chunks_exact(640 * 360).last()?;
    let clock = read_clock(last)?;
    Some((arrived + (1 << 24) - clock) % (1 << 24))
}

const LADDER_SIZES: [Option<(u64, u64)>; 4] = [
    Some((1920, 1080)),
    Some((1280, 720)),
    Some((640, 360)),
    None,
];
