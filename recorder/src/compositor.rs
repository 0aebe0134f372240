//! The grid: places every participant's latest decoded picture in a tile of one YUV 4:2:0
//! canvas. The layout follows who is in the room (1 fills the canvas, 2 side by side, 3 or 4
//! in a 2×2 grid, and so on), and someone without video gets a grey tile. It never does I/O or
//! decodes: it only copies and scales the pictures it is given.

use std::sync::{Arc, Mutex};

/// Canvas size (the recording's resolution).
pub const CANVAS_WIDTH: usize = 1280;
pub const CANVAS_HEIGHT: usize = 720;
/// Size every decoder scales its pictures to (16:9, letterboxed).
pub const TILE_WIDTH: usize = 640;
pub const TILE_HEIGHT: usize = 360;

/// Bytes of one YUV 4:2:0 picture of the given size.
pub const fn picture_len(width: usize, height: usize) -> usize {
    width * height * 3 / 2
}

/// The latest picture a participant's decoder produced (`TILE_WIDTH`×`TILE_HEIGHT`).
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
pub fn layout(count: usize) -> Vec<Rect> {
    if count == 0 {
        return Vec::new();
    }
    let columns = (1..).find(|c| c * c >= count).unwrap_or(1);
    let rows = count.div_ceil(columns);
    let cell_width = CANVAS_WIDTH / columns;
    let cell_height = CANVAS_HEIGHT / rows;
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
            let row_offset = (CANVAS_WIDTH - in_row * cell_width) / 2;
            Rect {
                x: (row_offset + column * cell_width + (cell_width - width) / 2) & !1,
                y: (row * cell_height + (cell_height - height) / 2) & !1,
                width,
                height,
            }
        })
        .collect()
}

const BLACK: (u8, u8, u8) = (16, 128, 128);
const GREY: (u8, u8, u8) = (60, 128, 128);

/// Draws one canvas: black background, then each tile's picture (or grey when it has none).
pub fn compose(canvas: &mut [u8], tiles: &[Option<Arc<Vec<u8>>>]) {
    debug_assert_eq!(canvas.len(), picture_len(CANVAS_WIDTH, CANVAS_HEIGHT));
    let full = Rect {
        x: 0,
        y: 0,
        width: CANVAS_WIDTH,
        height: CANVAS_HEIGHT,
    };
    fill(canvas, full, BLACK);
    for (rect, tile) in layout(tiles.len()).into_iter().zip(tiles) {
        match tile {
            Some(picture) if picture.len() == picture_len(TILE_WIDTH, TILE_HEIGHT) => {
                draw(canvas, rect, picture)
            }
            _ => fill(canvas, rect, GREY),
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

fn fill(canvas: &mut [u8], rect: Rect, (y, u, v): (u8, u8, u8)) {
    let canvas_planes = planes(CANVAS_WIDTH, CANVAS_HEIGHT);
    for (plane, value) in [y, u, v].into_iter().enumerate() {
        let (offset, stride, _) = canvas_planes[plane];
        let scale = if plane == 0 { 1 } else { 2 };
        let (x0, y0) = (rect.x / scale, rect.y / scale);
        let (w, h) = (rect.width / scale, rect.height / scale);
        for row in y0..y0 + h {
            let start = offset + row * stride + x0;
            canvas[start..start + w].fill(value);
        }
    }
}

/// Scales `picture` (TILE_WIDTH×TILE_HEIGHT) into `rect`, nearest neighbour; a straight copy
/// when the sizes match.
fn draw(canvas: &mut [u8], rect: Rect, picture: &[u8]) {
    let canvas_planes = planes(CANVAS_WIDTH, CANVAS_HEIGHT);
    let picture_planes = planes(TILE_WIDTH, TILE_HEIGHT);
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
            let dst = &mut canvas[dst_row..dst_row + w];
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
        assert!(layout(0).is_empty());
        assert_eq!(
            layout(1),
            vec![Rect {
                x: 0,
                y: 0,
                width: 1280,
                height: 720
            }]
        );
        let two = layout(2);
        assert_eq!((two[0].width, two[0].height), (640, 360));
        assert_eq!((two[0].x, two[1].x), (0, 640));
        assert_eq!(two[0].y, 180);
        let three = layout(3);
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
            for r in layout(n) {
                assert!(r.x + r.width <= CANVAS_WIDTH && r.y + r.height <= CANVAS_HEIGHT);
                assert!(r.x % 2 == 0 && r.y % 2 == 0 && r.width % 2 == 0 && r.height % 2 == 0);
            }
        }
    }

    #[test]
    fn compose_puts_each_picture_in_its_tile() {
        let mut canvas = vec![0; picture_len(CANVAS_WIDTH, CANVAS_HEIGHT)];
        let white = Arc::new(vec![235; picture_len(TILE_WIDTH, TILE_HEIGHT)]);
        compose(&mut canvas, &[Some(white.clone()), None, Some(white)]);
        let luma = |x: usize, y: usize| canvas[y * CANVAS_WIDTH + x];
        assert_eq!(luma(10, 10), 235); // first tile
        assert_eq!(luma(700, 10), GREY.0); // second: no picture yet
        assert_eq!(luma(10, 700), BLACK.0); // left of the centred third
        assert_eq!(luma(400, 500), 235); // third tile
    }
}
