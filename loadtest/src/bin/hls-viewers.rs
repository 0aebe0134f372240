//! `hls-viewers`: many simulated viewers of a Switchyard broadcast, each on its own connection,
//! doing what a low-latency HLS player does: a blocking playlist reload for the next part
//! (`_HLS_msn`, `_HLS_part`), then that part, again and again, spread over the renditions.
//! It reports how long parts take to arrive (p50/p99), how far the last viewer is behind the
//! first for the same part (the fan-out spread), bytes served and errors, as one JSON line.
//! It never plays or decodes media.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Simulated low-latency HLS viewers of a Switchyard broadcast")]
struct Args {
    /// The broadcast's multivariant playlist, e.g. http://127.0.0.1:8080/watch/demo/live.m3u8.
    #[arg(long)]
    url: String,
    /// How many viewers.
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// How long they watch, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// A viewer token, for a broadcast that is not public.
    #[arg(long)]
    token: Option<String>,
}

/// What every viewer adds to.
#[derive(Default)]
struct Tally {
    /// Request to last byte, per part, in ms.
    part_ms: Vec<f64>,
    /// How long after the first viewer each viewer had the same part, in ms.
    behind_first_ms: Vec<f64>,
    bytes: u64,
    errors: u64,
    /// When the first viewer had each (rendition, msn, part).
    first: HashMap<(usize, u64, u64), Instant>,
}

/// The URIs of the playlist's variants, resolved against `base`.
fn variants(master: &str, base: &str) -> Vec<String> {
    master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|uri| format!("{base}/{uri}"))
        .collect()
}

/// Whether the media playlist lists part `part` of segment `msn`.
fn lists(playlist: &str, msn: u64, part: u64) -> bool {
    playlist.contains(&format!("\"s{msn}.p{part}.m4s\""))
}

/// The preload hint's (msn, part).
fn hint(playlist: &str) -> Option<(u64, u64)> {
    let line = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let (msn, part) = uri
        .strip_prefix('s')?
        .strip_suffix(".m4s")?
        .split_once(".p")?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> Option<bytes::Bytes> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.bytes().await.ok()
}

async fn viewer(
    rendition: usize,
    playlist_url: String,
    token: Option<String>,
    until: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let client = reqwest::Client::new();
    let dir = playlist_url.trim_end_matches("index.m3u8").to_owned();
    let token = token.as_deref();
    let mut next: Option<(u64, u64)> = None;
    while Instant::now() < until {
        let (msn, part) = match next {
            Some(next) => next,
            None => match get(&client, &playlist_url, token).await {
                Some(text) => match hint(&String::from_utf8_lossy(&text)) {
                    Some(hinted) => hinted,
                    None => break, // ended
                },
                None => {
                    tally.lock().unwrap().errors += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let blocking = format!("{playlist_url}?_HLS_msn={msn}&_HLS_part={part}");
        let Some(playlist) = get(&client, &blocking, token).await else {
            tally.lock().unwrap().errors += 1;
            next = None;
            continue;
        };
        let playlist = String::from_utf8_lossy(&playlist);
        if !lists(&playlist, msn, part) {
            // That segment ended before such a part: the next one begins the next segment.
            next = lists(&playlist, msn + 1, 0).then_some((msn + 1, 0));
            continue;
        }
        let asked = Instant::now();
        let Some(bytes) = get(&client, &format!("{dir}s{msn}.p{part}.m4s"), token).await else {
            tally.lock().unwrap().errors += 1;
            next = None;
            continue;
        };
        let arrived = Instant::now();
        let mut tally = tally.lock().unwrap();
        tally.part_ms.push((arrived - asked).as_secs_f64() * 1000.0);
        tally.bytes += bytes.len() as u64;
        let first = *tally.first.entry((rendition, msn, part)).or_insert(arrived);
        tally
            .behind_first_ms
            .push((arrived - first).as_secs_f64() * 1000.0);
        next = Some((msn, part + 1));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let Some(master) = get(&client, &args.url, args.token.as_deref()).await else {
        eprintln!(
            "hls-viewers: cannot read {} (is the room broadcasting? POST /api/rooms/{{room}}/broadcast)",
            args.url
        );
        return std::process::ExitCode::FAILURE;
    };
    let base = args.url.rsplit_once('/').map_or("", |(b, _)| b).to_owned();
    let renditions = variants(&String::from_utf8_lossy(&master), &base);
    if renditions.is_empty() {
        eprintln!("hls-viewers: the playlist lists no renditions");
        return std::process::ExitCode::FAILURE;
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.viewers)
        .map(|i| {
            let rendition = i % renditions.len();
            tokio::spawn(viewer(
                rendition,
                renditions[rendition].clone(),
                args.token.clone(),
                until,
                Arc::clone(&tally),
            ))
        })
        .collect();
    let mut last_print = Instant::now();
    for task in tasks {
        let _ = task.await;
        if last_print.elapsed() > Duration::from_secs(10) {
            last_print = Instant::now();
            eprintln!("hls-viewers: {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut tally = tally.lock().unwrap();
    tally.part_ms.sort_by(f64::total_cmp);
    tally.behind_first_ms.sort_by(f64::total_cmp);
    let report = json!({
        "viewers": args.viewers,
        "seconds": seconds,
        "renditions": renditions.len(),
        "parts": tally.part_ms.len(),
        "partsPerSecond": tally.part_ms.len() as f64 / seconds,
        "megabitsPerSecond": tally.bytes as f64 * 8.0 / seconds / 1e6,
        "partMsP50": percentile(&tally.part_ms, 0.5),
        "partMsP99": percentile(&tally.part_ms, 0.99),
        "partMsMax": percentile(&tally.part_ms, 1.0),
        "behindFirstMsP50": percentile(&tally.behind_first_ms, 0.5),
        "behindFirstMsP99": percentile(&tally.behind_first_ms, 0.99),
        "errors": tally.errors,
    });
    println!("{report}");
    std::process::ExitCode::SUCCESS
}
