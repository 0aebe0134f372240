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

/// Two hooks in one interceptor: the first sees each packet, then the second sees what the
/// first passed on. Every interceptor costs each packet written through the chain a move in and
/// out of its queues, whatever it does with reads, so read-only hooks share one.
impl<A: ReadHook, B: ReadHook> ReadHook for (A, B) {
    fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
        self.0.on_read(msg).and_then(|msg| self.1.on_read(msg))
    }

    fn forget_local(&mut self, ssrc: u32) {
        self.0.forget_local(ssrc);
        self.1.forget_local(ssrc);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet};
    use rtc::shared::TransportContext;

    /// Counts what it sees and what it is told to forget; drops packets when `drop` is set.
    #[derive(Default)]
    struct Probe {
        seen: usize,
        forgotten: Vec<u32>,
        drop: bool,
    }

    impl ReadHook for Probe {
        fn on_read(&mut self, msg: TaggedPacket) -> Option<TaggedPacket> {
            self.seen += 1;
            (!self.drop).then_some(msg)
        }
        fn forget_local(&mut self, ssrc: u32) {
            self.forgotten.push(ssrc);
        }
    }

    fn packet() -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet::default())),
        }
    }

    #[test]
    fn a_pair_of_hooks_reads_in_order_and_stops_where_the_first_drops() {
        let mut side = ReadSide::new((Probe::default(), Probe::default()));
        side.handle_read(packet()).unwrap();
        assert!(side.poll_read().is_some(), "both hooks passed it on");
        assert_eq!((side.hook.0.seen, side.hook.1.seen), (1, 1));

        side.hook.0.drop = true;
        side.handle_read(packet()).unwrap();
        assert!(side.poll_read().is_none(), "the first hook dropped it");
        assert_eq!(
            (side.hook.0.seen, side.hook.1.seen),
            (2, 1),
            "the second never saw it"
        );

        side.handle_write(packet()).unwrap();
        assert!(side.poll_write().is_some(), "writes pass through untouched");

        side.hook.forget_local(7);
        assert_eq!(side.hook.0.forgotten, [7]);
        assert_eq!(side.hook.1.forgotten, [7]);
    }
}
