//! Signaling's part in a cluster on Redis ([`ClusterLink`]): it starts the node's registry,
//! event publisher and event tail, tells where a joining client's room is served, sends admin
//! requests about a room to the node that serves it ([`to_owner`]), lists every node's rooms,
//! and streams every node's events. Without a cluster none of this runs. It never touches media:
//! a client always talks media with the node that serves its room.
//!
//! Joins reach the owner by redirect, not by a bridge: the receiving node answers `redirect`
//! with the owner's WebSocket URL and the client joins there. That needs clients to reach every
//! node directly (see `docs/cluster.md`), and in exchange no node carries another's signaling
//! and a node that dies takes only its own connections with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use cluster::events::{ClusterEvent, parse_id};
use cluster::registry::LocalRooms;
use cluster::{Cluster, NodeInfo};
use futures::{Stream, StreamExt};
use protocol::admin::{RoomDetail, RoomSummary};
use sfu::{AdminCommand, AdminReply, Sfu};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::drain::Drain;
use crate::recording::supervisor::Recordings;

/// Marks a request one node passed to another: the receiver serves it itself, never again
/// elsewhere (no loops).
pub const FORWARDED: &str = "x-switchyard-forwarded-by";
/// The largest request body forwarded (the admin API's own limit).
const MAX_FORWARDED_BODY: usize = 1024 * 1024;
/// How long a forwarded admin request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// This node's membership, as signaling uses it. Cloning is cheap.
#[derive(Clone)]
pub struct ClusterLink {
    pub cluster: Cluster,
    events: broadcast::Sender<Arc<ClusterEvent>>,
    /// The other nodes' periodic stats (no ids).
    stats: broadcast::Sender<Arc<ClusterEvent>>,
    wish: cluster::stats::StatsWish,
    http: reqwest::Client,
    /// The media links to other nodes (`node_link`).
    node_links: crate::node_links::NodeLinks,
}

