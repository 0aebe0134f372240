//! The Switchyard load tester: simulated participants that run one scenario against
//! Switchyard or against Janus (VideoRoom) to compare their CPU cost and latency.

pub mod janus;
