//! How a receiver shows one remote video track (its `trackSettings`), and the highest simulcast
//! layer that is worth sending to a tile of that size. Plain data and arithmetic: no I/O.

use protocol::{Layer, TrackSettings};

/// A layer may be this much smaller than the tile before the next one up is chosen: a 1280x720
/// layer still serves a 1400x800 tile, scaled up a little.
const SLACK: f64 = 0.85;

/// What a receiver said about one of its video tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tile {
    pub visible: bool,
    /// Device pixels; 0 when unknown.
    pub width: u32,
    pub height: u32,
    pub max_layer: Option<Layer>,
}

impl Default for Tile {
    /// A track never described: shown, at any size.
    fn default() -> Self {
        Tile {
            visible: true,
            width: 0,
            height: 0,
            max_layer: None,
        }
    }
}

impl From<&TrackSettings> for Tile {
    fn from(s: &TrackSettings) -> Self {
        Tile {
            visible: s.visible,
            width: s.width,
            height: s.height,
            max_layer: s.max_layer,
        }
    }
}

impl Tile {
    /// The highest layer this tile needs (`None`: nothing, it is hidden), given each layer's
    /// picture size where known. Unknown sizes are taken as a quarter, half and all of the top
    /// layer's, or of 1280x720.
    pub fn cap(&self, sizes: [Option<(u32, u32)>; 3]) -> Option<Layer> {
        if !self.visible {
            return None;
        }
        let by_size = if self.width == 0 || self.height == 0 {
            Layer::F
        } else {
            let top = sizes[2]
                .or(sizes[1].map(|(w, h)| (w * 2, h * 2)))
                .unwrap_or((1280, 720));
            let size_of = |l: Layer| {
                sizes[l.index()].unwrap_or(match l {
                    Layer::Q => (top.0 / 4, top.1 / 4),
                    Layer::H => (top.0 / 2, top.1 / 2),
                    Layer::F => top,
                })
            };
            Layer::ALL
                .into_iter()
                .find(|&l| {
                    let (w, h) = size_of(l);
                    f64::from(w) >= f64::from(self.width) * SLACK
                        || f64::from(h) >= f64::from(self.height) * SLACK
                })
                .unwrap_or(Layer::F)
        };
        Some(match self.max_layer {
            Some(max) => by_size.min(max),
            None => by_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(width: u32, height: u32) -> Tile {
        Tile {
            width,
            height,
            ..Tile::default()
        }
    }

    const SIZES: [Option<(u32, u32)>; 3] = [Some((320, 180)), Some((640, 360)), Some((1280, 720))];

    #[test]
    fn the_smallest_layer_that_fills_the_tile() {
        assert_eq!(tile(300, 170).cap(SIZES), Some(Layer::Q));
        assert_eq!(tile(360, 200).cap(SIZES), Some(Layer::Q));
        assert_eq!(tile(400, 225).cap(SIZES), Some(Layer::H));
        assert_eq!(tile(640, 360).cap(SIZES), Some(Layer::H));
        assert_eq!(tile(960, 540).cap(SIZES), Some(Layer::F));
        assert_eq!(tile(2560, 1440).cap(SIZES), Some(Layer::F));
    }

    #[test]
    fn hidden_tiles_get_nothing_and_unknown_sizes_get_everything() {
        let hidden = Tile {
            visible: false,
            ..tile(640, 360)
        };
        assert_eq!(hidden.cap(SIZES), None);
        assert_eq!(Tile::default().cap(SIZES), Some(Layer::F));
    }

    #[test]
    fn a_cap_the_receiver_chose_wins_over_size() {
        let capped = Tile {
            max_layer: Some(Layer::Q),
            ..tile(1280, 720)
        };
        assert_eq!(capped.cap(SIZES), Some(Layer::Q));
        let loose = Tile {
            max_layer: Some(Layer::F),
            ..tile(320, 180)
        };
        assert_eq!(loose.cap(SIZES), Some(Layer::Q));
    }

    #[test]
    fn unknown_layer_sizes_are_derived_from_the_top_one() {
        // H.264 keyframes do not tell their size here: assume 1280x720 at the top.
        assert_eq!(tile(640, 360).cap([None, None, None]), Some(Layer::H));
        // A portrait camera: the top layer is 720x1280.
        let portrait = [None, None, Some((720, 1280))];
        assert_eq!(tile(180, 320).cap(portrait), Some(Layer::Q));
        assert_eq!(tile(720, 1280).cap(portrait), Some(Layer::F));
    }
}
