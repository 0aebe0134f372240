//! A room's part in a room that spans nodes: greeting the other nodes serving it, mirroring
//! their participants and tracks as *remote* ones (no peer connection here), feeding remote
//! tracks' packets into the same fan-out as local ones, sending each local track to each node
//! that needs it (once per node, only the layers its subscribers need), carrying keyframe
//! requests, mute and data messages across, and dropping everything a node served when it says
//! goodbye or its link goes down. It never waits on a link (see `span.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use protocol::{Layer, LeaveReason, ParticipantInfo, ServerMessage, TrackKind};
use rtc::shared::marshal::{MarshalSize, Unmarshal};
use tracing::{debug, info};

use super::Room;
use crate::ids::{ParticipantId, TrackId};
use crate::io::SpanFrame;
use crate::participant::kind_index;
use crate::publication::{Publication, PublicationParams, Tap};
use crate::span::wire::{self, Codec, Control, Frame};
use crate::span::{Remote, Span};

impl Room {
    /// Lets the room reach other nodes over `links` (a cluster only).
    pub(crate) fn spanning(mut self, links: crate::links::Links) -> Self {
        self.span = Span::new(links);
        self
    }

    /// The room's media queue, where frames from node links go too.
    pub(crate) fn media_sender(&self) -> tokio::sync::mpsc::Sender<crate::io::RoomInput> {
        self.media_tx.clone()
    }

    /// The nodes serving other parts of this room (told after each join and every 2 s while
    /// the room spans): each new one is greeted, and so is one that has not answered yet or
    /// missed a control message (both sides then exchange their whole state again).
    pub(super) fn on_span_peers(&mut self, peers: Vec<String>) {
        for node in peers {
            let node = self.span.node_name(&node);
            let greet = if self.span.add_peer(&node) {
                info!(room = %self.id, peer = %node, "the room spans another node");
                true
            } else {
                self.span
                    .peers
                    .get_mut(&node)
                    .is_some_and(|p| !p.answered || std::mem::take(&mut p.resync))
            };
            if greet {
                let hello = self.hello(true);
                self.span_send(&node, &hello);
            }
        }
    }

    /// A greeting naming every participant this node serves.
    fn hello(&self, reply: bool) -> Control {
        Control::Hello {
            reply,
            participants: self
                .participants
                .values()
                .filter(|p| !p.grants.hidden)
                .map(|p| p.id.to_string())
                .collect(),
        }
    }

    fn span_send(&mut self, node: &str, message: &Control) {
        let frame = wire::control(self.id.as_str(), message);
        self.span.send(node, frame);
    }

    /// Tells every other node serving this room (nothing when there is none).
    pub(super) fn span_broadcast(&mut self, message: &Control) {
        if self.span.active() {
            let frame = wire::control(self.id.as_str(), message);
            self.span.send_all(&frame);
        }
    }

    /// One frame from another node.
    pub(super) fn on_span_frame(&mut self, input: SpanFrame) {
        let now = Instant::now();
        match wire::decode(&input.frame) {
            Err(e) => {
                debug!(room = %self.id, peer = %input.from, error = %e, "bad link frame; dropped")
            }
            Ok(Frame::Media { track, layer, rtp }) => {
                self.remote_media(&input.from, track, layer, rtp, now);
            }
            Ok(Frame::Data { reliable, message }) => {
                self.span.counts.packets_in += 1;
                if self.span.peers.contains_key(&*input.from) {
                    self.data_relay().deliver_remote(reliable, &message, now);
                }
            }
            Ok(Frame::Control(message)) => self.remote_control(&input.from, message, now),
        }
    }

