//! Data-channel throughput: one file (200 MiB unless told) browser to browser, five ways.
//! Through the SFU with the web demo's call page and file transfer, twice: as in a call (both
//! pages publish the fake camera and microphone) and data only (both joined without camera).
//! Then directly, peer to peer on the same machine, with the same file transfer (`transfer.js`:
//! the file read from disk, SHA-256 on both sides, the same frames and flow control as
//! `sendData`) over a direct connection, twice: in a direct call (720p camera and microphone
//! both ways) and data only. These are the baselines. Last, raw 64 KiB messages sent directly,
//! which is what Chromium's data channel can do at best. Prints the rates and ratios for
//! BENCHMARKS.md, the largest queue the relay built for the recipient, and the UDP datagrams the
//! kernel dropped for full receive buffers meanwhile (each one an SCTP loss).
//!
//! Usage: cargo run --release -p switchyard-tests --example data_throughput -- [MIB]
//! (starts its own server in-process; needs chromium and chromedriver).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, Locator};
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};
use switchyard_tests::start_server;

/// Both direct pages: a peer connection and a wait for its ICE gathering.
const P2P_SETUP: &str = r#"
window.__pc = new RTCPeerConnection();
window.__waitIce = () => new Promise((ok) => {
  if (window.__pc.iceGatheringState === 'complete') return ok();
  window.__pc.onicegatheringstatechange = () => { if (window.__pc.iceGatheringState === 'complete') ok(); };
});
return true;
"#;

/// A direct call: the fake camera (720p) and microphone sent to the other page, whose video
/// plays in the page, as the call page does with a remote camera.
const P2P_MEDIA: &str = r#"
return navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true }).then((s) => {
  s.getTracks().forEach((t) => window.__pc.addTrack(t, s));
  window.__pc.ontrack = (ev) => {
    let v = document.getElementById('remote');
    if (!v) { v = document.createElement('video'); v.id = 'remote'; v.autoplay = v.muted = v.playsInline = true; document.body.appendChild(v); }
    v.srcObject = ev.streams[0];
  };
  return true;
});
"#;

/// Raw messages: the sender's channel, and the receiver's byte count.
const RAW_SENDER: &str = "window.__dc = window.__pc.createDataChannel('bulk'); return true;";
const RAW_RECEIVER: &str = r#"
window.__received = 0; window.__doneAt = 0; window.__expect = arguments[1];
window.__pc.ondatachannel = (ev) => {
  const dc = ev.channel; dc.binaryType = 'arraybuffer';
  dc.onmessage = (m) => { window.__received += m.data.byteLength; if (window.__received >= window.__expect) window.__doneAt = performance.now(); };
};
return true;
"#;

