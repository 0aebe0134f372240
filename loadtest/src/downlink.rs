//! What one receiver learned about each video track it gets: the layer the SFU chose for it
//! (`downlinkChanged`, with the receiver's downlink estimate), the picture size of the
//! keyframes that arrived, and the video bytes inside the measured window; and the
//! per-receiver rows and per-tile summary of the report. It does no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::{Layer, TrackLayer};
use serde::Serialize;

use crate::tiles::TileSize;

/// One received video track, by publisher.
#[derive(Debug, Default, Clone)]
struct ReceivedVideo {
    /// The server's track id (from the track the subscriber connection opened).
    track_id: Option<String>,
    /// The layer of the last `downlinkChanged` naming the track (`Some(None)`: paused).
    layer: Option<Option<Layer>>,
    layer_changes: u32,
    /// Width and height of the last keyframe received.
    picture: Option<(u16, u16)>,
    window_bytes: u64,
}

/// What one receiver saw of its video downlink.
#[derive(Debug, Default)]
pub struct DownlinkView {
    /// The tile size this receiver reported (`--tiles`).
    pub tile: Option<TileSize>,
    estimate_bps: Option<u64>,
    videos: BTreeMap<String, ReceivedVideo>,
}

impl DownlinkView {
    /// The subscriber connection opened `track_id`, a video track of `publisher`.
    pub fn opened(&mut self, publisher: &str, track_id: &str) {
        self.videos
            .entry(publisher.to_owned())
            .or_default()
            .track_id = Some(track_id.to_owned());
    }

    /// A `downlinkChanged` arrived.
    pub fn changed(&mut self, estimate_bps: u64, tracks: &[TrackLayer]) {
        self.estimate_bps = Some(estimate_bps);
        for video in self.videos.values_mut() {
            let Some(choice) = tracks
                .iter()
                .find(|t| Some(&t.track_id) == video.track_id.as_ref())
            else {
                continue;
            };
            if video.layer.is_some_and(|l| l != choice.layer) {
                video.layer_changes += 1;
            }
            video.layer = Some(choice.layer);
        }
    }

    /// A video packet from `publisher` arrived (`window`: inside the measured window).
    pub fn received(&mut self, publisher: &str, payload: &[u8], window: bool) {
        let video = match self.videos.get_mut(publisher) {
            Some(v) => v,
            None => self.videos.entry(publisher.to_owned()).or_default(),
        };
        if let Some(size) = crate::vp8::keyframe_size(payload) {
            video.picture = Some(size);
        }
        if window {
            video.window_bytes += payload.len() as u64;
        }
    }

    /// One report row per received video track.
    pub fn rows(&self, receiver: &str, window: Duration) -> Vec<ReceiverReport> {
        let seconds = window.as_secs_f64().max(1e-9);
        self.videos
            .iter()
            .map(|(publisher, v)| ReceiverReport {
                receiver: receiver.to_owned(),
                publisher: publisher.clone(),
                tile: self.tile.map(|t| t.to_string()),
                layer: v.layer.map(|l| l.map_or("paused", Layer::rid).to_owned()),
                layer_changes: v.layer_changes,
                estimate_kbps: self.estimate_bps.map(|b| b as f64 / 1000.0),
                picture: v.picture.map(|(w, h)| format!("{w}x{h}")),
                video_kbps: v.window_bytes as f64 * 8.0 / seconds / 1000.0,
            })
            .collect()
    }
}

/// What one receiver got of one publisher's video.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverReport {
    pub receiver: String,
    /// The publisher's participant id.
    pub publisher: String,
    pub tile: Option<String>,
    /// The layer the SFU last chose (`q`, `h`, `f`, `paused`); `None` if it never said.
    pub layer: Option<String>,
    pub layer_changes: u32,
    /// The receiver's downlink estimate in the last `downlinkChanged`.
    pub estimate_kbps: Option<f64>,
    /// The picture size of the last keyframe received.
    pub picture: Option<String>,
    /// Video payload received inside the measured window.
    pub video_kbps: f64,
}

/// Report lines grouping the receivers by tile: how many, which layers and picture sizes they
/// got, their video bitrate (mean, min–max) and estimate.
pub fn summary(rows: &[ReceiverReport]) -> Vec<(String, String)> {
    let mut groups: BTreeMap<Option<&str>, Vec<&ReceiverReport>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.tile.as_deref()).or_default().push(row);
    }
    let count = |values: Vec<Option<&str>>| {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for v in values {
            *counts.entry(v.unwrap_or("-")).or_default() += 1;
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    groups
        .into_iter()
        .map(|(tile, rows)| {
            let kbps: Vec<f64> = rows.iter().map(|r| r.video_kbps).collect();
            let mean = kbps.iter().sum::<f64>() / kbps.len() as f64;
            let min = kbps.iter().copied().fold(f64::INFINITY, f64::min);
            let max = kbps.iter().copied().fold(0.0, f64::max);
            let estimates: Vec<f64> = rows.iter().filter_map(|r| r.estimate_kbps).collect();
            let estimate = if estimates.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "{:.0}",
                    estimates.iter().sum::<f64>() / estimates.len() as f64
                )
            };
            (
                format!("video tiles {}", tile.unwrap_or("(none sent)")),
                format!(
                    "{} received; layer {}; picture {}; {mean:.0} kbit/s ({min:.0}–{max:.0}); \
                     estimate {estimate} kbit/s",
                    rows.len(),
                    count(rows.iter().map(|r| r.layer.as_deref()).collect()),
                    count(rows.iter().map(|r| r.picture.as_deref()).collect()),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyframe(width: u16, height: u16) -> Vec<u8> {
        let mut p = vec![0x10, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a];
        p.extend_from_slice(&width.to_le_bytes());
        p.extend_from_slice(&height.to_le_bytes());
        p.resize(100, 0);
        p
    }

    #[test]
    fn follows_the_chosen_layer_and_the_pictures_that_arrive() {
        let mut view = DownlinkView {
            tile: Some(TileSize {
                width: 640,
                height: 360,
            }),
            ..Default::default()
        };
        view.opened("p_1", "t_1");
        let layer = |l| TrackLayer {
            track_id: "t_1".into(),
            layer: l,
        };
        view.changed(300_000, &[layer(Some(Layer::Q))]);
        view.changed(900_000, &[layer(Some(Layer::H))]);
        view.received("p_1", &keyframe(640, 360), true);
        view.received("p_1", &[0x00; 100], false);
        let rows = view.rows("sub-0-1", Duration::from_secs(1));
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.layer.as_deref(), Some("h"));
        assert_eq!(row.layer_changes, 1);
        assert_eq!(row.picture.as_deref(), Some("640x360"));
        assert_eq!(row.estimate_kbps, Some(900.0));
        assert!((row.video_kbps - 0.8).abs() < 1e-9, "{}", row.video_kbps);
        let summary = summary(&rows);
        assert_eq!(summary[0].0, "video tiles 640x360");
        assert!(
            summary[0]
                .1
                .starts_with("1 received; layer h×1; picture 640x360×1")
        );
    }
}
