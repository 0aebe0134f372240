//! The media plane's front door: [`Sfu`] starts the media sockets, keeps the registry of open
//! rooms (one task each), and hands joins and admin requests to the right room. It never
//! touches a room's state itself: everything it asks of a room goes through the room's channel,
//! and the registry's lock is held only for short, non-blocking sections, never per packet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::admin::RoomSettings;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{AdminCommand, AdminError, AdminReply};
use crate::config::SfuConfig;
use crate::counters::MediaCounters;
use crate::error::{JoinError, SfuError};
use crate::events::EventBus;
use crate::ids::RoomId;
use crate::io::RoomInput;
use crate::links::Links;
use crate::room::Room;
use crate::room::task::{RoomControl, run};
use crate::session::{JoinParams, Session};
use crate::socket::MediaSockets;

struct RoomEntry {
    generation: u64,
    control: mpsc::UnboundedSender<RoomControl>,
    /// The room's media queue (frames from node links go there).
    media: mpsc::Sender<RoomInput>,
}

struct Inner {
    config: SfuConfig,
    sockets: MediaSockets,
    rooms: Mutex<HashMap<RoomId, RoomEntry>>,
    next_key: AtomicU64,
    data_queue_peak: Arc<AtomicUsize>,
    events: EventBus,
    counters: Arc<MediaCounters>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// Links to the other nodes serving parts of this node's rooms (a cluster only).
    links: Links,
}

/// The media plane: a handle to every room. Cloning is cheap.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

impl Sfu {
    /// Binds the media port and gets ready to host rooms. Cancelling `cancel` closes every room
    /// (participants are told `server_shutdown`); [`Sfu::closed`] then resolves.
    pub async fn start(config: SfuConfig, cancel: CancellationToken) -> Result<Sfu, SfuError> {
        let sockets =
            MediaSockets::bind(config.rtc_port, config.announce_ip, cancel.clone()).await?;
        Ok(Sfu {
            inner: Arc::new(Inner {
                config,
                sockets,
                rooms: Mutex::new(HashMap::new()),
                next_key: AtomicU64::new(1),
                data_queue_peak: Arc::new(AtomicUsize::new(0)),
                events: EventBus::new(),
                counters: Arc::default(),
                cancel,
                tasks: TaskTracker::new(),
                links: Links::default(),
            }),
        })
    }

