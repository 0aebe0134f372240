//! The Switchyard load tester: simulated participants (webrtc-rs, through [`client::Client`])
//! that run one scenario against Switchyard, or against Janus (VideoRoom) through a local
//! signaling [`bridge`], and report join times, loss, jitter, forwarding latency, the
//! server's CPU time per forwarded packet and, with simulcast and receivers' tile sizes, the
//! layer each receiver got. It never starts or stops the server it loads: Switchyard
//! or Janus must already be running.

pub mod bridge;
pub mod downlink;
pub mod janus;
pub mod media;
pub mod participant;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulcast;
pub mod stats;
pub mod tiles;
pub mod usage;
pub mod vp8;
