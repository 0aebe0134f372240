//! Firefox and Chromium in one call through the web demo: each decodes the other's video and
//! receives its audio. Firefox offers no H.264 here and gathers no loopback candidates, so this
//! proves the room works with VP8 and with the machine's other interface.

use std::time::{Duration, Instant};

use switchyard_tests::browser::{Driver, Firefox, media_stats};
use switchyard_tests::start_server;

/// (video frames decoded, audio packets received) from the other participant.
async fn received(page: &fantoccini::Client) -> (u64, u64) {
    let mut frames = 0;
    let mut audio = 0;
    for s in &media_stats(page).await {
        match s["kind"].as_str() {
            Some("video") => frames = frames.max(s["framesDecoded"].as_u64().unwrap_or(0)),
            Some("audio") => audio = audio.max(s["packetsReceived"].as_u64().unwrap_or(0)),
            _ => {}
        }
    }
    (frames, audio)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_and_chromium_hold_a_call() {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let firefox = Firefox::start().await.expect("firefox");
    firefox
        .page
        .goto(&format!("http://127.0.0.1:{port}/room/mixed?name=Fiona"))
        .await
        .expect("Firefox loads the page");
    let driver = Driver::start().await.expect("chromedriver");
    let chromium = driver.browser().await.expect("chromium");
    chromium
        .goto(&format!("http://127.0.0.1:{port}/room/mixed?name=Chris"))
        .await
        .expect("Chromium loads the page");

    let start = Instant::now();
    loop {
        let at_firefox = received(&firefox.page).await;
        let at_chromium = received(&chromium).await;
        if at_firefox.0 >= 60 && at_firefox.1 > 0 && at_chromium.0 >= 60 && at_chromium.1 > 0 {
            println!(
                "after {:?}: Firefox got {at_firefox:?}, Chromium got {at_chromium:?} (frames, audio packets)",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "media did not flow: at Firefox {at_firefox:?}, at Chromium {at_chromium:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = chromium.close().await;
    let _ = firefox.page.clone().close().await;
}