impl ClusterLink {
    /// Starts the registry (until the cluster's cancel token fires; the handle ends once the
    /// node has deregistered), the event publisher and the event tail, and marks the node
    /// draining when `drain` starts.
    pub fn start(
        cluster: Cluster,
        sfu: Sfu,
        recordings: Recordings,
        drain: Drain,
    ) -> (ClusterLink, JoinHandle<()>) {
        let (events, _) = broadcast::channel(cluster::events::REPLAY);
        let local: LocalRooms = {
            let sfu = sfu.clone();
            Arc::new(move || {
                let sfu = sfu.clone();
                let recordings = recordings.clone();
                Box::pin(async move { local_rooms(&sfu, &recordings).await })
            })
        };
        let registry = tokio::spawn(cluster::registry::run(cluster.clone(), sfu.clone(), local));
        tokio::spawn(cluster.clone().publish_events(sfu.events().clone()));
        tokio::spawn(cluster.clone().tail_events(events.clone()));
        let (stats, _) = broadcast::channel(cluster::events::REPLAY);
        let wish = cluster::stats::StatsWish::default();
        tokio::spawn(
            cluster
                .clone()
                .share_stats_wish(sfu.events().clone(), wish.clone()),
        );
        tokio::spawn(cluster.clone().publish_stats(sfu.events().clone()));
        tokio::spawn(cluster.clone().receive_stats(stats.clone()));
        {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                drain.started().await;
                cluster.set_draining();
            });
        }
        let http = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .build()
            .unwrap_or_default();
        (
            ClusterLink {
                cluster,
                events,
                stats,
                wish,
                http,
                node_links: crate::node_links::NodeLinks::default(),
            },
            registry,
        )
    }

    /// The media links to other nodes: their bookkeeping and counters.
    pub fn node_links(&self) -> &crate::node_links::NodeLinks {
        &self.node_links
    }

    /// Whether any node's readers want periodic stats (then this node takes its rooms').
    pub fn stats_wish(&self) -> cluster::stats::StatsWish {
        self.wish.clone()
    }

    /// The WebSocket URLs of every live node (as last read), for `joined`.
    pub fn ws_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self.cluster.nodes().iter().map(NodeInfo::ws_url).collect();
        let here = cluster::ws_url(self.cluster.url());
        if !urls.contains(&here) {
            urls.insert(0, here);
        }
        urls
    }

    /// Whether `origin` (`http://host:port`) is a node's own, a dead one's included: its
    /// pages live on after it.
    pub fn is_node_origin(&self, origin: &str) -> bool {
        self.cluster.is_known_url(origin)
    }

    /// Passes `request` to `node` and its answer back.
    pub async fn forward(&self, node: &NodeInfo, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await else {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request bodies are limited to {MAX_FORWARDED_BODY} bytes"),
            );
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut outgoing = self
            .http
            .request(parts.method.clone(), format!("{}{path}", node.url))
            .header(FORWARDED, self.cluster.node_id())
            .body(body);
        for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
            if let Some(value) = parts.headers.get(&name) {
                outgoing = outgoing.header(name, value);
            }
        }
        // The caller's address, for the owner's per-client limits when it trusts this node as
        // a proxy (`[http] trusted_proxies`).
        if let Some(peer) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            let chain = match parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(earlier) => format!("{earlier}, {}", peer.0.ip()),
                None => peer.0.ip().to_string(),
            };
            outgoing = outgoing.header("x-forwarded-for", chain);
        }
        let answer = match outgoing.send().await {
            Ok(a) => a,
            Err(e) => {
                warn!(node = %node.id, error = %e, "a forwarded admin request failed");
                return failure(
                    StatusCode::BAD_GATEWAY,
                    "node_unreachable",
                    format!(
                        "the room's node {} did not answer; try again (if it died, its rooms \
                         are freed within seconds)",
                        node.id
                    ),
                );
            }
        };
        let status = answer.status();
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = answer.bytes().await.unwrap_or_default();
        let mut response = (status, Body::from(bytes)).into_response();
        if let Some(value) = content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        if let Ok(value) = HeaderValue::from_str(&node.id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-switchyard-node"), value);
        }
        response
    }

    /// The other live nodes' recordings (each asked with the caller's authorization), with
    /// absolute playlist URLs on their nodes; none for a request another node forwarded (it
    /// wants this node's only). A node that does not answer is left out.
    pub async fn remote_recordings(
        &self,
        request: &axum::http::HeaderMap,
    ) -> Vec<protocol::admin::RecordingInfo> {
        if request.contains_key(FORWARDED) {
            return Vec::new();
        }
        let authorization = request.get(header::AUTHORIZATION).cloned();
        let others: Vec<NodeInfo> = self
            .cluster
            .nodes()
            .into_iter()
            .filter(|n| n.id != self.cluster.node_id())
            .collect();
        let asks = others.iter().map(|node| {
            let mut request = self
                .http
                .get(format!("{}/api/recordings", node.url))
                .header(FORWARDED, self.cluster.node_id());
            if let Some(value) = &authorization {
                request = request.header(header::AUTHORIZATION, value.clone());
            }
            async move {
                let list: protocol::admin::RecordingList =
                    request.send().await.ok()?.json().await.ok()?;
                Some(
                    list.recordings
                        .into_iter()
                        .map(|mut r| {
                            r.playlist_url = format!("{}{}", node.url, r.playlist_url);
                            r
                        })
                        .collect::<Vec<_>>(),
                )
            }
        });
        futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    /// Every room of the cluster: this node's now, the others' as they last reported them.
    pub async fn list_rooms(&self, sfu: &Sfu, recordings: &Recordings) -> Vec<RoomSummary> {
        let here = self.cluster.node_id().to_owned();
        let mut rooms: Vec<RoomSummary> = local_rooms(sfu, recordings)
            .await
            .into_iter()
            .map(|r| with_node(r.summary, &here))
            .collect();
        match self.cluster.rooms().await {
            Ok(nodes) => {
                for node in nodes.into_iter().filter(|n| n.node != here) {
                    let id = node.node;
                    rooms.extend(node.rooms.into_iter().map(|r| with_node(r.summary, &id)));
                }
            }
            Err(e) => {
                warn!(error = %e, "listing the other nodes' rooms failed; listing this node's")
            }
        }
        // A room larger than one node is listed once, under its owner.
        let mut owners = HashMap::new();
        for name in crate::room_parts::spanning_names(&rooms) {
            if let Ok(Some(owner)) = self.cluster.owner(&name).await {
                owners.insert(name, owner.id);
            }
        }
        crate::room_parts::merge_listing(rooms, &owners)
    }

    /// Adds to this node's detail of a room the participants other nodes serve in it (a room
    /// larger than one node), as they last reported them.
    pub async fn with_other_parts(&self, detail: &mut RoomDetail) {
        let Ok(nodes) = self.cluster.rooms().await else {
            return;
        };
        let here = self.cluster.node_id().to_owned();
        let others = nodes
            .into_iter()
            .filter(|n| n.node != here)
            .filter_map(|n| {
                let node = n.node;
                n.rooms
                    .into_iter()
                    .find(|r| r.summary.name == detail.summary.name)
                    .map(|r| (node, r))
            })
            .collect();
        crate::room_parts::merge_detail(detail, &here, others);
    }

    /// The cluster's events for an SSE reader, after `last_id` (a stream id) when given, then
    /// live; `room` limits them to one room. Periodic stats (this node's and the others') join
    /// them live, without ids.
    pub async fn events(
        &self,
        sfu: &Sfu,
        last_id: Option<String>,
        room: Option<String>,
    ) -> impl Stream<Item = Event> + Send + 'static {
        let live = self.events.subscribe();
        let missed = match &last_id {
            Some(id) => self.cluster.events_since(id).await.unwrap_or_else(|e| {
                warn!(error = %e, "replaying events after Last-Event-ID failed");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let floor = missed
            .last()
            .map(|e| e.id.clone())
            .or(last_id)
            .and_then(|id| parse_id(&id));
        let live = received(live).filter(move |e| {
            let newer = parse_id(&e.id).is_some_and(|id| floor.is_none_or(|f| id > f));
            async move { newer }
        });
        let room_filter = room.clone();
        let cluster_events = futures::stream::iter(missed.into_iter().map(Arc::new))
            .chain(live)
            .filter(move |e| {
                let keep = room_filter.as_ref().is_none_or(|r| *r == e.room);
                async move { keep }
            })
            .map(|e| Event::default().id(&e.id).event(&e.kind).data(&e.data));
        // Stats, without ids: this node's from its event bus, the others' from the channel.
        let (_, local) = sfu.events().subscribe(Some(u64::MAX));
        let room_filter = room.clone();
        let local_stats = received(local)
            .filter(move |e| {
                let keep = e.kind == "stats" && room_filter.as_ref().is_none_or(|r| *r == e.room);
                async move { keep }
            })
            .map(|e| Event::default().event(e.kind).data(e.data.to_string()));
        let other_stats = received(self.stats.subscribe())
            .filter(move |e| {
                let keep = room.as_ref().is_none_or(|r| *r == e.room);
                async move { keep }
            })
            .map(|e| Event::default().event("stats").data(&e.data));
        let stats = futures::stream::select(local_stats, other_stats);
        futures::stream::select(cluster_events, stats)
    }
}

/// What a broadcast receiver gets, as a stream; a reader too slow for it skips ahead.
fn received<T: Clone + Send + 'static>(
    receiver: broadcast::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(item) => return Some((item, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

fn with_node(mut summary: RoomSummary, node: &str) -> RoomSummary {
    summary.node = Some(node.to_owned());
    summary
}

/// This node's rooms with their participants and recording states.
async fn local_rooms(sfu: &Sfu, recordings: &Recordings) -> Vec<RoomDetail> {
    let mut rooms = Vec::new();
    for room in sfu.room_names() {
        // A room that closes meanwhile is simply not listed.
        if let Ok(AdminReply::Room(mut detail)) = sfu.admin(&room, AdminCommand::Snapshot).await {
            detail.summary.recording_state =
                recordings.latest(&detail.summary.name).map(|r| r.state);
            rooms.push(*detail);
        }
    }
    rooms
}

fn failure(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}
