//! The links between the nodes of a cluster that serve parts of the same rooms: one WebSocket
//! per pair of nodes (`GET /cluster/link`), authenticated by the cluster's shared API secret
//! and carrying media frames sealed with AES-256-GCM ([`cluster::link_seal`]), one binary
//! message per frame.
//!
//! - The accepting side is the route [`routes`] adds (only on a node of a cluster); the
//!   dialling side is [`ensure_link`] , which dials a node unless a
//!   link to it is up. The handshake (three binary messages) must finish within
//!   [`HANDSHAKE_TIMEOUT`]; a failure is logged and counted, and the socket closed.
//! - A link that is up is registered in the media plane's [`sfu::links::Links`] under the
//!   peer's node id: a writer seals what the rooms queue there, a reader opens what arrives
//!   and hands it to the link's [`sfu::link_inbox::LinkInbox`] (which may wait: that holds the
//!   peer back).
//! - Any error (a frame that fails to open, a replay, a closed or silent socket) ends the
//!   connection; if it was the peer's current link, [`sfu::Sfu::link_closed`] tells the rooms.
//!   Both sides ping every [`PING_EVERY`] and give up after [`SILENCE_LIMIT`] without any
//!   message, so a node killed outright is noticed within seconds.
//!
//! When two nodes dial each other at once, both connections live: the one registered last
//! carries what this node sends, and both are read until they close.
//!
//! It never interprets a frame (they are opaque bytes to it), never touches a room, and never
//! logs the secret or a frame. A node whose URL is `https://` is dialled over TLS
//! (`node_link/tls.rs`, which explains why its certificate need not be from a public CA).

mod tls;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use cluster::NodeInfo;
use cluster::link_seal::Initiator;
use cluster::link_seal::{self, Acceptor, LinkError, Opener, Sealer};
use futures::{Sink, SinkExt, Stream, StreamExt};
use sfu::Sfu;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use wire::{Incoming, Outgoing, WireError};

pub use crate::node_links::NodeLinks;

use crate::state::AppState;

/// The route of the accepting side.
pub const LINK_PATH: &str = "/cluster/link";
/// How long a whole handshake (and, dialling, the connection before it) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often each side pings the other.
pub const PING_EVERY: Duration = Duration::from_secs(2);
/// How long a link may stay silent (not even a ping or pong) before it is closed.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(6);
/// The largest message a link takes (a sealed frame).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Frames sealed into the socket's buffer before it is flushed.
const FLUSH_BATCH: usize = 64;
/// How long a closing link waits for its close frame to go out.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Why a node link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NodeLinkError {
    /// This server is not a node of a cluster.
    #[error("this server is not part of a cluster: node links need [cluster]")]
    NoCluster,
    /// A node does not link to itself.
    #[error("node {0} is this node itself; it needs no link")]
    ToSelf(String),
    /// The node is not among the live nodes this node knows.
    #[error("node {0} is not among the cluster's live nodes (dead, or not registered yet)")]
    UnknownNode(String),
    /// The WebSocket could not be opened.
    #[error("cannot open a link to node {node} at {url}: {detail}")]
    Connect {
        node: String,
        url: String,
        detail: String,
    },
    /// The connection and handshake took longer than [`HANDSHAKE_TIMEOUT`].
    #[error("the link handshake with {peer} did not finish within 5 s")]
    Timeout { peer: String },
    /// The peer went away during the handshake.
    #[error(
        "the link handshake with {peer} failed: {detail} (does it share the cluster's prefix and \
         api_secret, and run the same release?)"
    )]
    Closed { peer: String, detail: String },
    /// The handshake itself failed (wrong secret, another cluster, the wrong node...).
    #[error(transparent)]
    Handshake(#[from] LinkError),
}

impl NodeLinkError {
    /// Whether this failure counts as a failed handshake (the socket was open).
    fn is_handshake_failure(&self) -> bool {
        matches!(
            self,
            NodeLinkError::Timeout { .. }
                | NodeLinkError::Closed { .. }
                | NodeLinkError::Handshake(_)
        )
    }
}

