//! Simulcast layers per receiver in real Chromium call pages: a receiver capped through
//! `setTrackSettings` to q, h, f and back to q gets each layer's picture size and keeps
//! decoding with no freeze over 0.5 s (VP8 and H.264); a hidden tile costs almost nothing and
//! its video comes back within a second of being shown. Never fakes a browser or the SFU.

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use switchyard_tests::browser::{Driver, wait_for_script};
use switchyard_tests::media::{
    START, downlink, num, run, save_screenshot, track_stats, video_pixels, wait_connected,
    wait_frames, wait_video_track,
};
use switchyard_tests::{start_local_server, wait_for};

/// One call at a time: two of them on two cores starve each other's encoders.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest a switch may freeze the receiver's video (inbound-rtp totalFreezesDuration).
const MAX_FREEZE_SECS: f64 = 0.5;

/// A call of two pages: the publisher's camera as the receiver sees it.
struct Call {
    publisher: Client,
    receiver: Client,
    /// The publisher's participant id.
    owner: String,
    /// The server's id of the publisher's camera track.
    track: String,
    /// Its TrackInfo at the receiver.
    info: Value,
}

/// A publisher (`codec` query, e.g. "&codec=h264") and a receiver page in `room`, the
/// receiver decoding the publisher's camera.
async fn call(driver: &Driver, port: u16, room: &str, codec: &str) -> Call {
    // The publisher is alone in the room until it publishes; then the receiver comes.
    let publisher = driver.browser().await.expect("browser");
    publisher
        .goto(&format!(
            "http://127.0.0.1:{port}/room/{room}?name=Pia{codec}"
        ))
        .await
        .expect("publisher page loads");
    let pia = wait_connected(&publisher).await;
    let receiver = driver.browser().await.expect("browser");
    receiver
        .goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Rex"))
        .await
        .expect("receiver page loads");
    wait_connected(&receiver).await;
    let info = wait_video_track(&receiver, &pia, "camera").await;
    let track = info["id"].as_str().expect("a track id").to_owned();
    let frames = wait_frames(&receiver, &track, 0.0, 30.0, START).await;
    println!(
        "camera {track} ({}, layers {}) decoding: {}x{} after {} frames",
        info["codec"],
        info["layers"],
        num(&frames, "frameWidth"),
        num(&frames, "frameHeight"),
        num(&frames, "framesDecoded")
    );
    Call {
        publisher,
        receiver,
        owner: pia,
        track,
        info,
    }
}

/// The frame width each layer of a 1280x720 camera has.
fn layer_width(layer: &str) -> f64 {
    match layer {
        "q" => 320.0,
        "h" => 640.0,
        _ => 1280.0,
    }
}

