//! The picture: places every participant's latest decoded picture in a tile of one YUV 4:2:0
//! canvas. The grid follows who is in the room (1 fills the canvas, 2 side by side, 3 or 4 in a
//! 2×2 grid, and so on); the speaker layout fills the canvas with the active speaker and shows
//! the others as a row of thumbnails. Someone without video gets a grey tile. It never does I/O
//! or decodes: it only copies and scales the pictures it is given.

use std::sync::{Arc, Mutex};

/// A canvas size. Decoders scale every picture to its [`Canvas::tile`] size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
}

impl Canvas {
    /// A recording's canvas.
    pub const RECORDING: Canvas = Canvas {
        width: 1280,
        height: 720,
    };
    /// A broadcast's canvas (its ladder's top rendition).
    pub const BROADCAST: Canvas = Canvas {
        width: 1920,
        height: 1080,
    };

    /// The size every participant's picture is decoded to: half the canvas each way (16:9,
    /// letterboxed).
    pub const fn tile(self) -> (usize, usize) {
        (self.width / 2, self.height / 2)
    }

    /// Bytes of one canvas.
    pub const fn bytes(self) -> usize {
        picture_len(self.width, self.height)
    }

    /// Bytes of one tile picture.
    pub const fn tile_bytes(self) -> usize {
        picture_len(self.width / 2, self.height / 2)
    }
}

/// Bytes of one YUV 4:2:0 picture of the given size.
pub const fn picture_len(width: usize, height: usize) -> usize {
    width * height * 3 / 2
}

/// The latest picture a participant's decoder produced (the canvas's tile size).
pub type PictureSlot = Arc<Mutex<Option<Arc<Vec<u8>>>>>;

/// Where a tile goes on the canvas (even coordinates and sizes, for 4:2:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// The tiles for `count` participants: a grid of ⌈√n⌉ columns, each tile 16:9 and centred in
/// its cell.
pub fn layout(canvas: Canvas, count: usize) -> Vec<Rect> {
    if count == 0 {
        return Vec::new();
    }
    let columns = (1..).find(|c| c * c >= count).unwrap_or(1);
    let rows = count.div_ceil(columns);
    let cell_width = canvas.width / columns;
    let cell_height = canvas.height / rows;
    let width = cell_width.min(cell_height * 16 / 9) & !1;
    let height = (width * 9 / 16) & !1;
    (0..count)
        .map(|i| {
            let (row, column) = (i / columns, i % columns);
            // A last row that is not full is centred.
            let in_row = if row == rows - 1 {
                count - row * columns
            } else {
                columns
            };
            let row_offset = (canvas.width - in_row * cell_width) / 2;
            Rect {
                x: (row_offset + column * cell_width + (cell_width - width) / 2) & !1,
                y: (row * cell_height + (cell_height - height) / 2) & !1,
                width,
                height,
            }
        })
        .collect()
}

/// The speaker layout: participant `focus` fills the canvas, the others sit in a row of
/// thumbnails (a fifth of the width each, smaller when many) along the bottom, on top of it.
pub fn speaker_layout(canvas: Canvas, count: usize, focus: usize) -> Vec<Rect> {
    let margin = (canvas.width / 80) & !1;
    let others = count.saturating_sub(1);
    let fit = canvas.width.saturating_sub((others + 1) * margin) / others.max(1);
    let thumb_width = (canvas.width / 5).min(fit) & !1;
    let thumb_height = (thumb_width * 9 / 16) & !1;
    let row_width = others * thumb_width + others.saturating_sub(1) * margin;
    let mut x = (canvas.width.saturating_sub(row_width) / 2) & !1;
    let y = canvas.height.saturating_sub(thumb_height + margin) & !1;
    (0..count)
        .map(|i| {
            if i == focus {
                return Rect {
                    x: 0,
                    y: 0,
                    width: canvas.width,
                    height: canvas.height,
                };
            }
            let rect = Rect {
                x,
                y,
                width: thumb_width,
                height: thumb_height,
            };
            x += thumb_width + margin;
            rect
        })
        .collect()
}

const BLACK: (u8, u8, u8) = (16, 128, 128);
const GREY: (u8, u8, u8) = (60, 128, 128);

/// Draws one canvas: black background, then each tile's picture (or grey when it has none).
/// With `focus` (an index into `tiles`), the speaker layout; otherwise the grid.
pub fn compose(
    buffer: &mut [u8],
    canvas: Canvas,
    tiles: &[Option<Arc<Vec<u8>>>],
    focus: Option<usize>,
) {
    debug_assert_eq!(buffer.len(), canvas.bytes());
    let full = Rect {
        x: 0,
        y: 0,
        width: canvas.width,
        height: canvas.height,
    };
    fill(buffer, canvas, full, BLACK);
    let rects = match focus {
        Some(focus) if focus < tiles.len() => speaker_layout(canvas, tiles.len(), focus),
        _ => layout(canvas, tiles.len()),
    };
    // The focused tile first, so the thumbnails land on top of it.
    let mut order: Vec<usize> = (0..tiles.len()).collect();
    if let Some(focus) = focus.filter(|f| *f < tiles.len()) {
        order.retain(|i| *i != focus);
        order.insert(0, focus);
    }
    for i in order {
        match &tiles[i] {
            Some(picture) if picture.len() == canvas.tile_bytes() => {
                draw(buffer, canvas, rects[i], picture)
            }
            _ => fill(buffer, canvas, rects[i], GREY),
        }
    }
}

