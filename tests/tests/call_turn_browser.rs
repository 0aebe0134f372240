//! Three headless Chromium participants with `?relay=1` (iceTransportPolicy "relay") hold a
//! call to the SFU through the bundled TURN relay: every selected candidate pair is a relay
//! pair and video decodes in every direction.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_tests::browser::{Driver, eval, media_stats};
use switchyard_tests::start_server;

/// The selected candidate pair of both peer connections of a page.
const SELECTED_PAIRS: &str = r#"
const c = window.switchyard && window.switchyard.client;
if (!c) return [];
const selected = async (name, pc) => {
  if (!pc) return { pc: name, state: 'none' };
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) return { pc: name, state: 'no pair' };
  const local = report.get(pair.localCandidateId) || {};
  const remote = report.get(pair.remoteCandidateId) || {};
  return { pc: name, state: pair.state, local: local.candidateType, relayProtocol: local.relayProtocol,
           address: local.address, remote: remote.candidateType };
};
return Promise.all([selected('publisher', c.publisherPc), selected('subscriber', c.subscriberPc)]);
"#;

/// Video frames decoded from each remote participant, by identity.
async fn frames_by_identity(page: &fantoccini::Client) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for s in media_stats(page).await {
        if s["kind"] != "video" {
            continue;
        }
        let identity = s["identity"].as_str().unwrap_or_default().to_owned();
        let frames = s["framesDecoded"].as_u64().unwrap_or(0);
        match out.iter_mut().find(|(id, _)| *id == identity) {
            Some(entry) => entry.1 = entry.1.max(frames),
            None => out.push((identity, frames)),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_call_through_the_turn_relay() {
    let server = start_server(None, |config| {
        config.turn.as_mut().expect("TURN on by default").port = 0;
    })
    .await;
    let driver = Driver::start().await.expect("chromedriver");
    let names = ["Alice", "Bob", "Carol"];
    let pages = driver
        .call_pages(server.http_addr.port(), "turn-call", &names, "&relay=1")
        .await
        .expect("pages load");

    let start = Instant::now();
    loop {
        let mut report = Vec::new();
        let mut all_good = true;
        for (i, page) in pages.iter().enumerate() {
            let frames = frames_by_identity(page).await;
            let from_others: Vec<u64> = names
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, other)| {
                    frames
                        .iter()
                        .find(|(id, _)| id.to_lowercase().starts_with(&other.to_lowercase()))
                        .map(|(_, f)| *f)
                        .unwrap_or(0)
                })
                .collect();
            all_good &= from_others.iter().all(|f| *f >= 60);
            report.push(format!("{}: {frames:?}", names[i]));
        }
        if all_good {
            println!(
                "video decoded both ways after {:?}: {report:?}",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "media did not flow through the relay: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for (page, name) in pages.iter().zip(names) {
        let pairs = eval(page, SELECTED_PAIRS).await.expect("getStats");
        println!("{name}: {pairs}");
        let pairs = pairs.as_array().cloned().unwrap_or_default();
        assert_eq!(pairs.len(), 2, "{name}: {pairs:?}");
        for pair in &pairs {
            assert_eq!(pair["state"], Value::from("succeeded"), "{name}: {pair}");
            assert_eq!(pair["local"], Value::from("relay"), "{name}: {pair}");
        }
    }
    // The connection pill tells the user media goes through the relay.
    for (page, name) in pages.iter().zip(names) {
        let pill = eval(
            page,
            "return document.querySelector('#connection-state .text').textContent",
        )
        .await
        .expect("pill");
        println!("{name}'s connection pill: {pill}");
        assert!(
            pill.as_str().unwrap_or_default().contains("via TURN relay"),
            "{name}: {pill}"
        );
    }
    let stats = server.turn.as_ref().expect("relay").stats();
    println!("relay counters: {stats:?}");
    assert!(stats.allocations >= 6, "two peer connections per page");
    assert!(stats.packets_to_peers > 500 && stats.packets_to_clients > 500);
    assert_eq!(
        stats.refused_peers, 0,
        "the browsers only asked for the SFU"
    );
}