/// The web demo's file transfer over the direct connection: `FileTransfers` (transfer.js) on a
/// stand-in for `SwitchyardClient` whose `sendData` is the client's own (switchyard-data.js:
/// frames, the reliable channel, its flow control). The receiver stamps `from` on each frame as
/// the SFU does. The sender gets a file chooser, `#file-input`, that sends what is chosen, and
/// both pages the call page's `window.switchyard.dataReady()` and `transfers()`.
const FILE_TRANSFER: &str = r#"
const role = arguments[0];
return Promise.all([import('/static/switchyard-data.js'), import('/static/transfer.js')]).then(([data, transfer]) => {
  const client = new EventTarget();
  client.you = { id: 'PA_' + role, identity: role };
  client.participants = new Map();
  client.dataReady = false;
  client._dataWaiters = new Set();
  client.sendData = (payload, opts) => data.sendDataMessage(client, payload, opts);
  const files = new transfer.FileTransfers(client);
  window.switchyard = { dataReady: () => client.dataReady, transfers: () => files.list() };
  if (role === 'sender') {
    data.createDataChannels(client, window.__pc);
    const input = document.createElement('input');
    input.type = 'file'; input.id = 'file-input';
    input.onchange = () => files.send(input.files[0], null).catch(() => {});
    document.body.appendChild(input);
  } else {
    window.__pc.ondatachannel = (ev) => {
      const ch = ev.channel; ch.binaryType = 'arraybuffer';
      ch.onmessage = (m) => {
        const f = data.decodeDataFrame(m.data);
        client.dispatchEvent(new CustomEvent('data', { detail: { from: 'sender', fromId: 'PA_sender',
          topic: f.header.topic ?? null, to: f.header.to || [], payload: f.payload, reliable: ch.label === 'reliable' } }));
      };
    };
  }
  return true;
});
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
    // The file to send, on disk: a person picks one with the call page's file chooser. (A page
    // cannot build a File much above 512 MiB in memory: this Chromium then fails to read it.)
    let file =
        std::env::temp_dir().join(format!("switchyard-throughput-{}.bin", std::process::id()));
    write_test_file(&file, size).context("writing the file to send")?;
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await?;

    // The file, through the SFU with the web demo's file transfer (SHA-256 verified on arrival),
    // in a call (camera and microphone on) and data only (both joined without camera); then
    // directly, peer to peer, with the same file transfer, in a call and data only.
    let runs = async {
        let call = through_sfu(&driver, &file, true).await?;
        let data = through_sfu(&driver, &file, false).await?;
        let direct_call = direct_file_transfer(&driver, port, &file, true).await?;
        let direct = direct_file_transfer(&driver, port, &file, false).await?;
        anyhow::Ok((call, data, direct_call, direct))
    }
    .await;
    let _ = std::fs::remove_file(&file);
    let (
        (call_secs, call_drops, call_peak),
        (data_secs, data_drops, data_peak),
        direct_call_secs,
        direct_secs,
    ) = runs?;
    // The ceiling: raw messages, directly.
    let raw_secs = direct_raw(&driver, port, size).await?;

    let rate = |secs: f64| size as f64 / secs / (1024.0 * 1024.0);
    println!("| path | {mib} MiB took | rate |");
    println!("|---|---|---|");
    for (what, secs) in [
        (
            "browser -> SFU -> browser, in a call (file transfer, SHA-256 verified)",
            call_secs,
        ),
        (
            "browser -> SFU -> browser, data only (file transfer, SHA-256 verified)",
            data_secs,
        ),
        (
            "browser -> browser directly, in a call (the same file transfer, SHA-256 verified)",
            direct_call_secs,
        ),
        (
            "browser -> browser directly, data only (the same file transfer, SHA-256 verified)",
            direct_secs,
        ),
        (
            "browser -> browser directly, data only (raw 64 KiB messages)",
            raw_secs,
        ),
    ] {
        println!("| {what} | {secs:.1} s | {:.1} MiB/s |", rate(secs));
    }
    for (what, secs, direct) in [
        ("in a call", call_secs, direct_call_secs),
        ("data only", data_secs, direct_secs),
    ] {
        println!(
            "| ratio SFU / direct file transfer, {what} | | {:.2} |",
            rate(secs) / rate(direct)
        );
    }
    println!(
        "| ratio SFU / direct raw messages, data only | | {:.2} |",
        rate(data_secs) / rate(raw_secs)
    );
    // Above half of `max_queued_data` the relay holds the sender back: a peak below that
    // means the SFU's side towards the recipient never was the bottleneck.
    println!(
        "\nLargest data queue for one recipient at the SFU: {} KiB in a call, {} KiB data only",
        call_peak / 1024,
        data_peak / 1024
    );
    // Each datagram a full socket buffer drops is an SCTP loss, which halves the sender's
    // congestion window.
    println!(
        "UDP datagrams dropped by full receive buffers on this machine during the SFU transfers: \
         {call_drops} in a call, {data_drops} data only"
    );
    Ok(())
}

/// One transfer of `file` through the SFU with the web demo's call page and file transfer (chosen
/// with the page's file chooser, to everyone), on a server of its own. With `media`, both pages
/// publish the fake camera and microphone, as in a call; without, both are refused the devices
/// and press "Join without camera", as someone who only sends files would. Returns the seconds it
/// took, the UDP receive-buffer drops meanwhile and the largest queue the relay built for the
/// recipient.
async fn through_sfu(
    driver: &Driver,
    file: &std::path::Path,
    media: bool,
) -> anyhow::Result<(f64, u64, usize)> {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let room = if media {
        "throughput-call"
    } else {
        "throughput-data"
    };
    let args: &[&str] = if media {
        &[]
    } else {
        &["--use-fake-ui-for-media-stream=deny"]
    };
    let a = driver.browser_with(args).await?;
    let b = driver.browser_with(args).await?;
    a.goto(&format!("http://127.0.0.1:{port}/room/{room}?name=Sender"))
        .await?;
    b.goto(&format!(
        "http://127.0.0.1:{port}/room/{room}?name=Receiver"
    ))
    .await?;
    for p in [&a, &b] {
        if !media {
            wait_until(
                p,
                "const b = document.querySelector('[data-act=nocam]'); if (b) b.click(); return !!b;",
                Duration::from_secs(30),
            )
            .await
            .context("the call page did not offer to join without camera")?;
        }
        wait_until(
            p,
            "return window.switchyard.dataReady()",
            Duration::from_secs(30),
        )
        .await?;
    }
    let drops_before = udp_receive_buffer_drops();
    let secs = send_file(&a, &b, file).await.context("through the SFU")?;
    let drops = udp_receive_buffer_drops().saturating_sub(drops_before);
    a.close().await?;
    b.close().await?;
    Ok((secs, drops, server.data_queue_peak()))
}