    fn remote_control(&mut self, from: &Arc<str>, message: Control, now: Instant) {
        debug!(room = %self.id, peer = %from, ?message, "from another node");
        if !matches!(message, Control::Hello { .. } | Control::Bye)
            && !self.span.peers.contains_key(&**from)
        {
            return;
        }
        if let Some(peer) = self.span.peers.get_mut(&**from) {
            peer.answered = true;
        }
        match message {
            Control::Hello {
                reply,
                participants,
            } => {
                let from = self.span.node_name(from);
                if self.span.add_peer(&from) {
                    info!(room = %self.id, peer = %from, "the room spans another node");
                }
                if let Some(peer) = self.span.peers.get_mut(&from) {
                    peer.answered = true;
                }
                // Whoever it no longer serves left (a `left` the link lost).
                for key in self.span.remotes_of(&from) {
                    let gone = self
                        .span
                        .remotes
                        .get(&key)
                        .is_some_and(|r| !participants.iter().any(|id| id == r.id.as_str()));
                    if gone {
                        self.remove_remote(key, LeaveReason::Disconnected);
                    }
                }
                if reply {
                    let hello = self.hello(false);
                    self.span_send(&from, &hello);
                }
                self.send_state(&from);
                self.resend_wants(&from);
            }
            Control::Joined { id, identity, name } => {
                if self.span.remote_key(from, &id).is_some() {
                    return;
                }
                let Some(pid) = ParticipantId::from_remote(&id) else {
                    return;
                };
                let participant = ParticipantInfo {
                    id: id.clone(),
                    identity: identity.clone(),
                    name: name.clone(),
                    tracks: Vec::new(),
                };
                self.span.add_remote(Remote {
                    node: Arc::clone(from),
                    id: pid,
                    identity,
                    name,
                    tracks: Vec::new(),
                });
                self.broadcast(0, ServerMessage::ParticipantJoined { participant });
            }
            Control::Left { id, reason } => {
                if let Some(key) = self.span.remote_key(from, &id) {
                    self.remove_remote(key, reason);
                }
            }
            Control::Published {
                owner,
                track,
                codec,
                audio_level_id,
                ssrcs,
            } => self.remote_published(from, owner, track, codec, audio_level_id, ssrcs, now),
            Control::Unpublished { track } => {
                if let Some(track) = self.remote_track(from, &track) {
                    self.unpublish(&track);
                }
            }
            Control::Muted { track, muted } => self.remote_muted(from, &track, muted),
            Control::Want { track, layers } => self.set_tap(from, &track, layers),
            Control::Keyframe { track, layers } => {
                if let Some(track) = self.router.id_of(&track)
                    && self.router.get(&track).is_some_and(|p| p.origin.is_none())
                {
                    self.request_layer_keyframes(&track, layers, now);
                }
            }
            Control::Bye => self.drop_peer(from),
            Control::Close => {
                info!(room = %self.id, peer = %from, "room closed by an admin on another node");
                self.close_all(LeaveReason::RoomClosed, protocol::CloseReason::RoomClosed);
                self.closed_by_admin = true;
                // Closes at the next timer: an empty room whose time is up.
                self.empty_since = Some(
                    now.checked_sub(self.config.empty_room_timeout)
                        .unwrap_or(now),
                );
            }
        }
    }

    /// This part's participants and tracks, for a node that just joined the room.
    fn send_state(&mut self, node: &str) {
        let mut messages = Vec::new();
        for p in self.participants.values().filter(|p| !p.grants.hidden) {
            messages.push(Control::Joined {
                id: p.id.to_string(),
                identity: p.identity.clone(),
                name: p.name.clone(),
            });
        }
        for publication in self.router.publications() {
            if publication.origin.is_none() {
                messages.push(published(publication));
            }
        }
        for message in messages {
            self.span_send(node, &message);
        }
    }

    /// Asks `node` again for the layers this node needs of its tracks (a want the link may have
    /// lost).
    fn resend_wants(&mut self, node: &str) {
        let wants: Vec<Control> = self
            .router
            .publications()
            .filter(|p| p.origin.as_deref() == Some(node))
            .filter_map(|p| {
                p.link_wanted.map(|layers| Control::Want {
                    track: p.id.to_string(),
                    layers,
                })
            })
            .collect();
        for want in wants {
            self.span_send(node, &want);
        }
    }