/// What either side of a link needs: this node's identity in the cluster, the secret, the
/// media plane and the bookkeeping. Cloning is cheap.
#[derive(Clone)]
pub struct LinkContext {
    sfu: Sfu,
    secret: Arc<[u8]>,
    prefix: String,
    me: String,
    links: NodeLinks,
    cancel: CancellationToken,
    /// The live nodes, for [`LinkContext::ensure_to`] (`None` in tests).
    cluster: Option<cluster::Cluster>,
}

impl LinkContext {
    /// The context of this node's links; `None` for a server outside a cluster.
    pub fn from_state(state: &AppState) -> Option<LinkContext> {
        let link = state.cluster.as_ref()?;
        Some(LinkContext {
            sfu: state.sfu.clone(),
            secret: state.tokens.secret().clone(),
            prefix: link.cluster.config().prefix.clone(),
            me: link.cluster.node_id().to_owned(),
            links: link.node_links().clone(),
            cancel: state.cancel.clone(),
            cluster: Some(link.cluster.clone()),
        })
    }
}

/// The routes of the accepting side: add them only on a node of a cluster.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(LINK_PATH, get(accept))
}

/// `GET /cluster/link`: a WebSocket on which another node proves it belongs to the cluster.
async fn accept(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    match LinkContext::from_state(&state) {
        Some(context) => accept_with(context, &extensions, upgrade),
        None => (StatusCode::NOT_FOUND, "not a node of a cluster").into_response(),
    }
}

/// Upgrades a request to the accepting side of a link.
fn accept_with(
    context: LinkContext,
    extensions: &axum::http::Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(permit) = context.links.try_accept() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many node-link handshakes at once; try again",
        )
            .into_response();
    };
    let address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "an unknown address".to_owned(), |c| c.0.to_string());
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let (mut tx, mut rx) = wire::axum_halves(socket);
            let handshake = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                accept_handshake(&context, &mut tx, &mut rx),
            )
            .await
            .unwrap_or_else(|_| {
                Err(NodeLinkError::Timeout {
                    peer: address.clone(),
                })
            });
            drop(permit);
            match handshake {
                Ok((peer, sealer, opener)) => {
                    info!(node = %peer, %address, "a node linked to this node");
                    start(&context, &peer, tx, rx, sealer, opener).await;
                }
                Err(error) => {
                    context.links.count_failure();
                    warn!(%address, %error, "a node-link handshake from another node failed");
                    close(&mut tx).await;
                }
            }
        })
}

/// The accepting side of the handshake: the peer's node id and this side's sealer and opener.
async fn accept_handshake<T, R>(
    context: &LinkContext,
    tx: &mut T,
    rx: &mut R,
) -> Result<(String, Sealer, Opener), NodeLinkError>
where
    T: Sink<Outgoing, Error = WireError> + Unpin,
    R: Stream<Item = Result<Incoming, WireError>> + Unpin,
{
    let closed = |peer: &str, detail: String| NodeLinkError::Closed {
        peer: peer.to_owned(),
        detail,
    };
    let hello = wire::next_binary(rx)
        .await
        .map_err(|d| closed("a dialling node", d))?;
    let (acceptor, reply, peer) =
        match Acceptor::on_hello(&context.secret, &context.prefix, &context.me, &hello) {
            Ok(answer) => answer,
            Err(error) => return Err(refuse(tx, error).await),
        };
    tx.send(Outgoing::Binary(reply.into()))
        .await
        .map_err(|e| closed(&peer, e.to_string()))?;
    let confirm = wire::next_binary(rx).await.map_err(|d| closed(&peer, d))?;
    match acceptor.on_confirm(&confirm) {
        Ok((sealer, opener)) => Ok((peer, sealer, opener)),
        Err(error) => Err(refuse(tx, error).await),
    }
}

