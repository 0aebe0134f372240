//! VP8 payload descriptors (RFC 7741 §4.2): parses them, and rewrites PictureID, TL0PICIDX and
//! KEYIDX in place so that one subscriber sees one continuous VP8 stream across simulcast layer
//! switches and dropped temporal layers. Never allocates, never changes a payload's length and
//! never panics on short or malformed payloads (they get a [`Vp8Error`] and stay untouched).

use std::fmt;

/// How many dropped pictures a run remembers, to place late packets of older pictures.
const DROP_HISTORY: usize = 32;
/// PictureIDs are at most 15 bits.
const PICTURE_ID_SPACE: i64 = 1 << 15;

/// Why a payload cannot be read as a VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vp8Error {
    /// The payload is empty.
    Empty,
    /// The descriptor announces `needed` bytes but the payload has only `len`.
    Truncated { needed: usize, len: usize },
}

impl fmt::Display for Vp8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Vp8Error::Empty => f.write_str("empty VP8 payload"),
            Vp8Error::Truncated { needed, len } => write!(
                f,
                "VP8 payload descriptor needs {needed} bytes, the payload has {len}"
            ),
        }
    }
}

impl std::error::Error for Vp8Error {}

/// A PictureID as carried: its value and whether it takes 15 bits (M bit set) or 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    pub value: u16,
    pub long: bool,
}

impl PictureId {
    fn mask(self) -> u16 {
        if self.long { 0x7fff } else { 0x7f }
    }
}

/// The fields of one packet's VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// N: the frame is not used as a reference.
    pub non_reference: bool,
    /// S and PID: this packet starts partition `partition_index`.
    pub start_of_partition: bool,
    pub partition_index: u8,
    pub picture_id: Option<PictureId>,
    pub tl0picidx: Option<u8>,
    /// TID, when the T bit is set: the temporal layer, 0 = base.
    pub temporal_id: Option<u8>,
    /// Y: a layer-sync picture (it references only the base layer).
    pub layer_sync: bool,
    pub keyidx: Option<u8>,
    /// The packet starts a keyframe (first packet of partition 0, frame tag P bit clear).
    pub keyframe_start: bool,
    /// Length of the descriptor in bytes; the VP8 payload follows.
    pub len: usize,
}

/// Where the optional fields sit in a payload.
#[derive(Debug, Clone, Copy)]
struct Layout {
    picture_id: Option<(usize, bool)>,
    tl0picidx: Option<usize>,
    tid_keyidx: Option<usize>,
    has_tid: bool,
    has_keyidx: bool,
    len: usize,
}

