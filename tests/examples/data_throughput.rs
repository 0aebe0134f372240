//! Data-channel throughput: one 200 MiB transfer browser to browser through the SFU (the web
//! demo's file transfer), and the same amount browser to browser directly (peer to peer, same
//! machine) as the baseline. Prints both rates and their ratio for BENCHMARKS.md, the largest
//! queue the relay built for the recipient, and the UDP datagrams the kernel dropped for full
//! receive buffers meanwhile (each one an SCTP loss).
//!
//! Usage: cargo run --release -p switchyard-tests --example data_throughput -- [MIB]
//! (starts its own server in-process; needs chromium and chromedriver).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::start_server;

const MAKE_FILE: &str = r#"
const size = arguments[0]; const parts = []; const chunk = new Uint8Array(1 << 20);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
for (let off = 0; off < size; off += chunk.length) parts.push(chunk.subarray(0, Math.min(chunk.length, size - off)));
window.__file = new File(parts, 'throughput.bin');
return window.__file.size;
"#;

/// Direct peer connection in a page: `offer` / `answer` helpers exchanged by the harness.
const P2P_SETUP: &str = r#"
window.__pc = new RTCPeerConnection();
window.__received = 0; window.__doneAt = 0;
window.__pc.ondatachannel = (ev) => {
  const dc = ev.channel; dc.binaryType = 'arraybuffer';
  dc.onmessage = (m) => { window.__received += m.data.byteLength; if (window.__received >= window.__expect) window.__doneAt = performance.now(); };
};
window.__waitIce = () => new Promise((ok) => {
  if (window.__pc.iceGatheringState === 'complete') return ok();
  window.__pc.onicegatheringstatechange = () => { if (window.__pc.iceGatheringState === 'complete') ok(); };
});
return true;
"#;

async fn wait_until(
    page: &fantoccini::Client,
    script: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while eval(page, script).await? != Value::Bool(true) {
        if start.elapsed() > limit {
            bail!("timed out waiting for: {script}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let size = mib * 1024 * 1024;
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await?;

    // Through the SFU, with the web demo's file transfer (SHA-256 verified on arrival).
    let a = driver.browser().await?;
    let b = driver.browser().await?;
    a.goto(&format!(
        "http://127.0.0.1:{port}/room/throughput?name=Sender"
    ))
    .await?;
    b.goto(&format!(
        "http://127.0.0.1:{port}/room/throughput?name=Receiver"
    ))
    .await?;
    for p in [&a, &b] {
        wait_until(
            p,
            "return window.switchyard.dataReady()",
            Duration::from_secs(30),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.execute(MAKE_FILE, vec![Value::from(size)]).await?;
    let drops_before = udp_receive_buffer_drops();
    let start = Instant::now();
    a.execute(
        "window.switchyard.sendFile(window.__file, null); return true;",
        vec![],
    )
    .await?;
    wait_until(
        &b,
        "return window.switchyard.transfers().some(t => t.direction === 'receive' && t.state === 'verified')",
        Duration::from_secs(600),
    )
    .await
    .context("the transfer through the SFU did not verify")?;
    let sfu_secs = start.elapsed().as_secs_f64();
    let sfu_drops = udp_receive_buffer_drops().saturating_sub(drops_before);
    a.close().await?;
    b.close().await?;

    // Direct, peer to peer, same amount in 64 KiB messages with the same flow control.
    let a = driver.browser().await?;
    let b = driver.browser().await?;
    for p in [&a, &b] {
        p.goto(&format!("http://127.0.0.1:{port}/")).await?;
        p.execute(P2P_SETUP, vec![]).await?;
    }
    b.execute(
        "window.__expect = arguments[0]; return true;",
        vec![Value::from(size)],
    )
    .await?;
    let offer = a
        .execute(
            "window.__dc = window.__pc.createDataChannel('bulk'); \
             await window.__pc.setLocalDescription(await window.__pc.createOffer()); \
             await window.__waitIce(); return window.__pc.localDescription.sdp;",
            vec![],
        )
        .await;
    // Some drivers reject top-level await: fall back to a promise chain.
    let offer = match offer {
        Ok(v) => v,
        Err(_) => {
            a.execute(
                "window.__dc = window.__pc.createDataChannel('bulk'); \
                 return window.__pc.createOffer().then(o => window.__pc.setLocalDescription(o)) \
                   .then(() => window.__waitIce()).then(() => window.__pc.localDescription.sdp);",
                vec![],
            )
            .await?
        }
    };
    let answer = b
        .execute(
            "return window.__pc.setRemoteDescription({type: 'offer', sdp: arguments[0]}) \
               .then(() => window.__pc.createAnswer()).then(a => window.__pc.setLocalDescription(a)) \
               .then(() => window.__waitIce()).then(() => window.__pc.localDescription.sdp);",
            vec![offer],
        )
        .await?;
    a.execute(
        "return window.__pc.setRemoteDescription({type: 'answer', sdp: arguments[0]}).then(() => true);",
        vec![answer],
    )
    .await?;
    wait_until(
        &a,
        "return window.__dc.readyState === 'open'",
        Duration::from_secs(30),
    )
    .await?;
    let start = Instant::now();
    a.execute(
        "const dc = window.__dc, size = arguments[0], chunk = new Uint8Array(64 * 1024);\
         dc.bufferedAmountLowThreshold = 256 * 1024; let sent = 0;\
         const pump = () => { while (sent < size && dc.bufferedAmount < 1024 * 1024) {\
             const n = Math.min(chunk.length, size - sent); dc.send(chunk.subarray(0, n)); sent += n; }\
           if (sent < size) dc.onbufferedamountlow = pump; };\
         pump(); return true;",
        vec![Value::from(size)],
    )
    .await?;
    wait_until(&b, "return window.__doneAt > 0", Duration::from_secs(600)).await?;
    let direct_secs = start.elapsed().as_secs_f64();

    let rate = |secs: f64| size as f64 / secs / (1024.0 * 1024.0);
    println!("| path | {mib} MiB took | rate |");
    println!("|---|---|---|");
    println!(
        "| browser -> SFU -> browser (file transfer, SHA-256 verified) | {sfu_secs:.1} s | {:.1} MiB/s |",
        rate(sfu_secs)
    );
    println!(
        "| browser -> browser directly (same machine) | {direct_secs:.1} s | {:.1} MiB/s |",
        rate(direct_secs)
    );
    println!(
        "| ratio SFU / direct | | {:.2} |",
        rate(sfu_secs) / rate(direct_secs)
    );
    // Above half of `max_queued_data` the relay holds the sender back: a peak below that
    // means the SFU's side towards the recipient never was the bottleneck.
    println!(
        "\nLargest data queue for one recipient at the SFU: {} KiB",
        server.data_queue_peak() / 1024
    );
    // Each datagram a full socket buffer drops is an SCTP loss, which halves the sender's
    // congestion window.
    println!(
        "UDP datagrams dropped by full receive buffers on this machine during the SFU transfer: \
         {sfu_drops}"
    );
    Ok(())
}

/// The kernel's count of UDP datagrams dropped because a socket's receive buffer was full
/// (`RcvbufErrors` in /proc/net/snmp), machine-wide.
fn udp_receive_buffer_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}
