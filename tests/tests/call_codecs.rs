//! H.264 and VP8 in one room: a Chromium that prefers to send H.264 and one that prefers VP8
//! each decode the other's video through the SFU, and the room reports each track's codec.

use std::time::{Duration, Instant};

use switchyard_tests::browser::{Driver, eval, max_video_frames};
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
