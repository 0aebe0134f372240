//! One load-test run: simulated participants join at the ramp-up rate (publishers first), send
//! and receive for the run's duration, and leave. The measured window starts once everyone has
//! joined (plus a short settling time) and lasts `duration`; the server's CPU time is read at
//! both ends of it. A participant that fails never stops the run: its error is counted and
//! reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::media::{Clip, ClipSpec};
use crate::participant::{ParticipantSpec, PublishVideo, participant};
use crate::report::Report;
use crate::scenario::{Credentials, Scenario, Target};
use crate::stats::Live;
use crate::tiles::tile_for;
use crate::usage;

/// Time after the last join before the window opens (subscriptions settle, keyframes arrive).
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Parameters(String),
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error(transparent)]
    Usage(#[from] usage::UsageError),
    #[error("cannot get a token: {0}")]
    Token(String),
    #[error(transparent)]
    Janus(#[from] crate::bridge::BridgeError),
    #[error("no participant could join; the first error: {0}")]
    NobodyJoined(String),
}

impl Scenario {
    fn validate(&self) -> Result<(), RunError> {
        let bad = |m: &str| Err(RunError::Parameters(m.to_owned()));
        if self.rooms == 0 {
            return bad("--rooms must be at least 1");
        }
        // Nobody publishing: idle participants (what an idle connection costs the server).
        if self.publishers == 0 && matches!(self.target, Target::Janus { .. }) {
            return bad("--publishers must be at least 1 against Janus (its bridge awaits them)");
        }
        if self.publishers + self.subscribers < 2 {
            return bad("a room needs at least two participants (--publishers + --subscribers)");
        }
        if self.participants() > 2000 {
            return bad(
                "at most 2000 participants in one run (rooms × (publishers + subscribers))",
            );
        }
        if self.video && !(50..=20_000).contains(&self.video_kbps) {
            return bad("--video-kbps must be between 50 and 20000");
        }
        if self.simulcast && !self.video {
            return bad("--simulcast sends video: drop --audio-only");
        }
        if self.simulcast && matches!(self.target, Target::Janus { .. }) {
            return bad("--simulcast is for Switchyard (the Janus bridge publishes one layer)");
        }
        if !self.tiles.is_empty() && matches!(self.target, Target::Janus { .. }) {
            return bad("--tiles is for Switchyard (Janus takes no trackSettings)");
        }
        if self.duration < Duration::from_secs(1) || self.duration > Duration::from_secs(24 * 3600)
        {
            return bad("--duration must be between 1 s and 24 h");
        }
        if !(self.ramp_per_second > 0.0 && self.ramp_per_second <= 1000.0) {
            return bad("--ramp must be more than 0 and at most 1000 participants per second");
        }
        Ok(())
    }
}

/// Runs the scenario and reports what it saw.
pub async fn run(scenario: Scenario, cache: &std::path::Path) -> Result<Report, RunError> {
    scenario.validate()?;
    usage::read_all(&scenario.server_pids)?;
    let (ws_urls, bridge) = match &scenario.target {
        Target::Switchyard { urls, .. } => {
            for url in urls {
                preflight(url).await?;
            }
            (
                urls.iter().map(|u| websocket_url(u)).collect::<Vec<_>>(),
                None,
            )
        }
        Target::Janus { url } => {
            let bridge = crate::bridge::Bridge::start(url, scenario.publishers).await?;
            (vec![bridge.ws_url()], Some(bridge))
        }
    };
    let video = match (scenario.video, scenario.simulcast) {
        (false, _) => PublishVideo::None,
        (true, false) => PublishVideo::Single(Arc::new(Clip::prepare(
            ClipSpec {
                width: 640,
                height: 360,
                kbps: scenario.video_kbps,
            },
            cache,
        )?)),
        (true, true) => PublishVideo::Simulcast(Arc::new(crate::simulcast::prepare(cache)?)),
    };
    let opus = crate::media::opus_packets()?;
    let live = Arc::new(Live::default());
    let measuring = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let total = scenario.participants();
    let status = scenario.status_line.then(|| {
        tokio::spawn(status_line(
            Arc::clone(&live),
            start,
            total,
            scenario.duration,
        ))
    });

    // Publishers of every room first, then subscribers.
    let mut order = Vec::new();
    for publisher in [true, false] {
        let count = if publisher {
            scenario.publishers
        } else {
            scenario.subscribers
        };
        for i in 0..count {
            for room in 0..scenario.rooms {
                order.push((room, publisher, i));
            }
        }
    }
    let gap = Duration::from_secs_f64(1.0 / scenario.ramp_per_second);
    let mut tasks = Vec::new();
    for (n, (room, publisher, i)) in order.into_iter().enumerate() {
        if n > 0 {
            tokio::time::sleep(gap).await;
        }
        let room_name = format!("{}-{room}", scenario.room_prefix);
        let identity = format!("{}-{room}-{i}", if publisher { "pub" } else { "sub" });
        let token = token(&scenario.target, &room_name, &identity, publisher).await;
        // Receivers take the tile sizes in turn: publishers first, then subscribers.
        let index = if publisher {
            i
        } else {
            scenario.publishers + i
        };
        let spec = ParticipantSpec {
            // Spread over the nodes in turn.
            ws_url: ws_urls[n % ws_urls.len()].clone(),
            room: room_name,
            identity,
            token,
            publisher,
            video: video.clone(),
            opus: Arc::clone(&opus),
            tile: tile_for(&scenario.tiles, index),
            run_start: start,
            live: Arc::clone(&live),
            measuring: Arc::clone(&measuring),
            stop: stop_rx.clone(),
        };
        tasks.push(tokio::spawn(participant(spec)));
    }
    let ramp = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    if Live::get(&live.joined) == 0 {
        let _ = stop_tx.send(true);
        let mut first = None;
        for task in tasks {
            if let Ok(stats) = task.await {
                first = first.or(stats.error);
            }
        }
        if let Some(status) = status {
            status.abort();
        }
        return Err(RunError::NobodyJoined(
            first.unwrap_or_else(|| "no answer from the server".into()),
        ));
    }
    let before = usage::read_all(&scenario.server_pids)?;
    measuring.store(true, Ordering::Relaxed);
    let window_start = Instant::now();
    tokio::time::sleep(scenario.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let window = window_start.elapsed();
    let after = usage::read_all(&scenario.server_pids)?;
    let _ = stop_tx.send(true);
    let mut participants = Vec::new();
    for task in tasks {
        if let Ok(stats) = task.await {
            participants.push(stats);
        }
    }
    if let Some(status) = status {
        status.abort();
        eprintln!();
    }
    if let Some(bridge) = bridge {
        bridge.stop().await;
    }
    Ok(Report::build(
        &scenario,
        participants,
        ramp,
        window,
        before.zip(after),
        &video,
    ))
}

/// Checks that the Switchyard server answers before starting anyone.
async fn preflight(url: &str) -> Result<(), RunError> {
    let health = format!("{}/healthz", url.trim_end_matches('/'));
    let unreachable = |reason: String| RunError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let response = reqwest::Client::new()
        .get(&health)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| unreachable(root_cause(&e)))?;
    if !response.status().is_success() {
        return Err(unreachable(format!(
            "GET /healthz answered {}: is this a Switchyard server?",
            response.status()
        )));
    }
    Ok(())
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

fn websocket_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let ws = url
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| url.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| format!("ws://{url}"));
    format!("{ws}/ws")
}

