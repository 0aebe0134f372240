//! Reading VP8 as the load tester needs it: whether an encoded frame is a keyframe, and the
//! picture size a received RTP payload announces when it starts one (past the RFC 7741 payload
//! descriptor). It never decodes a picture.

/// Whether an encoded VP8 frame is a keyframe (frame tag bit 0 clear, RFC 6386 9.1).
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// The picture size (width, height) announced by a VP8 RTP payload that starts a keyframe;
/// `None` for any other payload.
pub fn keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let first = *payload.first()?;
    let starts_partition_zero = first & 0x10 != 0 && first & 0x07 == 0;
    if !starts_partition_zero {
        return None;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let extensions = *payload.get(1)?;
        at = 2;
        if extensions & 0x80 != 0 {
            // Picture id: 15 bits when its first byte's M bit is set, else 7.
            at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if extensions & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if extensions & 0x30 != 0 {
            at += 1; // TID / KEYIDX
        }
    }
    let frame = payload.get(at..at + 10)?;
    if !is_keyframe(frame) || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyframe's first bytes: frame tag, start code, 640x360.
    const KEYFRAME: [u8; 10] = [0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];

    #[test]
    fn reads_the_size_past_every_descriptor_form() {
        for descriptor in [
            vec![0x10],                         // no extensions
            vec![0x90, 0x80, 0x85, 0x21],       // 15-bit picture id
            vec![0x90, 0x80, 0x05],             // 7-bit picture id
            vec![0x90, 0xe0, 0x85, 0x21, 7, 0], // picture id, TL0PICIDX, TID
        ] {
            let payload = [descriptor.as_slice(), &KEYFRAME, &[0; 20]].concat();
            assert_eq!(keyframe_size(&payload), Some((640, 360)), "{descriptor:x?}");
        }
    }

    #[test]
    fn other_payloads_have_no_size() {
        let mut inter = KEYFRAME;
        inter[0] |= 1;
        assert_eq!(keyframe_size(&[&[0x10][..], &inter].concat()), None);
        // Not the start of a frame.
        assert_eq!(keyframe_size(&[&[0x00][..], &KEYFRAME].concat()), None);
        assert_eq!(keyframe_size(&[0x10, 0x50]), None, "truncated");
        assert_eq!(keyframe_size(&[]), None);
        assert!(is_keyframe(&KEYFRAME) && !is_keyframe(&inter) && !is_keyframe(&[]));
    }
}