    /// A local track's description for the other nodes, after it was published or changed.
    pub(super) fn announce_track(&mut self, track: &TrackId) {
        if !self.span.active() {
            return;
        }
        if let Some(message) = self.router.get(track).map(published) {
            self.span_broadcast(&message);
        }
    }

    /// A remote track named by its id, if `node` is where it comes from.
    fn remote_track(&self, node: &str, track: &str) -> Option<TrackId> {
        let id = self.router.id_of(track)?;
        self.router
            .get(&id)
            .is_some_and(|p| p.origin.as_deref() == Some(node))
            .then_some(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn remote_published(
        &mut self,
        from: &Arc<str>,
        owner: String,
        track: protocol::TrackInfo,
        codec: Codec,
        audio_level_id: Option<u8>,
        ssrcs: [Option<u32>; 3],
        now: Instant,
    ) {
        let Some(owner_key) = self.span.remote_key(from, &owner) else {
            return;
        };
        if let Some(id) = self.remote_track(from, &track.id) {
            // A known track: a layer arrived.
            if let Some(publication) = self.router.get_mut(&id) {
                for layer in Layer::ALL {
                    if let Some(ssrc) = ssrcs[layer.index()]
                        && publication.layers[layer.index()].is_none()
                    {
                        publication.add_layer(layer, ssrc, now);
                    }
                }
                let info = publication.info();
                self.broadcast(
                    0,
                    ServerMessage::TrackPublished {
                        participant_id: owner,
                        track: info,
                    },
                );
            }
            return;
        }
        let Some(id) = TrackId::from_remote(&track.id) else {
            return;
        };
        if self.router.get(&id).is_some() {
            return;
        }
        let Some((first, ssrc)) = Layer::ALL
            .into_iter()
            .find_map(|l| ssrcs[l.index()].map(|s| (l, s)))
        else {
            return;
        };
        let mut publication = Publication::new(
            PublicationParams {
                id: id.clone(),
                owner: owner_key,
                owner_id: owner.clone(),
                kind: track.kind,
                source: track.source,
                client_track_id: String::new(),
                codec: codec.to_rtc(),
                receiver_id: None,
                ssrc,
                rid: (!track.layers.is_empty()).then_some(first),
                muted: track.muted,
                audio_level_id,
            },
            now,
        );
        publication.origin = Some(Arc::clone(from));
        for layer in Layer::ALL {
            if let Some(ssrc) = ssrcs[layer.index()]
                && layer != first
            {
                publication.add_layer(layer, ssrc, now);
            }
        }
        let info = publication.info();
        self.router.insert(publication);
        if let Some(remote) = self.span.remotes.get_mut(&owner_key) {
            remote.tracks.push(id.clone());
        }
        info!(room = %self.id, peer = %from, track = %id, kind = %track.kind, "remote track");
        self.broadcast(
            0,
            ServerMessage::TrackPublished {
                participant_id: owner,
                track: info,
            },
        );
        let subscribers: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, &id);
            self.negotiate_subscriber(sub);
        }
        // Audio needs no allocation: ask for it at once.
        self.want_remote_layers(now);
    }

    fn remote_muted(&mut self, from: &str, track: &str, muted: bool) {
        let Some(id) = self.remote_track(from, track) else {
            return;
        };
        let Some(publication) = self.router.get_mut(&id) else {
            return;
        };
        if publication.muted == muted {
            return;
        }
        publication.muted = muted;
        let (owner, kind) = (publication.owner, publication.kind);
        let message = ServerMessage::TrackMuted {
            participant_id: publication.owner_id.clone(),
            track_id: id.to_string(),
            muted,
        };
        for p in self.participants.values_mut() {
            p.send_state(owner, kind, message.clone());
        }
    }

