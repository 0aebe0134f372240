//! Video RTP to whole frames: reassembles a publisher's packets into VP8, VP9 or H.264 frames
//! and frames them for the decoder (IVF for VP8/VP9, an Annex-B stream for H.264).

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::codec::vp9::Vp9Packet;
use rtc::rtp::packetizer::Depacketizer;

/// The video codecs the recorder can decode (through ffmpeg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
}

impl VideoCodec {
    /// The codec of a negotiated MIME type (`video/VP8`, ...).
    pub fn from_mime(mime: &str) -> Option<VideoCodec> {
        let name = mime.rsplit('/').next().unwrap_or(mime);
        if name.eq_ignore_ascii_case("vp8") {
            Some(VideoCodec::Vp8)
        } else if name.eq_ignore_ascii_case("vp9") {
            Some(VideoCodec::Vp9)
        } else if name.eq_ignore_ascii_case("h264") {
            Some(VideoCodec::H264)
        } else {
            None
        }
    }

    /// ffmpeg's input format for what [`FrameAssembler`] produces.
    pub fn ffmpeg_format(self) -> &'static str {
        match self {
            VideoCodec::Vp8 | VideoCodec::Vp9 => "ivf",
            VideoCodec::H264 => "h264",
        }
    }

    /// How many bytes ffmpeg reads to learn the stream (IVF says it all in its header; raw
    /// H.264 needs its parameter sets and a picture).
    pub fn probe_size(self) -> &'static str {
        match self {
            VideoCodec::Vp8 | VideoCodec::Vp9 => "32",
            VideoCodec::H264 => "50000",
        }
    }

    /// The bytes that start the decoder's input stream (the IVF file header).
    pub fn stream_header(self) -> Vec<u8> {
        let fourcc: &[u8; 4] = match self {
            VideoCodec::Vp8 => b"VP80",
            VideoCodec::Vp9 => b"VP90",
            VideoCodec::H264 => return Vec::new(),
        };
        let mut header = Vec::with_capacity(32);
        header.extend_from_slice(b"DKIF");
        header.extend_from_slice(&0u16.to_le_bytes()); // version
        header.extend_from_slice(&32u16.to_le_bytes()); // header length
        header.extend_from_slice(fourcc);
        header.extend_from_slice(&640u16.to_le_bytes()); // nominal; the bitstream rules
        header.extend_from_slice(&480u16.to_le_bytes());
        header.extend_from_slice(&90_000u32.to_le_bytes()); // time base: 1/90000 (RTP clock)
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // frame count: unknown (live)
        header.extend_from_slice(&0u32.to_le_bytes());
        header
    }

    /// One frame as the decoder's input stream carries it.
    pub fn frame_record(self, pts: u64, frame: &[u8]) -> Vec<u8> {
        match self {
            VideoCodec::Vp8 | VideoCodec::Vp9 => {
                let mut record = Vec::with_capacity(12 + frame.len());
                record.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                record.extend_from_slice(&pts.to_le_bytes());
                record.extend_from_slice(frame);
                record
            }
            VideoCodec::H264 => frame.to_vec(),
        }
    }
}

enum Depacketizers {
    /// A fresh parser per packet: `Vp8Packet` keeps optional-field flags from the previous one.
    Vp8,
    Vp9(Vp9Packet),
    H264(H264Packet),
}

impl Depacketizers {
    fn depacketize(&mut self, payload: &Bytes) -> Option<Bytes> {
        match self {
            Depacketizers::Vp8 => Vp8Packet::default().depacketize(payload).ok(),
            Depacketizers::Vp9(d) => d.depacketize(payload).ok(),
            Depacketizers::H264(d) => d.depacketize(payload).ok(),
        }
    }

    fn is_head(&self, payload: &Bytes) -> bool {
        match self {
            Depacketizers::Vp8 => Vp8Packet::default().is_partition_head(payload),
            Depacketizers::Vp9(d) => d.is_partition_head(payload),
            Depacketizers::H264(d) => d.is_partition_head(payload),
        }
    }
}

/// Reassembles one track's RTP packets into frames. A frame with a missing packet is dropped
/// (the decoder conceals it); packets that arrive late are ignored.
pub struct FrameAssembler {
    codec: VideoCodec,
    depacketizer: Depacketizers,
    next_sequence: Option<u16>,
    frame_timestamp: Option<u32>,
    frame: Vec<u8>,
    broken: bool,
    /// Timeline of finished frames: RTP time since the first, unwrapped.
    unwrapped: u64,
    last_timestamp: Option<u32>,
}

