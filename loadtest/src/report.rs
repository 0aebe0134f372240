//! The run's results: built from every participant's observations (with the layer each
//! receiver got) and the server's CPU time, printed as a table, written as JSON (`--json`) and
//! drawn as an SVG (`--plot`). It never writes or prints anything itself: it returns strings,
//! and `main` writes them.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::downlink::{ReceiverReport, summary};
use crate::participant::PublishVideo;
use crate::scenario::{Scenario, Target};
use crate::simulcast::LayerReport;
use crate::stats::{ParticipantStats, Second, percentile};
use crate::usage::Usage;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub server: String,
    pub rooms: u32,
    pub publishers_per_room: u32,
    pub subscribers_per_room: u32,
    pub media: String,
    /// Single-layer video bitrate asked for (`None` with simulcast or without video).
    pub video_kbps: Option<u32>,
    /// The clip's real average payload bitrate (single-layer video).
    pub clip_kbps: Option<f64>,
    /// Video published as simulcast layers.
    pub simulcast: bool,
    /// The simulcast layers (empty without simulcast).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerReport>,
    /// Every receiver's video, track by track: tile, chosen layer, picture size, bitrate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<ReceiverReport>,
    pub ramp_seconds: f64,
    pub window_seconds: f64,
    pub participants: u32,
    pub joined: u32,
    /// Joins that reached another node of a cluster first and were redirected to the room's.
    pub redirected: u32,
    pub join_ms: Percentiles,
    /// Packets the participants received inside the window (each one forwarded by the server).
    pub packets_received: u64,
    pub packets_per_second: f64,
    pub loss_percent: f64,
    pub jitter_ms: KindPair,
    pub track_kbps: KindPair,
    pub latency_ms: Percentiles,
    pub server_cpu_seconds: Option<f64>,
    pub server_peak_rss_mb: Option<f64>,
    pub server_cpu_us_per_packet: Option<f64>,
    pub errors: Vec<ErrorCount>,
    #[serde(skip)]
    pub timeline: Vec<Second>,
}

#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    fn of(mut values: Vec<u32>, unit: f64) -> Percentiles {
        values.sort_unstable();
        let at = |p| percentile(&values, p).map(|v| f64::from(v) / unit);
        Percentiles {
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: values.last().map(|v| f64::from(*v) / unit),
        }
    }
}

