//! The admin dashboard (`/admin`) in headless Chromium during a two-person call: it signs in
//! with an admin token, lists both participants live from the event stream, draws their
//! bitrate charts, mutes a track through its own button, and is screenshotted for a person to
//! look at (the path is printed).

use std::time::{Duration, Instant};

use protocol::Grants;
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval, wait_for_script};
use switchyard_tests::start_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_live_call_and_mutes_a_track() {
    let server = start_server(None, |_| {}).await;
    let room = "dashboard";
    let driver = Driver::start().await.expect("chromedriver");
    let _callers = driver
        .call_pages(server.http_addr.port(), room, &["Alice", "Bob"], "")
        .await
        .expect("call pages load");
    let admin = server.tokens.mint(
        "ops",
        "Ops",
        "",
        Grants {
            room_admin: true,
            ..Grants::default()
        },
        600,
    );
    let dashboard = driver.browser().await.expect("browser");
    dashboard
        .goto(&format!(
            "http://127.0.0.1:{}/admin?token={admin}",
            server.http_addr.port()
        ))
        .await
        .expect("dashboard loads");

    // Live, with both participants, their video and a few chart samples each.
    let start = Instant::now();
    let rooms = loop {
        let state = eval(&dashboard, "return window.switchyardAdmin.state()")
            .await
            .unwrap_or_default();
        let rooms = eval(&dashboard, "return window.switchyardAdmin.rooms()")
            .await
            .unwrap_or_default();
        let samples = eval(
            &dashboard,
            "const r = window.switchyardAdmin.rooms()[0]; if (!r) return 0; \
             return Math.min(...r.participants.map(p => \
               (window.switchyardAdmin.history(r.name, p.identity) || []).length))",
        )
        .await
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
        let participants = rooms[0]["participants"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let video_everywhere = participants.len() == 2
            && participants.iter().all(|p| {
                p["tracks"].as_array().is_some_and(|tracks| {
                    tracks
                        .iter()
                        .any(|t| t["kind"] == "video" && t["bitrate"].as_u64().unwrap_or(0) > 0)
                })
            });
        if state == "live" && video_everywhere && samples >= 3.0 {
            break rooms;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "dashboard not live: state {state}, samples {samples}, rooms {rooms}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("dashboard live after {:?}", start.elapsed());
    // The charts are drawn on the dashboard's next render after the samples arrive.
    let charts = wait_for_script(
        &dashboard,
        "both bitrate charts drawn with at least three points",
        Duration::from_secs(10),
        "const n = [...document.querySelectorAll('svg[data-chart=bitrate] polyline')]\
           .map(p => (p.getAttribute('points') || '').trim().split(/\\s+/).length); \
         return n.length >= 2 && n.every(k => k >= 3) ? n : null",
    )
    .await;
    println!("bitrate chart points per participant: {charts}");
    let png = dashboard.screenshot().await.expect("screenshot");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    std::fs::write(&path, &png).unwrap();
    println!(
        "dashboard screenshot: {} ({} bytes)",
        path.display(),
        png.len()
    );
    assert!(png.len() > 20_000, "a real page, not a blank one");

    // Mute Alice's video with the dashboard's own button and confirm in its dialog.
    let alice = rooms[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Alice")
        .cloned()
        .expect("Alice listed");
    let identity = alice["identity"].as_str().unwrap().to_owned();
    let video = alice["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "video")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_owned();
    let clicked = eval(
        &dashboard,
        &format!(
            "const b = document.querySelector('[data-identity=\"{identity}\"] tr[data-track=\"{video}\"] button[data-action=mute]'); \
             if (!b) return false; b.click(); return true;"
        ),
    )
    .await
    .unwrap();
    assert_eq!(clicked, Value::Bool(true), "the mute button exists");
    // Confirm once the dialog is up.
    wait_for_script(
        &dashboard,
        "the confirm dialog",
        Duration::from_secs(5),
        "if (document.getElementById('admin-dialog').hidden) return false; \
         document.querySelector('button[data-action=confirm]').click(); return true;",
    )
    .await;
    let start = Instant::now();
    loop {
        let muted = eval(
            &dashboard,
            &format!(
                "const r = window.switchyardAdmin.rooms()[0]; \
                 const p = r && r.participants.find(p => p.identity === '{identity}'); \
                 const t = p && p.tracks.find(t => t.id === '{video}'); return !!(t && t.muted);"
            ),
        )
        .await
        .unwrap();
        if muted == Value::Bool(true) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the track never showed muted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("muted from the dashboard after {:?}", start.elapsed());
}
