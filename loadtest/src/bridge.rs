//! A local bridge from Switchyard's signaling protocol to Janus's VideoRoom, so the very same
//! simulated participants ([`client::Client`]) load either server. It listens on a loopback
//! WebSocket and, per connection: `join` creates the Janus room (`load-N` becomes room
//! 1000 + N) and answers `joined`; a publisher `offer` becomes a VideoRoom publish whose answer
//! goes back; once every publisher of the room is up, the connection is subscribed to all of
//! them but itself and gets Janus's offer on its subscriber target, whose answer starts the
//! subscription. Media flows between the participants and Janus directly; only signaling
//! passes here. It never listens beyond loopback (127.0.0.1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::{ClientMessage, ParticipantInfo, ServerMessage, Target};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::janus::{JanusError, JanusSession, JanusSubscriber};

/// How long a participant waits for the room's publishers before its subscription fails.
const PUBLISHERS_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot reach Janus: {0}")]
    Janus(#[from] JanusError),
    #[error("cannot open the local signaling bridge: {0}")]
    Listen(std::io::Error),
}

/// Publishers that are up, per Janus room.
#[derive(Default)]
struct Rooms {
    feeds: Mutex<HashMap<u64, Vec<u64>>>,
    changed: Notify,
}

pub struct Bridge {
    url: String,
    task: tokio::task::JoinHandle<()>,
    janus: Arc<JanusSession>,
}