fn layout(p: &[u8]) -> Result<Layout, Vp8Error> {
    let &first = p.first().ok_or(Vp8Error::Empty)?;
    let mut out = Layout {
        picture_id: None,
        tl0picidx: None,
        tid_keyidx: None,
        has_tid: false,
        has_keyidx: false,
        len: 1,
    };
    if first & 0x80 == 0 {
        return Ok(out);
    }
    let truncated = |needed: usize| Vp8Error::Truncated {
        needed,
        len: p.len(),
    };
    let &x = p.get(1).ok_or(truncated(2))?;
    let mut i = 2;
    if x & 0x80 != 0 {
        let &m = p.get(i).ok_or(truncated(i + 1))?;
        let long = m & 0x80 != 0;
        out.picture_id = Some((i, long));
        i += if long { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        out.tl0picidx = Some(i);
        i += 1;
    }
    out.has_tid = x & 0x20 != 0;
    out.has_keyidx = x & 0x10 != 0;
    if out.has_tid || out.has_keyidx {
        out.tid_keyidx = Some(i);
        i += 1;
    }
    if p.len() < i {
        return Err(truncated(i));
    }
    out.len = i;
    Ok(out)
}

impl Vp8Descriptor {
    /// Reads the descriptor at the start of an RTP payload.
    pub fn parse(p: &[u8]) -> Result<Self, Vp8Error> {
        let l = layout(p)?;
        // `layout` checked that every byte up to `l.len` exists.
        let byte = |i: usize| p.get(i).copied().unwrap_or(0);
        let first = byte(0);
        let picture_id = l.picture_id.map(|(i, long)| PictureId {
            value: if long {
                u16::from_be_bytes([byte(i) & 0x7f, byte(i + 1)])
            } else {
                u16::from(byte(i) & 0x7f)
            },
            long,
        });
        let tk = l.tid_keyidx.map(byte).unwrap_or(0);
        let start_of_partition = first & 0x10 != 0;
        let partition_index = first & 0x07;
        Ok(Vp8Descriptor {
            non_reference: first & 0x20 != 0,
            start_of_partition,
            partition_index,
            picture_id,
            tl0picidx: l.tl0picidx.map(byte),
            temporal_id: l.has_tid.then_some(tk >> 6),
            layer_sync: l.has_tid && tk & 0x20 != 0,
            keyidx: l.has_keyidx.then_some(tk & 0x1f),
            keyframe_start: start_of_partition
                && partition_index == 0
                && p.get(l.len).is_some_and(|tag| tag & 0x01 == 0),
            len: l.len,
        })
    }
}

/// Values to write into one forwarded packet's descriptor; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Rewrite {
    /// Written in the field's own width: 15 bits, or modulo 128 into a 7-bit field.
    pub picture_id: Option<u16>,
    pub tl0picidx: Option<u8>,
    pub keyidx: Option<u8>,
}

impl Vp8Rewrite {
    /// Writes these values into `payload` (the caller's own copy) in place. Fields the payload
    /// does not carry are skipped; a malformed payload is left untouched.
    pub fn apply(&self, payload: &mut [u8]) -> Result<(), Vp8Error> {
        let l = layout(payload)?;
        if let (Some(v), Some((i, long))) = (self.picture_id, l.picture_id) {
            if long {
                let [hi, lo] = (v & 0x7fff).to_be_bytes();
                set(payload, i, 0x80 | hi);
                set(payload, i + 1, lo);
            } else {
                set(payload, i, (v & 0x7f) as u8);
            }
        }
        if let (Some(v), Some(i)) = (self.tl0picidx, l.tl0picidx) {
            set(payload, i, v);
        }
        if let (Some(v), Some(i), true) = (self.keyidx, l.tid_keyidx, l.has_keyidx) {
            let old = payload.get(i).copied().unwrap_or(0);
            set(payload, i, (old & 0xe0) | (v & 0x1f));
        }
        Ok(())
    }

    /// Whether applying this to the payload `d` was read from changes any byte. When it does
    /// not, the caller can forward the publisher's payload without copying it.
    pub fn changes(&self, d: &Vp8Descriptor) -> bool {
        let picture = matches!((self.picture_id, d.picture_id),
            (Some(v), Some(p)) if v & p.mask() != p.value);
        let tl0 = matches!((self.tl0picidx, d.tl0picidx), (Some(a), Some(b)) if a != b);
        let key = matches!((self.keyidx, d.keyidx), (Some(a), Some(b)) if a & 0x1f != b);
        picture || tl0 || key
    }
}

/// Writes one byte at a position `layout` has checked; a no-op otherwise.
fn set(payload: &mut [u8], i: usize, value: u8) {
    if let Some(b) = payload.get_mut(i) {
        *b = value;
    }
}

/// Whether a packet of temporal layer `tid` is dropped for a subscriber that receives temporal
/// layers up to `max` (`None` = all). Packets without a TID are never dropped.
pub fn drops_temporal_layer(tid: Option<u8>, max: Option<u8>) -> bool {
    matches!((tid, max), (Some(t), Some(m)) if t > m)
}

/// Why the munger drops a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vp8Drop {
    /// Its picture belongs to a temporal layer above the one forwarded.
    TemporalLayer,
    /// A late packet of a picture older than the run's start or the remembered history.
    TooOld,
}

