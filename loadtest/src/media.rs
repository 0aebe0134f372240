//! The load tester's media. Video is a VP8 clip encoded once by ffmpeg at the target bitrate
//! (with a keyframe every 2 s), looped with continuous RTP timestamps and split into RTP
//! payloads as a browser would. Audio is a tone encoded by libopus (the `opus` crate) in 20 ms
//! packets. Every payload ends with a [stamp] carrying its send time, so a subscriber
//! in the same process measures forwarding latency on the same clock. Sources never encode while
//! sending: the clip and the tone are encoded up front and only replayed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use client::media::{MediaPacket, MediaSource};

/// Bytes every payload gains at its end: a magic tag and the send time.
pub const STAMP_LEN: usize = 12;
const STAMP_MAGIC: [u8; 4] = *b"SYLT";
/// Largest VP8 payload per packet (before the stamp), like a browser's.
const MAX_VIDEO_PAYLOAD: usize = 1100;
/// Clip frame rate.
pub const FPS: u32 = 30;
/// Clip length; the loop point is a keyframe.
const CLIP_SECONDS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("ffmpeg is needed to encode the video clip (apt-get install ffmpeg): {0}")]
    FfmpegMissing(std::io::Error),
    #[error("ffmpeg could not encode the video clip: {0}")]
    Encode(String),
    #[error("cannot read the video clip {path}: {reason}")]
    Clip { path: PathBuf, reason: String },
    #[error("libopus: {0}")]
    Opus(#[from] opus::Error),
}

/// The instant stamps count from (the process's first use).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Appends the stamp for `now` to a payload.
pub fn stamp(payload: &mut BytesMut, now: Instant) {
    let micros = now.saturating_duration_since(epoch()).as_micros() as u64;
    payload.put_slice(&STAMP_MAGIC);
    payload.put_u64(micros);
}

/// The time since a payload's stamp was made, if it carries one.
pub fn stamp_age(payload: &[u8], now: Instant) -> Option<Duration> {
    let tail = payload.get(payload.len().checked_sub(STAMP_LEN)?..)?;
    if tail[..4] != STAMP_MAGIC {
        return None;
    }
    let micros = u64::from_be_bytes(tail[4..].try_into().ok()?);
    let sent = epoch() + Duration::from_micros(micros);
    Some(now.saturating_duration_since(sent))
}

/// A VP8 clip: its frames in decoding order.
pub struct Clip {
    frames: Vec<Bytes>,
}