impl Bridge {
    /// Connects to Janus at `janus_url` and listens; `publishers` per room are awaited before
    /// anyone subscribes.
    pub async fn start(janus_url: &str, publishers: u32) -> Result<Bridge, BridgeError> {
        let janus = Arc::new(JanusSession::connect(janus_url).await?);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BridgeError::Listen)?;
        let addr = listener.local_addr().map_err(BridgeError::Listen)?;
        let rooms = Arc::new(Rooms::default());
        let session = Arc::clone(&janus);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let janus = Arc::clone(&session);
                let rooms = Arc::clone(&rooms);
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        serve(ws, janus, rooms, publishers).await;
                    }
                });
            }
        });
        Ok(Bridge {
            url: format!("ws://{addr}/ws"),
            task,
            janus,
        })
    }

    pub fn ws_url(&self) -> String {
        self.url.clone()
    }

    pub async fn stop(self) {
        self.task.abort();
        if let Ok(janus) = Arc::try_unwrap(self.janus) {
            janus.close().await;
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn send(ws: &mut Ws, message: &ServerMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => ws.send(Message::text(text)).await.is_ok(),
        Err(_) => false,
    }
}

async fn refuse(ws: &mut Ws, message: String) {
    let _ = send(
        ws,
        &ServerMessage::Error {
            code: protocol::ErrorCode::Internal,
            message,
        },
    )
    .await;
}

/// One participant's connection.
async fn serve(mut ws: Ws, janus: Arc<JanusSession>, rooms: Arc<Rooms>, publishers: u32) {
    let mut room: Option<u64> = None;
    let mut own_feed: Option<u64> = None;
    let mut handles: Vec<u64> = Vec::new();
    let mut subscriber: Option<JanusSubscriber> = None;
    let (feeds_tx, mut feeds_rx) = tokio::sync::mpsc::channel::<Result<Vec<u64>, String>>(1);
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(Ok(Message::Text(text))) = frame else { break };
                let Ok(message) = serde_json::from_str::<ClientMessage>(text.as_str()) else { continue };
                match message {
                    ClientMessage::Join { room: name, .. } => {
                        let id = 1000 + name.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
                        if let Err(e) = janus.create_room(id, 64, 0).await {
                            refuse(&mut ws, format!("Janus refused the room: {e}")).await;
                            break;
                        }
                        room = Some(id);
                        let you = ParticipantInfo {
                            id: format!("janus-{}", rand::random::<u32>()),
                            identity: String::new(),
                            name: String::new(),
                            tracks: Vec::new(),
                        };
                        send(&mut ws, &ServerMessage::Joined { room: name, you, participants: Vec::new(), ice_servers: Vec::new(), resume: None, nodes: Vec::new() }).await;
                        // Subscribe once the room's publishers are up (a publisher waits for
                        // its own feed too, so that it can leave itself out).
                        let (rooms, tx) = (Arc::clone(&rooms), feeds_tx.clone());
                        tokio::spawn(async move {
                            let _ = tx.send(publishers_up(&rooms, id, publishers).await).await;
                        });
                    }
                    ClientMessage::Offer { target: Target::Publisher, sdp, .. } => {
                        let Some(id) = room else { continue };
                        match janus.publish(id, "load", &sdp).await {
                            Ok(mut publisher) => {
                                handles.push(publisher.handle);
                                own_feed = Some(publisher.feed);
                                let _ = janus.trickle(publisher.handle, None).await;
                                send(&mut ws, &ServerMessage::Answer { target: Target::Publisher, sdp: publisher.answer_sdp.clone() }).await;
                                let rooms = Arc::clone(&rooms);
                                let feed = publisher.feed;
                                tokio::spawn(async move {
                                    if publisher.events.wait_webrtcup(PUBLISHERS_TIMEOUT).await.is_ok() {
                                        if let Ok(mut feeds) = rooms.feeds.lock() {
                                            feeds.entry(id).or_default().push(feed);
                                        }
                                        rooms.changed.notify_waiters();
                                    }
                                });
                            }
                            Err(e) => {
                                refuse(&mut ws, format!("Janus refused the publisher: {e}")).await;
                                break;
                            }
                        }
                    }
                    ClientMessage::Answer { target: Target::Subscriber, sdp } => {
                        if let Some(sub) = &subscriber
                            && let Err(e) = janus.start(sub, &sdp).await
                        {
                            refuse(&mut ws, format!("Janus refused the subscription: {e}")).await;
                            break;
                        }
                        if let Some(sub) = &subscriber {
                            let _ = janus.trickle(sub.handle, None).await;
                        }
                    }
                    ClientMessage::Ping { ts } => {
                        send(&mut ws, &ServerMessage::Pong { ts }).await;
                    }
                    ClientMessage::Leave => break,
                    _ => {}
                }
            }
            Some(ready) = feeds_rx.recv() => {
                let feeds = match ready {
                    Ok(feeds) => feeds,
                    Err(e) => {
                        refuse(&mut ws, e).await;
                        break;
                    }
                };
                let others: Vec<u64> = feeds.into_iter().filter(|f| Some(*f) != own_feed).collect();
                if others.is_empty() {
                    continue; // the room's only publisher receives nothing
                }
                match janus.subscribe(room.unwrap_or_default(), &others).await {
                    Ok(sub) => {
                        handles.push(sub.handle);
                        send(&mut ws, &ServerMessage::Offer { target: Target::Subscriber, sdp: sub.offer_sdp.clone() }).await;
                        subscriber = Some(sub);
                    }
                    Err(e) => {
                        refuse(&mut ws, format!("Janus refused the subscription: {e}")).await;
                        break;
                    }
                }
            }
        }
    }
    for handle in handles {
        let _ = janus.detach(handle).await;
    }
}

/// Waits until `publishers` feeds of the room are up; returns them all (the caller leaves its
/// own out).
async fn publishers_up(rooms: &Rooms, room: u64, publishers: u32) -> Result<Vec<u64>, String> {
    let deadline = tokio::time::Instant::now() + PUBLISHERS_TIMEOUT;
    loop {
        // Registered before reading, so a feed that comes up in between is not missed.
        let notified = rooms.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut feeds = rooms
            .feeds
            .lock()
            .map(|f| f.get(&room).cloned().unwrap_or_default())
            .unwrap_or_default();
        if feeds.len() >= publishers as usize {
            feeds.sort_unstable();
            feeds.dedup();
            return Ok(feeds);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(format!(
                "only {} of {publishers} publishers came up in Janus room {room}",
                feeds.len()
            ));
        }
    }
}
