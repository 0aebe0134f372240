//! End to end through the web demo: three headless Chromium participants with fake camera and
//! microphone hold a call through the SFU; then one closes its page and the call goes on. Run
//! twice: as configured by default (a fan-out this small stays on the room's thread), and with
//! every fan-out shared over the cores (`parallel_fanout = 1`, the path of rooms of 128 and more).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard_tests::browser::{Driver, eval, media_stats};
use switchyard_tests::start_server;

/// Per remote identity: (video frames decoded, audio packets received, video packets received).
async fn media_by_identity(page: &fantoccini::Client) -> HashMap<String, (u64, u64, u64)> {
    let mut out: HashMap<String, (u64, u64, u64)> = HashMap::new();
    for s in &media_stats(page).await {
        let identity = s["identity"].as_str().unwrap_or_default().to_owned();
        let entry = out.entry(identity).or_default();
        match s["kind"].as_str() {
            Some("video") => {
                entry.0 = entry.0.max(s["framesDecoded"].as_u64().unwrap_or(0));
                entry.2 = entry.2.max(s["packetsReceived"].as_u64().unwrap_or(0));
            }
            Some("audio") => entry.1 = entry.1.max(s["packetsReceived"].as_u64().unwrap_or(0)),
            _ => {}
        }
    }
    out
}

async fn remote_identities(page: &fantoccini::Client) -> Vec<String> {
    eval(page, "return window.switchyard.remoteParticipants()")
        .await
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_hold_a_call_and_one_leaves() {
    hold_a_call_and_one_leaves(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_hold_a_call_with_the_fan_out_on_every_core() {
    hold_a_call_and_one_leaves(Some(1)).await;
}

async fn hold_a_call_and_one_leaves(parallel_fanout: Option<usize>) {
    let server = start_server(None, |c| {
        if let Some(n) = parallel_fanout {
            c.parallel_fanout = n;
        }
    })
    .await;
    let driver = Driver::start().await.expect("chromedriver");
    let names = ["Alice", "Bob", "Carol"];
    let mut pages = driver
        .call_pages(server.http_addr.port(), "e2e-call", &names, "")
        .await
        .expect("pages load");

    // Every page decodes at least 60 frames from each of the other two and hears both.
    let start = Instant::now();
    loop {
        let mut all_good = true;
        let mut report = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            let media = media_by_identity(page).await;
            for (j, other) in names.iter().enumerate() {
                if i == j {
                    continue;
                }
                let (frames, audio, video) = media
                    .iter()
                    .find(|(id, _)| id.to_lowercase().starts_with(&other.to_lowercase()))
                    .map(|(_, v)| *v)
                    .unwrap_or((0, 0, 0));
                report.push(format!(
                    "{}<-{}: {frames} frames decoded ({video} video packets), {audio} audio packets",
                    names[i], other
                ));
                all_good &= frames >= 60 && audio > 0;
            }
        }
        if all_good {
            println!("media flowing after {:?}: {report:?}", start.elapsed());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "media did not flow: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Carol closes her page; Alice and Bob see one remote participant within 5 s. (She leaves
    // the page, as closing its tab does, so its `pagehide` runs; ending her browser at once
    // would race that handler against the process's exit, and without its `leave` the server
    // keeps her session for the resume window, as it must for a dropped connection.)
    let carol = pages.pop().expect("three pages");
    let closed_at = Instant::now();
    carol
        .goto("about:blank")
        .await
        .expect("Carol leaves the page");
    for page in &pages {
        loop {
            let remotes = remote_identities(page).await;
            if remotes.len() == 1 {
                break;
            }
            assert!(
                closed_at.elapsed() < Duration::from_secs(5),
                "still showing {remotes:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("Carol's departure shown after {:?}", closed_at.elapsed());
    carol.close().await.expect("close Carol's browser");

    // The call goes on: Alice keeps decoding Bob's video.
    let bob = |m: &HashMap<String, (u64, u64, u64)>| {
        m.iter()
            .find(|(id, _)| id.starts_with("bob"))
            .map(|(_, v)| v.0)
            .unwrap_or(0)
    };
    let before = media_by_identity(&pages[0]).await;
    let since = Instant::now();
    loop {
        let after = media_by_identity(&pages[0]).await;
        if bob(&after) > bob(&before) + 20 {
            println!(
                "20 more frames of Bob's decoded after {:?}",
                since.elapsed()
            );
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "Bob's video stalled: {before:?} -> {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for page in pages {
        let _ = page.close().await;
    }
}