    /// The addresses announced as ICE host candidates.
    pub fn media_addresses(&self) -> Vec<SocketAddr> {
        self.inner.sockets.announced().collect()
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// The most bytes ever seen queued at the SFU for one recipient's data channel.
    pub fn data_queue_peak(&self) -> usize {
        self.inner.data_queue_peak.load(Ordering::Relaxed)
    }

    /// Joins `room` (creating it if needed). The first event of the session is `joined`.
    pub async fn join(&self, room: RoomId, params: JoinParams) -> Result<Session, JoinError> {
        if self.inner.cancel.is_cancelled() {
            return Err(JoinError::ShuttingDown);
        }
        let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        let recorder = params.grants.recorder;
        let (reply_tx, reply_rx) = oneshot::channel();
        let mut message = RoomControl::Join {
            key,
            params,
            reply: reply_tx,
        };
        // Recorders never open a room; nobody does when rooms are not created by joins.
        let refusal = |room: RoomId| {
            if recorder {
                JoinError::NoSuchRoom(room)
            } else {
                JoinError::NotCreated(room)
            }
        };
        let may_open = !recorder && self.inner.config.auto_create_rooms;
        {
            let mut rooms = self.rooms();
            if !may_open && !rooms.contains_key(&room) {
                return Err(refusal(room));
            }
            // A room that is just closing refuses the message; then we start a fresh one.
            for _ in 0..2 {
                let entry = rooms
                    .entry(room.clone())
                    .or_insert_with(|| self.spawn_room(room.clone()));
                match entry.control.send(message) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(m)) => {
                        message = m;
                        rooms.remove(&room);
                        if !may_open {
                            return Err(refusal(room));
                        }
                    }
                }
            }
        }
        reply_rx.await.map_err(|_| {
            if self.inner.cancel.is_cancelled() {
                JoinError::ShuttingDown
            } else {
                JoinError::Engine("the room failed while setting up this participant".into())
            }
        })?
    }

    /// Sends an admin request to `room` and waits for its answer.
    pub async fn admin(
        &self,
        room: &RoomId,
        command: AdminCommand,
    ) -> Result<AdminReply, AdminError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self.rooms().get(room).is_some_and(|entry| {
            entry
                .control
                .send(RoomControl::Admin {
                    command,
                    reply: reply_tx,
                })
                .is_ok()
        });
        if !sent {
            return Err(AdminError::NoSuchRoom(room.to_string()));
        }
        match tokio::time::timeout(Duration::from_secs(5), reply_rx).await {
            Ok(Ok(reply)) => reply,
            // The room closed meanwhile.
            Ok(Err(_)) => Err(AdminError::NoSuchRoom(room.to_string())),
            Err(_) => Err(AdminError::Unavailable),
        }
    }

    /// Running totals of the media plane, for `/metrics`.
    pub fn counters(&self) -> &MediaCounters {
        &self.inner.counters
    }

    /// What happens in the rooms, for the admin event stream.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Names of the open rooms.
    pub fn room_names(&self) -> Vec<RoomId> {
        let mut names: Vec<RoomId> = self.rooms().keys().cloned().collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names
    }

    /// The media queue of `room`, if it is open here.
    pub(crate) fn room_media(&self, room: &RoomId) -> Option<mpsc::Sender<RoomInput>> {
        self.rooms().get(room).map(|e| e.media.clone())
    }

    /// Tells `room` which other nodes serve parts of it (a cluster, when the room spans
    /// nodes): it greets each new one over its link and they exchange participants and
    /// tracks. Returns false when the room is not open here.
    pub fn span(&self, room: &RoomId, peers: Vec<String>) -> bool {
        self.rooms()
            .get(room)
            .is_some_and(|e| e.control.send(RoomControl::Span { peers }).is_ok())
    }

    /// Whether `room` is open here.
    pub fn has_room(&self, room: &RoomId) -> bool {
        self.rooms().contains_key(room)
    }

    /// Opens `room` with its own settings before anyone joins. It closes like any room once
    /// it has been empty for its `empty_timeout_seconds`.
    pub fn create_room(&self, room: RoomId, settings: &RoomSettings) -> Result<(), AdminError> {
        let mut config = self.inner.config.clone();
        config.max_participants = settings.max_participants;
        config.empty_room_timeout = Duration::from_secs(settings.empty_timeout_seconds);
        config.video_codecs = settings.codecs.clone();
        let mut rooms = self.rooms();
        if rooms.contains_key(&room) {
            return Err(AdminError::RoomExists(room.to_string()));
        }
        let entry = self.spawn_room_with(room.clone(), config);
        rooms.insert(room, entry);
        Ok(())
    }

    /// The settings a room gets when it is created by a join.
    pub fn default_room_settings(&self) -> RoomSettings {
        RoomSettings {
            max_participants: self.inner.config.max_participants,
            empty_timeout_seconds: self.inner.config.empty_room_timeout.as_secs(),
            codecs: self.inner.config.video_codecs.clone(),
        }
    }

    /// The links to other nodes of the cluster, for the transport that carries them.
    pub fn links(&self) -> &Links {
        &self.inner.links
    }

    /// The link to node `from` is gone: every room drops what that node served.
    pub fn link_closed(&self, from: &str) {
        for entry in self.rooms().values() {
            let _ = entry.control.send(RoomControl::PeerGone {
                node: from.to_owned(),
            });
        }
    }

    /// Resolves when every room task has finished after cancellation.
    pub async fn closed(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomEntry>> {
        // The map is only touched in short, non-panicking sections; recover from poisoning.
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn_room(&self, id: RoomId) -> RoomEntry {
        self.spawn_room_with(id, self.inner.config.clone())
    }

    fn spawn_room_with(&self, id: RoomId, config: SfuConfig) -> RoomEntry {
        let generation = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let sfu = self.clone();
        let room = Room::new(
            id.clone(),
            config,
            self.inner.sockets.clone(),
            self.inner.data_queue_peak.clone(),
            self.inner.events.clone(),
            Arc::clone(&self.inner.counters),
        )
        .spanning(self.inner.links.clone());
        let media = room.media_sender();
        self.inner.tasks.spawn(run(
            room,
            control_rx,
            self.inner.cancel.clone(),
            move |control_rx| sfu.remove_room_if_idle(&id, generation, control_rx),
        ));
        RoomEntry {
            generation,
            control: control_tx,
            media,
        }
    }

    /// Called by a room that has been empty long enough. Holding the registry lock while
    /// checking for pending joins guarantees that no join is lost to a closing room.
    fn remove_room_if_idle(
        &self,
        id: &RoomId,
        generation: u64,
        control_rx: &mpsc::UnboundedReceiver<RoomControl>,
    ) -> bool {
        let mut rooms = self.rooms();
        if !control_rx.is_empty() {
            return false;
        }
        if rooms.get(id).is_some_and(|e| e.generation == generation) {
            rooms.remove(id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use protocol::{CloseReason, Grants, LeaveReason, ServerMessage};

    use super::*;
    use crate::session::{SessionCommand, SessionEvent};

    fn params(identity: &str, grants: Grants) -> JoinParams {
        JoinParams {
            identity: identity.into(),
            name: identity.into(),
            grants,
            ice_servers: Vec::new(),
        }
    }

    fn recorder_grants() -> Grants {
        Grants {
            recorder: true,
            can_publish: true,
            can_publish_data: true,
            ..Grants::default()
        }
    }

    async fn next_event(session: &mut Session) -> Option<SessionEvent> {
        tokio::time::timeout(Duration::from_secs(5), session.events.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn recorders_are_hidden_cannot_open_rooms_and_do_not_keep_them_open() {
        let cancel = CancellationToken::new();
        let sfu = Sfu::start(
            SfuConfig {
                rtc_port: 0,
                announce_ip: Some(IpAddr::from([127, 0, 0, 1])),
                empty_room_timeout: Duration::from_millis(300),
                ..SfuConfig::default()
            },
            cancel.clone(),
        )
        .await
        .unwrap();
        let room = RoomId::new("rec").unwrap();
        let refused = sfu
            .join(room.clone(), params("rec-1", recorder_grants()))
            .await;
        assert!(matches!(refused, Err(JoinError::NoSuchRoom(_))));
        assert_eq!(sfu.room_count(), 0, "a recorder never opens a room");

        let mut alice = sfu
            .join(room.clone(), params("alice", Grants::default()))
            .await
            .unwrap();
        assert!(matches!(
            next_event(&mut alice).await,
            Some(SessionEvent::Message(ServerMessage::Joined { .. }))
        ));
        let mut recorder = sfu
            .join(room.clone(), params("rec-1", recorder_grants()))
            .await
            .unwrap();
        let Some(SessionEvent::Message(ServerMessage::Joined { participants, .. })) =
            next_event(&mut recorder).await
        else {
            panic!("the recorder is told it joined");
        };
        assert_eq!(participants.len(), 1, "the recorder sees alice");
        let AdminReply::Room(detail) = sfu.admin(&room, AdminCommand::Snapshot).await.unwrap()
        else {
            panic!("a snapshot");
        };
        assert_eq!(
            detail.summary.participant_count, 1,
            "the recorder is not counted"
        );
        let grants = &detail
            .participants
            .iter()
            .find(|p| p.identity == "rec-1")
            .unwrap()
            .grants;
        assert!(grants.hidden && !grants.can_publish && !grants.can_publish_data);

        // Alice leaves: the room counts as empty, closes after its timeout and tells the
        // recorder why. Alice was never told about the recorder.
        alice
            .handle
            .send(SessionCommand::Leave(LeaveReason::Left))
            .await;
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(50), alice.events.recv()).await
        {
            assert!(
                !matches!(
                    event,
                    SessionEvent::Message(ServerMessage::ParticipantJoined { .. })
                ),
                "alice never hears of the recorder"
            );
        }
        let closed = loop {
            match next_event(&mut recorder).await {
                Some(SessionEvent::Closed(reason)) => break reason,
                Some(_) => continue,
                None => panic!("the recorder's session ended without `closed`"),
            }
        };
        assert_eq!(closed, CloseReason::RoomClosed);
        let (events, _) = sfu.events().subscribe(None);
        assert!(events.iter().any(|e| e.kind == "room_closed"));
        cancel.cancel();
        sfu.closed().await;
    }
}
