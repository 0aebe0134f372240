//! `GET /metrics` in the Prometheus text format, rendered by `metrics-exporter-prometheus`.
//!
//! Nothing is counted here: the media plane, the TURN relay and the WebSocket layer keep their
//! own totals (atomics, flushed off the per-packet path), and a scrape copies them into this
//! server's own recorder and renders it. Each server has its own recorder, so several servers
//! in one process (the tests) do not mix their numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use sfu::Sfu;
use turn_server::TurnServer;

/// The server's recorder and the totals only signaling knows.
pub struct Metrics {
    recorder: PrometheusRecorder,
    /// Open signaling WebSockets.
    pub websocket_connections: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("websocket_connections", &self.websocket_connections)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            recorder: PrometheusBuilder::new().build_recorder(),
            websocket_connections: AtomicI64::new(0),
        }
    }
}

/// Counts one open WebSocket for as long as it lives.
pub struct ConnectionGuard(Arc<Metrics>);

impl ConnectionGuard {
    pub fn new(metrics: &Arc<Metrics>) -> Self {
        metrics
            .websocket_connections
            .fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(metrics))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.websocket_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process's CPU seconds (user + system) and resident memory, from `/proc/self`.
fn process_usage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks / 100.0, rss_kib * 1024.0))
}

/// Copies the media plane's, the relay's and this layer's totals into `metrics`' recorder and
/// renders it.
pub(crate) fn render(
    metrics: &Metrics,
    sfu: &Sfu,
    turn: Option<&TurnServer>,
    cluster: Option<&crate::cluster_link::ClusterLink>,
) -> Response {
    metrics::with_local_recorder(&metrics.recorder, || {
        let media = sfu.counters();
        let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        describe_gauge!("switchyard_rooms", "Open rooms.");
        gauge!("switchyard_rooms").set(sfu.room_count() as f64);
        describe_gauge!("switchyard_participants", "Participants in all rooms.");
        gauge!("switchyard_participants").set(media.participants.load(Ordering::Relaxed) as f64);
        describe_gauge!("switchyard_tracks", "Published tracks in all rooms.");
        gauge!("switchyard_tracks").set(media.tracks.load(Ordering::Relaxed) as f64);
        let totals = [
            (
                "switchyard_packets_in_total",
                "RTP packets received from publishers.",
                read(&media.packets_in),
                Unit::Count,
            ),
            (
                "switchyard_bytes_in_total",
                "RTP payload bytes received from publishers.",
                read(&media.bytes_in),
                Unit::Bytes,
            ),
            (
                "switchyard_packets_out_total",
                "RTP packets forwarded to subscribers.",
                read(&media.packets_out),
                Unit::Count,
            ),
            (
                "switchyard_bytes_out_total",
                "RTP payload bytes forwarded to subscribers.",
                read(&media.bytes_out),
                Unit::Bytes,
            ),
            (
                "switchyard_packets_dropped_total",
                "Packets a subscription did not forward (waiting for a keyframe, stale, duplicate).",
                read(&media.packets_dropped),
                Unit::Count,
            ),
            (
                "switchyard_nacks_received_total",
                "NACK feedback packets received from subscribers.",
                read(&media.nacks_received),
                Unit::Count,
            ),
            (
                "switchyard_retransmissions_refused_total",
                "Retransmissions subscribers asked for that were not sent (asked again within 100 ms, resent six times already, or over a quarter of their downlink estimate).",
                read(&media.retransmissions_refused),
                Unit::Count,
            ),
            (
                "switchyard_padding_packets_sent_total",
                "Padding-only packets sent to probe a receiver's downlink after it backed off.",
                read(&media.padding_packets_sent),
                Unit::Count,
            ),
            (
                "switchyard_keyframe_requests_received_total",
                "PLI and FIR received from subscribers.",
                read(&media.keyframe_requests_received),
                Unit::Count,
            ),
            (
                "switchyard_keyframe_requests_sent_total",
                "PLIs sent to publishers.",
                read(&media.keyframe_requests_sent),
                Unit::Count,
            ),
        ];
        for (name, help, value, unit) in totals {
            describe_counter!(name, unit, help);
            counter!(name).absolute(value);
        }
        if cluster.is_some() {
            link_figures(media);
        }
        describe_gauge!(
            "switchyard_websocket_connections",
            "Open signaling WebSocket connections."
        );
        gauge!("switchyard_websocket_connections")
            .set(metrics.websocket_connections.load(Ordering::Relaxed) as f64);
        if let Some(turn) = turn {
            let stats = turn.stats();
            describe_gauge!("switchyard_turn_allocations", "TURN allocations held.");
            gauge!("switchyard_turn_allocations").set(stats.allocations as f64);
            let turn_totals = [
                (
                    "switchyard_turn_packets_to_peers_total",
                    "Datagrams the TURN relay sent to peers.",
                    stats.packets_to_peers,
                ),
                (
                    "switchyard_turn_packets_to_clients_total",
                    "Packets the TURN relay sent to clients.",
                    stats.packets_to_clients,
                ),
                (
                    "switchyard_turn_refused_peers_total",
                    "Peer addresses the TURN relay refused.",
                    stats.refused_peers,
                ),
                (
                    "switchyard_turn_unauthorized_total",
                    "TURN 401 replies.",
                    stats.unauthorized,
                ),
            ];
            for (name, help, value) in turn_totals {
                describe_counter!(name, Unit::Count, help);
                counter!(name).absolute(value);
            }
        }
        if let Some((cpu, rss)) = process_usage() {
            describe_gauge!(
                "switchyard_process_cpu_seconds",
                Unit::Seconds,
                "CPU time (user and system) the server process has used."
            );
            gauge!("switchyard_process_cpu_seconds").set(cpu);
            describe_gauge!(
                "switchyard_process_resident_memory_bytes",
                Unit::Bytes,
                "Resident memory of the server process."
            );
            gauge!("switchyard_process_resident_memory_bytes").set(rss);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            describe_gauge!(
                "switchyard_process_open_fds",
                "Open file descriptors (sockets, files) of the server process."
            );
            gauge!("switchyard_process_open_fds").set(fds.count() as f64);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            describe_gauge!(
                "switchyard_runtime_tasks",
                "Tasks alive in the server's async runtime (rising while nobody joins: a leak)."
            );
            gauge!("switchyard_runtime_tasks").set(runtime.metrics().num_alive_tasks() as f64);
        }
    });
    let mut text = metrics.recorder.handle().render();
    if let Some(link) = cluster {
        text.push_str(&link.cluster.metrics());
        text.push_str(&link.node_links().metrics(sfu));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// What the links to other nodes carry for rooms that span nodes.
fn link_figures(media: &sfu::counters::MediaCounters) {
    let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let gauges = [
        (
            "switchyard_cluster_link_tracks_out",
            "Local tracks sent to other nodes now (one per track and node whose participants receive it).",
            media.link_tracks_out.load(Ordering::Relaxed),
        ),
        (
            "switchyard_cluster_link_tracks_in",
            "Tracks of other nodes' participants this node receives over links now.",
            media.link_tracks_in.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in gauges {
        describe_gauge!(name, help);
        gauge!(name).set(value as f64);
    }
    let totals = [
        (
            "switchyard_cluster_link_tracks_opened_total",
            "Times a local track started going to another node.",
            read(&media.link_tracks_opened),
            Unit::Count,
        ),
        (
            "switchyard_cluster_link_packets_out_total",
            "Media packets and data messages sent to other nodes.",
            read(&media.link_packets_out),
            Unit::Count,
        ),
        (
            "switchyard_cluster_link_bytes_out_total",
            "Bytes of link frames sent to other nodes (before encryption).",
            read(&media.link_bytes_out),
            Unit::Bytes,
        ),
        (
            "switchyard_cluster_link_packets_in_total",
            "Media packets and data messages received from other nodes.",
            read(&media.link_packets_in),
            Unit::Count,
        ),
        (
            "switchyard_cluster_link_bytes_in_total",
            "Bytes of link frames received from other nodes (after decryption).",
            read(&media.link_bytes_in),
            Unit::Bytes,
        ),
        (
            "switchyard_cluster_link_frames_dropped_total",
            "Frames for other nodes dropped because the link was down or its queue full.",
            read(&media.link_frames_dropped),
            Unit::Count,
        ),
    ];
    for (name, help, value, unit) in totals {
        describe_counter!(name, unit, help);
        counter!(name).absolute(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process_usage() {
        let (cpu, rss) = process_usage().expect("/proc/self is readable on Linux");
        assert!(cpu >= 0.0);
        assert!(rss > 1024.0 * 1024.0, "at least a MiB resident: {rss}");
    }
}
