//! Screen sharing beside the camera in real browsers: a Chromium page shares an animated
//! canvas (`shareScreen(canvas.captureStream())`) and another Chromium page and a Firefox page
//! decode both its camera (simulcast) and its screen (the screen at the canvas's full
//! 1280x720). Stopping the share removes the screen at every receiver. Never fakes a browser or the SFU; the canvas stands in for a real screen.

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use switchyard_tests::browser::{Driver, Firefox, wait_for_script};
use switchyard_tests::media::{
    CANVAS_SCREEN, START, machine_ipv4, num, run, track_stats, wait_connected, wait_frames,
    wait_video_track,
};
use switchyard_tests::{start_server, wait_for};

/// The canvas's size: a screen is sent as one layer, at its own size.
const SCREEN: (f64, f64) = (1280.0, 720.0);

/// Draws the canvas in `page` and shares its track; returns that track's id.
async fn share_canvas(page: &Client) -> String {
    let track = run(page, CANVAS_SCREEN, vec![])
        .await
        .expect("canvas drawn");
    run(
        page,
        "return window.switchyard.shareScreen(window.__canvasTrack).then(() => \
         window.switchyard.client.screenTrack && window.switchyard.client.screenTrack.id)",
        vec![],
    )
    .await
    .expect("shareScreen resolves");
    track.as_str().expect("a track id").to_owned()
}

/// At `page` (named `name`), `owner`'s camera and screen both decode and the screen reaches
/// `full` size when given (else any size); returns what was measured.
async fn both_decode(page: &Client, name: &str, owner: &str, full: Option<(f64, f64)>) -> String {
    let started = Instant::now();
    let screen = wait_video_track(page, owner, "screen").await;
    let camera = wait_video_track(page, owner, "camera").await;
    let (screen_id, camera_id) = (
        screen["id"].as_str().expect("screen id"),
        camera["id"].as_str().expect("camera id"),
    );
    assert_ne!(screen_id, camera_id, "two tracks");
    assert_eq!(
        screen["layers"],
        Value::Null,
        "a screen is one layer: {screen}"
    );
    let listed = started.elapsed();
    let screen_stats = wait_frames(page, screen_id, 0.0, 30.0, START).await;
    let screen_at = started.elapsed();
    let camera_stats = wait_frames(page, camera_id, 0.0, 30.0, START).await;
    let sized = wait_for(
        &format!("{name}: the screen at {full:?}"),
        Duration::from_secs(20),
        async || match track_stats(page, screen_id).await {
            Some(s)
                if full.is_none_or(|(w, h)| {
                    num(&s, "frameWidth") == w && num(&s, "frameHeight") == h
                }) =>
            {
                Ok(s)
            }
            other => Err(format!("stats now {other:?}")),
        },
    )
    .await;
    // Both keep decoding side by side.
    let screen_more = wait_frames(page, screen_id, num(&sized, "framesDecoded"), 15.0, START).await;
    let camera_more = wait_frames(
        page,
        camera_id,
        num(&camera_stats, "framesDecoded"),
        15.0,
        START,
    )
    .await;
    let stats_source = screen_more["source"].clone();
    assert_eq!(
        stats_source, "screen",
        "the stats name the source: {screen_more}"
    );
    let report = format!(
        "{name} <- {owner}: listed after {listed:?}, screen decoding after {screen_at:?} \
         ({} then {} frames, {}x{}, {} {}), camera {} then {} frames {}x{} ({})",
        num(&screen_stats, "framesDecoded"),
        num(&screen_more, "framesDecoded"),
        num(&screen_more, "frameWidth"),
        num(&screen_more, "frameHeight"),
        screen["codec"],
        screen["source"],
        num(&camera_stats, "framesDecoded"),
        num(&camera_more, "framesDecoded"),
        num(&camera_more, "frameWidth"),
        num(&camera_more, "frameHeight"),
        camera["codec"],
    );
    println!("{report}");
    report
}

/// Stops `sharer`'s share and waits until every receiver lost the screen track (listed
/// tracks, decoding stats and, in the call page, the screen tile).
async fn stop_and_gone(sharer: &Client, owner: &str, receivers: &[(&Client, &str)]) {
    let stopped = run(sharer, "return window.switchyard.stopScreen()", vec![])
        .await
        .expect("stopScreen");
    assert_eq!(stopped, true, "a share was running");
    let at = Instant::now();
    let script = "const s = window.switchyard, owner = arguments[0]; \
         const p = s.client.participants.get(owner); \
         return s.stats().then(all => ({ \
           listed: !p || p.tracks.some(t => t.source === 'screen'), \
           tile: s.tiles().some(t => t.kind === 'screen' && t.participantId === owner), \
           stats: all.some(x => x.participantId === owner && x.source === 'screen'), \
           tracks: p ? p.tracks.map(t => t.source) : null }))";
    for (page, name) in receivers {
        let left = wait_for(
            &format!("{name}: the screen to go (listed, tile, stats)"),
            Duration::from_secs(10),
            async || {
                let r = run(page, script, vec![json!(owner)])
                    .await
                    .map_err(|e| e.to_string())?;
                let gone = ["listed", "tile", "stats"].iter().all(|k| r[*k] == false);
                if gone { Ok(r) } else { Err(r.to_string()) }
            },
        )
        .await;
        println!(
            "{name}: {owner}'s screen gone {:?} after stopping; tracks left {}",
            at.elapsed(),
            left["tracks"]
        );
    }
}

/// Waits until `page` lists `others` other participants; returns its own participant id.
async fn joined(page: &Client, others: usize) -> String {
    let id = wait_connected(page).await;
    wait_for_script(
        page,
        "the others to be listed",
        START,
        &format!("return window.switchyard.client.participants.size === {others}"),
    )
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_beside_the_camera_reaches_chromium_and_firefox() {
    // Media on this machine's own address, which Firefox reaches (it skips loopback).
    let ip = machine_ipv4();
    let server = start_server(Some(ip), |_| {}).await;
    let port = server.http_addr.port();
    let room = "screens";
    let driver = Driver::start().await.expect("chromedriver");
    let firefox = Firefox::start().await.expect("firefox");
    let chromium = driver
        .call_pages(port, room, &["Sam", "Rita"], "")
        .await
        .expect("pages load");
    firefox
        .page
        .goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Fiona"))
        .await
        .expect("Firefox loads the page");
    let (sam, rita, fiona) = (&chromium[0], &chromium[1], &firefox.page);
    let sam_id = joined(sam, 2).await;
    joined(rita, 2).await;
    let fiona_id = joined(fiona, 2).await;
    println!("media announced on {ip}; Sam {sam_id}, Fiona {fiona_id}");

    // Chromium shares: the other Chromium and Firefox get camera and screen, the screen whole.
    let canvas = share_canvas(sam).await;
    println!("Sam shares canvas track {canvas}");
    both_decode(rita, "Rita (Chromium)", &sam_id, Some(SCREEN)).await;
    both_decode(fiona, "Fiona (Firefox)", &sam_id, Some(SCREEN)).await;
    stop_and_gone(sam, &sam_id, &[(rita, "Rita"), (fiona, "Fiona")]).await;
    // (A screen shared *from* Firefox is not named in its next offer's `sources` yet, so it
    // replaces the camera there: a known gap, see the issue note.)

    for page in chromium {
        let _ = page.close().await;
    }
    let _ = firefox.page.clone().close().await;
}