impl Clip {
    /// Encodes (once; cached in `cache`) a clip at `bitrate_kbps` and loads it.
    pub fn prepare(bitrate_kbps: u32, cache: &Path) -> Result<Clip, MediaError> {
        let path = cache.join(format!("clip-vp8-{bitrate_kbps}k.ivf"));
        if !path.is_file() {
            std::fs::create_dir_all(cache).map_err(|e| MediaError::Clip {
                path: cache.to_owned(),
                reason: e.to_string(),
            })?;
            let partial = path.with_extension("partial.ivf");
            let bitrate = format!("{bitrate_kbps}k");
            let output = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!("testsrc2=size=640x360:rate={FPS},format=yuv420p"))
                .args(["-t", &CLIP_SECONDS.to_string()])
                .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
                .args(["-b:v", &bitrate, "-minrate", &bitrate, "-maxrate", &bitrate])
                .args([
                    "-g",
                    &(FPS * 2).to_string(),
                    "-keyint_min",
                    &(FPS * 2).to_string(),
                ])
                .args(["-f", "ivf"])
                .arg(&partial)
                .output()
                .map_err(MediaError::FfmpegMissing)?;
            if !output.status.success() {
                return Err(MediaError::Encode(
                    String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                ));
            }
            std::fs::rename(&partial, &path).map_err(|e| MediaError::Clip {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        let bytes = std::fs::read(&path).map_err(|e| MediaError::Clip {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let frames = parse_ivf(&bytes).map_err(|reason| MediaError::Clip {
            path: path.clone(),
            reason,
        })?;
        Ok(Clip { frames })
    }

    /// Average payload bitrate of the clip, in kbit/s.
    pub fn bitrate_kbps(&self) -> f64 {
        let bytes: usize = self.frames.iter().map(Bytes::len).sum();
        bytes as f64 * 8.0 / (self.frames.len() as f64 / f64::from(FPS)) / 1000.0
    }
}

/// The frames of an IVF file.
fn parse_ivf(bytes: &[u8]) -> Result<Vec<Bytes>, String> {
    if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
        return Err("not an IVF file".into());
    }
    let header_len = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    let mut frames = Vec::new();
    let mut at = header_len;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let start = at + 12;
        let frame = bytes
            .get(start..start + len)
            .ok_or_else(|| format!("frame at byte {at} runs past the end"))?;
        frames.push(Bytes::copy_from_slice(frame));
        at = start + len;
    }
    if frames.is_empty() {
        return Err("no frames".into());
    }
    Ok(frames)
}

/// Plays a [`Clip`] in a loop as VP8 RTP payloads.
pub struct ClipSource {
    clip: Arc<Clip>,
    frame: u64,
    picture_id: u16,
    next: Instant,
}

impl ClipSource {
    pub fn new(clip: Arc<Clip>, now: Instant) -> ClipSource {
        ClipSource {
            clip,
            frame: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
            next: now,
        }
    }
}

impl MediaSource for ClipSource {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        let interval = Duration::from_secs(1) / FPS;
        while self.next <= now {
            let frame = &self.clip.frames[(self.frame % self.clip.frames.len() as u64) as usize];
            let timestamp = (self.frame * u64::from(90_000 / FPS)) as u32;
            let chunks = frame.len().div_ceil(MAX_VIDEO_PAYLOAD).max(1);
            for (i, chunk) in frame.chunks(MAX_VIDEO_PAYLOAD).enumerate() {
                let mut payload = BytesMut::with_capacity(4 + chunk.len() + STAMP_LEN);
                // Payload descriptor: X=1, S on the first packet, PID 0; I=1; 15-bit picture id.
                payload.put_u8(if i == 0 { 0x90 } else { 0x80 });
                payload.put_u8(0x80);
                payload.put_u16(0x8000 | self.picture_id);
                payload.put_slice(chunk);
                stamp(&mut payload, now);
                out.push(MediaPacket {
                    payload: payload.freeze(),
                    timestamp,
                    marker: i + 1 == chunks,
                });
            }
            self.frame += 1;
            self.picture_id = (self.picture_id + 1) & 0x7fff;
            self.next += interval;
        }
    }
}

/// A one-second tone (a rising sweep) encoded by libopus as 50 packets, played in a loop.
pub struct OpusSource {
    packets: Arc<Vec<Bytes>>,
    index: u64,
    next: Instant,
}

/// Encodes the tone once.
pub fn opus_packets() -> Result<Arc<Vec<Bytes>>, MediaError> {
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
    let mut packets = Vec::with_capacity(50);
    let mut phase = 0.0f32;
    for n in 0..50 {
        let frequency = 300.0 + 10.0 * n as f32;
        let pcm: Vec<i16> = (0..960)
            .map(|_| {
                phase += 2.0 * std::f32::consts::PI * frequency / 48_000.0;
                (phase.sin() * 6000.0) as i16
            })
            .collect();
        packets.push(Bytes::from(encoder.encode_vec(&pcm, 1500)?));
    }
    Ok(Arc::new(packets))
}

impl OpusSource {
    pub fn new(packets: Arc<Vec<Bytes>>, now: Instant) -> OpusSource {
        OpusSource {
            packets,
            index: 0,
            next: now,
        }
    }
}

impl MediaSource for OpusSource {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        while self.next <= now {
            let packet = &self.packets[(self.index % self.packets.len() as u64) as usize];
            let mut payload = BytesMut::with_capacity(packet.len() + STAMP_LEN);
            payload.put_slice(packet);
            stamp(&mut payload, now);
            out.push(MediaPacket {
                payload: payload.freeze(),
                timestamp: (self.index * 960) as u32,
                marker: self.index == 0,
            });
            self.index += 1;
            self.next += Duration::from_millis(20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let _ = epoch();
        let now = Instant::now();
        let mut payload = BytesMut::from(&b"media"[..]);
        stamp(&mut payload, now);
        let age = stamp_age(&payload, now + Duration::from_millis(3)).unwrap();
        assert!(age >= Duration::from_millis(3) && age < Duration::from_millis(4));
        assert!(stamp_age(b"no stamp here", now).is_none());
        assert!(stamp_age(b"", now).is_none());
    }

    #[test]
    fn opus_tone_is_fifty_packets() {
        let packets = opus_packets().unwrap();
        assert_eq!(packets.len(), 50);
        let mut source = OpusSource::new(packets, Instant::now());
        let mut out = Vec::new();
        source.poll(source.next_due() + Duration::from_millis(50), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].timestamp, 960);
    }

    #[test]
    fn ivf_parsing_refuses_garbage() {
        assert!(parse_ivf(b"nonsense").is_err());
        let mut ivf = b"DKIF".to_vec();
        ivf.extend_from_slice(&[0, 0, 32, 0]);
        ivf.resize(32, 0);
        assert!(parse_ivf(&ivf).is_err(), "no frames");
        ivf.extend_from_slice(&3u32.to_le_bytes());
        ivf.extend_from_slice(&0u64.to_le_bytes());
        ivf.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_ivf(&ivf).unwrap().len(), 1);
        ivf.extend_from_slice(&9u32.to_le_bytes());
        ivf.extend_from_slice(&0u64.to_le_bytes());
        assert!(parse_ivf(&ivf).is_err(), "truncated frame");
    }
}
