//! The data-channel relay: messages a participant sends on its `reliable` or `lossy` channel
//! go to the room, or to chosen participants, over each recipient's channel of the same kind.
//!
//! The SFU writes the sender's identity into every delivered header, so it cannot be forged.
//! Memory is bounded per recipient: a message that would push a recipient's queue over
//! `max_queued_data` is not delivered to that recipient. A lossy message is simply dropped; a
//! reliable one gets a `recipient_overflow` error frame to both ends, so no reliable message
//! vanishes silently, and a slow recipient never holds back the fast ones. It never blocks and
//! never sends on a socket: frames go into the room's outgoing batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use protocol::data::{
    DataError, DataErrorCode, DeliveredHeader, ErrorHeader, SendHeader, encode_frame, split_frame,
};
use rtc::data_channel::RTCDataChannelId;
use rtc::data_channel::RTCDataChannelMessage;
use tracing::debug;

use crate::config::SfuConfig;
use crate::io::Outgoing;
use crate::router::Participants;
use crate::span::Span;

/// The key given as the sender of a message relayed from another node (no local participant
/// has it, so errors about it go nowhere and it is never held back).
const REMOTE_SENDER: u64 = u64::MAX;

/// A message some participants of other nodes must get: the frame as delivered, and the
/// nodes serving them.
pub(crate) struct ToOtherNodes {
    pub frame: BytesMut,
    pub reliable: bool,
    pub nodes: Vec<std::sync::Arc<str>>,
}

/// Room kept free in every recipient's queue for the one overflow notice it may need.
const NOTICE_RESERVE: usize = 1024;

/// The relay at work on one room's participants, for one input.
pub(crate) struct DataRelay<'a> {
    /// The other nodes of the room and the participants they serve.
    pub span: &'a Span,
    pub participants: &'a mut Participants,
    pub outgoing: &'a mut Outgoing,
    pub config: &'a SfuConfig,
    /// The largest number of bytes seen queued for one recipient (a gauge the SFU shares).
    pub queue_peak: &'a AtomicUsize,
    /// Whether some sender's messages are being left unread for a congested recipient; spares
    /// the per-datagram path a scan of the room when none is.
    pub senders_held: &'a mut bool,
}