/// The three planes of a canvas-sized buffer: (offset, width, height) each.
fn planes(width: usize, height: usize) -> [(usize, usize, usize); 3] {
    let luma = width * height;
    let chroma = (width / 2) * (height / 2);
    [
        (0, width, height),
        (luma, width / 2, height / 2),
        (luma + chroma, width / 2, height / 2),
    ]
}

fn fill(buffer: &mut [u8], canvas: Canvas, rect: Rect, (y, u, v): (u8, u8, u8)) {
    let canvas_planes = planes(canvas.width, canvas.height);
    for (plane, value) in [y, u, v].into_iter().enumerate() {
        let (offset, stride, _) = canvas_planes[plane];
        let scale = if plane == 0 { 1 } else { 2 };
        let (x0, y0) = (rect.x / scale, rect.y / scale);
        let (w, h) = (rect.width / scale, rect.height / scale);
        for row in y0..y0 + h {
            let start = offset + row * stride + x0;
            buffer[start..start + w].fill(value);
        }
    }
}

/// Scales `picture` (the canvas's tile size) into `rect`, nearest neighbour; a straight copy
/// when the sizes match.
fn draw(buffer: &mut [u8], canvas: Canvas, rect: Rect, picture: &[u8]) {
    let canvas_planes = planes(canvas.width, canvas.height);
    let (tile_width, tile_height) = canvas.tile();
    let picture_planes = planes(tile_width, tile_height);
    for plane in 0..3 {
        let (dst_offset, dst_stride, _) = canvas_planes[plane];
        let (src_offset, src_width, src_height) = picture_planes[plane];
        let scale = if plane == 0 { 1 } else { 2 };
        let (x0, y0) = (rect.x / scale, rect.y / scale);
        let (w, h) = (rect.width / scale, rect.height / scale);
        let columns: Vec<usize> = (0..w).map(|x| x * src_width / w).collect();
        for row in 0..h {
            let src_row = src_offset + (row * src_height / h) * src_width;
            let dst_row = dst_offset + (y0 + row) * dst_stride + x0;
            let dst = &mut buffer[dst_row..dst_row + w];
            if w == src_width {
                dst.copy_from_slice(&picture[src_row..src_row + w]);
            } else {
                for (d, &x) in dst.iter_mut().zip(&columns) {
                    *d = picture[src_row + x];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_the_number_of_participants() {
        let canvas = Canvas::RECORDING;
        assert!(layout(canvas, 0).is_empty());
        assert_eq!(
            layout(canvas, 1),
            vec![Rect {
                x: 0,
                y: 0,
                width: 1280,
                height: 720
            }]
        );
        let two = layout(canvas, 2);
        assert_eq!((two[0].width, two[0].height), (640, 360));
        assert_eq!((two[0].x, two[1].x), (0, 640));
        assert_eq!(two[0].y, 180);
        let three = layout(canvas, 3);
        assert_eq!(
            three[0],
            Rect {
                x: 0,
                y: 0,
                width: 640,
                height: 360
            }
        );
        assert_eq!(three[1].x, 640);
        // The third sits centred on the second row.
        assert_eq!((three[2].x, three[2].y), (320, 360));
        for n in 1..=16 {
            for r in
                layout(canvas, n)
                    .into_iter()
                    .chain(speaker_layout(Canvas::BROADCAST, n, n / 2))
            {
                assert!(r.x + r.width <= 1920 && r.y + r.height <= 1080);
                assert!(r.x % 2 == 0 && r.y % 2 == 0 && r.width % 2 == 0 && r.height % 2 == 0);
            }
        }
    }

    #[test]
    fn compose_puts_each_picture_in_its_tile() {
        let canvas = Canvas::RECORDING;
        let mut buffer = vec![0; canvas.bytes()];
        let white = Arc::new(vec![235; canvas.tile_bytes()]);
        compose(
            &mut buffer,
            canvas,
            &[Some(white.clone()), None, Some(white)],
            None,
        );
        let luma = |x: usize, y: usize| buffer[y * canvas.width + x];
        assert_eq!(luma(10, 10), 235); // first tile
        assert_eq!(luma(700, 10), GREY.0); // second: no picture yet
        assert_eq!(luma(10, 700), BLACK.0); // left of the centred third
        assert_eq!(luma(400, 500), 235); // third tile
    }

    #[test]
    fn the_speaker_fills_the_canvas_under_the_others_thumbnails() {
        let canvas = Canvas::BROADCAST;
        let mut buffer = vec![0; canvas.bytes()];
        let white = Arc::new(vec![235; canvas.tile_bytes()]);
        let dark = Arc::new(vec![40; canvas.tile_bytes()]);
        compose(
            &mut buffer,
            canvas,
            &[Some(dark.clone()), Some(white), Some(dark)],
            Some(1),
        );
        let luma = |x: usize, y: usize| buffer[y * canvas.width + x];
        assert_eq!(luma(10, 10), 235); // the speaker, full size
        assert_eq!(luma(1900, 500), 235);
        let thumbs = speaker_layout(canvas, 3, 1);
        assert_eq!(thumbs[1].width, 1920);
        let first = thumbs[0];
        assert_eq!(luma(first.x + 4, first.y + 4), 40); // a thumbnail on top
        assert_eq!(first.width, 384);
    }
}