    /// A peer's subscribers need these layers of one of our tracks.
    fn set_tap(&mut self, from: &Arc<str>, track: &str, layers: [bool; 3]) {
        let Some(id) = self.router.id_of(track) else {
            return;
        };
        let Some(publication) = self.router.get_mut(&id) else {
            return;
        };
        if publication.origin.is_some() {
            return;
        }
        let existing = publication.taps.iter().position(|t| t.node == *from);
        let totals = &self.totals;
        match (existing, layers == [false; 3]) {
            (Some(i), true) => {
                publication.taps.swap_remove(i);
                totals.link_tracks_out.fetch_sub(1, Ordering::Relaxed);
            }
            (Some(i), false) => publication.taps[i].layers = layers,
            (None, false) => {
                publication.taps.push(Tap {
                    node: Arc::clone(from),
                    layers,
                });
                totals.link_tracks_out.fetch_add(1, Ordering::Relaxed);
                totals.link_tracks_opened.fetch_add(1, Ordering::Relaxed);
                debug!(track = %id, peer = %from, ?layers, "track sent to another node");
            }
            (None, true) => return,
        }
        // The publisher must keep sending what the other node needs.
        self.announce_layers(Instant::now());
        if layers.iter().any(|l| *l) {
            self.request_layer_keyframes(&id, layers, Instant::now());
        }
    }

    /// One packet of a remote track: into the same fan-out as a local publisher's.
    fn remote_media(
        &mut self,
        from: &str,
        track: &str,
        layer: Layer,
        mut rtp: Bytes,
        now: Instant,
    ) {
        let Some(id) = self.router.id_of(track) else {
            return;
        };
        if !self
            .router
            .get(&id)
            .is_some_and(|p| p.origin.as_deref() == Some(from) && p.layers[layer.index()].is_some())
        {
            return;
        }
        self.span.counts.packets_in += 1;
        self.span.counts.bytes_in += rtp.len() as u64;
        let Ok(packet) = rtc::rtp::Packet::unmarshal(&mut rtp) else {
            return;
        };
        self.forward_track(id, packet, now);
    }

    /// Sends a local publisher's packet to each node that needs its layer: one copy per node.
    pub(super) fn tap(&mut self, track: &TrackId, packet: &rtc::rtp::Packet) {
        let Some(publication) = self.router.get(track) else {
            return;
        };
        if publication.taps.is_empty() || publication.held_by_admin {
            return;
        }
        let Some(layer) = publication.layer_of(packet.header.ssrc) else {
            return;
        };
        let mut frame: Option<Bytes> = None;
        for tap in &publication.taps {
            if !tap.layers[layer.index()] {
                continue;
            }
            let frame = frame.get_or_insert_with(|| {
                wire::media_with(
                    self.id.as_str(),
                    track.as_str(),
                    layer,
                    packet.marshal_size(),
                    |buf| {
                        use rtc::shared::marshal::Marshal;
                        packet.marshal_to(buf).is_ok()
                    },
                )
            });
            if frame.is_empty() {
                return;
            }
            if self.span.send(&tap.node, frame.clone()) {
                self.span.counts.packets_out += 1;
                self.span.counts.bytes_out += frame.len() as u64;
            }
        }
    }

    /// Asks the origin of each remote track for the layers this node's subscribers need
    /// (video: what their targets need, kept on for a while like a local publisher's layers;
    /// audio: its one layer while anyone here receives it). Only changes are sent.
    pub(super) fn want_remote_layers(&mut self, now: Instant) {
        let _ = now;
        let mut wants: Vec<(Arc<str>, Control)> = Vec::new();
        for publication in self.router.publications_mut() {
            let Some(origin) = publication.origin.clone() else {
                continue;
            };
            let needed = if publication.kind == TrackKind::Audio {
                let mut needed = [false; 3];
                if !publication.subscriptions.is_empty() {
                    for l in publication.present_layers() {
                        needed[l.index()] = true;
                    }
                }
                needed
            } else {
                publication.announced_layers.unwrap_or_default()
            };
            if publication.link_wanted == Some(needed) {
                continue;
            }
            let was = publication.link_wanted.is_some_and(|w| w != [false; 3]);
            let is = needed != [false; 3];
            if was != is {
                if is {
                    self.totals.link_tracks_in.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.totals.link_tracks_in.fetch_sub(1, Ordering::Relaxed);
                }
            }
            publication.link_wanted = Some(needed);
            wants.push((
                origin,
                Control::Want {
                    track: publication.id.to_string(),
                    layers: needed,
                },
            ));
        }
        for (node, message) in wants {
            self.span_send(&node, &message);
        }
    }

