//! Measures a real call through the release server, for issue #2's figures:
//! - time from opening the call page to the first decoded remote video frame (median of 5
//!   runs, joining a room where one participant already publishes);
//! - the server's CPU time and peak memory (from /proc) during a 60 s three-person call.
//!
//! Usage (after `cargo build --release`):
//!   cargo run --release -p switchyard-tests --example call_metrics -- [SERVER_BINARY] [SECONDS]
//! Defaults: target/release/switchyard, 60 seconds. Needs chromium and chromedriver.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchyard_tests::browser::{Driver, eval, max_video_frames};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// (CPU seconds used so far, peak resident set in KiB) of a process.
fn cpu_and_peak_rss(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks / 100.0, hwm))
}

async fn first_frame_decoded(page: &fantoccini::Client, deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if max_video_frames(page).await > 0 {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("no remote frame decoded within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/switchyard".into());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(60);
    let http_port = free_port();
    let rtc_port = free_port();
    let mut server = tokio::process::Command::new(&binary)
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--rtc-port", &rtc_port.to_string()])
        .args(["--log", "warn"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {binary}; build it with cargo build --release"))?;
    let pid = server.id().context("server exited at once")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = |name: &str| format!("http://127.0.0.1:{http_port}/room/bench?name={name}");

    let driver = Driver::start().await?;
    let alice = driver.browser().await?;
    alice.goto(&url("Alice")).await?;

    let mut times = Vec::new();
    for run in 1..=5 {
        let bob = driver.browser().await?;
        let start = Instant::now();
        bob.goto(&url("Bob")).await?;
        first_frame_decoded(&bob, Duration::from_secs(20)).await?;
        let took = start.elapsed();
        println!(
            "run {run}: first remote frame decoded {} ms after opening the page",
            took.as_millis()
        );
        times.push(took);
        bob.close().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    times.sort();
    let median = times[times.len() / 2];

    let bob = driver.browser().await?;
    bob.goto(&url("Bob")).await?;
    let carol = driver.browser().await?;
    carol.goto(&url("Carol")).await?;
    for page in [&alice, &bob, &carol] {
        first_frame_decoded(page, Duration::from_secs(20)).await?;
    }
    let (cpu_before, _) = cpu_and_peak_rss(pid)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu_after, peak_kib) = cpu_and_peak_rss(pid)?;
    let stats = eval(&alice, "return window.switchyard.stats()").await?;

    let cpu = cpu_after - cpu_before;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| page open to first decoded remote frame, median of 5 | {} ms (runs: {:?} ms) |",
        median.as_millis(),
        times.iter().map(|t| t.as_millis()).collect::<Vec<_>>()
    );
    println!(
        "| server CPU time during a {seconds} s three-person call | {cpu:.2} s ({:.1}% of one core) |",
        cpu * 100.0 / seconds as f64
    );
    println!(
        "| server peak resident memory (VmHWM, whole run) | {:.1} MiB |",
        peak_kib as f64 / 1024.0
    );
    println!();
    println!("Alice's receive stats at the end: {stats}");
    for page in [alice, bob, carol] {
        let _ = page.close().await;
    }
    let _ = server.kill().await;
    Ok(())
}
