//! Calls that survive a broken signaling connection and a forced ICE restart, in real Chromium
//! pages of the web demo: a page whose WebSocket is destroyed (`ss -K`, as a Wi-Fi hand-over or
//! a proxy restart would) resumes its session within the resume window, keeping its participant
//! id and tracks while nobody else notices; without a resume window the same drop costs a full
//! rejoin (the old behaviour, kept as the baseline). An ICE restart from the page keeps the call.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval, wait_for_script};
use switchyard_tests::impair::UdpCut;
use switchyard_tests::sockets::{chromium_with_profile, kill_tcp, process_tree};
use switchyard_tests::{start_server, wait_for};

/// Records, in the page, what the client saw: joins and leaves of others, resumes and joins of
/// its own, offers on both connections, and keeps the peer connections to compare later.
const INSTRUMENT: &str = r#"
const c = window.switchyard.client;
const seen = { left: 0, joined: 0, resumed: 0, rejoined: 0, subscriberOffers: 0, publisherOffers: 0, iceRestarts: 0 };
window.__seen = seen;
window.__pcs = [c.publisherPc, c.subscriberPc];
window.__id = c.you.id;
const ufrag = (pc) => (pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
window.__ufrags = () => [ufrag(c.publisherPc), ufrag(c.subscriberPc)];
c.addEventListener('participantLeft', () => seen.left++);
c.addEventListener('participantJoined', () => seen.joined++);
c.addEventListener('resumed', () => seen.resumed++);
c.addEventListener('joined', () => seen.rejoined++);
c.addEventListener('iceRestart', () => seen.iceRestarts++);
c.subscriberPc.addEventListener('signalingstatechange', () => {
  if (c.subscriberPc.signalingState === 'have-remote-offer') seen.subscriberOffers++;
});
c.publisherPc.addEventListener('signalingstatechange', () => {
  if (c.publisherPc.signalingState === 'have-local-offer') seen.publisherOffers++;
});
return true;
"#;

/// Samples the page's decoded video frames every 50 ms and keeps the longest time without a new
/// frame since the last reset (`window.__freeze.longest`, ms).
const FREEZE_METER: &str = r#"
const meter = { last: performance.now(), longest: 0, frames: 0 };
window.__freeze = meter;
(async () => {
  for (;;) {
    const stats = await window.switchyard.stats();
    const frames = stats.filter((x) => x.kind === 'video').reduce((n, x) => n + (x.framesDecoded || 0), 0);
    const now = performance.now();
    if (frames > meter.frames) {
      meter.longest = Math.max(meter.longest, now - meter.last);
      meter.last = now;
      meter.frames = frames;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
})();
return true;
"#;

/// What the page's client says about itself and what it saw.
const REPORT: &str = r#"
const c = window.switchyard.client;
return {
  state: c.state,
  id: c.you ? c.you.id : null,
  samePcs: window.__pcs[0] === c.publisherPc && window.__pcs[1] === c.subscriberPc,
  seen: window.__seen,
};
"#;

/// Video frames decoded so far from the page's one remote participant.
async fn frames(page: &Client) -> u64 {
    let script = "return window.switchyard.stats().then(s => s.filter(x => x.kind === 'video').reduce((n, x) => n + (x.framesDecoded || 0), 0))";
    eval(page, script)
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// Waits until `page` decodes at least `more` new frames from `identity`; returns how long.
async fn frames_keep_coming(
    page: &Client,
    identity: &str,
    more: u64,
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    let base = frames(page).await;
    wait_for(
        &format!("{more} more frames from {identity}"),
        timeout,
        async || {
            let now = frames(page).await;
            if now >= base + more {
                Ok(())
            } else {
                Err(format!("{} new frames", now.saturating_sub(base)))
            }
        },
    )
    .await;
    start.elapsed()
}

/// One call at a time: several pairs of Chromium on two cores starve each other's video.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn report(page: &Client) -> Value {
    eval(page, REPORT).await.expect("report script runs")
}

/// Waits until both of the page's connections have new local ICE credentials (not `before`)
/// and are connected.
async fn new_credentials_on_both(page: &Client, before: &Value) {
    let check = format!(
        "const c = window.switchyard.client; const now = window.__ufrags(); const before = {before};
         return {{ renewed: now[0] !== before[0] && now[1] !== before[1], now,
                   states: [c.publisherPc.connectionState, c.subscriberPc.connectionState],
                   signaling: [c.publisherPc.signalingState, c.subscriberPc.signalingState],
                   seen: window.__seen }};"
    );
    wait_for(
        "new ICE credentials on both connections, both connected",
        Duration::from_secs(15),
        async || {
            let r = eval(page, &check).await.map_err(|e| e.to_string())?;
            let connected = r["states"] == serde_json::json!(["connected", "connected"]);
            if r["renewed"] == true && connected {
                Ok(())
            } else {
                Err(r.to_string())
            }
        },
    )
    .await;
}

/// Ann is the same participant as before (same id, no fresh join) and Ben saw nobody leave.
async fn ann_stayed(ben: &Client, ann_after: &Value, ann_before: &Value) {
    assert_eq!(
        ann_after["id"], ann_before["id"],
        "Ann keeps her participant id"
    );
    assert_eq!(ann_after["seen"]["rejoined"], 0, "Ann did not join afresh");
    assert_eq!(report(ben).await["seen"]["left"], 0, "Ben saw nobody leave");
}

/// A call between Ben and Ann on `port`; returns (Ben's page, Ann's page, Ann's browser pids).
async fn call(driver: &Driver, port: u16, room: &str) -> (Client, Client, HashSet<u32>) {
    let ben = driver.browser().await.expect("browser");
    ben.goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Ben"))
        .await
        .expect("page loads");
    let ann = driver.browser().await.expect("browser");
    // chromedriver reports the profile it started the browser with.
    let profile = ann
        .capabilities()
        .and_then(|c| {
            c.get("chrome")?
                .get("userDataDir")?
                .as_str()
                .map(String::from)
        })
        .expect("chromedriver names Ann's profile directory");
    let ann_browser = chromium_with_profile(&profile).expect("Ann's Chromium is running");
    ann.goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Ann"))
        .await
        .expect("page loads");
    for page in [&ben, &ann] {
        wait_for_script(
            page,
            "the call to connect",
            Duration::from_secs(30),
            "return window.switchyard && window.switchyard.state() === 'connected' && window.switchyard.client.you ? true : null",
        )
        .await;
    }
    frames_keep_coming(&ben, "Ann", 30, Duration::from_secs(30)).await;
    frames_keep_coming(&ann, "Ben", 30, Duration::from_secs(30)).await;
    for page in [&ben, &ann] {
        eval(page, INSTRUMENT).await.expect("instrumented");
    }
    (ben, ann, process_tree(ann_browser))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_websocket_resumes_the_session_and_nobody_notices() {
    let _serial = SERIAL.lock().await;
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let (ben, ann, ann_pids) = call(&driver, port, "resume").await;
    let ann_before = report(&ann).await;

    let dropped = Instant::now();
    let killed = kill_tcp(&ann_pids, port);
    assert!(killed >= 1, "Ann's WebSocket was found and destroyed");
    println!("destroyed {killed} of Ann's TCP connections to the server");
    wait_for_script(
        &ann,
        "Ann's client to resume",
        Duration::from_secs(15),
        "return window.__seen.resumed > 0 && window.switchyard.state() === 'connected' ? true : null",
    )
    .await;
    println!("Ann resumed {:?} after the drop", dropped.elapsed());
    let flowing = frames_keep_coming(&ben, "Ann", 30, Duration::from_secs(10)).await;
    frames_keep_coming(&ann, "Ben", 30, Duration::from_secs(10)).await;
    println!("Ben decoded 30 more of Ann's frames {flowing:?} after the resume");

    let ann_after = report(&ann).await;
    let ben_after = report(&ben).await;
    println!("Ann: {ann_after}\nBen: {ben_after}");
    assert_eq!(
        ann_after["id"], ann_before["id"],
        "Ann keeps her participant id"
    );
    assert_eq!(
        ann_after["samePcs"], true,
        "Ann keeps both peer connections"
    );
    assert_eq!(ann_after["seen"]["rejoined"], 0, "Ann did not join afresh");
    for (who, r) in [("Ann", &ann_after), ("Ben", &ben_after)] {
        assert_eq!(r["seen"]["left"], 0, "{who} saw nobody leave");
        assert_eq!(r["seen"]["joined"], 0, "{who} saw nobody join");
        assert_eq!(r["seen"]["subscriberOffers"], 0, "{who} got no new offer");
        assert_eq!(r["seen"]["publisherOffers"], 0, "{who} made no new offer");
    }
    drop((ben, ann));
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_resume_window_a_dropped_websocket_costs_a_rejoin() {
    let _serial = SERIAL.lock().await;
    let server = start_server(None, |c| c.resume_window = Duration::ZERO).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let (ben, ann, ann_pids) = call(&driver, port, "baseline").await;
    let ann_before = report(&ann).await;

    let dropped = Instant::now();
    assert!(
        kill_tcp(&ann_pids, port) >= 1,
        "Ann's WebSocket was found and destroyed"
    );
    wait_for_script(
        &ben,
        "Ben to see Ann leave and join again",
        Duration::from_secs(20),
        "return window.__seen.left > 0 && window.__seen.joined > 0 ? true : null",
    )
    .await;
    let ann_after = report(&ann).await;
    println!(
        "without resume: Ann rejoined as {} (was {}) within {:?}; Ben saw {}",
        ann_after["id"],
        ann_before["id"],
        dropped.elapsed(),
        report(&ben).await["seen"]
    );
    assert_ne!(
        ann_after["id"], ann_before["id"],
        "a rejoin gets a new participant id"
    );
    drop((ben, ann));
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_from_the_page_keeps_the_call_and_the_participant() {
    let _serial = SERIAL.lock().await;
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let (ben, ann, _) = call(&driver, port, "ice-restart").await;
    let ann_before = report(&ann).await;
    let before = eval(&ann, "return window.__ufrags()")
        .await
        .expect("ufrags");
    for page in [&ben, &ann] {
        eval(page, FREEZE_METER).await.expect("freeze meter runs");
    }
    frames_keep_coming(&ben, "Ann", 10, Duration::from_secs(10)).await;
    frames_keep_coming(&ann, "Ben", 10, Duration::from_secs(10)).await;
    for page in [&ben, &ann] {
        eval(page, "window.__freeze.longest = 0; return true;")
            .await
            .expect("meter reset");
    }
    let restarted = Instant::now();
    eval(
        &ann,
        "const c = window.switchyard.client; c.publisherPc.restartIce(); c.subscriberPc.restartIce(); return true;",
    )
    .await
    .expect("restartIce runs");
    new_credentials_on_both(&ann, &before).await;
    let back = restarted.elapsed();
    // Well past the restart: the longest freeze is then the restart's.
    frames_keep_coming(&ben, "Ann", 60, Duration::from_secs(15)).await;
    frames_keep_coming(&ann, "Ben", 60, Duration::from_secs(15)).await;
    let freeze = async |page: &Client| {
        eval(page, "return Math.round(window.__freeze.longest)")
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(u64::MAX)
    };
    println!(
        "ICE restart: new credentials on both connections, both connected {back:?} after \
         restartIce(); longest video freeze: Ann's video at Ben {} ms, Ben's video at Ann {} ms",
        freeze(&ben).await,
        freeze(&ann).await
    );

    // The page's `online` event (its network came back) restarts ICE on both connections the
    // same way, through the client's own restart.
    let before = eval(&ann, "return window.__ufrags()")
        .await
        .expect("ufrags");
    let restarts_before = report(&ann).await["seen"]["iceRestarts"].as_u64();
    let online = Instant::now();
    eval(
        &ann,
        "window.dispatchEvent(new Event('online')); return true;",
    )
    .await
    .expect("online event dispatched");
    new_credentials_on_both(&ann, &before).await;
    frames_keep_coming(&ben, "Ann", 10, Duration::from_secs(10)).await;
    let restarts = report(&ann).await["seen"]["iceRestarts"].as_u64();
    assert!(
        restarts > restarts_before,
        "the client restarted ICE for the online event: {restarts_before:?} -> {restarts:?}"
    );
    println!(
        "online event: new credentials on both connections, both connected {:?} after it",
        online.elapsed()
    );
    let ann_after = report(&ann).await;
    ann_stayed(&ben, &ann_after, &ann_before).await;
    drop((ben, ann));
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

/// The UDP ports of the page's ICE candidates (both peer connections).
const UDP_PORTS: &str = r#"
const c = window.switchyard.client;
const ports = new Set();
for (const pc of [c.publisherPc, c.subscriberPc]) {
  const stats = await pc.getStats();
  stats.forEach((s) => { if (s.type === 'local-candidate' && s.protocol === 'udp') ports.add(s.port); });
}
return [...ports];
"#;

/// What the page's subscriber connection receives of video, and how it is connected.
const INBOUND_VIDEO: &str = r#"
const pc = window.switchyard.client.subscriberPc;
const stats = await pc.getStats();
const out = { state: pc.connectionState, video: [] };
stats.forEach((s) => {
  if (s.type === 'inbound-rtp' && s.kind === 'video') {
    out.video.push({ packets: s.packetsReceived, frames: s.framesReceived, decoded: s.framesDecoded,
      keyframes: s.keyFramesDecoded, plis: s.pliCount, nacks: s.nackCount, lost: s.packetsLost });
  }
});
return out;
"#;

/// How Ann's publisher connection reaches the server now: the selected pair's local candidate.
const SELECTED_PATH: &str = r#"
const stats = await window.switchyard.client.publisherPc.getStats();
let pair = null;
stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
const local = pair && stats.get(pair.localCandidateId);
return local ? `${local.candidateType} ${local.protocol} ${local.relayProtocol || ''}`.trim() : 'no selected pair';
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_s_udp_cut_keeps_the_participant_and_the_call_comes_back() {
    let _serial = SERIAL.lock().await;
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let (ben, ann, _) = call(&driver, port, "udp-cut").await;
    let ann_before = report(&ann).await;
    let ben_ports: Vec<u16> = serde_json::from_value(eval(&ben, UDP_PORTS).await.expect("ports"))
        .expect("a list of ports");
    assert!(!ben_ports.is_empty(), "Ben's page has UDP candidates");
    let media_ports: Vec<u16> = server.media_addrs.iter().map(|a| a.port()).collect();
    let cut = UdpCut::start(&ben_ports, &media_ports);
    println!(
        "cut Ann off the SFU's UDP ports {media_ports:?} for 40 s (Ben's ports {ben_ports:?} pass)"
    );
    // The outage itself is the scenario: 40 s without a packet on Ann's media path.
    let before_cut = frames(&ben).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let path_in_cut = eval(&ann, SELECTED_PATH).await.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during_cut = frames(&ben).await;
    drop(cut);
    let restored = Instant::now();
    frames_keep_coming(&ben, "Ann", 30, Duration::from_secs(40)).await;
    let base = frames(&ann).await;
    wait_for(
        "Ben's video back at Ann",
        Duration::from_secs(40),
        async || {
            if frames(&ann).await >= base + 30 {
                return Ok(());
            }
            let seen = eval(&ann, INBOUND_VIDEO).await.map_err(|e| e.to_string())?;
            Err(seen.to_string())
        },
    )
    .await;
    let ann_after = report(&ann).await;
    println!(
        "after the cut: Ann's video back at Ben {:?} after the path was restored; Ben decoded {} \
         of Ann's frames during the 40 s cut, over {path_in_cut} 30 s into it; Ann: {}",
        restored.elapsed(),
        during_cut.saturating_sub(before_cut),
        ann_after
    );
    ann_stayed(&ben, &ann_after, &ann_before).await;
    drop((ben, ann));
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}