/// The output values of the newest forwarded picture: where the next run continues.
#[derive(Debug, Clone, Copy, Default)]
struct Last {
    picture_id: Option<u16>,
    tl0picidx: Option<u8>,
    keyidx: Option<u8>,
}

/// The mapping for one run (one layer's stream from the keyframe the forwarder switched on).
/// Output PictureID = input (extended past wraps) + `picture_offset` + the number of remembered
/// drops after that picture: each dropped picture lowers the offset of every later one by one.
#[derive(Debug, Clone)]
struct Run {
    first: Option<i64>,
    /// The newest picture seen (extended id) and whether it is dropped.
    newest: Option<(i64, bool)>,
    picture_offset: i64,
    dropped: [i64; DROP_HISTORY],
    dropped_count: usize,
    tl0_offset: u8,
    keyidx_offset: u8,
}

impl Run {
    /// A run whose first picture continues right after `last`.
    fn start(d: &Vp8Descriptor, last: &Last) -> Run {
        let picture_offset = match (last.picture_id, d.picture_id) {
            (Some(l), Some(p)) => i64::from(l) + 1 - i64::from(p.value),
            _ => 0,
        };
        let tl0_offset = match (last.tl0picidx, d.tl0picidx) {
            (Some(l), Some(t)) => l.wrapping_add(1).wrapping_sub(t),
            _ => 0,
        };
        let keyidx_offset = match (last.keyidx, d.keyidx) {
            (Some(l), Some(k)) => l.wrapping_add(1).wrapping_sub(k) & 0x1f,
            _ => 0,
        };
        Run {
            first: None,
            newest: None,
            picture_offset,
            dropped: [0; DROP_HISTORY],
            dropped_count: 0,
            tl0_offset,
            keyidx_offset,
        }
    }

    fn record_drop(&mut self, ext: i64) {
        self.dropped[self.dropped_count % DROP_HISTORY] = ext;
        self.dropped_count += 1;
        self.picture_offset -= 1;
    }

    /// For a late packet of an older picture: how many remembered drops came after it (to add
    /// back to the offset), or why it cannot be forwarded.
    fn late_picture(&self, ext: i64) -> Result<i64, Vp8Drop> {
        if self.first.is_some_and(|f| ext < f) {
            return Err(Vp8Drop::TooOld);
        }
        let kept = &self.dropped[..self.dropped_count.min(DROP_HISTORY)];
        let forgotten = self.dropped_count > DROP_HISTORY;
        if forgotten && kept.iter().all(|&d| d > ext) {
            return Err(Vp8Drop::TooOld);
        }
        if kept.contains(&ext) {
            return Err(Vp8Drop::TemporalLayer);
        }
        Ok(kept.iter().filter(|&&d| d > ext).count() as i64)
    }
}

/// The nearest extended value to `newest` whose low bits are `id`'s (7 or 15 of them).
fn unwrap_picture_id(newest: i64, id: PictureId) -> i64 {
    let modulus: i64 = if id.long { PICTURE_ID_SPACE } else { 128 };
    let delta = (i64::from(id.value) - newest).rem_euclid(modulus);
    newest
        + if delta >= modulus / 2 {
            delta - modulus
        } else {
            delta
        }
}

/// Rewrites one down-track's VP8 descriptors.
///
/// Dropped temporal-layer pictures are *removed* from the PictureID sequence (as LiveKit's and
/// mediasoup's VP8 handlers do) rather than left as gaps: libwebrtc's VP8 reference finder
/// (`rtp_vp8_ref_finder.cc`) records every skipped PictureID as "not yet received" and stashes
/// each later non-layer-sync frame of TID > 0 until those arrive, so gaps would freeze TL1 when
/// only TL2 is dropped. The drop decision is made once per picture, at its first packet seen:
/// lowering the temporal layer takes effect at the next picture; raising it waits for a keyframe
/// or a layer-sync (Y) picture of the new layer, which references nothing the subscriber lacks.
/// A picture whose first packet follows a sequence gap is forwarded whatever its layer, so a
/// late packet of it can still fill its slot (LiveKit does the same).
#[derive(Debug, Clone)]
pub struct Vp8Munger {
    max_temporal: Option<u8>,
    /// The highest temporal layer passing now (`u8::MAX` = all).
    passing: u8,
    run: Option<Run>,
    last: Last,
}

