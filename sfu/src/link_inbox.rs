//! What arrives over one link from another node of the cluster, on its way into rooms: the
//! link's reader hands each frame to the room it names. The reader keeps the rooms' queues it
//! has used (by room name), so a media frame costs a map lookup in the reader's own table: no
//! lock on the SFU's room map and no allocation, except for the first frame of a room or after
//! that room closed. It never decodes a frame beyond its room name and never does I/O.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::Sfu;
use crate::ids::RoomId;
use crate::io::{RoomInput, SpanFrame};
use crate::span::wire;

/// Rooms one link keeps queues for before it forgets them all (a link serves a few rooms; a
/// peer naming endless rooms must not grow the table without bound).
const MAX_ROOMS: usize = 4096;

/// One link's reader side.
pub struct LinkInbox {
    sfu: Sfu,
    from: Arc<str>,
    rooms: HashMap<Box<str>, mpsc::Sender<RoomInput>>,
}

impl Sfu {
    /// The inbox for the link from node `from`.
    pub fn link_inbox(&self, from: &str) -> LinkInbox {
        LinkInbox {
            sfu: self.clone(),
            from: Arc::from(from),
            rooms: HashMap::new(),
        }
    }
}

impl LinkInbox {
    /// One frame that arrived over the link: handed to the room it is about. A control or
    /// data frame waits while that room's queue is full (which holds the link back); a media
    /// frame is dropped instead, so one busy room never holds up the others. A greeting for a
    /// room not open here is answered with a goodbye.
    pub async fn deliver(&mut self, frame: Bytes) {
        let Ok(name) = wire::room_of(&frame) else {
            tracing::debug!(node = %self.from, "a link frame without a valid room name; dropped");
            return;
        };
        let media_frame = wire::is_media(&frame);
        // Control and data frames are rare and must reach the room that is open now (one of
        // the same name may have replaced a closing one): they look it up every time.
        let cached = self
            .rooms
            .get(name)
            .filter(|media| media_frame && !media.is_closed());
        let media = match cached {
            Some(media) => media.clone(),
            None => {
                self.rooms.remove(name);
                let Ok(room) = RoomId::new(name) else {
                    tracing::debug!(node = %self.from, "a link frame for an invalid room; dropped");
                    return;
                };
                let Some(media) = self.sfu.room_media(&room) else {
                    if wire::is_hello(&frame)
                        && let Some(link) = self.sfu.links().get(&self.from)
                    {
                        let bye = wire::control(room.as_str(), &wire::Control::Bye);
                        let _ = link.frames.try_send(bye);
                    }
                    return;
                };
                if self.rooms.len() >= MAX_ROOMS {
                    self.rooms.clear();
                }
                self.rooms.insert(name.into(), media.clone());
                media
            }
        };
        let input = RoomInput::Span(SpanFrame {
            from: Arc::clone(&self.from),
            frame,
        });
        if media_frame {
            let _ = media.try_send(input);
        } else {
            let _ = media.send(input).await;
        }
    }
}
