//! Live broadcast of a room to any number of viewers: adaptive-bitrate low-latency HLS made by
//! the sidecar in broadcast mode, packaged and served from memory by this server
//! (`docs/broadcast.md`). This file only declares the parts and re-exports their public items;
//! it holds no logic.

pub(crate) mod api;
pub(crate) mod playlist;
pub(crate) mod serve;
pub(crate) mod stream;
pub(crate) mod supervisor;

pub use supervisor::{BroadcastError, Broadcasts};