/// Tells the peer why its handshake failed, when that helps it; returns the error.
async fn refuse<T>(tx: &mut T, error: LinkError) -> NodeLinkError
where
    T: Sink<Outgoing, Error = WireError> + Unpin,
{
    if let Some(reason) = error.refusal() {
        let refusal = Outgoing::Binary(link_seal::refusal_bytes(reason).into());
        // Best effort: the handshake failed either way.
        let _ = tokio::time::timeout(CLOSE_GRACE, tx.send(refusal)).await;
    }
    NodeLinkError::Handshake(error)
}

/// Sends a close frame, waiting at most [`CLOSE_GRACE`].
async fn close<T>(tx: &mut T)
where
    T: Sink<Outgoing, Error = WireError> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_GRACE, tx.send(Outgoing::Close)).await;
}

/// Why a link that was up ended.
#[derive(Debug, thiserror::Error)]
enum LinkEnd {
    #[error("this server is shutting down")]
    Shutdown,
    #[error("the peer closed the link")]
    PeerClosed,
    #[error("nothing arrived for 6 s (the peer died, or the network between the nodes is down)")]
    Silent,
    #[error("the peer sent a text message, which the link protocol never uses")]
    Text,
    #[error("the connection failed: {0}")]
    Socket(WireError),
    #[error(transparent)]
    Frame(LinkError),
}

/// Takes a link out of the SFU's table when its task ends, however it ends (a panic, or the
/// task dropped before it finished, included), and tells the rooms if it was the current link
/// to its peer: a link that is gone must never look up, or rooms would wait on it.
struct Registration {
    sfu: sfu::Sfu,
    peer: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.sfu.links().unregister(&self.peer, self.id) {
            self.sfu.link_closed(&self.peer);
        }
    }
}

/// Registers the link to `peer` and runs it until it ends; then takes it out and, if it was
/// the current link, tells the rooms.
fn start<T, R>(
    context: &LinkContext,
    peer: &str,
    tx: T,
    rx: R,
    sealer: Sealer,
    opener: Opener,
) -> impl Future<Output = ()> + Send + 'static
where
    T: Sink<Outgoing, Error = WireError> + Unpin + Send + 'static,
    R: Stream<Item = Result<Incoming, WireError>> + Unpin + Send + 'static,
{
    // Registered before the future first runs: a dialler's caller finds the link up.
    let (frames_tx, frames) = mpsc::channel::<Bytes>(sfu::links::LINK_QUEUE);
    let id = context.sfu.links().register(peer, frames_tx);
    let registration = Registration {
        sfu: context.sfu.clone(),
        peer: peer.to_owned(),
        id,
    };
    let guard = context.links.connection_up(peer);
    let context = context.clone();
    let peer = peer.to_owned();
    async move {
        let mut tx = tx;
        let mut rx = rx;
        let mut sealer = sealer;
        let mut opener = opener;
        let end = tokio::select! {
            end = write(&mut tx, frames, &mut sealer) => end,
            end = read(&context.sfu, &peer, &mut rx, &mut opener) => end,
            () = context.cancel.cancelled() => LinkEnd::Shutdown,
        };
        // A connection that failed is not closed politely: its sink, once it has returned an
        // error, must not be used again (it would panic, and this cleanup would never run).
        if !matches!(end, LinkEnd::Socket(_)) {
            close(&mut tx).await;
        }
        drop(registration);
        drop(guard);
        match &end {
            LinkEnd::Shutdown | LinkEnd::PeerClosed => {
                info!(node = %peer, link = id, reason = %end, "a node link closed")
            }
            _ => warn!(node = %peer, link = id, reason = %end, "a node link failed"),
        }
    }
}

