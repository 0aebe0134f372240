//! Screen sharing beside the camera in real browsers: a Chromium page, then a Firefox page,
//! shares an animated canvas (`shareScreen(canvas.captureStream())`); the receivers decode its
//! camera and its screen (at the canvas's full 1280x720), the server names them `camera` and
//! `screen`, and stopping the share removes only the screen. Never fakes a browser or the SFU.

use std::time::{Duration, Instant};

use fantoccini::Client;
use protocol::TrackKind;
use protocol::admin::RoomDetail;
use serde_json::{Value, json};
use switchyard_tests::admin::admin_grants;
use switchyard_tests::browser::{Driver, Firefox, wait_for_script};
use switchyard_tests::media::{
    CANVAS_SCREEN, START, machine_ipv4, num, run, track_stats, wait_connected, wait_frames,
    wait_video_track,
};
use switchyard_tests::{Server, start_server, wait_for};

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

    for page in chromium {
        let _ = page.close().await;
    }
    let _ = firefox.page.clone().close().await;
}

/// `owner`'s video tracks as the server lists them, when they are exactly `sources` (by
/// source, each once): `page`'s list, which the server's `joined`, `trackPublished` and
/// `trackUnpublished` build, as `(id, source)`; and the admin API's room detail must list the
/// same ids. `Err` says what both list instead.
async fn listed_video(
    server: &Server,
    room: &str,
    page: &Client,
    owner: &str,
    sources: &[&str],
) -> Result<Vec<(String, String)>, String> {
    let script = "const p = window.switchyard.client.participants.get(arguments[0]); \
         return p ? p.tracks.filter(t => t.kind === 'video').map(t => [t.id, t.source]) : []";
    let listed = run(page, script, vec![json!(owner)])
        .await
        .map_err(|e| format!("{e:#}"))?;
    let mut listed: Vec<(String, String)> =
        serde_json::from_value(listed).map_err(|e| e.to_string())?;
    listed.sort_by(|a, b| a.1.cmp(&b.1));
    let token = server.tokens.mint("ops", "Ops", "", admin_grants(), 600);
    let detail: RoomDetail = reqwest::Client::new()
        .get(format!("http://{}/api/rooms/{room}", server.http_addr))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let mut admin: Vec<&str> = detail
        .participants
        .iter()
        .filter(|p| p.id == owner)
        .flat_map(|p| p.tracks.iter())
        .filter(|t| t.kind == TrackKind::Video)
        .map(|t| t.id.as_str())
        .collect();
    admin.sort_unstable();
    let mut ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    let named: Vec<&str> = listed.iter().map(|(_, s)| s.as_str()).collect();
    if named == sources && ids == admin {
        Ok(listed)
    } else {
        Err(format!(
            "the page lists {listed:?}, the admin API {admin:?}"
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_shared_from_firefox_comes_beside_its_camera() {
    // Media on this machine's own address, which Firefox reaches (it skips loopback).
    let ip = machine_ipv4();
    let server = start_server(Some(ip), |_| {}).await;
    let port = server.http_addr.port();
    let room = "firefox-screens";
    let driver = Driver::start().await.expect("chromedriver");
    let firefox = Firefox::start().await.expect("firefox");
    let chromium = driver
        .call_pages(port, room, &["Rita"], "")
        .await
        .expect("page loads");
    firefox
        .page
        .goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Fiona"))
        .await
        .expect("Firefox loads the page");
    let (rita, fiona) = (&chromium[0], &firefox.page);
    joined(rita, 1).await;
    let fiona_id = joined(fiona, 1).await;
    let camera = wait_video_track(rita, &fiona_id, "camera").await;
    let camera_id = camera["id"].as_str().expect("camera id").to_owned();
    wait_frames(rita, &camera_id, 0.0, 15.0, START).await;
    println!("media announced on {ip}; Fiona {fiona_id} sends camera {camera_id}");

    // Firefox shares: its renegotiating offer names the new track `screen`, so the camera
    // stays (same server track) and Chromium decodes both, the screen whole.
    let canvas = share_canvas(fiona).await;
    println!("Fiona shares canvas track {canvas}");
    both_decode(rita, "Rita (Chromium)", &fiona_id, Some(SCREEN)).await;
    let both = wait_for(
        "the server to list Fiona's camera and screen",
        Duration::from_secs(10),
        async || listed_video(&server, room, rita, &fiona_id, &["camera", "screen"]).await,
    )
    .await;
    assert_eq!(both[0].0, camera_id, "the share did not replace the camera");
    println!("server lists Fiona's video as {both:?}");

    // Stopping removes only the screen; the camera keeps decoding.
    stop_and_gone(fiona, &fiona_id, &[(rita, "Rita")]).await;
    let left = wait_for(
        "the server to list only Fiona's camera",
        Duration::from_secs(10),
        async || listed_video(&server, room, rita, &fiona_id, &["camera"]).await,
    )
    .await;
    assert_eq!(left[0].0, camera_id, "the camera is the same track");
    let now = track_stats(rita, &camera_id)
        .await
        .expect("Rita still receives the camera");
    let more = wait_frames(rita, &camera_id, num(&now, "framesDecoded"), 30.0, START).await;
    println!(
        "after the share: server lists {left:?}; Rita decoded camera frames {} then {} ({}x{})",
        num(&now, "framesDecoded"),
        num(&more, "framesDecoded"),
        num(&more, "frameWidth"),
        num(&more, "frameHeight"),
    );

    for page in chromium {
        let _ = page.close().await;
    }
    let _ = firefox.page.clone().close().await;
}