impl DataRelay<'_> {
    /// Relays one message a participant sent on one of its channels. Returns what must go to
    /// other nodes serving the room, if anything.
    pub(crate) fn relay(
        &mut self,
        sender: u64,
        channel: RTCDataChannelId,
        message: RTCDataChannelMessage,
        now: Instant,
    ) -> Option<ToOtherNodes> {
        let p = self.participants.get(&sender)?;
        let reliable = p.data.kind(channel)?;
        let (from, from_id) = (p.identity.clone(), p.id.to_string());
        let refuse = |relay: &mut DataRelay<'_>, code, text: String| {
            relay.data_error(sender, channel, code, text, None, None, now);
            None
        };
        if !p.grants.can_publish_data {
            return refuse(
                self,
                DataErrorCode::PermissionDenied,
                "your token does not grant canPublishData".into(),
            );
        }
        if message.is_string {
            return refuse(
                self,
                DataErrorCode::BadFrame,
                "send binary frames: 2-byte header length, JSON header, payload".into(),
            );
        }
        if message.data.len() > self.config.max_data_message {
            return refuse(
                self,
                DataErrorCode::TooLarge,
                format!(
                    "the message is {} bytes; at most {} are relayed",
                    message.data.len(),
                    self.config.max_data_message
                ),
            );
        }
        let (header, payload) = match split_frame(&message.data) {
            Ok(parts) => parts,
            Err(e) => return refuse(self, DataErrorCode::BadFrame, e.to_string()),
        };
        let raw: serde_json::Value = match serde_json::from_slice(header) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    self,
                    DataErrorCode::BadFrame,
                    format!("the header is not JSON: {e}"),
                );
            }
        };
        if raw.get("from").is_some() || raw.get("fromId").is_some() {
            return refuse(
                self,
                DataErrorCode::ForgedSender,
                "the header names a sender; the SFU stamps the sender itself".into(),
            );
        }
        let header: SendHeader = match serde_json::from_value(raw) {
            Ok(h) => h,
            Err(e) => return refuse(self, DataErrorCode::BadFrame, format!("bad header: {e}")),
        };
        if header
            .topic
            .as_ref()
            .is_some_and(|t| t.chars().count() > 64)
        {
            return refuse(
                self,
                DataErrorCode::BadFrame,
                "topic is limited to 64 characters".into(),
            );
        }

        let mut recipients = Vec::new();
        let mut unknown = Vec::new();
        let mut nodes: Vec<std::sync::Arc<str>> = Vec::new();
        if header.to.is_empty() {
            recipients.extend(self.participants.keys().copied().filter(|k| *k != sender));
            nodes.extend(self.span.peers.keys().cloned());
        } else {
            for identity in &header.to {
                match self
                    .participants
                    .iter()
                    .find(|(k, q)| **k != sender && q.identity == *identity)
                {
                    Some((k, _)) => recipients.push(*k),
                    None => match self.span.node_of_identity(identity) {
                        Some(node) if !nodes.contains(&node) => nodes.push(node),
                        Some(_) => {}
                        None => unknown.push(identity.clone()),
                    },
                }
            }
        }
        if !unknown.is_empty() {
            let _ = refuse(
                self,
                DataErrorCode::UnknownRecipient,
                format!("not in the room: {}", unknown.join(", ")),
            );
        }
        let frame = BytesMut::from(
            &encode_frame(
                &DeliveredHeader {
                    from: from.clone(),
                    from_id,
                    topic: header.topic,
                    to: header.to,
                },
                payload,
            )[..],
        );
        for recipient in recipients {
            self.deliver(sender, &from, channel, recipient, reliable, &frame, now);
        }
        (!nodes.is_empty()).then_some(ToOtherNodes {
            frame,
            reliable,
            nodes,
        })
    }

    /// Delivers a message a participant of another node sent (its header, written by that
    /// node, names the sender and the recipients) to the recipients this node serves.
    pub(crate) fn deliver_remote(&mut self, reliable: bool, frame: &[u8], now: Instant) {
        let Ok((header, _)) = split_frame(frame) else {
            return;
        };
        let Ok(header) = serde_json::from_slice::<DeliveredHeader>(header) else {
            return;
        };
        let recipients: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| header.to.is_empty() || header.to.contains(&p.identity))
            .map(|(k, _)| *k)
            .collect();
        let frame = BytesMut::from(frame);
        for recipient in recipients {
            self.deliver(
                REMOTE_SENDER,
                &header.from,
                0,
                recipient,
                reliable,
                &frame,
                now,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        sender: u64,
        from: &str,
        sender_channel: RTCDataChannelId,
        recipient: u64,
        reliable: bool,
        frame: &BytesMut,
        now: Instant,
    ) {
        let limit = self.config.max_queued_data;
        let Some(r) = self.participants.get_mut(&recipient) else {
            return;
        };
        let identity = r.identity.clone();
        let Some(channel) = r.data.get(reliable) else {
            if reliable {
                self.data_error(
                    sender,
                    sender_channel,
                    DataErrorCode::RecipientUnavailable,
                    format!("{identity} has no reliable data channel open"),
                    Some(identity),
                    None,
                    now,
                );
            }
            return;
        };
        let Some(mut dc) = r.publisher.pc().data_channel(channel) else {
            return;
        };
        let queued = dc.outstanding_bytes();
        if queued + frame.len() + NOTICE_RESERVE > limit {
            if reliable && !r.data.notified.contains(&sender) {
                r.data.notified.push(sender);
                let text = format!(
                    "{identity} is not keeping up ({queued} bytes queued); messages to it are \
                     being dropped"
                );
                self.data_error(
                    sender,
                    sender_channel,
                    DataErrorCode::RecipientOverflow,
                    text,
                    Some(identity),
                    None,
                    now,
                );
                let missed = format!("messages from {from} were dropped: you are not keeping up");
                if let Some(own) = self
                    .participants
                    .get(&recipient)
                    .and_then(|q| q.data.reliable)
                {
                    self.data_error(
                        recipient,
                        own,
                        DataErrorCode::RecipientOverflow,
                        missed,
                        None,
                        Some(from.to_owned()),
                        now,
                    );
                }
            }
            return;
        }
        if let Err(e) = dc.send(now, frame.clone()) {
            debug!(error = %e, "data channel send failed");
        }
        let queued_now = dc.outstanding_bytes();
        self.queue_peak.fetch_max(queued_now, Ordering::Relaxed);
        r.publisher.flush_and_reschedule(self.outgoing);
        if reliable && !r.data.slow && queued_now > limit / 2 {
            // Hold the sender back until this recipient catches up (or turns out to be slow).
            r.data.congested_since.get_or_insert(now);
            if let Some(s) = self.participants.get_mut(&sender) {
                s.data.paused = true;
                *self.senders_held = true;
            }
        }
    }

    /// Re-examines congested recipients: one that drained releases its senders, one that stayed
    /// congested past the grace period is marked slow and releases them too. Returns the senders
    /// released, whose unread messages the room must now read. Cheap when no sender is held back
    /// (one flag check per datagram).
    pub(crate) fn release_senders(&mut self, now: Instant) -> Vec<u64> {
        if !*self.senders_held {
            return Vec::new();
        }
        let limit = self.config.max_queued_data;
        let grace = self.config.slow_recipient_grace;
        let mut holding = false;
        for r in self.participants.values_mut() {
            let Some(channel) = r.data.reliable else {
                continue;
            };
            let queued = r
                .publisher
                .pc()
                .data_channel(channel)
                .map(|dc| dc.outstanding_bytes())
                .unwrap_or(0);
            if queued <= limit / 4 {
                r.data.congested_since = None;
                r.data.slow = false;
                r.data.notified.clear();
            } else if let Some(since) = r.data.congested_since {
                if now.duration_since(since) >= grace {
                    debug!(participant = %r.id, queued, "recipient is slow; no longer holding senders");
                    r.data.slow = true;
                    r.data.congested_since = None;
                } else {
                    holding = true;
                }
            }
        }
        if holding {
            return Vec::new();
        }
        *self.senders_held = false;
        let mut released = Vec::new();
        for (key, p) in self.participants.iter_mut() {
            if std::mem::take(&mut p.data.paused) {
                released.push(*key);
            }
        }
        released
    }

    /// Sends an error frame to `who`, on its reliable channel (or the channel it used). Error
    /// frames are tiny and not held to the queue bound.
    #[allow(clippy::too_many_arguments)]
    fn data_error(
        &mut self,
        who: u64,
        fallback_channel: RTCDataChannelId,
        code: DataErrorCode,
        message: String,
        recipient: Option<String>,
        from: Option<String>,
        now: Instant,
    ) {
        let Some(p) = self.participants.get_mut(&who) else {
            return;
        };
        let channel = p.data.reliable.unwrap_or(fallback_channel);
        let frame = encode_frame(
            &ErrorHeader {
                error: DataError {
                    code,
                    message,
                    recipient,
                    from,
                },
            },
            &[],
        );
        if let Some(mut dc) = p.publisher.pc().data_channel(channel)
            && let Err(e) = dc.send(now, BytesMut::from(&frame[..]))
        {
            debug!(error = %e, "data error frame not sent");
        }
        p.publisher.flush_and_reschedule(self.outgoing);
    }

    /// Sends a message from the server itself (an admin's) to the participants named in `to`
    /// (empty: everyone) over their reliable channels. Returns how many it reached, or why it
    /// cannot go (too large).
    pub(crate) fn send_from_server(
        &mut self,
        topic: &str,
        payload: &[u8],
        to: &[String],
        now: Instant,
    ) -> Result<usize, String> {
        let header = DeliveredHeader {
            from: "server".into(),
            from_id: "server".into(),
            topic: (!topic.is_empty()).then(|| topic.to_owned()),
            to: to.to_vec(),
        };
        let frame = BytesMut::from(&encode_frame(&header, payload)[..]);
        if frame.len() > self.config.max_data_message {
            return Err(format!(
                "the message is {} bytes framed; the data relay carries at most {}",
                frame.len(),
                self.config.max_data_message
            ));
        }
        let mut delivered = 0;
        for p in self.participants.values_mut() {
            if !to.is_empty() && !to.contains(&p.identity) {
                continue;
            }
            let Some(channel) = p.data.reliable else {
                continue;
            };
            let Some(mut dc) = p.publisher.pc().data_channel(channel) else {
                continue;
            };
            if dc.outstanding_bytes() + frame.len() > self.config.max_queued_data {
                continue;
            }
            if dc.send(now, frame.clone()).is_ok() {
                delivered += 1;
            }
            p.publisher.flush_and_reschedule(self.outgoing);
        }
        Ok(delivered)
    }
}
