//! The VideoRoom plugin's requests on a [`JanusSession`]: rooms, publishing, subscribing and
//! listing publishers, with what they return. Never manages the session or its handles'
//! lifetimes beyond detaching a handle whose request failed.

use serde_json::{Value, json};

use super::api::{expect_field, jsep_sdp, str_field};
use super::error::{JanusError, protocol};
use super::events::HandleEvents;
use super::session::JanusSession;

/// VideoRoom error codes (janus_videoroom.c).
const ERROR_ROOM_EXISTS: i64 = 427;

/// A publisher in a room.
#[derive(Debug)]
pub struct JanusPublisher {
    /// Its handle, for [`JanusSession::trickle`] and [`JanusSession::detach`].
    pub handle: u64,
    /// Its participant id, which subscribers name as `feed`.
    pub feed: u64,
    /// Janus' SDP answer to the offer.
    pub answer_sdp: String,
    pub events: HandleEvents,
}

/// One stream of a subscription, as Janus described it when offering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedStream {
    /// The mid in the subscriber's SDP.
    pub mid: String,
    /// `audio`, `video` or `data`.
    pub kind: String,
    /// The publisher it comes from (none for data).
    pub feed: Option<u64>,
    /// The mid in the publisher's SDP.
    pub feed_mid: Option<String>,
}

/// A subscription to one or more feeds, on its own handle.
#[derive(Debug)]
pub struct JanusSubscriber {
    pub handle: u64,
    /// Janus' SDP offer: answer it, then call [`JanusSession::start`].
    pub offer_sdp: String,
    pub streams: Vec<SubscribedStream>,
    pub events: HandleEvents,
}