impl Default for Vp8Munger {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp8Munger {
    pub fn new() -> Self {
        Vp8Munger {
            max_temporal: None,
            passing: u8::MAX,
            run: None,
            last: Last::default(),
        }
    }

    /// The next packet begins a new run (the keyframe of a new layer or source): its picture
    /// continues right after the last one forwarded, and TL0PICIDX and KEYIDX advance by one.
    pub fn start_run(&mut self) {
        self.run = None;
    }

    /// Forward temporal layers up to `max` (`None` = all).
    pub fn set_max_temporal_layer(&mut self, max: Option<u8>) {
        self.max_temporal = max;
    }

    pub fn max_temporal_layer(&self) -> Option<u8> {
        self.max_temporal
    }

    /// Decides one packet of the current run and returns the values it must carry.
    /// `after_gap`: its sequence number skips ahead of the newest one seen.
    pub fn munge(&mut self, d: &Vp8Descriptor, after_gap: bool) -> Result<Vp8Rewrite, Vp8Drop> {
        let last = self.last;
        let run = self.run.get_or_insert_with(|| Run::start(d, &last));
        let mut newest = true;
        let mut picture_id = None;
        match d.picture_id {
            None => {
                if d.start_of_partition && d.partition_index == 0 {
                    self.passing = next_passing(self.passing, self.max_temporal, d);
                }
                if !after_gap && drops_temporal_layer(d.temporal_id, Some(self.passing)) {
                    return Err(Vp8Drop::TemporalLayer);
                }
            }
            Some(id) => {
                let ext = run
                    .newest
                    .map_or(i64::from(id.value), |(n, _)| unwrap_picture_id(n, id));
                let extra = match run.newest {
                    Some((n, true)) if ext == n => return Err(Vp8Drop::TemporalLayer),
                    Some((n, false)) if ext == n => 0,
                    Some((n, _)) if ext < n => {
                        newest = false;
                        run.late_picture(ext)?
                    }
                    _ => {
                        // The first packet seen of a new picture decides for all of it.
                        self.passing = next_passing(self.passing, self.max_temporal, d);
                        let drop =
                            !after_gap && drops_temporal_layer(d.temporal_id, Some(self.passing));
                        run.newest = Some((ext, drop));
                        run.first.get_or_insert(ext);
                        if drop {
                            run.record_drop(ext);
                            return Err(Vp8Drop::TemporalLayer);
                        }
                        0
                    }
                };
                let out = (ext + run.picture_offset + extra).rem_euclid(PICTURE_ID_SPACE) as u16;
                picture_id = Some(out & id.mask());
                if newest {
                    self.last.picture_id = Some(out);
                }
            }
        }
        let tl0picidx = d.tl0picidx.map(|t| t.wrapping_add(run.tl0_offset));
        let keyidx = d.keyidx.map(|k| k.wrapping_add(run.keyidx_offset) & 0x1f);
        if newest {
            self.last.tl0picidx = tl0picidx.or(self.last.tl0picidx);
            self.last.keyidx = keyidx.or(self.last.keyidx);
        }
        Ok(Vp8Rewrite {
            picture_id,
            tl0picidx,
            keyidx,
        })
    }
}

/// The temporal layer passing from a new picture `d` on: the target at a keyframe or when it is
/// lower; a higher layer up to the target only at its layer-sync picture.
fn next_passing(passing: u8, max: Option<u8>, d: &Vp8Descriptor) -> u8 {
    let target = max.unwrap_or(u8::MAX);
    if d.keyframe_start || target <= passing {
        return target;
    }
    match d.temporal_id {
        Some(t) if d.layer_sync && t > passing && t <= target => t,
        _ => passing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with X, I (15-bit), L and T/K; `key` gives a keyframe start.
    fn packet(pid: u16, tl0: u8, tid: u8, y: bool, keyidx: u8, key: bool) -> [u8; 7] {
        let [hi, lo] = pid.to_be_bytes();
        let tk = (tid << 6) | (u8::from(y) << 5) | (keyidx & 0x1f);
        [0x90, 0xf0, 0x80 | hi, lo, tl0, tk, u8::from(!key)]
    }

    fn short_packet(pid: u8, tid: u8, key: bool) -> [u8; 5] {
        [0x90, 0xa0, pid & 0x7f, tid << 6, u8::from(!key)]
    }

    fn desc(p: &[u8]) -> Vp8Descriptor {
        Vp8Descriptor::parse(p).expect("test packets are well formed")
    }

    #[test]
    fn parses_every_field() {
        let d = desc(&packet(0x1234, 7, 2, true, 9, false));
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true
            })
        );
        assert_eq!(
            (d.tl0picidx, d.temporal_id, d.layer_sync, d.keyidx),
            (Some(7), Some(2), true, Some(9))
        );
        assert!(d.start_of_partition && !d.keyframe_start && d.len == 6);
        let d = desc(&short_packet(100, 1, true));
        assert_eq!(
            (d.picture_id, d.temporal_id, d.keyidx, d.tl0picidx),
            (
                Some(PictureId {
                    value: 100,
                    long: false
                }),
                Some(1),
                None,
                None
            )
        );
        assert!(d.keyframe_start);
        // K without T: the TID and Y bits mean nothing.
        let d = desc(&[0x80, 0x10, 0xff, 0x00]);
        assert_eq!(
            (d.temporal_id, d.layer_sync, d.keyidx),
            (None, false, Some(31))
        );
        // No extension: just the first byte; N bit and partition index.
        let d = desc(&[0x23, 0x00]);
        assert!(d.non_reference && !d.start_of_partition && d.partition_index == 3);
        assert_eq!((d.len, d.picture_id), (1, None));
    }

    #[test]
    fn short_or_malformed_payloads_are_errors_not_panics() {
        let cases: [(&[u8], Vp8Error); 5] = [
            (&[], Vp8Error::Empty),
            (&[0x80], Vp8Error::Truncated { needed: 2, len: 1 }),
            (&[0x80, 0x80], Vp8Error::Truncated { needed: 3, len: 2 }),
            (
                &[0x80, 0x80, 0x80],
                Vp8Error::Truncated { needed: 4, len: 3 },
            ),
            (
                &[0x80, 0xf0, 0x80, 0x01, 0x05],
                Vp8Error::Truncated { needed: 6, len: 5 },
            ),
        ];
        for (payload, error) in cases {
            assert_eq!(Vp8Descriptor::parse(payload), Err(error), "{payload:?}");
            let mut copy = payload.to_vec();
            let rewrite = Vp8Rewrite {
                picture_id: Some(1),
                tl0picidx: Some(2),
                keyidx: Some(3),
            };
            assert_eq!(rewrite.apply(&mut copy), Err(error));
            assert_eq!(copy, payload, "a malformed payload stays untouched");
        }
        // Every first two bytes, each with tails of every length up to 6 bytes: no panic, and a
        // parsed descriptor never claims more bytes than the payload has.
        let mut munger = Vp8Munger::new();
        for n in 0..=u16::MAX {
            let [first, x] = n.to_be_bytes();
            for tail in [[0x00; 4], [0xff; 4], [0x80, 0x7f, 0x80, 0x01]] {
                let full = [first, x, tail[0], tail[1], tail[2], tail[3]];
                for len in 0..=full.len() {
                    let mut p = full;
                    if let Ok(d) = Vp8Descriptor::parse(&p[..len]) {
                        assert!(d.len <= len);
                        let _ = munger.munge(&d, n % 7 == 0);
                    }
                    let _ = Vp8Rewrite::default().apply(&mut p[..len]);
                }
            }
        }
    }

    #[test]
    fn rewrite_keeps_widths_and_other_bits() {
        let mut p = packet(5, 1, 2, true, 3, false);
        let rw = Vp8Rewrite {
            picture_id: Some(0x7abc),
            tl0picidx: Some(200),
            keyidx: Some(17),
        };
        rw.apply(&mut p).unwrap();
        let d = desc(&p);
        assert_eq!(
            d.picture_id.map(|i| (i.value, i.long)),
            Some((0x7abc, true))
        );
        assert_eq!((d.tl0picidx, d.keyidx), (Some(200), Some(17)));
        assert_eq!((d.temporal_id, d.layer_sync), (Some(2), true), "TID/Y kept");
        assert_eq!(p[6], 1, "the VP8 payload is not touched");
        // A 7-bit field gets the id modulo 128 and stays one byte.
        let mut p = short_packet(3, 0, true);
        Vp8Rewrite {
            picture_id: Some(300),
            ..Default::default()
        }
        .apply(&mut p)
        .unwrap();
        assert_eq!(
            desc(&p).picture_id.map(|i| (i.value, i.long)),
            Some((300 % 128, false))
        );
        assert_eq!(desc(&p).len, 4);
        assert!(!rw.changes(&desc(&packet(0x7abc, 200, 0, false, 17, false))));
        assert!(rw.changes(&desc(&packet(0x7abc, 201, 0, false, 17, false))));
    }

    #[test]
    fn temporal_layer_drop_rule() {
        let table = [
            (None, None, false),
            (Some(2), None, false),
            (None, Some(0), false),
            (Some(0), Some(0), false),
            (Some(1), Some(0), true),
            (Some(2), Some(1), true),
            (Some(2), Some(2), false),
        ];
        for (tid, max, dropped) in table {
            assert_eq!(drops_temporal_layer(tid, max), dropped, "{tid:?} {max:?}");
        }
    }

    /// (picture id, tl0, tid, y, keyidx, key) in, munged (picture id, tl0, keyidx) or None out.
    type Step = ((u16, u8, u8, bool, u8, bool), Option<(u16, u8, u8)>);

    fn run_steps(m: &mut Vp8Munger, steps: &[Step]) {
        for (i, &((pid, tl0, tid, y, k, key), want)) in steps.iter().enumerate() {
            let got = m
                .munge(&desc(&packet(pid, tl0, tid, y, k, key)), false)
                .ok()
                .map(|r| {
                    (
                        r.picture_id.unwrap(),
                        r.tl0picidx.unwrap(),
                        r.keyidx.unwrap(),
                    )
                });
            assert_eq!(got, want, "step {i}");
        }
    }

    #[test]
    fn runs_continue_from_the_last_picture_with_wraps() {
        let mut m = Vp8Munger::new();
        run_steps(
            &mut m,
            &[
                ((32766, 255, 0, false, 31, true), Some((32766, 255, 31))),
                ((32767, 255, 1, false, 31, false), Some((32767, 255, 31))),
            ],
        );
        // Switch: the new layer's numbering is unrelated; the output goes on by one.
        m.start_run();
        run_steps(
            &mut m,
            &[
                ((900, 40, 0, false, 3, true), Some((0, 0, 0))),
                ((900, 40, 0, false, 3, false), Some((0, 0, 0))),
                ((901, 41, 0, false, 3, false), Some((1, 1, 0))),
            ],
        );
        // A 7-bit stream after a 15-bit one continues modulo 128.
        m.start_run();
        let got = m.munge(&desc(&short_packet(50, 0, true)), false).unwrap();
        assert_eq!(got.picture_id, Some(2));
        let got = m.munge(&desc(&short_packet(51, 0, false)), false).unwrap();
        assert_eq!(got.picture_id, Some(3));
        // A 7-bit stream wraps 127 -> 0 within a run and the next run continues from there.
        let mut m = Vp8Munger::new();
        let mut outputs = Vec::new();
        for (i, pid) in [125u8, 126, 127, 0, 1].into_iter().enumerate() {
            let d = desc(&short_packet(pid, 0, i == 0));
            outputs.push(m.munge(&d, false).unwrap().picture_id.unwrap());
        }
        m.start_run();
        let d = desc(&short_packet(64, 0, true));
        outputs.push(m.munge(&d, false).unwrap().picture_id.unwrap());
        assert_eq!(outputs, [125, 126, 127, 0, 1, 2]);
    }

    #[test]
    fn dropped_temporal_pictures_leave_no_picture_id_gap() {
        let mut m = Vp8Munger::new();
        m.set_max_temporal_layer(Some(0));
        // Pattern TL0 TL2 TL1 TL2: only TL0 passes, numbered one apart.
        run_steps(
            &mut m,
            &[
                ((10, 1, 0, false, 0, true), Some((10, 1, 0))),
                ((11, 1, 2, true, 0, false), None),
                ((11, 1, 2, true, 0, false), None),
                ((12, 1, 1, true, 0, false), None),
                ((13, 1, 2, false, 0, false), None),
                ((14, 2, 0, false, 0, false), Some((11, 2, 0))),
                // A late packet of a kept picture gets its own number; of a dropped one, none.
                ((10, 1, 0, false, 0, false), Some((10, 1, 0))),
                ((12, 1, 1, true, 0, false), None),
                ((14, 2, 0, false, 0, false), Some((11, 2, 0))),
            ],
        );
        // Raising the cap waits for a layer-sync picture of the new layer.
        m.set_max_temporal_layer(Some(2));
        run_steps(
            &mut m,
            &[
                ((15, 2, 2, false, 0, false), None),
                ((16, 2, 1, true, 0, false), Some((12, 2, 0))),
                ((17, 2, 2, false, 0, false), None),
                ((18, 3, 0, false, 0, false), Some((13, 3, 0))),
                ((19, 3, 2, true, 0, false), Some((14, 3, 0))),
                ((20, 3, 1, false, 0, false), Some((15, 3, 0))),
            ],
        );
        // Lowering it takes effect at the next picture.
        m.set_max_temporal_layer(Some(1));
        run_steps(
            &mut m,
            &[
                ((21, 3, 2, false, 0, false), None),
                ((22, 4, 0, false, 0, false), Some((16, 4, 0))),
            ],
        );
    }

    #[test]
    fn a_picture_after_a_gap_is_kept_and_late_history_is_bounded() {
        let mut m = Vp8Munger::new();
        m.set_max_temporal_layer(Some(0));
        m.munge(&desc(&packet(0, 0, 0, false, 0, true)), false)
            .unwrap();
        let d = desc(&packet(1, 0, 1, false, 0, false));
        assert_eq!(m.munge(&d, true).map(|r| r.picture_id), Ok(Some(1)));
        assert_eq!(m.munge(&d, false).map(|r| r.picture_id), Ok(Some(1)));
        // 40 dropped TL1 pictures between TL0 ones: more than the history holds.
        for i in 0..40u16 {
            let d = desc(&packet(2 + 2 * i, 0, 1, false, 0, false));
            assert_eq!(m.munge(&d, false), Err(Vp8Drop::TemporalLayer));
            let d = desc(&packet(3 + 2 * i, 0, 0, false, 0, false));
            assert_eq!(m.munge(&d, false).map(|r| r.picture_id), Ok(Some(2 + i)));
        }
        // A late packet from before the remembered drops cannot be placed.
        let d = desc(&packet(3, 0, 0, false, 0, false));
        assert_eq!(m.munge(&d, false), Err(Vp8Drop::TooOld));
        let d = desc(&packet(79, 0, 0, false, 0, false));
        assert_eq!(m.munge(&d, false).map(|r| r.picture_id), Ok(Some(40)));
    }
}