    /// A remote participant is gone: its tracks leave every subscriber here.
    fn remove_remote(&mut self, key: u64, reason: LeaveReason) {
        let tracks = self
            .span
            .remotes
            .get(&key)
            .map(|r| r.tracks.clone())
            .unwrap_or_default();
        for track in tracks {
            self.unpublish(&track);
        }
        let Some(remote) = self.span.remove_remote(key) else {
            return;
        };
        self.forget_speaker(key);
        self.broadcast(
            0,
            ServerMessage::ParticipantLeft {
                participant_id: remote.id.to_string(),
                identity: remote.identity,
                reason,
            },
        );
    }

    /// A node no longer serves this room (it said goodbye, or its link went down).
    pub(super) fn drop_peer(&mut self, node: &str) {
        if self.span.peers.remove(node).is_none() {
            return;
        }
        info!(room = %self.id, peer = %node, "another node left the room");
        for key in self.span.remotes_of(node) {
            self.remove_remote(key, LeaveReason::Disconnected);
        }
        let mut removed = 0;
        for publication in self.router.publications_mut() {
            let before = publication.taps.len();
            publication.taps.retain(|t| &*t.node != node);
            removed += before - publication.taps.len();
        }
        self.totals
            .link_tracks_out
            .fetch_sub(removed as i64, Ordering::Relaxed);
    }

    /// The room closes here: the other nodes are told.
    pub(super) fn leave_span(&mut self) {
        self.span_broadcast(&Control::Bye);
        let nodes: Vec<Arc<str>> = self.span.peers.keys().cloned().collect();
        for node in nodes {
            self.drop_peer(&node);
        }
    }

    /// Adds the room's link counts to the SFU's totals.
    pub(super) fn flush_link_counts(&mut self) {
        let c = std::mem::take(&mut self.span.counts);
        let add = |counter: &std::sync::atomic::AtomicU64, v: u64| {
            if v > 0 {
                counter.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.totals.link_packets_out, c.packets_out);
        add(&self.totals.link_bytes_out, c.bytes_out);
        add(&self.totals.link_packets_in, c.packets_in);
        add(&self.totals.link_bytes_in, c.bytes_in);
        add(&self.totals.link_frames_dropped, c.frames_dropped);
    }

    /// Participants other nodes serve, as the signaling protocol describes them.
    pub(super) fn remote_infos(&self) -> Vec<ParticipantInfo> {
        self.span
            .remotes
            .values()
            .map(|r| {
                let mut tracks: Vec<protocol::TrackInfo> = r
                    .tracks
                    .iter()
                    .filter_map(|t| self.router.get(t))
                    .map(|p| p.info())
                    .collect();
                tracks.sort_by_key(|t| kind_index(t.kind));
                ParticipantInfo {
                    id: r.id.to_string(),
                    identity: r.identity.clone(),
                    name: r.name.clone(),
                    tracks,
                }
            })
            .collect()
    }

    /// The participant id of a local or remote participant.
    pub(super) fn participant_id_of(&self, key: u64) -> Option<String> {
        self.participants
            .get(&key)
            .map(|p| p.id.to_string())
            .or_else(|| self.span.remotes.get(&key).map(|r| r.id.to_string()))
    }
}

/// How a local track is described to the other nodes.
fn published(publication: &Publication) -> Control {
    let mut ssrcs = [None; 3];
    for (i, layer) in publication.layers.iter().enumerate() {
        ssrcs[i] = layer.as_ref().map(|l| l.ssrc);
    }
    Control::Published {
        owner: publication.owner_id.clone(),
        track: publication.info(),
        codec: Codec::from_rtc(&publication.codec),
        audio_level_id: publication.audio_level_id,
        ssrcs,
    }
}
