//! Reading ffmpeg's fragmented MP4 output: splitting the byte stream into the initialization
//! segment (`ftyp` + `moov`) and fragments (`moof` + `mdat`), and reading from a fragment when
//! it starts, how long it lasts and whether it starts on a keyframe. It reads boxes only: it
//! never decodes or changes media, and never does I/O beyond the reader it is given.

use std::io::Read;

/// The largest box accepted (a fragment of 0.4 s at the ladder's top rate is far smaller).
const MAX_BOX: u64 = 32 * 1024 * 1024;

/// A box's type and its bytes (header included).
type RawBox = ([u8; 4], Vec<u8>);

/// One piece of the stream.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// `ftyp` + `moov` (and anything else before the first fragment).
    Init(Vec<u8>),
    /// `moof` + `mdat`.
    Fragment(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("reading the fragmented MP4 stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("a box of {0} bytes is too large or malformed")]
    BadBox(u64),
    #[error("a fragment came before the initialization segment")]
    NoInit,
}

/// Splits a fragmented MP4 byte stream into pieces.
pub struct Splitter<R> {
    reader: R,
    init: Option<Vec<u8>>,
    sent_init: bool,
    /// A box read ahead (the first `moof`, read while finding the end of the init segment).
    pending: Option<Vec<u8>>,
}

impl<R: Read> Splitter<R> {
    pub fn new(reader: R) -> Self {
        Splitter {
            reader,
            init: Some(Vec::new()),
            sent_init: false,
            pending: None,
        }
    }

    /// The next piece; `Ok(None)` at the end of the stream.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, Fmp4Error> {
        let mut fragment = Vec::new();
        loop {
            let Some((kind, bytes)) = self.next_box()? else {
                return Ok(None);
            };
            match &kind {
                b"moof" => {
                    if !self.sent_init {
                        self.sent_init = true;
                        let init = self.init.take().unwrap_or_default();
                        if init.is_empty() {
                            return Err(Fmp4Error::NoInit);
                        }
                        // The fragment is read on the next call.
                        self.pending = Some(bytes);
                        return Ok(Some(Piece::Init(init)));
                    }
                    fragment = bytes;
                }
                b"mdat" if !fragment.is_empty() => {
                    fragment.extend_from_slice(&bytes);
                    return Ok(Some(Piece::Fragment(fragment)));
                }
                _ if !self.sent_init => {
                    if let Some(init) = self.init.as_mut() {
                        init.extend_from_slice(&bytes);
                    }
                }
                _ => {} // `sidx`, `free`, a trailing `mfra`: not part of a fragment
            }
        }
    }

    /// One whole box: its type and bytes (header included).
    fn next_box(&mut self) -> Result<Option<RawBox>, Fmp4Error> {
        if let Some(pending) = self.pending.take() {
            let mut kind = [0; 4];
            kind.copy_from_slice(&pending[4..8]);
            return Ok(Some((kind, pending)));
        }
        let mut header = [0u8; 8];
        match self.reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let mut size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let mut bytes = header.to_vec();
        if size == 1 {
            let mut large = [0u8; 8];
            self.reader.read_exact(&mut large)?;
            bytes.extend_from_slice(&large);
            size = u64::from_be_bytes(large);
        }
        if size < bytes.len() as u64 || size > MAX_BOX {
            return Err(Fmp4Error::BadBox(size));
        }
        let start = bytes.len();
        bytes.resize(size as usize, 0);
        self.reader.read_exact(&mut bytes[start..])?;
        let mut kind = [0; 4];
        kind.copy_from_slice(&header[4..8]);
        Ok(Some((kind, bytes)))
    }
}

/// What a fragment says about one of its tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub start: u64,
    /// Sum of the sample durations, in the track's timescale.
    pub duration: u64,
    /// The first sample is a sync sample (a keyframe).
    pub starts_with_sync: bool,
}

