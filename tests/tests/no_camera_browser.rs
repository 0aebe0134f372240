//! Joining without camera in the web demo: Bob's browser refuses him the camera and microphone
//! and he presses "Join without camera"; Alice joins with both. Bob sees Alice's video, and a
//! file goes each way through the SFU, verified. Bob's publisher connection carries a recvonly
//! video section with nothing on it (so Chromium gives the connection's socket its larger
//! receive buffer, which a file arriving over the data channel needs), and he publishes nothing.

use std::time::Duration;

use serde_json::Value;
use switchyard_tests::browser::{Driver, eval, wait_for_script, wait_until_data_flows};
use switchyard_tests::start_server;

/// Sends a 4 MiB file made in the page (bytes `i % 251`) to the room.
const SEND: &str = r#"
const bytes = new Uint8Array(4 * 1024 * 1024);
for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
window.switchyard.sendFile(new File([bytes], arguments[0]), null);
return true;
"#;

/// The received transfer named `arguments[0]` once it is verified or failed, else null.
const RECEIVED: &str = r#"
const t = window.switchyard.transfers().find((t) => t.direction === 'receive' && t.name === arguments[0]);
return t && (t.state === 'verified' || t.state === 'failed') ? t : null;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_without_camera_sees_the_others_and_exchanges_files() {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let alice = driver.browser().await.expect("browser");
    let bob = driver
        .browser_with(&["--use-fake-ui-for-media-stream=deny"])
        .await
        .expect("browser");
    alice
        .goto(&format!("http://127.0.0.1:{port}/room/nocam?name=Alice"))
        .await
        .expect("Alice's page loads");
    bob.goto(&format!("http://127.0.0.1:{port}/room/nocam?name=Bob"))
        .await
        .expect("Bob's page loads");
    wait_for_script(
        &bob,
        "Bob's page to offer joining without camera",
        Duration::from_secs(30),
        "const b = document.querySelector('[data-act=nocam]'); if (b) b.click(); return !!b;",
    )
    .await;
    wait_until_data_flows(&[&alice, &bob], Duration::from_secs(30)).await;

    // Bob's publisher offer: a recvonly video section, and no section he sends on.
    let sdp = wait_for_script(
        &bob,
        "Bob's publisher connection to have its local description",
        Duration::from_secs(10),
        "return window.switchyard.client.publisherPc.localDescription?.sdp ?? null",
    )
    .await;
    let sdp = sdp.as_str().expect("an SDP string");
    let sections: Vec<&str> = sdp.split("\r\nm=").skip(1).collect();
    let video: Vec<&&str> = sections.iter().filter(|s| s.starts_with("video")).collect();
    assert_eq!(video.len(), 1, "one video section: {sdp}");
    assert!(video[0].contains("\r\na=recvonly"), "recvonly: {sdp}");
    assert!(
        !sections
            .iter()
            .any(|s| s.contains("\r\na=sendonly") || s.contains("\r\na=sendrecv")),
        "Bob sends no media: {sdp}"
    );
    let bob_tracks = eval(
        &alice,
        "return [...window.switchyard.client.participants.values()].find((p) => p.name === 'Bob')?.tracks.length ?? -1",
    )
    .await
    .expect("Alice's page answers");
    assert_eq!(bob_tracks, Value::from(0), "Bob publishes no track");

    // Bob sees Alice.
    wait_for_script(
        &bob,
        "Bob's page to decode Alice's video",
        Duration::from_secs(30),
        "return window.switchyard.stats().then((all) => all.some((s) => s.kind === 'video' && s.framesDecoded > 10))",
    )
    .await;

    // A file each way, verified on arrival.
    for (from, to, name) in [
        (&bob, &alice, "from-bob.bin"),
        (&alice, &bob, "from-alice.bin"),
    ] {
        eval(from, &SEND.replace("arguments[0]", &format!("'{name}'")))
            .await
            .expect("the page sends the file");
        let t = wait_for_script(
            to,
            "the file to arrive",
            Duration::from_secs(60),
            &RECEIVED.replace("arguments[0]", &format!("'{name}'")),
        )
        .await;
        assert_eq!(t["state"], "verified", "{name}: {t}");
        assert_eq!(t["size"], Value::from(4 * 1024 * 1024));
    }
    for page in [alice, bob] {
        let _ = page.close().await;
    }
}
