//! The simulcast publisher's layers: `q` 320x180 at 150 kbit/s, `h` 640x360 at 500 and `f`
//! 1280x720 at 1500 (the sizes and bitrates the web demo asks of Chromium), each its own clip
//! at the same frame rate. It prepares clips and describes them; it never sends anything.

use std::path::Path;
use std::sync::Arc;

use protocol::Layer;
use serde::Serialize;

use crate::media::{Clip, ClipSpec, MediaError};

/// Each layer's picture size and bitrate, lowest first.
pub const LAYERS: [(Layer, ClipSpec); 3] = [
    (
        Layer::Q,
        ClipSpec {
            width: 320,
            height: 180,
            kbps: 150,
        },
    ),
    (
        Layer::H,
        ClipSpec {
            width: 640,
            height: 360,
            kbps: 500,
        },
    ),
    (
        Layer::F,
        ClipSpec {
            width: 1280,
            height: 720,
            kbps: 1500,
        },
    ),
];

/// One layer's clip, ready to play.
pub struct LayerClip {
    pub layer: Layer,
    pub spec: ClipSpec,
    pub clip: Arc<Clip>,
}

/// Encodes (once, cached in `cache`) and loads every layer's clip.
pub fn prepare(cache: &Path) -> Result<Vec<LayerClip>, MediaError> {
    LAYERS
        .iter()
        .map(|&(layer, spec)| {
            Ok(LayerClip {
                layer,
                spec,
                clip: Arc::new(Clip::prepare(spec, cache)?),
            })
        })
        .collect()
}

/// One layer as the report describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    pub layer: Layer,
    pub width: u32,
    pub height: u32,
    pub target_kbps: u32,
    /// The clip's real average payload bitrate.
    pub clip_kbps: f64,
}

impl LayerClip {
    pub fn report(&self) -> LayerReport {
        LayerReport {
            layer: self.layer,
            width: self.spec.width,
            height: self.spec.height,
            target_kbps: self.spec.kbps,
            clip_kbps: self.clip.bitrate_kbps(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_grow_in_size_and_rate() {
        let rids: Vec<&str> = LAYERS.iter().map(|(l, _)| l.rid()).collect();
        assert_eq!(rids, ["q", "h", "f"]);
        for pair in LAYERS.windows(2) {
            let (low, high) = (pair[0].1, pair[1].1);
            assert_eq!((low.width * 2, low.height * 2), (high.width, high.height));
            assert!(low.kbps < high.kbps);
        }
    }
}
