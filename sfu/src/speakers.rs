//! Active speaker detection from the RFC 6464 audio levels that publishers put on their packets:
//! who is speaking now, loudest first, reported only when that list changes.
//! Plain state with no I/O and no clock of its own (`now` is passed in); observing a sample is
//! O(1) and never allocates once a participant is known; it never decodes audio.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The RFC 6464 value of silence (-127 dBov).
const SILENT: u8 = 127;

/// Tuning of [`Speakers`]; `Default` gives the values its documentation names.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerParams {
    /// A sample with the voice-activity bit is loud at or below this RFC 6464 value (50).
    pub voice_level: u8,
    /// A sample without the bit is loud at or below this value (40).
    pub bare_level: u8,
    /// Loud samples needed before a participant counts as speaking (3).
    pub min_loud_samples: u32,
    /// Quiet time after which a participant stops speaking (700 ms).
    pub hangover: Duration,
    /// Weight of a new loud sample in the level's moving average (0.2).
    pub smoothing: f32,
    /// How much louder a speaker must be to move ahead of the one before it (1.5).
    pub reorder_margin: f32,
}

impl Default for SpeakerParams {
    fn default() -> Self {
        SpeakerParams {
            voice_level: 50,
            bare_level: 40,
            min_loud_samples: 3,
            hangover: Duration::from_millis(700),
            smoothing: 0.2,
            reorder_margin: 1.5,
        }
    }
}

/// What is known of one participant's voice.
#[derive(Debug, Clone, Copy)]
struct Voice {
    /// When its latest loud sample came; `None` before the first.
    last_loud: Option<Instant>,
    /// Loud samples in the current stretch (no gap longer than the hangover).
    loud_samples: u32,
    /// Smoothed linear amplitude of those samples.
    level: f32,
}

impl Voice {
    fn speaking(&self, now: Instant, params: &SpeakerParams) -> bool {
        self.loud_samples >= params.min_loud_samples
            && self
                .last_loud
                .is_some_and(|t| now.saturating_duration_since(t) <= params.hangover)
    }
}

/// The active speakers of one room. Keys are the room's participant keys.
///
/// # How it decides
///
/// A sample is *loud* when its level is at least `-50 dBov` (RFC 6464 value <= 50) with the
/// voice-activity bit set, or at least `-40 dBov` without it (the bit is a hint that not every
/// sender sets; a tone may lack it). A participant is speaking once it has sent 3 loud samples
/// with no gap of more than 700 ms between them, and stops 700 ms after its last loud one.
///
/// * Speech (50 packets a second, -20 to -40 dBov) is detected after 3 packets (60 ms), well
///   within 300 ms once the room's 50-100 ms tick is added.
/// * Chromium's fake microphone beeps for 20 ms every 500 ms (a square wave, about -6 dBov) and
///   sends digital silence (127) in between: it is a speaker from its second or third beep on,
///   and stays one; the 700 ms hangover is "about 500 ms of quiet" plus a margin over that gap.
/// * A muted track (Chromium sends level 127), background noise below -50 dBov and a lone click
///   (one or two loud packets) never make a speaker.
///
/// The level reported (0 to 1, linear amplitude) is an exponential moving average of the loud
/// samples of the current stretch of speech (factor 0.2 per sample: ~100 ms at 50 packets a
/// second). The order is sticky: a speaker moves ahead of the one before it only when 1.5 times
/// (3.5 dB) louder, so two voices of similar loudness do not swap places on every tick; level
/// changes alone are never reported.
#[derive(Debug)]
pub struct Speakers {
    params: SpeakerParams,
    /// Linear amplitude of each RFC 6464 value: 10^(-value/20).
    amplitude: [f32; 128],
    voices: HashMap<u64, Voice>,
    /// The speakers as of the last tick, in reported order, with their levels.
    current: Vec<(u64, f32)>,
    /// The list being built by a tick (kept to reuse its memory).
    next: Vec<(u64, f32)>,
    /// `current` lost a member outside a tick: the next tick reports.
    dirty: bool,
}

