//! An interceptor that lets subscribers' keyframe requests reach the room.
//!
//! webrtc-rs ends the inbound RTCP path at a terminus: control packets are consumed by the
//! interceptors (reports, NACK) and never reach the application unless an interceptor marks
//! them. An SFU must see a subscriber's PLI or FIR to relay it to the publisher, so this one
//! marks exactly those compound packets for delivery and passes everything else through as is.
//! On the way it counts the NACKs subscribers send, for `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use crate::counters::MediaCounters;
use crate::read_hook::{ReadHook, ReadSide};

/// Marks inbound RTCP carrying a PLI or FIR with [`Attribute::DeliverToApplication`].
pub(crate) struct KeyframeRequestsToApplication {
    counters: Arc<MediaCounters>,
}

impl KeyframeRequestsToApplication {
    /// The interceptor, counting into `counters`.
    pub(crate) fn interceptor(counters: Arc<MediaCounters>) -> ReadSide<Self> {
        ReadSide::new(Self::new(counters))
    }

    /// The hook alone, to share one interceptor with another hook (see [`ReadSide`]).
    pub(crate) fn new(counters: Arc<MediaCounters>) -> Self {
        KeyframeRequestsToApplication { counters }
    }
}

fn asks_for_keyframe(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets.iter().any(|p| {
        let any = p.as_any();
        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
    })
}

impl ReadHook for KeyframeRequestsToApplication {
    fn on_read(&mut self, mut msg: TaggedPacket) -> Option<TaggedPacket> {
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
        Some(msg)
    }
}
