//! A four-Chromium call through Switchyard and through Janus, side by side in one run: the
//! servers' CPU per forwarded packet at browser rates (issue 16's "≤ 0.5× Janus" goal).
//!
//! Each run starts one server, opens four headless Chromium pages with fake camera and
//! microphone that publish the same media (camera at 1280x720 ideal in three VP8 simulcast layers
//! with L1T3, microphone) and subscribe to the three others, waits until every page decodes all
//! three remote cameras, lets bandwidth estimation settle, and then measures for `--seconds`: the
//! server process's CPU time (from /proc, all threads) and the RTP packets the pages received
//! (inbound-rtp `packetsReceived`, audio and video: every one was forwarded by the server). Runs
//! alternate Switchyard, Janus, Switchyard, Janus, ... (`--pairs` pairs), so drift of a noisy host
//! falls on both. Switchyard runs its web demo's call page (`/room/{room}?name=`); Janus runs
//! `janus_call.html` (VideoRoom over its REST API), served from this process.
//!
//! Usage (after `cargo build --release`; needs chromium, chromedriver and Janus, which
//! `scripts/janus` installs):
//!   cargo run --release -p switchyard-tests --example janus_call -- \
//!       [--binary target/release/switchyard] [--seconds 60] [--pairs 3] [--settle 10]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::Client;
use serde_json::Value;
use switchyard_tests::browser::{Driver, eval};

const PAGE: &str = include_str!("janus_call.html");
const NAMES: [&str; 4] = ["Alice", "Bob", "Carol", "Dave"];

struct Options {
    binary: String,
    seconds: u64,
    pairs: u32,
    settle: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        binary: "target/release/switchyard".into(),
        seconds: 60,
        pairs: 3,
        settle: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--binary" => o.binary = value,
            "--seconds" => o.seconds = value.parse().context("--seconds: a whole number")?,
            "--pairs" => o.pairs = value.parse().context("--pairs: a whole number")?,
            "--settle" => o.settle = value.parse().context("--settle: a whole number")?,
            _ => bail!("unknown argument {flag}; see the usage at the top of janus_call.rs"),
        }
    }
    Ok(o)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// CPU seconds (user + system, all threads) a process has used so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Which server a run measures, and how its pages read their inbound streams.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Switchyard,
    Janus,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Switchyard => "switchyard",
            Server::Janus => "janus",
        }
    }

    fn stats_script(self) -> &'static str {
        match self {
            Server::Switchyard => "return window.switchyard ? window.switchyard.stats() : []",
            Server::Janus => {
                "if (window.bench && window.bench.error) throw new Error(window.bench.error);
                 return window.bench ? window.bench.stats() : []"
            }
        }
    }
}

/// A started server: its process id, the call page URL for a name, and how to stop it.
struct Running {
    pid: u32,
    page_url: Box<dyn Fn(&str) -> String>,
    child: Option<tokio::process::Child>,
    janus_dir: Option<std::path::PathBuf>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        if let Some(dir) = self.janus_dir.take() {
            let _ = std::process::Command::new(janus_script())
                .arg("stop")
                .arg("--dir")
                .arg(&dir)
                .status();
        }
    }
}

fn janus_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/janus")
}

