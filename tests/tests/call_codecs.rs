//! H.264 and VP8 in one room: a Chromium that prefers to send H.264 and one that prefers VP8
//! each decode the other's video through the SFU, and the room reports each track's codec.
//! Also: participants whose first video was VP8 still receive an H.264 newcomer's video.

use std::time::{Duration, Instant};

use switchyard_tests::browser::{Driver, eval, max_video_frames, media_stats};
use switchyard_tests::start_server;

/// The video codec the server announced for the other participant's track.
async fn remote_video_codec(page: &fantoccini::Client) -> String {
    eval(
        page,
        "const p = [...window.switchyard.client.participants.values()][0];\
         const t = p && p.tracks.find(t => t.kind === 'video');\
         return t ? t.codec : '';",
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(String::from))
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_vp8_publishers_in_one_room() {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let h264 = driver.browser().await.expect("browser");
    h264.goto(&format!(
        "http://127.0.0.1:{port}/room/codecs?name=Hana&codec=h264"
    ))
    .await
    .unwrap();
    let vp8 = driver.browser().await.expect("browser");
    vp8.goto(&format!(
        "http://127.0.0.1:{port}/room/codecs?name=Vic&codec=vp8"
    ))
    .await
    .unwrap();

    let start = Instant::now();
    loop {
        let (at_vp8, at_h264) = (max_video_frames(&vp8).await, max_video_frames(&h264).await);
        if at_vp8 >= 60 && at_h264 >= 60 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "video did not flow: {at_vp8} H.264 frames decoded at Vic, {at_h264} VP8 frames at Hana"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        remote_video_codec(&vp8).await,
        "H264",
        "Hana's video as Vic sees it"
    );
    assert_eq!(
        remote_video_codec(&h264).await,
        "VP8",
        "Vic's video as Hana sees it"
    );
    for page in [h264, vp8] {
        let _ = page.close().await;
    }
}

/// Video frames `page` decoded from the participant whose identity starts with `name`.
async fn frames_from(page: &fantoccini::Client, name: &str) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video")
        .filter(|s| {
            s["identity"]
                .as_str()
                .is_some_and(|i| i.to_lowercase().starts_with(name))
        })
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_newcomer_reaches_a_vp8_call() {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = Vec::new();
    for name in ["Vic", "Zed"] {
        let page = driver.browser().await.expect("browser");
        page.goto(&format!(
            "http://127.0.0.1:{port}/room/mixed?name={name}&codec=vp8"
        ))
        .await
        .unwrap();
        pages.push(page);
    }
    let start = Instant::now();
    while frames_from(&pages[0], "zed").await < 30 || frames_from(&pages[1], "vic").await < 30 {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the VP8 call did not start"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Both have negotiated video (VP8 only so far) when the H.264 publisher arrives.
    let hana = driver.browser().await.expect("browser");
    hana.goto(&format!(
        "http://127.0.0.1:{port}/room/mixed?name=Hana&codec=h264"
    ))
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        let (at_vic, at_zed) = (
            frames_from(&pages[0], "hana").await,
            frames_from(&pages[1], "hana").await,
        );
        if at_vic >= 30 && at_zed >= 30 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "Hana's H.264 video did not reach the VP8 call: {at_vic} frames at Vic, {at_zed} at Zed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pages.push(hana);
    for page in pages {
        let _ = page.close().await;
    }
}