/// Seals and sends what the rooms queue for the peer, and pings. A queue that closes (a newer
/// link to the same node replaced this one) leaves the connection up for reading.
async fn write<T>(tx: &mut T, mut frames: mpsc::Receiver<Bytes>, sealer: &mut Sealer) -> LinkEnd
where
    T: Sink<Outgoing, Error = WireError> + Unpin,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut queue_open = true;
    loop {
        tokio::select! {
            frame = frames.recv(), if queue_open => {
                let Some(frame) = frame else {
                    queue_open = false;
                    continue;
                };
                if let Err(end) = send_batch(tx, frame, &mut frames, sealer).await {
                    return end;
                }
            }
            _ = ping.tick() => {
                if let Err(e) = tx.send(Outgoing::Ping).await {
                    return LinkEnd::Socket(e);
                }
            }
        }
    }
}

/// Sends `first` and up to [`FLUSH_BATCH`] frames already queued behind it, with one flush.
async fn send_batch<T>(
    tx: &mut T,
    first: Bytes,
    frames: &mut mpsc::Receiver<Bytes>,
    sealer: &mut Sealer,
) -> Result<(), LinkEnd>
where
    T: Sink<Outgoing, Error = WireError> + Unpin,
{
    let mut next = Some(first);
    let mut fed = 0;
    while let Some(frame) = next.take() {
        let sealed = sealer.seal(&frame).map_err(LinkEnd::Frame)?;
        tx.feed(Outgoing::Binary(sealed.into()))
            .await
            .map_err(LinkEnd::Socket)?;
        fed += 1;
        if fed < FLUSH_BATCH {
            next = frames.try_recv().ok();
        }
    }
    tx.flush().await.map_err(LinkEnd::Socket)
}

/// Opens what the peer sends and hands it to the rooms, until the link ends. Only the wait
/// for a message is timed: a room that holds the link back does not make it silent.
async fn read<R>(sfu: &Sfu, peer: &str, rx: &mut R, opener: &mut Opener) -> LinkEnd
where
    R: Stream<Item = Result<Incoming, WireError>> + Unpin,
{
    let mut inbox = sfu.link_inbox(peer);
    loop {
        let message = match tokio::time::timeout(SILENCE_LIMIT, rx.next()).await {
            Err(_) => return LinkEnd::Silent,
            Ok(None) => return LinkEnd::PeerClosed,
            Ok(Some(Err(e))) => return LinkEnd::Socket(e),
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Incoming::Binary(sealed) => match opener.open(&sealed) {
                Ok(frame) => inbox.deliver(Bytes::from(frame)).await,
                Err(e) => return LinkEnd::Frame(e),
            },
            Incoming::Control => {}
            Incoming::Text => return LinkEnd::Text,
            Incoming::Close => return LinkEnd::PeerClosed,
        }
    }
}

// The dialling side: `ensure_link` opens a link to a node unless one is up, one dial per
// node at a time. It never retries: a caller that still needs the link asks again.

/// Makes sure a link to `node` is up: returns at once if it is, otherwise dials it (within
/// [`HANDSHAKE_TIMEOUT`]) and returns once the link is registered in `state.sfu.links()`.
/// Failures are logged here (a warning per node at most every 30 s, the others at debug
/// level) and handshake failures counted: callers need not log them.
pub async fn ensure_link(state: &AppState, node: &NodeInfo) -> Result<(), NodeLinkError> {
    LinkContext::from_state(state)
        .ok_or(NodeLinkError::NoCluster)?
        .ensure(node)
        .await
}

/// [`ensure_link`] to the node with the id `node`, as this node last read the registry.
pub async fn ensure_link_to(state: &AppState, node: &str) -> Result<(), NodeLinkError> {
    LinkContext::from_state(state)
        .ok_or(NodeLinkError::NoCluster)?
        .ensure_to(node)
        .await
}

/// The link URL of the node whose base URL is `base`: `http://h:p` → `ws://h:p/cluster/link`,
/// `https://` → `wss://`.
pub fn link_url(base: &str) -> String {
    let ws = cluster::ws_url(base);
    format!("{}{LINK_PATH}", ws.strip_suffix("/ws").unwrap_or(&ws))
}

