//! A Rust client for Switchyard: the public signaling protocol over WebSocket plus two webrtc-rs
//! (`rtc`, sans-IO) peer connections, as a browser would use them.
//!
//! Used by the integration tests, and meant for the load tester and the recorder: it can
//! publish synthetic audio and video RTP (video as one stream or as simulcast layers `q`, `h`,
//! `f`, answering the SFU's keyframe requests per layer), receives every track it is offered
//! without decoding it, and reports what it sees as [`ClientEvent`]s. It also sends raw frames on request, so
//! tests can play a misbehaving client.
//!
//! This file only declares the modules and re-exports the public API: no logic here.

mod arrival;
mod client;
mod codecs;
mod command;
mod engine;
mod error;
mod event;
mod keyframe_requests;
pub mod media;
mod outgoing;
mod peer;

pub use client::Client;
pub use error::ClientError;
pub use event::ClientEvent;
