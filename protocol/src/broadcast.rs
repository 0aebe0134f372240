//! The broadcast stream between the sidecar and the server: the adaptive-bitrate ladder both
//! ends agree on, and the frames the sidecar writes on its stdout in broadcast mode (a status
//! line, a rendition's initialization segment, or one partial segment). Data and byte layout
//! only: it never reads or writes a stream itself.

/// One rung of the ladder: a name used in URLs, its picture size (none for audio only) and its
/// peak bitrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// URL segment and label, e.g. `720p`.
    pub name: &'static str,
    /// Picture size; `None` for the audio-only rendition.
    pub size: Option<(u32, u32)>,
    /// Peak video bitrate in kbit/s (0 for audio only).
    pub video_kbps: u32,
    /// Audio bitrate in kbit/s.
    pub audio_kbps: u32,
}

impl Rendition {
    /// Peak bitrate of the whole rendition in bit/s (the master playlist's `BANDWIDTH`).
    pub const fn bandwidth(&self) -> u32 {
        (self.video_kbps + self.audio_kbps) * 1000 * 11 / 10
    }
}

/// The ladder, highest first. A frame's `rendition` byte is an index into it.
pub const LADDER: [Rendition; 4] = [
    Rendition {
        name: "1080p",
        size: Some((1920, 1080)),
        video_kbps: 4500,
        audio_kbps: 96,
    },
    Rendition {
        name: "720p",
        size: Some((1280, 720)),
        video_kbps: 2500,
        audio_kbps: 96,
    },
    Rendition {
        name: "360p",
        size: Some((640, 360)),
        video_kbps: 700,
        audio_kbps: 96,
    },
    Rendition {
        name: "audio",
        size: None,
        video_kbps: 0,
        audio_kbps: 64,
    },
];

/// Every segment is this long (a keyframe starts each one, in every rendition at once).
pub const SEGMENT_SECONDS: u32 = 2;
/// Partial segments are at most this long (the playlists' `PART-TARGET`).
pub const PART_TARGET_SECONDS: f64 = 0.5;
/// How often the sidecar cuts a partial segment, in microseconds (below the target).
pub const PART_MICROS: u32 = 400_000;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 12;
/// The largest frame payload either end accepts.
pub const MAX_PAYLOAD: u32 = 32 * 1024 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// One JSON status object (`{"state":"active"}`, ...), as a recording's status line.
    Status,
    /// A rendition's initialization segment (`ftyp` + `moov`).
    Init,
    /// One partial segment (`moof` + `mdat`) of a rendition.
    Part,
}

/// The part's first sample is a keyframe: a player may start decoding there.
pub const INDEPENDENT: u8 = 1;
/// The part begins a new segment.
pub const SEGMENT_START: u8 = 2;

/// A frame's header: kind, rendition index, flags, the part's duration and the payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub rendition: u8,
    pub flags: u8,
    pub duration_micros: u32,
    pub len: u32,
}

/// Why a header cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    UnknownKind(u8),
    UnknownRendition(u8),
    TooLarge(u32),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::UnknownKind(k) => write!(f, "unknown broadcast frame kind {k}"),
            FrameError::UnknownRendition(r) => write!(f, "unknown rendition {r}"),
            FrameError::TooLarge(n) => write!(f, "a broadcast frame of {n} bytes is too large"),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0] = match self.kind {
            FrameKind::Status => 0,
            FrameKind::Init => 1,
            FrameKind::Part => 2,
        };
        out[1] = self.rendition;
        out[2] = self.flags;
        out[4..8].copy_from_slice(&self.duration_micros.to_be_bytes());
        out[8..12].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<FrameHeader, FrameError> {
        let kind = match bytes[0] {
            0 => FrameKind::Status,
            1 => FrameKind::Init,
            2 => FrameKind::Part,
            other => return Err(FrameError::UnknownKind(other)),
        };
        let rendition = bytes[1];
        if kind != FrameKind::Status && usize::from(rendition) >= LADDER.len() {
            return Err(FrameError::UnknownRendition(rendition));
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let len = word(8);
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        Ok(FrameHeader {
            kind,
            rendition,
            flags: bytes[2],
            duration_micros: word(4),
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let header = FrameHeader {
            kind: FrameKind::Part,
            rendition: 2,
            flags: INDEPENDENT | SEGMENT_START,
            duration_micros: 400_000,
            len: 12_345,
        };
        assert_eq!(FrameHeader::decode(&header.encode()), Ok(header));
        let mut bad = header.encode();
        bad[0] = 9;
        assert_eq!(FrameHeader::decode(&bad), Err(FrameError::UnknownKind(9)));
        let mut bad = header.encode();
        bad[1] = 4;
        assert_eq!(
            FrameHeader::decode(&bad),
            Err(FrameError::UnknownRendition(4))
        );
        let mut bad = header.encode();
        bad[8..12].copy_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
        assert!(matches!(
            FrameHeader::decode(&bad),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn the_ladder_goes_down_and_ends_with_audio_only() {
        assert!(
            LADDER
                .windows(2)
                .all(|w| w[0].bandwidth() > w[1].bandwidth())
        );
        assert_eq!(LADDER[0].size, Some((1920, 1080)));
        assert_eq!(LADDER[LADDER.len() - 1].size, None);
        assert!(f64::from(PART_MICROS) / 1e6 <= PART_TARGET_SECONDS);
    }
}