async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn start_switchyard(binary: &str, run: u32) -> anyhow::Result<Running> {
    let http_port = free_port()?;
    let child = tokio::process::Command::new(binary)
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--rtc-port", &free_port()?.to_string()])
        .args(["--log", "warn", "--drain-secs", "0"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {binary}; build it with cargo build --release"))?;
    let pid = child.id().context("the server exited at once")?;
    wait_listening(http_port).await?;
    Ok(Running {
        pid,
        page_url: Box::new(move |name| {
            format!("http://127.0.0.1:{http_port}/room/bench-{run}?name={name}")
        }),
        child: Some(child),
        janus_dir: None,
    })
}

async fn start_janus(page_port: u16, run: u32) -> anyhow::Result<Running> {
    let dir = std::env::temp_dir().join(format!("switchyard-janus-call-{}", std::process::id()));
    let port = free_port()?;
    let out = std::process::Command::new(janus_script())
        .args(["start", "--port", &port.to_string(), "--dir"])
        .arg(&dir)
        .output()
        .context("cannot run scripts/janus")?;
    if !out.status.success() {
        bail!(
            "scripts/janus start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
            .with_context(|| format!("scripts/janus printed no {key}"))
    };
    let pid: u32 = value("JANUS_PID=")?.parse()?;
    let url = value("JANUS_URL=")?;
    Ok(Running {
        pid,
        page_url: Box::new(move |name| {
            format!(
                "http://127.0.0.1:{page_port}/janus_call.html?janus={url}&room={}&name={name}",
                1000 + run
            )
        }),
        child: None,
        janus_dir: Some(dir),
    })
}

/// Serves `janus_call.html` on a free port of 127.0.0.1 for as long as the process runs.
async fn serve_page() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().route(
        "/janus_call.html",
        axum::routing::get(|| async { axum::response::Html(PAGE) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

/// Sum of one field over a page's inbound streams.
fn total(streams: &[Value], field: &str) -> u64 {
    streams.iter().filter_map(|s| s[field].as_u64()).sum()
}

async fn streams(page: &Client, server: Server) -> anyhow::Result<Vec<Value>> {
    Ok(eval(page, server.stats_script())
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Waits until every page decodes pictures from all three other cameras.
async fn wait_call_up(pages: &[Client], server: Server) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let mut up = 0;
        for page in pages {
            let s = streams(page, server).await?;
            let decoding = s
                .iter()
                .filter(|s| s["kind"] == "video" && s["framesDecoded"].as_u64() > Some(0))
                .count();
            if decoding >= NAMES.len() - 1 {
                up += 1;
            }
        }
        if up == pages.len() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "{}: only {up} of {} pages decode all three cameras after 60 s",
                server.name(),
                pages.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Sample {
    packets: u64,
    bytes: u64,
    heights: Vec<u64>,
}

async fn sample(pages: &[Client], server: Server) -> anyhow::Result<Sample> {
    let mut s = Sample {
        packets: 0,
        bytes: 0,
        heights: Vec::new(),
    };
    for page in pages {
        let streams = streams(page, server).await?;
        s.packets += total(&streams, "packetsReceived");
        s.bytes += total(&streams, "bytesReceived");
        s.heights.extend(
            streams
                .iter()
                .filter(|v| v["kind"] == "video")
                .filter_map(|v| v["frameHeight"].as_u64()),
        );
    }
    Ok(s)
}

struct Measured {
    server: Server,
    us_per_packet: f64,
    packets_per_s: f64,
    cpu_percent: f64,
    mbit_per_s: f64,
    heights: Vec<u64>,
}

async fn measure(
    driver: &Driver,
    server: Server,
    running: &Running,
    o: &Options,
) -> anyhow::Result<Measured> {
    let mut pages = Vec::new();
    for name in NAMES {
        let page = driver.browser().await?;
        page.goto(&(running.page_url)(name)).await?;
        pages.push(page);
    }
    let result = async {
        let up = wait_call_up(&pages, server).await?;
        println!(
            "  {}: all four pages decode three cameras after {:.1} s; settling {} s",
            server.name(),
            up.as_secs_f64(),
            o.settle
        );
        tokio::time::sleep(Duration::from_secs(o.settle)).await;
        let (cpu0, s0, t0) = (
            cpu_seconds(running.pid)?,
            sample(&pages, server).await?,
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(o.seconds)).await;
        let (cpu1, s1, t1) = (
            cpu_seconds(running.pid)?,
            sample(&pages, server).await?,
            Instant::now(),
        );
        let seconds = (t1 - t0).as_secs_f64();
        let packets = s1.packets.saturating_sub(s0.packets);
        if packets == 0 {
            bail!("{}: the pages received no packets", server.name());
        }
        let cpu = cpu1 - cpu0;
        Ok(Measured {
            server,
            us_per_packet: cpu * 1e6 / packets as f64,
            packets_per_s: packets as f64 / seconds,
            cpu_percent: cpu * 100.0 / seconds,
            mbit_per_s: s1.bytes.saturating_sub(s0.bytes) as f64 * 8.0 / seconds / 1e6,
            heights: s1.heights,
        })
    }
    .await;
    for page in pages {
        let _ = page.close().await;
    }
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let page_port = serve_page().await?;
    let driver = Driver::start().await?;
    let mut all = Vec::new();
    for pair in 1..=o.pairs {
        for server in [Server::Switchyard, Server::Janus] {
            let run = pair * 2 + u32::from(server == Server::Janus);
            println!("pair {pair}/{}: {}", o.pairs, server.name());
            let running = match server {
                Server::Switchyard => start_switchyard(&o.binary, run).await?,
                Server::Janus => start_janus(page_port, run).await?,
            };
            let measured = measure(&driver, server, &running, &o).await;
            running.stop().await;
            let m = measured?;
            println!(
                "  {}: {:.1} µs per forwarded packet ({:.0} packets/s, {:.1} Mbit/s to the pages, \
                 server {:.1} % of a core; received video heights {:?})",
                m.server.name(),
                m.us_per_packet,
                m.packets_per_s,
                m.mbit_per_s,
                m.cpu_percent,
                m.heights
            );
            all.push(m);
        }
    }
    println!();
    println!(
        "| pair | Switchyard µs/packet | Janus µs/packet | ratio | packets/s (S / J) | server % of a core (S / J) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (i, pair) in all.chunks(2).enumerate() {
        let (s, j) = (&pair[0], &pair[1]);
        let ratio = s.us_per_packet / j.us_per_packet;
        ratios.push(ratio);
        println!(
            "| {} | {:.1} | {:.1} | {:.2}× | {:.0} / {:.0} | {:.1} / {:.1} |",
            i + 1,
            s.us_per_packet,
            j.us_per_packet,
            ratio,
            s.packets_per_s,
            j.packets_per_s,
            s.cpu_percent,
            j.cpu_percent
        );
    }
    let of = |server: Server| {
        median(
            all.iter()
                .filter(|m| m.server == server)
                .map(|m| m.us_per_packet)
                .collect(),
        )
    };
    println!();
    println!(
        "median: Switchyard {:.1} µs, Janus {:.1} µs per forwarded packet; median of the pairs' ratios {:.2}× Janus",
        of(Server::Switchyard),
        of(Server::Janus),
        median(ratios)
    );
    Ok(())
}