/// A track of the initialization segment: its id, timescale and whether it is video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    pub track_id: u32,
    pub timescale: u32,
    pub video: bool,
}

/// The children of a box's payload, as (type, payload) pairs; stops at anything malformed.
fn children(payload: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if size < 8 || size > rest.len() {
            return None;
        }
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let body = &rest[8..size];
        rest = &rest[size..];
        Some((kind, body))
    })
}

fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(payload).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The tracks an initialization segment declares.
pub fn tracks(init: &[u8]) -> Vec<TrackInfo> {
    let Some(moov) = children(init).find(|(k, _)| k == b"moov").map(|(_, b)| b) else {
        return Vec::new();
    };
    children(moov)
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, trak)| {
            let tkhd = child(trak, b"tkhd")?;
            let track_id = if tkhd.first() == Some(&1) {
                u32_at(tkhd, 20)?
            } else {
                u32_at(tkhd, 12)?
            };
            let mdia = child(trak, b"mdia")?;
            let mdhd = child(mdia, b"mdhd")?;
            let timescale = if mdhd.first() == Some(&1) {
                u32_at(mdhd, 20)?
            } else {
                u32_at(mdhd, 12)?
            };
            let handler = child(mdia, b"hdlr")?.get(8..12)?;
            Some(TrackInfo {
                track_id,
                timescale,
                video: handler == b"vide",
            })
        })
        .collect()
}

/// Each track's run in a fragment (`moof` + `mdat`).
pub fn runs(fragment: &[u8]) -> Vec<TrackRun> {
    let Some(moof) = children(fragment)
        .find(|(k, _)| k == b"moof")
        .map(|(_, b)| b)
    else {
        return Vec::new();
    };
    children(moof)
        .filter(|(k, _)| k == b"traf")
        .filter_map(|(_, traf)| traf_run(traf))
        .collect()
}

