//! The audio mix: every participant's Opus packets decoded (libopus through the `opus` crate)
//! to 48 kHz mono, queued per participant, and summed 20 ms at a time. It does no I/O and never
//! waits for a late participant: a queue that runs dry is mixed as silence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Output sample rate and the mixer's step (20 ms).
pub const SAMPLE_RATE: usize = 48_000;
pub const FRAME_SAMPLES: usize = SAMPLE_RATE / 50;
/// A participant's queue starts playing once it holds this much (absorbs network jitter)...
const PREBUFFER: usize = FRAME_SAMPLES * 3;
/// ...and is trimmed back when it holds more than this (a burst or a stalled mixer).
const MAX_QUEUED: usize = FRAME_SAMPLES * 15;
/// Longest Opus frame (120 ms).
const MAX_FRAME: usize = SAMPLE_RATE * 120 / 1000;

#[derive(Default)]
struct Queue {
    samples: VecDeque<i16>,
    playing: bool,
}

/// Decoded audio waiting to be mixed, shared by the receiving loop and the mixer thread.
#[derive(Clone, Default)]
pub struct Mix {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
}

impl Mix {
    fn push(&self, participant: &str, samples: &[i16]) {
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        let queue = queues.entry(participant.to_owned()).or_default();
        queue.samples.extend(samples);
        if queue.samples.len() > MAX_QUEUED {
            let excess = queue.samples.len() - PREBUFFER;
            queue.samples.drain(..excess);
        }
    }

    /// Forgets a participant who left.
    pub fn remove(&self, participant: &str) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.remove(participant);
        }
    }

    /// Sums the next 20 ms of every participant into `out` (saturating). A participant whose
    /// queue ran dry is silent until it has refilled its prebuffer.
    pub fn mix_into(&self, out: &mut [i32; FRAME_SAMPLES]) {
        out.fill(0);
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        for queue in queues.values_mut() {
            if !queue.playing {
                if queue.samples.len() < PREBUFFER {
                    continue;
                }
                queue.playing = true;
            }
            let take = queue.samples.len().min(FRAME_SAMPLES);
            for (sum, sample) in out.iter_mut().zip(queue.samples.drain(..take)) {
                *sum += i32::from(sample);
            }
            if take < FRAME_SAMPLES {
                queue.playing = false;
            }
        }
    }
}

/// Turns a mixed frame into 16-bit little-endian PCM bytes.
pub fn to_pcm(mixed: &[i32; FRAME_SAMPLES], bytes: &mut Vec<u8>) {
    bytes.clear();
    for &sample in mixed {
        let clamped = sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        bytes.extend_from_slice(&clamped.to_le_bytes());
    }
}

/// Decodes the Opus tracks of the room into a [`Mix`].
pub struct AudioDecoders {
    mix: Mix,
    decoders: HashMap<String, opus::Decoder>,
    pcm: Vec<i16>,
}

impl AudioDecoders {
    pub fn new(mix: Mix) -> AudioDecoders {
        AudioDecoders {
            mix,
            decoders: HashMap::new(),
            pcm: vec![0; MAX_FRAME],
        }
    }

    /// Decodes one Opus packet of `participant`; a packet libopus refuses is skipped.
    pub fn decode(&mut self, participant: &str, packet: &[u8]) {
        if !self.decoders.contains_key(participant) {
            match opus::Decoder::new(SAMPLE_RATE as u32, opus::Channels::Mono) {
                Ok(decoder) => {
                    self.decoders.insert(participant.to_owned(), decoder);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot create an Opus decoder");
                    return;
                }
            }
        }
        let Some(decoder) = self.decoders.get_mut(participant) else {
            return;
        };
        match decoder.decode(packet, &mut self.pcm, false) {
            Ok(samples) => self.mix.push(participant, &self.pcm[..samples]),
            Err(error) => tracing::debug!(%error, participant, "undecodable Opus packet"),
        }
    }

    pub fn remove(&mut self, participant: &str) {
        self.decoders.remove(participant);
        self.mix.remove(participant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_after_the_prebuffer_and_saturates() {
        let mix = Mix::default();
        let mut out = [0; FRAME_SAMPLES];
        mix.push("a", &[1000; FRAME_SAMPLES * 2]);
        mix.mix_into(&mut out);
        assert_eq!(out[0], 0, "still prebuffering");
        mix.push("a", &[1000; FRAME_SAMPLES]);
        mix.push("b", &[i16::MAX; FRAME_SAMPLES * 3]);
        mix.mix_into(&mut out);
        assert_eq!(out[0], 1000 + i32::from(i16::MAX));
        let mut pcm = Vec::new();
        to_pcm(&out, &mut pcm);
        assert_eq!(&pcm[..2], &i16::MAX.to_le_bytes());
    }

    #[test]
    fn decodes_opus_from_libopus() {
        let mut encoder =
            opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let tone: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
            .collect();
        let packet = encoder.encode_vec(&tone, 4000).unwrap();
        let mix = Mix::default();
        let mut decoders = AudioDecoders::new(mix.clone());
        for _ in 0..3 {
            decoders.decode("a", &packet);
        }
        let mut out = [0; FRAME_SAMPLES];
        mix.mix_into(&mut out);
        assert!(out.iter().any(|&s| s.abs() > 1000), "the tone comes out");
    }
}
