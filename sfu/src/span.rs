//! Rooms that span nodes (a cluster only): the part of a room this node serves knows the other
//! nodes serving parts of it (its *peers*), the participants they serve (*remote participants*:
//! no peer connection here, their tracks arrive over the node link), and, for each of its own
//! tracks, which peers need which layers (*taps*). A track crosses to each peer once, however
//! many subscribers that peer has; each node fans out to its own subscribers.
//!
//! This file holds that state and the front door for frames arriving from links; the room's
//! handling of them is in `room/spanning.rs`, the frame format in `span/wire.rs`. It never
//! waits on a link: frames go onto the link's queue with `try_send`, and a full queue drops
//! the frame and counts it.

pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::ids::{ParticipantId, TrackId};
use crate::links::{LinkSender, Links};

/// Keys of remote participants start here (local ones count up from 1).
const REMOTE_KEYS: u64 = 1 << 62;

/// A participant another node serves.
pub(crate) struct Remote {
    pub node: Arc<str>,
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    /// Its tracks (the same ids on every node).
    pub tracks: Vec<TrackId>,
}

/// Another node serving a part of the room.
pub(crate) struct Peer {
    pub link: Option<LinkSender>,
    /// Whether it has said anything since it was greeted (until then it is greeted again).
    pub answered: bool,
    /// A control message to it was lost (link down or full): both sides exchange their whole
    /// state again at the next chance.
    pub resync: bool,
    /// While its link is down, when to look for a new one next (not on every packet).
    next_lookup: Option<std::time::Instant>,
}

/// How often a room looks for a link that is down.
const LOOKUP_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Link traffic of one room since the last flush into the SFU's totals.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LinkCounts {
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub frames_dropped: u64,
}

/// A room's view of the other nodes serving it.
pub(crate) struct Span {
    pub links: Links,
    pub peers: HashMap<Arc<str>, Peer>,
    pub remotes: HashMap<u64, Remote>,
    /// Remote participants by (node, participant id).
    by_id: HashMap<(Arc<str>, String), u64>,
    next_key: u64,
    pub counts: LinkCounts,
}

impl Span {
    pub fn new(links: Links) -> Self {
        Span {
            links,
            peers: HashMap::new(),
            remotes: HashMap::new(),
            by_id: HashMap::new(),
            next_key: REMOTE_KEYS,
            counts: LinkCounts::default(),
        }
    }

    /// Whether the room has peers at all (spares single-node rooms every lookup).
    pub fn active(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The node name as the room stores it (one allocation per peer, shared afterwards).
    pub fn node_name(&self, node: &str) -> Arc<str> {
        self.peers
            .get_key_value(node)
            .map(|(k, _)| Arc::clone(k))
            .unwrap_or_else(|| Arc::from(node))
    }

    /// Adds a peer; returns whether it is new. Its link is looked up now (and again whenever
    /// a frame to it finds none).
    pub fn add_peer(&mut self, node: &Arc<str>) -> bool {
        if self.peers.contains_key(node) {
            return false;
        }
        let link = self.links.get(node);
        self.peers.insert(
            Arc::clone(node),
            Peer {
                link,
                answered: false,
                resync: false,
                next_lookup: None,
            },
        );
        true
    }

    /// Queues a frame for `node`; drops and counts it when the link is down or full (a lost
    /// control frame marks the peer for a full resync).
    pub fn send(&mut self, node: &str, frame: Bytes) -> bool {
        let Some(peer) = self.peers.get_mut(node) else {
            return false;
        };
        if peer.link.as_ref().is_none_or(|l| l.frames.is_closed()) {
            let now = std::time::Instant::now();
            if peer.next_lookup.is_none_or(|at| now >= at) {
                peer.link = self.links.get(node);
                peer.next_lookup = peer.link.is_none().then_some(now + LOOKUP_EVERY);
            }
        }
        let control = !wire::is_media(&frame);
        let sent = peer
            .link
            .as_ref()
            .is_some_and(|l| l.frames.try_send(frame).is_ok());
        if !sent {
            self.counts.frames_dropped += 1;
            if control {
                peer.resync = true;
            }
        }
        sent
    }

    /// Queues a frame for every peer.
    pub fn send_all(&mut self, frame: &Bytes) {
        let nodes: Vec<Arc<str>> = self.peers.keys().cloned().collect();
        for node in nodes {
            self.send(&node, frame.clone());
        }
    }

    /// The key of a remote participant.
    pub fn remote_key(&self, node: &str, id: &str) -> Option<u64> {
        self.by_id
            .iter()
            .find(|((n, i), _)| &**n == node && i == id)
            .map(|(_, k)| *k)
    }

    /// Adds a remote participant; returns its key.
    pub fn add_remote(&mut self, remote: Remote) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.by_id
            .insert((Arc::clone(&remote.node), remote.id.to_string()), key);
        self.remotes.insert(key, remote);
        key
    }

    pub fn remove_remote(&mut self, key: u64) -> Option<Remote> {
        let remote = self.remotes.remove(&key)?;
        self.by_id
            .remove(&(Arc::clone(&remote.node), remote.id.to_string()));
        Some(remote)
    }

    /// The remote participants `node` serves.
    pub fn remotes_of(&self, node: &str) -> Vec<u64> {
        self.remotes
            .iter()
            .filter(|(_, r)| &*r.node == node)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The node serving the remote participant with this identity.
    pub fn node_of_identity(&self, identity: &str) -> Option<Arc<str>> {
        self.remotes
            .values()
            .find(|r| r.identity == identity)
            .map(|r| Arc::clone(&r.node))
    }
}