impl JanusSession {
    /// Creates a room (not permanent, Opus and VP8, no joining notifications); fine if it
    /// already exists.
    pub async fn create_room(
        &self,
        room: u64,
        max_publishers: u32,
        bitrate_bps: u32,
    ) -> Result<(), JanusError> {
        let body = json!({
            "request": "create",
            "room": room,
            "permanent": false,
            "description": format!("loadtest {room}"),
            "publishers": max_publishers,
            "bitrate": bitrate_bps,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": false,
        });
        match self
            .shared
            .message(self.control, body, None, "create room")
            .await
        {
            Ok((data, _)) => expect_field(&data, "videoroom", "created", "create room"),
            Err(JanusError::Janus { code, .. }) if code == ERROR_ROOM_EXISTS => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Destroys a room, kicking out its participants.
    pub async fn destroy_room(&self, room: u64) -> Result<(), JanusError> {
        let body = json!({"request": "destroy", "room": room});
        let (data, _) = self
            .shared
            .message(self.control, body, None, "destroy room")
            .await?;
        expect_field(&data, "videoroom", "destroyed", "destroy room")
    }

    /// Publishes in `room`: a new handle joins as publisher `display`, then publishes with
    /// `offer_sdp`. On failure the handle is detached again.
    pub async fn publish(
        &self,
        room: u64,
        display: &str,
        offer_sdp: &str,
    ) -> Result<JanusPublisher, JanusError> {
        let (handle, events) = self.attach().await?;
        let result = async {
            let join = json!({
                "request": "join",
                "ptype": "publisher",
                "room": room,
                "display": display,
            });
            let (data, _) = self
                .shared
                .message(handle, join, None, "join as publisher")
                .await?;
            expect_field(&data, "videoroom", "joined", "join as publisher")?;
            let feed = data
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| protocol("join as publisher", "no participant id", &data))?;
            let jsep = json!({"type": "offer", "sdp": offer_sdp});
            let (data, jsep) = self
                .shared
                .message(handle, json!({"request": "publish"}), Some(jsep), "publish")
                .await?;
            expect_field(&data, "configured", "ok", "publish")?;
            let answer_sdp = jsep_sdp(jsep.as_ref(), "answer", "publish")?;
            Ok((feed, answer_sdp))
        }
        .await;
        match result {
            Ok((feed, answer_sdp)) => Ok(JanusPublisher {
                handle,
                feed,
                answer_sdp,
                events,
            }),
            Err(e) => {
                let _ = self.detach(handle).await;
                Err(e)
            }
        }
    }

    /// Subscribes to every stream of `feeds` in `room` on a new handle, and returns Janus'
    /// offer. On failure the handle is detached again.
    pub async fn subscribe(&self, room: u64, feeds: &[u64]) -> Result<JanusSubscriber, JanusError> {
        let (handle, events) = self.attach().await?;
        let result = async {
            let streams: Vec<Value> = feeds.iter().map(|feed| json!({"feed": feed})).collect();
            let join = json!({
                "request": "join",
                "ptype": "subscriber",
                "room": room,
                "streams": streams,
            });
            let (data, jsep) = self
                .shared
                .message(handle, join, None, "join as subscriber")
                .await?;
            expect_field(&data, "videoroom", "attached", "join as subscriber")?;
            let offer_sdp = jsep_sdp(jsep.as_ref(), "offer", "join as subscriber")?;
            let streams = data
                .get("streams")
                .and_then(Value::as_array)
                .map(|streams| streams.iter().filter_map(subscribed_stream).collect())
                .unwrap_or_default();
            Ok((offer_sdp, streams))
        }
        .await;
        match result {
            Ok((offer_sdp, streams)) => Ok(JanusSubscriber {
                handle,
                offer_sdp,
                streams,
                events,
            }),
            Err(e) => {
                let _ = self.detach(handle).await;
                Err(e)
            }
        }
    }

    /// Answers a subscription's offer: Janus starts ICE, DTLS and then forwarding.
    pub async fn start(
        &self,
        subscriber: &JanusSubscriber,
        answer_sdp: &str,
    ) -> Result<(), JanusError> {
        let jsep = json!({"type": "answer", "sdp": answer_sdp});
        let (data, _) = self
            .shared
            .message(
                subscriber.handle,
                json!({"request": "start"}),
                Some(jsep),
                "start subscription",
            )
            .await?;
        expect_field(&data, "started", "ok", "start subscription")
    }

    /// The ids of the participants of `room` that publish (with WebRTC up).
    pub async fn publishers(&self, room: u64) -> Result<Vec<u64>, JanusError> {
        let body = json!({"request": "listparticipants", "room": room});
        let (data, _) = self
            .shared
            .message(self.control, body, None, "list participants")
            .await?;
        expect_field(&data, "videoroom", "participants", "list participants")?;
        let participants = data
            .get("participants")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("list participants", "no participants list", &data))?;
        Ok(participants
            .iter()
            .filter(|p| p.get("publisher").and_then(Value::as_bool) == Some(true))
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect())
    }
}

fn subscribed_stream(stream: &Value) -> Option<SubscribedStream> {
    Some(SubscribedStream {
        mid: stream.get("mid")?.as_str()?.to_owned(),
        kind: str_field(stream, "type"),
        feed: stream.get("feed_id").and_then(Value::as_u64),
        feed_mid: stream
            .get("feed_mid")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::janus::api::DEFAULT_TIMEOUT;

    /// The load tester drives many participants from spawned tasks.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn check(session: &JanusSession, subscriber: &JanusSubscriber, events: &mut HandleEvents) {
            send(&session.create_room(1, 1, 1));
            send(&session.destroy_room(1));
            send(&session.publish(1, "", ""));
            send(&session.subscribe(1, &[]));
            send(&session.start(subscriber, ""));
            send(&session.trickle(1, None));
            send(&session.publishers(1));
            send(&session.detach(1));
            send(&events.wait_webrtcup(DEFAULT_TIMEOUT));
            send(&JanusSession::connect(""));
        }
        let _ = check;
        fn sync<T: Send + Sync>() {}
        sync::<JanusSession>();
    }
}