impl FrameAssembler {
    pub fn new(codec: VideoCodec) -> FrameAssembler {
        let depacketizer = match codec {
            VideoCodec::Vp8 => Depacketizers::Vp8,
            VideoCodec::Vp9 => Depacketizers::Vp9(Vp9Packet::default()),
            VideoCodec::H264 => Depacketizers::H264(H264Packet::default()),
        };
        FrameAssembler {
            codec,
            depacketizer,
            next_sequence: None,
            frame_timestamp: None,
            frame: Vec::new(),
            broken: false,
            unwrapped: 0,
            last_timestamp: None,
        }
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Adds one packet; returns a finished frame's presentation time (RTP clock, from the
    /// track's first frame) and bytes when this packet completes one.
    pub fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Option<(u64, Vec<u8>)> {
        let mut gap = false;
        if let Some(expected) = self.next_sequence {
            let ahead = sequence.wrapping_sub(expected);
            if ahead >= 0x8000 {
                return None; // late or duplicate
            }
            gap = ahead != 0;
        }
        self.next_sequence = Some(sequence.wrapping_add(1));
        if self.frame_timestamp != Some(timestamp) {
            // A new frame begins; whatever was collected lacked its last packet. After a gap,
            // the new frame is whole only if this packet is its first.
            self.frame.clear();
            self.frame_timestamp = Some(timestamp);
            self.broken = gap && !self.depacketizer.is_head(payload);
        } else if gap {
            self.broken = true;
        }
        match self.depacketizer.depacketize(payload) {
            Some(bytes) => self.frame.extend_from_slice(&bytes),
            None => self.broken = true,
        }
        if !marker {
            return None;
        }
        let frame = std::mem::take(&mut self.frame);
        let broken = std::mem::replace(&mut self.broken, false);
        self.frame_timestamp = None;
        if broken || frame.is_empty() {
            return None;
        }
        Some((self.presentation_time(timestamp), frame))
    }

    fn presentation_time(&mut self, timestamp: u32) -> u64 {
        let Some(last) = self.last_timestamp else {
            self.last_timestamp = Some(timestamp);
            return 0;
        };
        let step = timestamp.wrapping_sub(last);
        if step < 0x8000_0000 {
            self.unwrapped += u64::from(step);
            self.last_timestamp = Some(timestamp);
        }
        self.unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload descriptor with S=1 (start of partition) or S=0, followed by `data`.
    fn vp8(start: bool, data: &[u8]) -> Bytes {
        let mut p = vec![if start { 0x10 } else { 0x00 }];
        p.extend_from_slice(data);
        Bytes::from(p)
    }

    #[test]
    fn reassembles_a_frame_from_its_packets() {
        let mut a = FrameAssembler::new(VideoCodec::Vp8);
        assert!(a.push(10, 3000, false, &vp8(true, &[1, 2, 3])).is_none());
        let (pts, frame) = a.push(11, 3000, true, &vp8(false, &[4, 5, 6])).unwrap();
        assert_eq!((pts, frame), (0, vec![1, 2, 3, 4, 5, 6]));
        let (pts, frame) = a.push(12, 6000, true, &vp8(true, &[7, 8, 9])).unwrap();
        assert_eq!((pts, frame), (3000, vec![7, 8, 9]));
    }

    #[test]
    fn drops_a_frame_with_a_missing_packet_and_recovers() {
        let mut a = FrameAssembler::new(VideoCodec::Vp8);
        assert!(a.push(1, 100, true, &vp8(true, &[1; 3])).is_some());
        assert!(a.push(2, 200, false, &vp8(true, &[2; 3])).is_none());
        // packet 3 lost
        assert!(a.push(4, 200, true, &vp8(false, &[4; 3])).is_none());
        assert_eq!(
            a.push(5, 300, true, &vp8(true, &[5; 3])).unwrap().1,
            vec![5; 3]
        );
        // a late packet is ignored
        assert!(a.push(3, 200, false, &vp8(false, &[3; 3])).is_none());
    }

    #[test]
    fn codecs_from_mime_types() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/h264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("video/VP9"), Some(VideoCodec::Vp9));
        assert_eq!(VideoCodec::from_mime("video/AV1"), None);
    }

    #[test]
    fn ivf_records_carry_size_and_time() {
        let header = VideoCodec::Vp8.stream_header();
        assert_eq!(&header[..4], b"DKIF");
        assert_eq!(header.len(), 32);
        let record = VideoCodec::Vp8.frame_record(9000, &[7, 7]);
        assert_eq!(&record[..4], &2u32.to_le_bytes());
        assert_eq!(&record[4..12], &9000u64.to_le_bytes());
        assert!(VideoCodec::H264.stream_header().is_empty());
    }
}