impl Speakers {
    /// A detector with nobody speaking.
    pub fn new(params: SpeakerParams) -> Self {
        let mut amplitude = [0.0f32; 128];
        for (value, a) in (0u8..).zip(amplitude.iter_mut()) {
            *a = 10f32.powf(-f32::from(value) / 20.0);
        }
        Speakers {
            params,
            amplitude,
            voices: HashMap::new(),
            current: Vec::new(),
            next: Vec::new(),
            dirty: false,
        }
    }

    /// One audio packet's level from `key`: the RFC 6464 value (0 loudest, 127 silence; larger
    /// values are taken as silence) and its voice-activity bit. O(1); no allocation once `key`
    /// is known.
    pub fn observe(&mut self, key: u64, level: u8, voice: bool, now: Instant) {
        let level = level.min(SILENT);
        let threshold = if voice {
            self.params.voice_level
        } else {
            self.params.bare_level
        };
        let entry = self.voices.entry(key).or_insert(Voice {
            last_loud: None,
            loud_samples: 0,
            level: 0.0,
        });
        if level > threshold {
            return;
        }
        let amplitude = self.amplitude[usize::from(level)];
        let hangover = self.params.hangover;
        let continues = entry
            .last_loud
            .is_some_and(|t| now.saturating_duration_since(t) <= hangover);
        if continues {
            entry.loud_samples = entry.loud_samples.saturating_add(1);
            entry.level += (amplitude - entry.level) * self.params.smoothing;
        } else {
            entry.loud_samples = 1;
            entry.level = amplitude;
        }
        entry.last_loud = Some(entry.last_loud.map_or(now, |t| t.max(now)));
    }

    /// Re-evaluates who speaks; returns the new list (loudest first, levels 0 to 1) only when
    /// its members or their order changed since the previous tick. Call every 50-100 ms.
    pub fn tick(&mut self, now: Instant) -> Option<Vec<(u64, f32)>> {
        let params = &self.params;
        let mut next = std::mem::take(&mut self.next);
        next.clear();
        // Those still speaking keep their places; newcomers follow, loudest first.
        for &(key, _) in &self.current {
            if let Some(v) = self.voices.get(&key).filter(|v| v.speaking(now, params)) {
                next.push((key, v.level));
            }
        }
        let kept = next.len();
        for (&key, v) in &self.voices {
            if v.speaking(now, params) && !self.current.iter().any(|&(k, _)| k == key) {
                next.push((key, v.level));
            }
        }
        if let Some(newcomers) = next.get_mut(kept..) {
            newcomers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        // Each swap puts a clearly louder speaker first and can never be undone by another, so
        // this ends after at most n*(n-1)/2 swaps.
        let margin = params.reorder_margin.max(1.0);
        let mut swapped = true;
        while swapped {
            swapped = false;
            for i in 1..next.len() {
                if next[i].1 > next[i - 1].1 * margin {
                    next.swap(i, i - 1);
                    swapped = true;
                }
            }
        }

        let changed = self.dirty
            || next.len() != self.current.len()
            || next.iter().zip(&self.current).any(|(a, b)| a.0 != b.0);
        self.dirty = false;
        self.next = std::mem::replace(&mut self.current, next);
        changed.then(|| self.current.clone())
    }

    /// Forgets a participant that left; the next tick reports it gone if it was speaking.
    pub fn remove(&mut self, key: u64) {
        self.voices.remove(&key);
        let before = self.current.len();
        self.current.retain(|&(k, _)| k != key);
        self.dirty |= self.current.len() != before;
    }

    /// The speakers as of the last tick, loudest first, with their levels then.
    pub fn current(&self) -> &[(u64, f32)] {
        &self.current
    }
}

#[cfg(test)]
#[path = "speakers/tests.rs"]
mod tests;