/// Caps the receiver at `layer`, waits for that layer's picture size, then for 60 more frames;
/// asserts the freezes meanwhile stay under [`MAX_FREEZE_SECS`] and returns what it measured.
async fn switch_to(receiver: &Client, track: &str, layer: &str, shot: &str) -> String {
    let before = track_stats(receiver, track).await.expect("inbound stats");
    let asked = Instant::now();
    run(
        receiver,
        "return window.switchyard.client.setTrackSettings(arguments[0], \
         {visible: true, width: 1280, height: 720, maxLayer: arguments[1]})",
        vec![json!(track), json!(layer)],
    )
    .await
    .expect("setTrackSettings");
    let want = layer_width(layer);
    // An upgrade may wait for a probe to raise the estimate (about 10 s, docs/signaling.md).
    let at_size = wait_for(
        &format!("layer {layer}: frames {want} wide"),
        Duration::from_secs(20),
        async || match track_stats(receiver, track).await {
            Some(s) if (num(&s, "frameWidth") - want).abs() <= want * 0.05 => Ok(s),
            Some(s) => Err(format!("stats now {s}; {}", downlink(receiver).await)),
            None => Err("the track is not received".to_owned()),
        },
    )
    .await;
    let switched_after = asked.elapsed();
    let (path, bytes) = save_screenshot(receiver, shot).await;
    let pixels = video_pixels(receiver, track).await;
    let after = wait_frames(
        receiver,
        track,
        num(&at_size, "framesDecoded"),
        60.0,
        Duration::from_secs(20),
    )
    .await;
    let layer_told = run(
        receiver,
        "return window.switchyard.downlink().layers[arguments[0]] ?? null",
        vec![json!(track)],
    )
    .await
    .unwrap_or(Value::Null);
    let freezes = num(&after, "freezeCount") - num(&before, "freezeCount");
    let frozen = num(&after, "totalFreezesDuration") - num(&before, "totalFreezesDuration");
    let report = format!(
        "-> {layer}: {}x{} after {switched_after:?} (downlinkChanged says {layer_told}), \
         frames {} -> {}, {freezes} freezes totalling {frozen:.3} s, pixels {pixels:?}, \
         screenshot {} ({bytes} bytes)",
        num(&after, "frameWidth"),
        num(&after, "frameHeight"),
        num(&before, "framesDecoded"),
        num(&after, "framesDecoded"),
        path.display()
    );
    println!("{report}");
    assert!(
        num(&after, "framesDecoded") > num(&at_size, "framesDecoded"),
        "frames keep coming after the switch: {report}"
    );
    assert!(
        frozen < MAX_FREEZE_SECS,
        "switching to {layer} froze the video for {frozen:.3} s: {report}"
    );
    if let Some(p) = &pixels {
        let spread = p["spread"].as_f64().unwrap_or(0.0);
        assert!(
            spread > 4.0,
            "the picture after switching to {layer} is uniform (black or garbage): {p}"
        );
    }
    report
}

