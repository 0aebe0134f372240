//! File transfer through the SFU in the web demo: Alice sends a 50 MiB file of pseudo-random
//! bytes to the room; Bob and Carol each receive it, their pages show "verified", and the
//! SHA-256 they computed equals the one computed here, independently, from the same bytes.

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_tests::browser::{Driver, eval, wait_until_data_flows};
use switchyard_tests::start_server;

const SIZE: usize = 50 * 1024 * 1024;
const SEED: u32 = 0x1234_5678;

/// The bytes the page generates: xorshift32 words, little-endian.
fn expected_sha256() -> String {
    let mut state = SEED;
    let mut hasher = Sha256::new();
    let mut block = Vec::with_capacity(1 << 20);
    for _ in 0..SIZE / 4 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        block.extend_from_slice(&state.to_le_bytes());
        if block.len() == 1 << 20 {
            hasher.update(&block);
            block.clear();
        }
    }
    hasher.update(&block);
    hex::encode(hasher.finalize())
}

const MAKE_AND_SEND: &str = r#"
const size = arguments[0]; let s = arguments[1] >>> 0; const parts = [];
for (let off = 0; off < size; off += 1 << 20) {
  const words = new Uint32Array(Math.min(1 << 20, size - off) / 4);
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; words[i] = s;
  }
  parts.push(words);
}
const file = new File(parts, 'random-50MiB.bin', { type: 'application/octet-stream' });
window.__sendDone = false;
window.switchyard.sendFile(file, null).then(() => { window.__sendDone = true; });
return file.size;
"#;

async fn received(page: &fantoccini::Client) -> Option<Value> {
    let transfers = eval(page, "return window.switchyard.transfers()")
        .await
        .ok()?;
    transfers
        .as_array()?
        .iter()
        .find(|t| t["direction"] == "receive")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_file_reaches_two_browsers_verified() {
    let expected = expected_sha256();
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let mut pages = Vec::new();
    for name in ["Alice", "Bob", "Carol"] {
        let page = driver.browser().await.expect("browser");
        page.goto(&format!("http://127.0.0.1:{port}/room/files?name={name}"))
            .await
            .expect("page loads");
        pages.push(page);
    }
    // Everyone must know everyone, and data must already flow between every pair through the
    // SFU, before a room-wide send.
    let refs: Vec<&fantoccini::Client> = pages.iter().collect();
    wait_until_data_flows(&refs, Duration::from_secs(30)).await;

    let start = Instant::now();
    let size = pages[0]
        .execute(MAKE_AND_SEND, vec![Value::from(SIZE), Value::from(SEED)])
        .await
        .expect("the page makes and sends the file");
    assert_eq!(size, Value::from(SIZE));
    for (page, name) in pages[1..].iter().zip(["Bob", "Carol"]) {
        loop {
            let t = received(page).await;
            let state = t
                .as_ref()
                .map(|t| t["state"].as_str().unwrap_or("").to_owned());
            if state.as_deref() == Some("verified") {
                let t = t.unwrap();
                assert_eq!(
                    t["sha256"],
                    Value::from(expected.clone()),
                    "{name}'s SHA-256"
                );
                assert_eq!(t["size"], Value::from(SIZE));
                // What the user sees once they open the "Files & chat" tab.
                let shown = eval(
                    page,
                    "document.getElementById('tab-files').click();\
                     return document.getElementById('panel-files').innerText.includes('verified');",
                )
                .await
                .unwrap();
                assert_eq!(
                    shown,
                    Value::Bool(true),
                    "{name}'s page does not show 'verified'"
                );
                println!(
                    "{name}: verified after {:?}, sha256 {}",
                    start.elapsed(),
                    t["sha256"]
                );
                break;
            }
            assert!(
                state.as_deref() != Some("failed"),
                "{name}'s transfer failed: {t:?}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "{name} stuck: {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for page in pages {
        let _ = page.close().await;
    }
}
