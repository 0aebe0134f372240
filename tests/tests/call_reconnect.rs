//! The web demo survives a server restart: the pages say they are reconnecting, rejoin the room
//! by themselves once the server is back, and the call resumes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchyard_tests::browser::{Driver, eval, max_video_frames};
use switchyard_tests::start_server;

async fn state(page: &fantoccini::Client) -> String {
    eval(
        page,
        "return window.switchyard ? window.switchyard.state() : ''",
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(String::from))
    .unwrap_or_default()
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_rejoin_after_a_server_restart() {
    let server = start_server(None, |_| {}).await;
    let http = server.http_addr;
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = Vec::new();
    for name in ["Ann", "Ben"] {
        let page = driver.browser().await.expect("browser");
        page.goto(&format!(
            "http://127.0.0.1:{}/room/restart?name={name}",
            http.port()
        ))
        .await
        .expect("page loads");
        pages.push(page);
    }
    for page in &pages {
        wait_until(
            "video before the restart",
            Duration::from_secs(30),
            || async { max_video_frames(page).await >= 30 },
        )
        .await;
    }

    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    for page in &pages {
        wait_until(
            "the page to say it is reconnecting",
            Duration::from_secs(10),
            || async { state(page).await == "reconnecting" },
        )
        .await;
    }
    let banner = eval(
        &pages[0],
        "return document.getElementById('connection-state').textContent",
    )
    .await
    .unwrap_or_default();
    println!("while the server is down the page shows: {banner}");

    let server = start_server(None, |c| {
        c.http_bind = SocketAddr::from(([127, 0, 0, 1], http.port()))
    })
    .await;
    let back = Instant::now();
    for page in &pages {
        wait_until("the page to rejoin", Duration::from_secs(30), || async {
            state(page).await == "connected"
        })
        .await;
        wait_until(
            "video after the restart",
            Duration::from_secs(30),
            || async { max_video_frames(page).await >= 30 },
        )
        .await;
    }
    println!(
        "call resumed {:?} after the server came back",
        back.elapsed()
    );
    for page in pages {
        let _ = page.close().await;
    }
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}
