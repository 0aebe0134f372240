//! One participant's video decoder: an ffmpeg process that reads the participant's frames
//! (IVF or H.264 Annex B) on stdin and writes every decoded picture, scaled and letterboxed to
//! the tile size, as raw YUV 4:2:0 on stdout. A reader thread keeps the latest picture. Feeding it
//! never blocks the caller: frames beyond a full queue are dropped.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use crate::compositor::{Canvas, PictureSlot};
use crate::frames::VideoCodec;

/// Frames waiting for the decoder (a third of a second at 30 fps); beyond this the decoder is
/// behind and frames are dropped, so a slow moment never delays the picture by more.
const INPUT_QUEUE: usize = 10;

pub struct Decoder {
    codec: VideoCodec,
    child: Child,
    input: Option<SyncSender<Vec<u8>>>,
}

impl Decoder {
    /// Starts ffmpeg for `codec`; its pictures, at `canvas`'s tile size, land in `slot`.
    pub fn start(
        ffmpeg: &Path,
        codec: VideoCodec,
        slot: PictureSlot,
        canvas: Canvas,
    ) -> std::io::Result<Decoder> {
        let (tile_width, tile_height) = canvas.tile();
        let filter = format!(
            "scale={tile_width}:{tile_height}:force_original_aspect_ratio=decrease:flags=fast_bilinear,\
             pad={tile_width}:{tile_height}:(ow-iw)/2:(oh-ih)/2,format=yuv420p"
        );
        let mut child = Command::new(ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-nostats"])
            .args(["-probesize", codec.probe_size(), "-analyzeduration", "0"])
            // One decoding thread: frame threads would hold a picture back per extra thread.
            .args(["-threads", "1", "-flags", "low_delay"])
            .args(["-fflags", "nobuffer"])
            .args(["-f", codec.ffmpeg_format(), "-i", "pipe:0"])
            .args(["-an", "-vf", &filter, "-fps_mode", "passthrough"])
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(stderr) = child.stderr.take() {
            std::thread::Builder::new()
                .name("decoder-log".into())
                .spawn(move || {
                    use std::io::BufRead;
                    for line in std::io::BufReader::new(stderr)
                        .lines()
                        .map_while(Result::ok)
                    {
                        tracing::debug!(?codec, "video decoder: {line}");
                    }
                })?;
        }
        tracing::info!(?codec, "video decoder started");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (input, frames) = sync_channel::<Vec<u8>>(INPUT_QUEUE);
        let header = codec.stream_header();
        std::thread::Builder::new()
            .name("decoder-input".into())
            .spawn(move || {
                if !header.is_empty() && stdin.write_all(&header).is_err() {
                    return;
                }
                for frame in frames {
                    if stdin.write_all(&frame).is_err() {
                        return;
                    }
                }
            })?;
        std::thread::Builder::new()
            .name("decoder-output".into())
            .spawn(move || {
                let mut picture = vec![0; canvas.tile_bytes()];
                let mut pictures = 0u64;
                while stdout.read_exact(&mut picture).is_ok() {
                    pictures += 1;
                    if pictures == 1 {
                        tracing::debug!("first picture decoded");
                    }
                    // Hand the filled buffer over and read the next picture into a new one.
                    let done = Arc::new(std::mem::replace(
                        &mut picture,
                        vec![0; canvas.tile_bytes()],
                    ));
                    if let Ok(mut latest) = slot.lock() {
                        *latest = Some(done);
                    }
                }
            })?;
        Ok(Decoder {
            codec,
            child,
            input: Some(input),
        })
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The ffmpeg process id (for resource accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Queues one frame record (see [`VideoCodec::frame_record`]); `false` once the decoder
    /// has gone away.
    pub fn decode(&mut self, record: Vec<u8>) -> bool {
        let Some(input) = &self.input else {
            return false;
        };
        match input.try_send(record) {
            Ok(()) | Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => {
                self.input = None;
                false
            }
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.input = None; // EOF on stdin ends ffmpeg
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