/// Mean over received tracks of one kind.
#[derive(Debug, Default, Serialize)]
pub struct KindPair {
    pub audio: Option<f64>,
    pub video: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorCount {
    pub count: u32,
    pub error: String,
}

impl Report {
    pub fn build(
        scenario: &Scenario,
        participants: Vec<ParticipantStats>,
        ramp: Duration,
        window: Duration,
        usage: Option<(Usage, Usage)>,
        video: &PublishVideo,
    ) -> Report {
        let mut join_ms = Vec::new();
        let mut latencies = Vec::new();
        let mut packets = 0;
        let (mut expected, mut lost) = (0u64, 0u64);
        let mut jitter: [Vec<f64>; 2] = Default::default();
        let mut kbps: [Vec<f64>; 2] = Default::default();
        let mut errors: Vec<ErrorCount> = Vec::new();
        let mut timeline: Vec<Second> = Vec::new();
        let mut joined = 0;
        let mut redirected = 0;
        let mut receivers = Vec::new();
        for p in participants {
            redirected += u32::from(p.redirected);
            receivers.extend(p.downlink.rows(&p.identity, window));
            if let Some(error) = p.error {
                match errors.iter_mut().find(|e| e.error == error) {
                    Some(e) => e.count += 1,
                    None => errors.push(ErrorCount { count: 1, error }),
                }
            } else {
                joined += 1;
            }
            if let Some(t) = p.join_time {
                join_ms.push(t.as_micros().min(u128::from(u32::MAX)) as u32);
            }
            latencies.extend(p.latencies_us);
            packets += p.window_packets;
            for track in p.tracks.values() {
                expected += track.expected();
                lost += track.lost();
                jitter[usize::from(track.video)].push(track.jitter_ms());
                kbps[usize::from(track.video)].push(track.bitrate_kbps());
            }
            if timeline.len() < p.seconds.len() {
                timeline.resize_with(p.seconds.len(), Second::default);
            }
            for (total, second) in timeline.iter_mut().zip(p.seconds) {
                total.packets += second.packets;
                total.bytes += second.bytes;
                total.latencies_us.extend(second.latencies_us);
            }
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let cpu = usage.map(|(before, after)| after.cpu.saturating_sub(before.cpu).as_secs_f64());
        let server = match &scenario.target {
            Target::Switchyard { .. } => "switchyard",
            Target::Janus { .. } => "janus",
        };
        let (video_kbps, clip_kbps, layers) = match video {
            PublishVideo::None => (None, None, Vec::new()),
            PublishVideo::Single(clip) => (
                Some(scenario.video_kbps),
                Some(clip.bitrate_kbps()),
                Vec::new(),
            ),
            PublishVideo::Simulcast(layers) => {
                (None, None, layers.iter().map(|l| l.report()).collect())
            }
        };
        Report {
            server: server.into(),
            rooms: scenario.rooms,
            publishers_per_room: scenario.publishers,
            subscribers_per_room: scenario.subscribers,
            media: if scenario.video {
                "audio+video"
            } else {
                "audio"
            }
            .into(),
            video_kbps,
            clip_kbps,
            simulcast: !layers.is_empty(),
            layers,
            receivers,
            ramp_seconds: ramp.as_secs_f64(),
            window_seconds: window.as_secs_f64(),
            participants: scenario.participants(),
            joined,
            redirected,
            join_ms: Percentiles::of(join_ms, 1000.0),
            packets_received: packets,
            packets_per_second: packets as f64 / window.as_secs_f64(),
            loss_percent: if expected > 0 {
                lost as f64 * 100.0 / expected as f64
            } else {
                0.0
            },
            jitter_ms: KindPair {
                audio: mean(&jitter[0]),
                video: mean(&jitter[1]),
            },
            track_kbps: KindPair {
                audio: mean(&kbps[0]),
                video: mean(&kbps[1]),
            },
            latency_ms: Percentiles::of(latencies, 1000.0),
            server_cpu_seconds: cpu,
            server_peak_rss_mb: usage.map(|(_, after)| after.peak_rss as f64 / 1_048_576.0),
            server_cpu_us_per_packet: cpu
                .filter(|_| packets > 0)
                .map(|cpu| cpu * 1e6 / packets as f64),
            errors,
            timeline,
        }
    }

    /// The human-readable summary.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        let mut rows: Vec<(&str, String)> = vec![
            ("server", self.server.clone()),
            (
                "scenario",
                format!(
                    "{} room(s) × {} publishers + {} subscribers, {}{}{}",
                    self.rooms,
                    self.publishers_per_room,
                    self.subscribers_per_room,
                    self.media,
                    self.video_kbps
                        .map(|k| format!(" at {k} kbit/s"))
                        .unwrap_or_default(),
                    if self.simulcast {
                        let layers: Vec<String> = self
                            .layers
                            .iter()
                            .map(|l| {
                                format!(
                                    "{} {}x{} at {} kbit/s (clip {:.0})",
                                    l.layer.rid(),
                                    l.width,
                                    l.height,
                                    l.target_kbps,
                                    l.clip_kbps
                                )
                            })
                            .collect();
                        format!(", simulcast: {}", layers.join(", "))
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "joined",
                format!(
                    "{}/{} (ramp-up {:.1} s, measured {:.1} s){}",
                    self.joined,
                    self.participants,
                    self.ramp_seconds,
                    self.window_seconds,
                    if self.redirected > 0 {
                        format!(", {} redirected to their room's node", self.redirected)
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "join time p50/p95/max (ms)",
                format!(
                    "{} / {} / {}",
                    ms(self.join_ms.p50),
                    ms(self.join_ms.p95),
                    ms(self.join_ms.max)
                ),
            ),
            (
                "packets received",
                format!(
                    "{} ({:.0}/s)",
                    self.packets_received, self.packets_per_second
                ),
            ),
            ("packet loss", format!("{:.3}%", self.loss_percent)),
            (
                "jitter audio/video (ms)",
                format!(
                    "{} / {}",
                    ms(self.jitter_ms.audio),
                    ms(self.jitter_ms.video)
                ),
            ),
            (
                "bitrate per track audio/video (kbit/s)",
                format!(
                    "{} / {}",
                    ms(self.track_kbps.audio),
                    ms(self.track_kbps.video)
                ),
            ),
            (
                "forwarding latency p50/p99/max (ms)",
                format!(
                    "{} / {} / {}",
                    ms(self.latency_ms.p50),
                    ms(self.latency_ms.p99),
                    ms(self.latency_ms.max)
                ),
            ),
        ];
        let tiles = summary(&self.receivers);
        rows.extend(tiles.iter().map(|(k, v)| (k.as_str(), v.clone())));
        if let Some(cpu) = self.server_cpu_seconds {
            rows.push(("server CPU time (s)", format!("{cpu:.2}")));
        }
        if let Some(rss) = self.server_peak_rss_mb {
            rows.push(("server peak RSS (MiB)", format!("{rss:.1}")));
        }
        if let Some(us) = self.server_cpu_us_per_packet {
            rows.push(("server CPU per forwarded packet (µs)", format!("{us:.2}")));
        }
        rows.push((
            "errors",
            if self.errors.is_empty() {
                "none".into()
            } else {
                self.errors
                    .iter()
                    .map(|e| format!("{} × {}", e.count, e.error))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            let _ = writeln!(out, "{key:<width$}  {value}");
        }
        out
    }

    /// Latency (p50, p99) and received bitrate over time, as an SVG.
    pub fn svg(&self) -> String {
        let seconds = self.timeline.len().max(2);
        let (width, height, margin) = (900.0, 260.0, 50.0);
        let x = |i: usize| margin + (width - 2.0 * margin) * i as f64 / (seconds - 1) as f64;
        let mut latency: Vec<(f64, f64)> = Vec::new();
        let mut kbps = Vec::new();
        for second in &self.timeline {
            let mut v = second.latencies_us.clone();
            v.sort_unstable();
            latency.push((
                percentile(&v, 50.0).map_or(0.0, |u| f64::from(u) / 1000.0),
                percentile(&v, 99.0).map_or(0.0, |u| f64::from(u) / 1000.0),
            ));
            kbps.push(second.bytes as f64 * 8.0 / 1000.0);
        }
        let panel = |top: f64, values: &[Vec<f64>], colors: &[&str], title: &str, unit: &str| {
            let max = values
                .iter()
                .flatten()
                .copied()
                .fold(0.0f64, f64::max)
                .max(1e-9);
            let y = |v: f64| top + height - margin - (height - 2.0 * margin) * v / max;
            let mut svg = format!(
                r##"<text x="{margin}" y="{}" font-size="14" font-family="sans-serif">{title}</text>
<line x1="{margin}" y1="{}" x2="{}" y2="{}" stroke="#999"/>
<line x1="{margin}" y1="{}" x2="{margin}" y2="{}" stroke="#999"/>
<text x="4" y="{}" font-size="11" font-family="sans-serif">{max:.1} {unit}</text>
<text x="{}" y="{}" font-size="11" font-family="sans-serif">{} s</text>
"##,
                top + margin - 20.0,
                y(0.0),
                width - margin,
                y(0.0),
                y(0.0),
                y(max),
                y(max) + 4.0,
                width - margin - 20.0,
                y(0.0) + 16.0,
                seconds - 1,
            );
            for (series, color) in values.iter().zip(colors) {
                let points: Vec<String> = series
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                    .collect();
                let _ = writeln!(
                    svg,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                    points.join(" ")
                );
            }
            svg
        };
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" viewBox="0 0 {width} {}">
<rect width="100%" height="100%" fill="white"/>
"#,
            height * 2.0,
            height * 2.0
        );
        svg += &panel(
            0.0,
            &[
                latency.iter().map(|l| l.0).collect(),
                latency.iter().map(|l| l.1).collect(),
            ],
            &["#1f77b4", "#d62728"],
            &format!(
                "{}: forwarding latency per second (blue p50, red p99)",
                self.server
            ),
            "ms",
        );
        svg += &panel(
            height,
            &[kbps],
            &["#2ca02c"],
            "received by all participants per second",
            "kbit/s",
        );
        svg += "</svg>\n";
        svg
    }
}
