//! The load tester's media. Video is a VP8 clip encoded once by ffmpeg at the target size and
//! bitrate (with a keyframe every 2 s, and another whenever the SFU asks), looped with
//! continuous RTP timestamps and split into RTP payloads as a browser would. Audio is a tone encoded by libopus (the `opus` crate) in 20 ms
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

/// What a clip is encoded as: picture size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
}

/// A VP8 clip: its frames in decoding order, and which of them are keyframes.
pub struct Clip {
    frames: Vec<Bytes>,
    /// Indices of the keyframes, ascending; the first frame is one.
    keyframes: Vec<usize>,
}

impl Clip {
    /// Encodes (once; cached in `cache`) a clip as `spec` says and loads it.
    pub fn prepare(spec: ClipSpec, cache: &Path) -> Result<Clip, MediaError> {
        let ClipSpec {
            width,
            height,
            kbps,
        } = spec;
        let path = cache.join(format!("clip-vp8-{width}x{height}-{kbps}k.ivf"));
        if !path.is_file() {
            std::fs::create_dir_all(cache).map_err(|e| MediaError::Clip {
                path: cache.to_owned(),
                reason: e.to_string(),
            })?;
            let partial = path.with_extension("partial.ivf");
            let bitrate = format!("{kbps}k");
            let output = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!(
                    "testsrc2=size={width}x{height}:rate={FPS},format=yuv420p"
                ))
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
        let clip = parse_ivf(&bytes).and_then(Clip::from_frames);
        clip.map_err(|reason| MediaError::Clip { path, reason })
    }

    /// A clip of these VP8 frames; the first must be a keyframe (the loop starts there).
    fn from_frames(frames: Vec<Bytes>) -> Result<Clip, String> {
        let keyframes: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| crate::vp8::is_keyframe(f))
            .map(|(i, _)| i)
            .collect();
        if keyframes.first() != Some(&0) {
            return Err("the clip does not start with a keyframe".into());
        }
        Ok(Clip { frames, keyframes })
    }

    /// Average payload bitrate of the clip, in kbit/s.
    pub fn bitrate_kbps(&self) -> f64 {
        let bytes: usize = self.frames.iter().map(Bytes::len).sum();
        bytes as f64 * 8.0 / (self.frames.len() as f64 / f64::from(FPS)) / 1000.0
    }

    /// The last keyframe at or before frame `index`.
    fn keyframe_at_or_before(&self, index: usize) -> usize {
        let after = self.keyframes.partition_point(|&k| k <= index);
        self.keyframes[after.saturating_sub(1)]
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

/// Plays a [`Clip`] in a loop as VP8 RTP payloads, from its first keyframe. A keyframe request
/// makes the next frame a keyframe: playback jumps back to the clip's last keyframe (RTP
/// timestamps and picture ids run on).
pub struct ClipSource {
    clip: Arc<Clip>,
    /// Index of the next frame in the clip.
    position: usize,
    /// Frames sent so far (the RTP timestamp counts these).
    sent: u64,
    picture_id: u16,
    keyframe_wanted: bool,
    next: Instant,
}

impl ClipSource {
    pub fn new(clip: Arc<Clip>, now: Instant) -> ClipSource {
        ClipSource {
            clip,
            position: 0,
            sent: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
            keyframe_wanted: false,
            next: now,
        }
    }
}

impl MediaSource for ClipSource {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        let interval = Duration::from_secs(1) / FPS;
        while self.next <= now {
            if std::mem::take(&mut self.keyframe_wanted) {
                self.position = self.clip.keyframe_at_or_before(self.position);
            }
            let frame = &self.clip.frames[self.position];
            let timestamp = (self.sent * u64::from(90_000 / FPS)) as u32;
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
            self.position = (self.position + 1) % self.clip.frames.len();
            self.sent += 1;
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

    /// A clip of `n` one-byte frames with keyframes (frame tag bit 0 clear) at `keys`.
    fn clip(n: usize, keys: &[usize]) -> Result<Clip, String> {
        let frames = (0..n)
            .map(|i| Bytes::from(vec![if keys.contains(&i) { 0x00 } else { 0x01 }]))
            .collect();
        Clip::from_frames(frames)
    }

    #[test]
    fn a_keyframe_request_replays_from_the_last_keyframe() {
        let clip = Arc::new(clip(6, &[0, 3]).unwrap());
        let start = Instant::now();
        let mut source = ClipSource::new(Arc::clone(&clip), start);
        let frame = Duration::from_secs(1) / FPS;
        let mut out = Vec::new();
        // Frames 0..=4 go out; the next would be frame 5, a delta frame.
        source.poll(start + frame * 4, &mut out);
        assert_eq!(out.len(), 5);
        source.request_keyframe();
        out.clear();
        source.poll(start + frame * 5, &mut out);
        // The descriptor is 4 bytes; the frame's tag follows.
        assert_eq!(out[0].payload[4], 0x00, "a keyframe (frame 3) goes out");
        assert_eq!(out[0].timestamp, 5 * 90_000 / FPS, "time runs on");
        out.clear();
        source.poll(start + frame * 6, &mut out);
        assert_eq!(out[0].payload[4], 0x01, "then frame 4");
        assert!(clip_refused_without_leading_keyframe());
    }

    fn clip_refused_without_leading_keyframe() -> bool {
        clip(3, &[1]).is_err()
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
