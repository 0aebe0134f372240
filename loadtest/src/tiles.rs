//! Receivers' video tile sizes (`--tiles 320x180,640x360,1280x720`): parsing the list, and the
//! size each receiver takes in turn, which it reports as `trackSettings` for every video track
//! it receives. Plain data and parsing: it never sends anything.

use std::fmt;

/// The largest tile side accepted, in pixels (an 8K screen).
const MAX_SIDE: u32 = 7680;

/// One tile's size in device pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileSize {
    pub width: u32,
    pub height: u32,
}

impl fmt::Display for TileSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TileError {
    #[error("--tiles: {0:?} is not WIDTHxHEIGHT (like 640x360)")]
    Syntax(String),
    #[error("--tiles: {0} is out of range (each side 1 to {MAX_SIDE} pixels)")]
    Range(String),
    #[error("--tiles names no size")]
    Empty,
}

/// Parses a comma-separated list of `WIDTHxHEIGHT` sizes.
pub fn parse_tiles(list: &str) -> Result<Vec<TileSize>, TileError> {
    let tiles = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_tile)
        .collect::<Result<Vec<_>, _>>()?;
    if tiles.is_empty() {
        return Err(TileError::Empty);
    }
    Ok(tiles)
}

fn parse_tile(text: &str) -> Result<TileSize, TileError> {
    let syntax = || TileError::Syntax(text.to_owned());
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(syntax)?;
    let width = w.parse::<u32>().map_err(|_| syntax())?;
    let height = h.parse::<u32>().map_err(|_| syntax())?;
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(TileError::Range(text.to_owned()));
    }
    Ok(TileSize { width, height })
}

/// The tile of the receiver with this index in its room (receivers take the sizes in turn).
pub fn tile_for(tiles: &[TileSize], index: u32) -> Option<TileSize> {
    (!tiles.is_empty()).then(|| tiles[index as usize % tiles.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_and_hands_sizes_out_in_turn() {
        let tiles = parse_tiles("320x180, 640X360,1280x720,").unwrap();
        assert_eq!(tiles.len(), 3);
        assert_eq!(tiles[1].to_string(), "640x360");
        assert_eq!(tile_for(&tiles, 4), Some(tiles[1]));
        assert_eq!(tile_for(&[], 4), None);
    }

    #[test]
    fn refuses_bad_sizes_by_name() {
        assert_eq!(parse_tiles(""), Err(TileError::Empty));
        assert_eq!(parse_tiles("640"), Err(TileError::Syntax("640".into())));
        assert_eq!(parse_tiles("axb"), Err(TileError::Syntax("axb".into())));
        assert_eq!(parse_tiles("0x360"), Err(TileError::Range("0x360".into())));
        assert_eq!(
            parse_tiles("640x99999"),
            Err(TileError::Range("640x99999".into()))
        );
    }
}