/// Forces the receiver through q, h, f and q again with `codec` on the publisher page.
async fn forced_through_layers(codec: &str, expect_codec: &str, label: &str) {
    let _serial = SERIAL.lock().await;
    // Media on 127.0.0.1 only: other tests' network interfaces come and go on this machine.
    let server = start_local_server().await;
    let driver = Driver::start().await.expect("chromedriver");
    let port = server.http_addr.port();
    let Call {
        publisher,
        receiver,
        track,
        info,
        ..
    } = call(&driver, port, label, codec).await;
    assert_eq!(info["codec"], expect_codec, "the camera's codec: {info}");
    // Chromium starts a layer once its uplink estimate allows it; each new one is announced.
    let started = Instant::now();
    let layers = wait_for_script(
        &receiver,
        "the publisher's three layers to be announced",
        START,
        &format!(
            "const p = [...window.switchyard.client.participants.values()][0]; \
             const t = p && p.tracks.find(t => t.id === {}); \
             return t && (t.layers || []).join('') === 'qhf' ? t.layers : null",
            json!(track)
        ),
    )
    .await;
    println!(
        "layers {layers} announced {:?} after decoding began",
        started.elapsed()
    );
    for (i, layer) in ["q", "h", "f", "q"].into_iter().enumerate() {
        switch_to(&receiver, &track, layer, &format!("{label}-{i}-{layer}")).await;
    }
    for page in [publisher, receiver] {
        let _ = page.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_receiver_forced_through_q_h_f_q_keeps_decoding() {
    forced_through_layers("&codec=vp8", "VP8", "simulcast-vp8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_receiver_forced_through_q_h_f_q_keeps_decoding() {
    forced_through_layers("&codec=h264", "H264", "simulcast-h264").await;
}

/// Hides (`display: none`, seen by the page's IntersectionObserver) or shows the remote tile
/// of `owner`; resolves with the time it did so (`performance.now()`).
const SET_TILE_SHOWN: &str = r#"
const tile = document.querySelector(`#remote-grid .tile.camera[data-participant-id="${arguments[0]}"]`);
if (!tile) throw new Error('no camera tile for ' + arguments[0]);
tile.style.display = arguments[1] ? '' : 'none';
return performance.now();
"#;

/// Polls the track's framesDecoded every 10 ms from `since` (a `performance.now()`) until it
/// passes `base`; resolves with the milliseconds that took (or null after 10 s).
const FRAMES_RISE_AFTER: &str = r#"
const [track, base, since] = arguments;
for (;;) {
  const s = (await window.switchyard.stats()).find((x) => x.trackId === track);
  if (s && s.framesDecoded > base) return performance.now() - since;
  if (performance.now() - since > 10000) return null;
  await new Promise((r) => setTimeout(r, 10));
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_tile_receives_almost_nothing_and_comes_back_within_a_second() {
    let _serial = SERIAL.lock().await;
    // Media on 127.0.0.1 only: other tests' network interfaces come and go on this machine.
    let server = start_local_server().await;
    let driver = Driver::start().await.expect("chromedriver");
    let port = server.http_addr.port();
    let Call {
        publisher,
        receiver,
        owner: pia,
        track,
        ..
    } = call(&driver, port, "hidden-tile", "").await;

    // Hide the tile the way a page does it (display: none), and wait until the page told the
    // server (its trackSettings) and the server said the track is paused (downlinkChanged).
    let hidden_at = Instant::now();
    run(&receiver, SET_TILE_SHOWN, vec![json!(pia), json!(false)])
        .await
        .expect("tile hidden");
    wait_for(
        "the page to send visible: false and the server to pause the track",
        Duration::from_secs(10),
        async || {
            let r = run(
                &receiver,
                "const s = window.switchyard.client.trackSettings.get(arguments[0]); \
                 const d = window.switchyard.downlink().layers; \
                 return {visible: s ? s.visible : null, layer: arguments[0] in d ? d[arguments[0]] : 'unknown'}",
                vec![json!(track)],
            )
            .await
            .map_err(|e| e.to_string())?;
            if r["visible"] == false && r["layer"].is_null() {
                Ok(())
            } else {
                Err(r.to_string())
            }
        },
    )
    .await;
    println!("paused {:?} after hiding the tile", hidden_at.elapsed());

    // Sampling window: inbound bytes of the hidden track over 5 s.
    let window = Duration::from_secs(5);
    let before = track_stats(&receiver, &track).await.expect("inbound stats");
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = track_stats(&receiver, &track).await.expect("inbound stats");
    let secs = started.elapsed().as_secs_f64();
    let bytes = num(&after, "bytesReceived") - num(&before, "bytesReceived");
    let kbps = bytes * 8.0 / secs / 1000.0;
    let frames = num(&after, "framesDecoded") - num(&before, "framesDecoded");
    println!(
        "hidden for {secs:.2} s: {bytes} bytes ({kbps:.2} kbit/s), {frames} frames decoded, {} packets",
        num(&after, "packetsReceived") - num(&before, "packetsReceived")
    );
    assert!(kbps < 10.0, "a hidden tile still receives {kbps:.2} kbit/s");

    // Show it again: the next decoded frame comes within a second.
    let base = num(&after, "framesDecoded");
    let shown = run(&receiver, SET_TILE_SHOWN, vec![json!(pia), json!(true)])
        .await
        .expect("tile shown");
    let back = run(
        &receiver,
        FRAMES_RISE_AFTER,
        vec![json!(track), json!(base), shown],
    )
    .await
    .expect("frames watched");
    let back_ms = back.as_f64();
    println!("video back {back_ms:?} ms after showing the tile");
    assert!(
        back_ms.is_some_and(|ms| ms < 1000.0),
        "the video came back after {back_ms:?} ms"
    );
    let resumed = wait_frames(&receiver, &track, base, 30.0, Duration::from_secs(10)).await;
    println!(
        "decoding again: {}x{}, {} frames",
        num(&resumed, "frameWidth"),
        num(&resumed, "frameHeight"),
        num(&resumed, "framesDecoded")
    );
    for page in [publisher, receiver] {
        let _ = page.close().await;
    }
}
