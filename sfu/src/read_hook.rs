//! An interceptor made from a hook on the read leg: what the SFU needs to see or trim in the
//! packets arriving on a connection (keyframe requests, NACKs) is written as a [`ReadHook`],
//! and [`ReadSide`] does the engine's plumbing. It passes the write leg through untouched.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

/// What an interceptor does with each inbound packet.
pub(crate) trait ReadHook: Send + Sync {
    /// The packet to pass on (changed or not), or `None` to drop it.
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket>;

    /// A stream we sent on ended (its SSRC will not be asked about again).
    fn forget_local(&mut self, _ssrc: u32) {}
}

/// A [`ReadHook`] as an interceptor.
pub(crate) struct ReadSide<H> {
    hook: H,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl<H: ReadHook> ReadSide<H> {
    pub(crate) fn new(hook: H) -> Self {
        ReadSide {
            hook,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }
}

impl<H: ReadHook> Protocol<TaggedPacket, TaggedPacket, ()> for ReadSide<H> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(msg) = self.hook.on_read(msg) {
            self.reads.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl<H: ReadHook> Interceptor for ReadSide<H> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.hook.forget_local(info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