impl LinkContext {
    /// [`ensure_link`] with a context held by the caller (a task that outlives a request).
    pub async fn ensure(&self, node: &NodeInfo) -> Result<(), NodeLinkError> {
        if node.id == self.me {
            return Err(NodeLinkError::ToSelf(node.id.clone()));
        }
        if self.sfu.links().is_up(&node.id) {
            return Ok(());
        }
        let gate = self.links.dial_gate(&node.id);
        let result = {
            let _turn = gate.lock().await;
            // Another caller may have dialled while this one waited.
            if self.sfu.links().is_up(&node.id) {
                Ok(())
            } else {
                self.dial(node).await
            }
        };
        self.links.release_gate(&node.id, gate);
        if let Err(error) = &result {
            if error.is_handshake_failure() {
                self.links.count_failure();
            }
            if self.links.should_warn(&node.id) {
                warn!(node = %node.id, url = %node.url, %error, "cannot link to another node");
            } else {
                debug!(node = %node.id, url = %node.url, %error, "cannot link to another node");
            }
        }
        result
    }

    /// [`LinkContext::ensure`] to the node with the id `node`, as this node last read the
    /// registry.
    pub async fn ensure_to(&self, node: &str) -> Result<(), NodeLinkError> {
        if node == self.me {
            return Err(NodeLinkError::ToSelf(node.to_owned()));
        }
        if self.sfu.links().is_up(node) {
            return Ok(());
        }
        let info = self
            .cluster
            .as_ref()
            .ok_or(NodeLinkError::NoCluster)?
            .nodes()
            .into_iter()
            .find(|n| n.id == node)
            .ok_or_else(|| NodeLinkError::UnknownNode(node.to_owned()))?;
        self.ensure(&info).await
    }

    /// Connects, handshakes and registers the link; its connection then runs on a task of
    /// its own.
    async fn dial(&self, node: &NodeInfo) -> Result<(), NodeLinkError> {
        let url = link_url(&node.url);
        let connect_error = |detail: String| NodeLinkError::Connect {
            node: node.id.clone(),
            url: url.clone(),
            detail,
        };
        let linked = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE));
            if url.starts_with("wss://") {
                let stream = tls::connect(&url).await.map_err(connect_error)?;
                let (socket, _) =
                    tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                        .await
                        .map_err(|e| connect_error(e.to_string()))?;
                self.initiate(node, wire::tungstenite_halves(socket)).await
            } else {
                // No Nagle: frames are media, each wanted at once.
                let (socket, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .map_err(|e| connect_error(e.to_string()))?;
                self.initiate(node, wire::tungstenite_halves(socket)).await
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(NodeLinkError::Timeout {
                peer: node.id.clone(),
            })
        });
        linked?;
        info!(node = %node.id, %url, "linked to another node");
        Ok(())
    }

    /// The initiator's side of the handshake on an open WebSocket; then the connection runs on
    /// a task of its own.
    async fn initiate<T, R>(
        &self,
        node: &NodeInfo,
        (mut tx, mut rx): (T, R),
    ) -> Result<(), NodeLinkError>
    where
        T: Sink<Outgoing, Error = WireError> + Unpin + Send + 'static,
        R: Stream<Item = Result<Incoming, WireError>> + Unpin + Send + 'static,
    {
        let closed = |detail: String| NodeLinkError::Closed {
            peer: node.id.clone(),
            detail,
        };
        let (initiator, hello) = Initiator::new(&self.secret, &self.prefix, &self.me, &node.id)?;
        tx.send(Outgoing::Binary(hello.into()))
            .await
            .map_err(|e| closed(e.to_string()))?;
        let reply = wire::next_binary(&mut rx).await.map_err(closed)?;
        let (confirm, sealer, opener) = match initiator.on_reply(&reply) {
            Ok(keys) => keys,
            Err(error) => return Err(refuse(&mut tx, error).await),
        };
        tx.send(Outgoing::Binary(confirm.into()))
            .await
            .map_err(|e| closed(e.to_string()))?;
        tokio::spawn(start(self, &node.id, tx, rx, sealer, opener));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
