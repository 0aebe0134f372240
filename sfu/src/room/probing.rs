//! The room's side of downlink probing: writes the padding each receiver's prober asks for
//! into its video down-tracks, between frames. It decides nothing (the receiver's `Prober`
//! does) and never touches a media packet.

use std::time::{Duration, Instant};

use protocol::TrackKind;

use super::Room;

/// How often padding is written while a receiver is being probed (small bursts, not one per
/// allocation).
const PROBE_TICK: Duration = Duration::from_millis(10);

impl Room {
    /// Writes the padding due to each receiver being probed.
    pub(super) fn send_probe_padding(&mut self, now: Instant) {
        for (key, p) in self.participants.iter_mut() {
            let due = p.downlink.prober.due(now, &p.downlink.estimate);
            if due == 0 || !p.subscriber.connected {
                continue;
            }
            let mut sent = 0;
            let video = self
                .router
                .publications_mut()
                .filter(|publication| publication.kind == TrackKind::Video);
            'tracks: for publication in video {
                for s in publication.subscriptions.iter_mut() {
                    if s.subscriber != *key {
                        continue;
                    }
                    while sent < due && s.send_padding(p.subscriber.pc(), now) {
                        sent += 1;
                    }
                    if sent == due {
                        break 'tracks;
                    }
                }
            }
            if sent > 0 {
                self.counts.padding_packets_sent += sent as u64;
                p.subscriber.flush_and_reschedule(&mut self.outgoing);
            }
        }
    }

    /// The next padding tick, while some receiver is being probed.
    pub(super) fn probe_deadline(&self) -> Option<Instant> {
        self.participants
            .values()
            .any(|p| p.downlink.prober.probing())
            .then(|| Instant::now() + PROBE_TICK)
    }
}
