//! An interceptor that lets subscribers' keyframe requests reach the room.
//!
//! webrtc-rs ends the inbound RTCP path at a terminus: control packets are consumed by the
//! interceptors (reports, NACK) and never reach the application unless an interceptor marks
//! them. An SFU must see a subscriber's PLI or FIR to relay it to the publisher, so this one
//! marks exactly those compound packets for delivery and passes everything else through as is.
//! On the way it counts the NACKs subscribers send, for `/metrics`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;

use crate::counters::MediaCounters;

/// Marks inbound RTCP carrying a PLI or FIR with [`Attribute::DeliverToApplication`].
pub(crate) struct KeyframeRequestsToApplication {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
    counters: Arc<MediaCounters>,
}

impl KeyframeRequestsToApplication {
    pub(crate) fn new(counters: Arc<MediaCounters>) -> Self {
        Self {
            reads: VecDeque::new(),
            writes: VecDeque::new(),
            counters,
        }
    }
}

fn asks_for_keyframe(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets.iter().any(|p| {
        let any = p.as_any();
        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
    })
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApplication {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let nacks = packets
                .iter()
                .filter(|p| p.as_any().is::<TransportLayerNack>())
                .count();
            if nacks > 0 {
                self.counters
                    .nacks_received
                    .fetch_add(nacks as u64, Ordering::Relaxed);
            }
        }
        if let Packet::Rtcp(packets) = &msg.message.packet
            && asks_for_keyframe(packets)
            && !msg.message.has(&Attribute::DeliverToApplication)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
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

impl Interceptor for KeyframeRequestsToApplication {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