fn traf_run(traf: &[u8]) -> Option<TrackRun> {
    let tfhd = child(traf, b"tfhd")?;
    let tfhd_flags = u32_at(tfhd, 0)? & 0x00ff_ffff;
    let track_id = u32_at(tfhd, 4)?;
    let mut at = 8;
    if tfhd_flags & 0x01 != 0 {
        at += 8; // base data offset
    }
    if tfhd_flags & 0x02 != 0 {
        at += 4; // sample description index
    }
    let mut default_duration = 0;
    if tfhd_flags & 0x08 != 0 {
        default_duration = u32_at(tfhd, at)?;
        at += 4;
    }
    if tfhd_flags & 0x10 != 0 {
        at += 4; // default sample size
    }
    let mut default_flags = 0;
    if tfhd_flags & 0x20 != 0 {
        default_flags = u32_at(tfhd, at)?;
    }
    let start = match child(traf, b"tfdt") {
        Some(tfdt) if tfdt.first() == Some(&1) => u64_at(tfdt, 4)?,
        Some(tfdt) => u64::from(u32_at(tfdt, 4)?),
        None => 0,
    };
    let mut duration = 0u64;
    let mut first_flags = None;
    for (_, trun) in children(traf).filter(|(k, _)| k == b"trun") {
        let flags = u32_at(trun, 0)? & 0x00ff_ffff;
        let count = u32_at(trun, 4)?;
        let mut at = 8;
        if flags & 0x01 != 0 {
            at += 4; // data offset
        }
        let mut first_sample_flags = None;
        if flags & 0x04 != 0 {
            first_sample_flags = Some(u32_at(trun, at)?);
            at += 4;
        }
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|bit| flags & **bit != 0)
            .count()
            * 4;
        for i in 0..count as usize {
            let sample = at + i * per_sample;
            let sample_duration = if flags & 0x100 != 0 {
                u32_at(trun, sample)?
            } else {
                default_duration
            };
            duration += u64::from(sample_duration);
            if i == 0 && first_flags.is_none() {
                let offset = sample
                    + if flags & 0x100 != 0 { 4 } else { 0 }
                    + if flags & 0x200 != 0 { 4 } else { 0 };
                first_flags = Some(
                    first_sample_flags
                        .or_else(|| (flags & 0x400 != 0).then(|| u32_at(trun, offset)).flatten())
                        .unwrap_or(default_flags),
                );
            }
        }
    }
    Some(TrackRun {
        track_id,
        start,
        duration,
        // sample_is_non_sync_sample is bit 16 of the sample flags.
        starts_with_sync: first_flags.is_some_and(|f| f & 0x0001_0000 == 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    fn full(version_flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut out = version_flags.to_be_bytes().to_vec();
        out.extend_from_slice(rest);
        out
    }

    /// A fragment of one track: `count` samples of `duration`, the first one sync or not.
    fn fragment(track: u32, start: u64, count: u32, duration: u32, sync: bool) -> Vec<u8> {
        let mut tfhd_rest = track.to_be_bytes().to_vec();
        tfhd_rest.extend_from_slice(&duration.to_be_bytes()); // default duration (0x08)
        tfhd_rest.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // default flags: non-sync
        let tfhd = boxed(b"tfhd", &full(0x0002_0028, &tfhd_rest));
        let tfdt = boxed(b"tfdt", &full(0x0100_0000, &start.to_be_bytes()));
        let mut trun_rest = count.to_be_bytes().to_vec();
        trun_rest.extend_from_slice(&0u32.to_be_bytes()); // data offset
        let first: u32 = if sync { 0x0200_0000 } else { 0x0101_0000 };
        trun_rest.extend_from_slice(&first.to_be_bytes());
        let trun = boxed(b"trun", &full(0x0000_0005, &trun_rest));
        let traf = boxed(b"traf", &[tfhd, tfdt, trun].concat());
        let mut out = boxed(b"moof", &traf);
        out.extend(boxed(b"mdat", &[0; 10]));
        out
    }

    #[test]
    fn the_stream_splits_into_init_and_fragments() {
        let init = [boxed(b"ftyp", b"isom"), boxed(b"moov", b"")].concat();
        let one = fragment(1, 0, 6, 1024, true);
        let two = fragment(1, 6144, 6, 1024, false);
        let stream = [init.clone(), one.clone(), two.clone()].concat();
        let mut splitter = Splitter::new(&stream[..]);
        assert_eq!(splitter.next_piece().unwrap(), Some(Piece::Init(init)));
        assert_eq!(splitter.next_piece().unwrap(), Some(Piece::Fragment(one)));
        assert_eq!(splitter.next_piece().unwrap(), Some(Piece::Fragment(two)));
        assert_eq!(splitter.next_piece().unwrap(), None);
    }

    #[test]
    fn a_fragment_tells_its_start_duration_and_keyframe() {
        let runs_one = runs(&fragment(1, 0, 6, 1024, true));
        assert_eq!(
            runs_one,
            vec![TrackRun {
                track_id: 1,
                start: 0,
                duration: 6144,
                starts_with_sync: true
            }]
        );
        let runs_two = runs(&fragment(1, 6144, 6, 1024, false));
        assert_eq!(runs_two[0].start, 6144);
        assert!(!runs_two[0].starts_with_sync);
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        let huge = [0xff, 0xff, 0xff, 0xff, b'm', b'o', b'o', b'f'];
        assert!(Splitter::new(&huge[..]).next_piece().is_err());
        let fragment_first = fragment(1, 0, 1, 1, true);
        assert!(matches!(
            Splitter::new(&fragment_first[..]).next_piece(),
            Err(Fmp4Error::NoInit)
        ));
        assert!(runs(&[1, 2, 3]).is_empty());
        assert!(tracks(&[0; 40]).is_empty());
        let mut truncated = fragment(1, 0, 6, 1024, true);
        truncated.truncate(40);
        let _ = runs(&truncated);
    }
}
