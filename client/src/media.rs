//! What a publishing client sends: a [`MediaSource`] yields RTP payloads when they are due; the
//! client adds sequence numbers and the SSRC (one per stream; a simulcast track has one stream
//! per layer, each fed by its own source). [`SyntheticAudio`] and [`SyntheticVideo`] are the
//! cheap defaults the tests use (Opus-sized silence, one-packet VP8 keyframes); the load
//! tester brings real encoded media. Sources never do I/O or sleep: they only say when the next
//! packet is due and hand it over.

use std::time::{Duration, Instant};

use bytes::Bytes;

/// One RTP payload to send.
#[derive(Debug, Clone)]
pub struct MediaPacket {
    pub payload: Bytes,
    /// RTP timestamp in the codec's clock.
    pub timestamp: u32,
    /// The RTP marker bit (last packet of a video frame).
    pub marker: bool,
}

/// A stream of RTP payloads paced in real time.
pub trait MediaSource: Send {
    /// When the next packet is due.
    fn next_due(&self) -> Instant;
    /// Appends every packet due at `now` to `out`.
    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>);
    /// A receiver lost the picture (the SFU sent a PLI or FIR for this stream's SSRC): the next
    /// frame should be a keyframe. Audio, and video made only of keyframes, ignore it.
    fn request_keyframe(&mut self) {}
}

/// 20 ms Opus-sized packets of filler.
pub struct SyntheticAudio {
    started: Instant,
    next: Instant,
}

impl SyntheticAudio {
    pub fn new(now: Instant) -> SyntheticAudio {
        SyntheticAudio {
            started: now,
            next: now,
        }
    }
}

impl MediaSource for SyntheticAudio {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        while self.next <= now {
            let timestamp = (self.next.duration_since(self.started).as_micros() * 48 / 1000) as u32;
            out.push(MediaPacket {
                payload: Bytes::from_static(&[0xfc; 60]),
                timestamp,
                marker: true,
            });
            self.next += Duration::from_millis(20);
        }
    }
}

/// One single-packet VP8 "keyframe" (a valid frame tag, zero filler) per 33 ms.
pub struct SyntheticVideo {
    started: Instant,
    next: Instant,
}

impl SyntheticVideo {
    pub fn new(now: Instant) -> SyntheticVideo {
        SyntheticVideo {
            started: now,
            next: now,
        }
    }
}

impl MediaSource for SyntheticVideo {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        while self.next <= now {
            let timestamp = (self.next.duration_since(self.started).as_micros() * 90 / 1000) as u32;
            // VP8 payload descriptor (S=1, PID=0) and a keyframe frame tag.
            let mut payload = vec![0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a];
            payload.resize(900, 0);
            out.push(MediaPacket {
                payload: Bytes::from(payload),
                timestamp,
                marker: true,
            });
            self.next += Duration::from_millis(33);
        }
    }
}