/// A join token for one participant; an unobtainable token becomes that participant's error.
async fn token(
    target: &Target,
    room: &str,
    identity: &str,
    publisher: bool,
) -> Result<String, String> {
    let Target::Switchyard { urls, credentials } = target else {
        return Ok(String::new()); // the Janus bridge needs none
    };
    match credentials {
        Credentials::Fixed(token) => Ok(token.clone()),
        Credentials::Keys {
            api_key,
            api_secret,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let claims = protocol::Claims {
                iss: api_key.clone(),
                sub: identity.to_owned(),
                name: identity.to_owned(),
                room: room.to_owned(),
                exp: now + 24 * 3600,
                nbf: None,
                grants: protocol::Grants {
                    can_publish: publisher,
                    ..Default::default()
                },
            };
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(api_secret.as_bytes()),
            )
            .map_err(|e| e.to_string())
        }
        Credentials::DevTokens => {
            let response = reqwest::Client::new()
                // A dev cluster's nodes share their credentials: any node's token works.
                .get(format!(
                    "{}/api/dev-token",
                    urls.first().map_or("", |u| u.trim_end_matches('/'))
                ))
                .query(&[("room", room), ("identity", identity), ("name", identity)])
                .send()
                .await
                .map_err(|e| format!("GET /api/dev-token: {}", root_cause(&e)))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(
                    "the server is not in dev mode: pass --api-key and --api-secret".into(),
                );
            }
            let body: serde_json::Value = response
                .json()
                .await
                .map_err(|e| format!("GET /api/dev-token: {e}"))?;
            body["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("GET /api/dev-token answered {body}"))
        }
    }
}

/// One status line, redrawn every second.
async fn status_line(live: Arc<Live>, start: Instant, total: u32, duration: Duration) {
    use std::io::Write;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_packets = 0;
    loop {
        tick.tick().await;
        let packets = Live::get(&live.packets);
        let lost = Live::get(&live.lost);
        let rate = packets - last_packets;
        last_packets = packets;
        let loss = if packets + lost > 0 {
            lost as f64 * 100.0 / (packets + lost) as f64
        } else {
            0.0
        };
        eprint!(
            "\r[{:>4.0} s] joined {}/{total}  receiving {rate} pkt/s  loss {loss:.3}%  errors {}  (window {} s)   ",
            start.elapsed().as_secs_f64(),
            Live::get(&live.joined),
            Live::get(&live.errors),
            duration.as_secs(),
        );
        let _ = std::io::stderr().flush();
    }
}
