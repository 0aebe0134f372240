//! The Switchyard load tester: simulated participants (webrtc-rs, through [`client::Client`])
//! that run one scenario against Switchyard, or against Janus (VideoRoom) through a local
//! signaling [`bridge`], and report join times, loss, jitter, forwarding latency and the
//! server's CPU time per forwarded packet. It never starts or stops the server it loads: Switchyard
//! or Janus must already be running.

pub mod bridge;
pub mod janus;
pub mod media;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod usage;