/// Chooses `file` in the sender's file chooser (`#file-input`; everyone else is the default
/// recipient, and choosing starts the transfer) and waits until the receiver has verified it.
/// Returns the seconds that took; if it does not verify, says both pages' transfers.
async fn send_file(a: &Client, b: &Client, file: &std::path::Path) -> anyhow::Result<f64> {
    let chooser = a.find(Locator::Id("file-input")).await?;
    let start = Instant::now();
    chooser.send_keys(&file.display().to_string()).await?;
    if let Err(e) = wait_until(
        b,
        "return window.switchyard.transfers().some(t => t.direction === 'receive' && t.state === 'verified')",
        Duration::from_secs(600),
    )
    .await
    {
        let states = "return JSON.stringify(window.switchyard.transfers().map(t => \
             ({direction: t.direction, state: t.state, bytes: t.bytes, error: t.error})))";
        let sent = eval(a, states).await.unwrap_or_default();
        let received = eval(b, states).await.unwrap_or_default();
        bail!("the file transfer did not verify ({e}); sender: {sent}, receiver: {received}");
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Two fresh pages of the server's origin (for its modules), joined by a direct peer connection
/// after `sender` and `receiver` set up each end (called with the role and `size`); with
/// `media`, each page also sends its camera and microphone to the other.
async fn connect_direct(
    driver: &Driver,
    port: u16,
    (sender, receiver): (&str, &str),
    size: usize,
    media: bool,
) -> anyhow::Result<(Client, Client)> {
    let a = driver.browser().await?;
    let b = driver.browser().await?;
    for (page, setup, role) in [(&a, sender, "sender"), (&b, receiver, "receiver")] {
        page.goto(&format!("http://127.0.0.1:{port}/")).await?;
        page.execute(P2P_SETUP, vec![]).await?;
        page.execute(setup, vec![role.into(), size.into()]).await?;
        if media {
            page.execute(P2P_MEDIA, vec![]).await?;
        }
    }
    let offer = a
        .execute(
            "return window.__pc.createOffer().then(o => window.__pc.setLocalDescription(o)) \
               .then(() => window.__waitIce()).then(() => window.__pc.localDescription.sdp);",
            vec![],
        )
        .await?;
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
    Ok((a, b))
}

/// The baseline: `file` sent directly with the web demo's file transfer, chosen in a file
/// chooser as on the call page; with `media`, in a direct call (camera and microphone both
/// ways). Returns the seconds until the receiver verified it.
async fn direct_file_transfer(
    driver: &Driver,
    port: u16,
    file: &std::path::Path,
    media: bool,
) -> anyhow::Result<f64> {
    let size = std::fs::metadata(file)?.len() as usize;
    let pair = (FILE_TRANSFER, FILE_TRANSFER);
    let (a, b) = connect_direct(driver, port, pair, size, media).await?;
    wait_until(
        &a,
        "return window.switchyard.dataReady()",
        Duration::from_secs(30),
    )
    .await?;
    let secs = send_file(&a, &b, file).await.context("directly")?;
    a.close().await?;
    b.close().await?;
    Ok(secs)
}

/// The ceiling: `size` bytes sent directly as raw 64 KiB messages (one buffer sent again and
/// again, the same flow control as `sendData`). Returns the seconds until all arrived.
async fn direct_raw(driver: &Driver, port: u16, size: usize) -> anyhow::Result<f64> {
    let (a, b) = connect_direct(driver, port, (RAW_SENDER, RAW_RECEIVER), size, false).await?;
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
    let secs = start.elapsed().as_secs_f64();
    a.close().await?;
    b.close().await?;
    Ok(secs)
}

/// Writes `size` bytes of a fixed pattern to `path`.
fn write_test_file(path: &std::path::Path, size: usize) -> std::io::Result<()> {
    use std::io::Write;
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n])?;
        left -= n;
    }
    out.flush()
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
