//! Recognises the first RTP packet of a video keyframe from the payload alone, per codec.
//!
//! The forwarder starts (or resumes) a video subscription only on such a packet, so that a
//! subscriber's decoder never starts on a delta frame. Pure functions over bytes: never
//! allocate, never panic on short or malformed payloads (they are simply "not a keyframe").

/// Video codecs whose keyframes we can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    /// A codec we cannot parse: every packet counts as a possible start.
    Other,
}

impl VideoCodec {
    /// Maps an SDP MIME type (`video/VP8`) to the codec.
    pub fn from_mime(mime: &str) -> Self {
        let name = mime.rsplit('/').next().unwrap_or(mime);
        if name.eq_ignore_ascii_case("vp8") {
            VideoCodec::Vp8
        } else if name.eq_ignore_ascii_case("vp9") {
            VideoCodec::Vp9
        } else if name.eq_ignore_ascii_case("h264") {
            VideoCodec::H264
        } else {
            VideoCodec::Other
        }
    }

    /// True when `payload` is the first packet of a keyframe.
    pub fn is_keyframe_start(self, payload: &[u8]) -> bool {
        match self {
            VideoCodec::Vp8 => vp8_keyframe_start(payload),
            VideoCodec::Vp9 => vp9_keyframe_start(payload),
            VideoCodec::H264 => h264_keyframe_start(payload),
            VideoCodec::Other => true,
        }
    }

    /// The picture size carried by this packet, if it starts a keyframe that says (VP8).
    pub fn dimensions(self, payload: &[u8]) -> Option<(u32, u32)> {
        match self {
            VideoCodec::Vp8 => vp8_dimensions(payload),
            _ => None,
        }
    }
}

/// Where the VP8 payload starts, past the RFC 7741 payload descriptor, when this packet
/// begins partition 0 of a frame.
fn vp8_frame_start(p: &[u8]) -> Option<usize> {
    let &first = p.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return None;
    }
    let mut i = 1;
    if extended {
        let &x = p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let &pid = p.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    Some(i)
}

/// The VP8 frame tag's lowest bit is 0 on keyframes.
fn vp8_keyframe_start(p: &[u8]) -> bool {
    vp8_frame_start(p).is_some_and(|i| matches!(p.get(i), Some(tag) if tag & 0x01 == 0))
}

/// A VP8 keyframe's size (RFC 6386 §9.1: frame tag, start code 9d 01 2a, 14-bit width and
/// height, little-endian).
fn vp8_dimensions(p: &[u8]) -> Option<(u32, u32)> {
    let i = vp8_frame_start(p)?;
    let header = p.get(i..i + 10)?;
    if header[0] & 0x01 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([header[6], header[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([header[8], header[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

/// RFC 9628 descriptor: B (start of frame) set and P (inter-picture predicted) clear.
fn vp9_keyframe_start(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let inter_predicted = first & 0x40 != 0;
    let begins_frame = first & 0x08 != 0;
    begins_frame && !inter_predicted
}

/// RFC 6184: an IDR slice or SPS as a single NAL unit, inside a STAP-A, or starting an FU-A.
fn h264_keyframe_start(p: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&first) = p.first() else {
        return false;
    };
    match first & 0x1f {
        IDR | SPS => true,
        STAP_A => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                let Some(&nal) = p.get(i + 2) else { break };
                if matches!(nal & 0x1f, IDR | SPS) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        FU_A => match p.get(1) {
            Some(&fu) => fu & 0x80 != 0 && matches!(fu & 0x1f, IDR | SPS),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes_and_delta_frames() {
        // S=1, PID=0, no extension, frame tag with P=0.
        assert!(VideoCodec::Vp8.is_keyframe_start(&[0x10, 0x50, 0x01]));
        // Same, but P=1: delta frame.
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x10, 0x51, 0x01]));
        // Not the start of a partition.
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x00, 0x50]));
        // Extended: I bit with a 2-byte picture id, then keyframe tag.
        assert!(VideoCodec::Vp8.is_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x10]));
        // Extended with L and T bits.
        assert!(VideoCodec::Vp8.is_keyframe_start(&[0x90, 0xe0, 0x05, 0x07, 0x20, 0x00]));
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x90, 0xe0, 0x05, 0x07, 0x20, 0x01]));
    }

    #[test]
    fn vp8_keyframes_carry_their_size() {
        // Descriptor with a 2-byte picture id, then a keyframe header for 640x480 with the
        // scaling bits set (they are not part of the size).
        let packet = [
            0x90, 0x80, 0x81, 0x23, 0x50, 0x2f, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0xe0, 0xc1,
        ];
        assert_eq!(VideoCodec::Vp8.dimensions(&packet), Some((640, 480)));
        // A delta frame, a missing start code and a short packet say nothing.
        let mut delta = packet;
        delta[4] |= 0x01;
        assert_eq!(VideoCodec::Vp8.dimensions(&delta), None);
        let mut no_start_code = packet;
        no_start_code[7] = 0;
        assert_eq!(VideoCodec::Vp8.dimensions(&no_start_code), None);
        assert_eq!(VideoCodec::Vp8.dimensions(&packet[..10]), None);
        assert_eq!(VideoCodec::H264.dimensions(&packet), None);
    }

    #[test]
    fn short_or_empty_payloads_are_not_keyframes() {
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
            assert!(!codec.is_keyframe_start(&[]));
        }
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x90]));
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x90, 0x80]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[28]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[24, 0xff, 0xff]));
    }

    #[test]
    fn h264_idr_sps_stap_a_and_fu_a() {
        assert!(VideoCodec::H264.is_keyframe_start(&[0x65, 0x00]));
        assert!(VideoCodec::H264.is_keyframe_start(&[0x67, 0x42]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x41, 0x00]));
        // STAP-A with SPS (len 2) then PPS (len 1).
        assert!(
            VideoCodec::H264.is_keyframe_start(&[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68])
        );
        // FU-A start of an IDR, and a continuation of one.
        assert!(VideoCodec::H264.is_keyframe_start(&[0x7c, 0x85, 0x00]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x7c, 0x05, 0x00]));
    }

    #[test]
    fn vp9_start_of_intra_frame() {
        assert!(VideoCodec::Vp9.is_keyframe_start(&[0x08]));
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0x48]));
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0x00]));
    }

    #[test]
    fn mime_types_map_to_codecs() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), VideoCodec::Vp8);
        assert_eq!(VideoCodec::from_mime("video/h264"), VideoCodec::H264);
        assert_eq!(VideoCodec::from_mime("video/AV1"), VideoCodec::Other);
    }
}
