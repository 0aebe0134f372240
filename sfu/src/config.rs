//! The media plane's settings and their defaults. Plain data: validating a user's configuration
//! file is the server binary's job, not this one's.

use std::net::IpAddr;
use std::time::Duration;

/// Settings of the media plane.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The one UDP port every peer connection uses (0 picks a free one, for tests).
    pub rtc_port: u16,
    /// The address announced in ICE candidates. `None`: every local IPv4 address.
    pub announce_ip: Option<IpAddr>,
    /// How long a room stays open after its last participant left.
    pub empty_room_timeout: Duration,
    /// Largest number of visible participants in one room.
    pub max_participants: usize,
    /// Least time between two keyframe requests (PLI) to one publisher's track.
    pub keyframe_request_interval: Duration,
    /// Largest data-channel message relayed (header included).
    pub max_data_message: usize,
    /// Most bytes queued at the SFU for one recipient's data channel; a reliable message that
    /// would go over is not delivered to that recipient, and both ends are told.
    pub max_queued_data: usize,
    /// How long a recipient may stay above half its queue bound, holding its senders back,
    /// before it counts as slow and stops holding them. Long enough to ride out SCTP
    /// retransmission timeouts (at least 1 s each, doubling): one lost packet must not turn a
    /// healthy recipient into a slow one.
    pub slow_recipient_grace: Duration,
    /// Video codecs publishers may send (`vp8`, `vp9`, `h264`); empty: every one we support.
    pub video_codecs: Vec<String>,
    /// In a cluster: most visible participants of one room this node serves; more make the
    /// room span another node. `None`: no limit of its own (a single server).
    pub room_participants_per_node: Option<usize>,
    /// Whether a join opens a room that is not open yet. `false`: rooms are opened only with
    /// [`crate::Sfu::create_room`] (the admin API's `POST /api/rooms`), and a join to any other
    /// room is refused.
    pub auto_create_rooms: bool,
    /// Subscriptions of one track from which each of its packets is written to them on all
    /// cores at once (see `fanout`); smaller fan-outs stay on the room's own thread.
    pub parallel_fanout: usize,
}

/// [`SfuConfig::parallel_fanout`] by default: measured on 2 cores, sharing a 1 → 300 fan-out
/// cut its p99 latency by a fifth for 3 % more CPU, and a 1 → 100 one gained nothing for 16 %
/// more (BENCHMARKS.md, "Big rooms on every core").
pub const DEFAULT_PARALLEL_FANOUT: usize = 128;

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            rtc_port: 7882,
            announce_ip: None,
            empty_room_timeout: Duration::from_secs(20),
            max_participants: 50,
            keyframe_request_interval: Duration::from_secs(1),
            max_data_message: 255 * 1024,
            max_queued_data: 4 * 1024 * 1024,
            slow_recipient_grace: Duration::from_secs(5),
            video_codecs: Vec::new(),
            room_participants_per_node: None,
            auto_create_rooms: true,
            parallel_fanout: DEFAULT_PARALLEL_FANOUT,
        }
    }
}
