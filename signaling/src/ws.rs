//! One browser's signaling WebSocket: authenticate the join, then relay between the client's
//! JSON messages and its room's session.
//!
//! Every client mistake gets a typed `error` message (see `docs/signaling.md`); fatal ones are
//! followed by a close code. `leave` or a close frame ends the session; a connection that breaks,
//! goes silent for the keepalive timeout, or closes with 4000 parks it for `resume` (the
//! `resume` module), and a `resume` as the first message takes one back. While the server
//! drains, joins are refused and sessions are told when they end. Nothing a client sends can
//! panic this task or affect another connection. It never touches media or parses SDP: offers,
//! answers and candidates go to the room's session as they came.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use protocol::{ClientMessage, CloseReason, ErrorCode, LeaveReason, ResumeInfo, ServerMessage};
use sfu::{JoinError, JoinParams, RoomId, Session, SessionCommand, SessionEvent};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::auth::AuthError;
use crate::inbound::{self, Action, Fatal, Incoming, parse_frame};
use crate::ip_limits::IpShare;
use crate::rate_limit::{self, Budget, Verdict};
use crate::resume::Parking;
use crate::state::AppState;

/// How long a new connection may take to send `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Close code for a connection that stopped sending keepalives.
const CLOSE_KEEPALIVE: u16 = 4008;
/// Close code for a client that kept sending over its message budget (policy violation).
const CLOSE_RATE_LIMITED: u16 = 1008;
/// Close code for a join refused while the server drains ("try again later").
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// Close code for a connection whose session a newer connection resumed.
const CLOSE_RESUMED_ELSEWHERE: u16 = 4009;
/// How long a closing connection waits for the client's close reply before dropping it.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let text = match serde_json::to_string(message) {
        Ok(t) => t,
        Err(_) => return false,
    };
    socket
        .send(Message::Text(Utf8Bytes::from(text)))
        .await
        .is_ok()
}

/// Sends a close frame, then lets the client's close reply (or whatever it still had in flight)
/// arrive before the socket is dropped: dropping a socket with unread input resets the
/// connection, and the reset can overtake the close frame and the messages before it.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let sent = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_owned()),
        })))
        .await;
    if sent.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(frame)) = socket.recv().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn fail(socket: &mut WebSocket, fatal: Fatal) {
    let _ = send(
        socket,
        &ServerMessage::Error {
            code: fatal.code,
            message: fatal.message.clone(),
        },
    )
    .await;
    let close_code = fatal.code.close_code().unwrap_or(1008);
    close(socket, close_code, fatal.code_str()).await;
}

/// Serves one WebSocket until the client leaves, goes silent, or the server shuts down.
///
/// `host` is the HTTP Host the client connected to; TURN URLs use it when no host is set.
pub async fn serve(mut socket: WebSocket, state: AppState, host: Option<String>, ip: IpShare) {
    let _counted = crate::metrics::ConnectionGuard::new(&state.metrics);
    // One budget for the connection's life, the messages before `join` included.
    let mut budget = Budget::new(state.config.message_limits, Instant::now()).shared_with(ip);
    let session = tokio::select! {
        joined = wait_for_join(&mut socket, &state, host.as_deref(), &mut budget) => joined,
        _ = state.cancel.cancelled() => {
            close(&mut socket, 1001, "server shutting down").await;
            return;
        }
    };
    let start = match session {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(fatal) => {
            fail(&mut socket, fatal).await;
            return;
        }
    };
    relay(socket, start, &state, budget).await;
}

/// A session this connection serves: newly joined, or taken back with `resume`.
struct Start {
    session: Session,
    /// The token that lets a later connection take this session back.
    resume_token: String,
    /// `Some` for a resumed session: what the room said while no connection was there.
    missed: Option<Vec<ServerMessage>>,
}

/// How a connection's relay ended.
enum End {
    /// The participant leaves the room now.
    Leave(LeaveReason),
    /// The connection dropped: the session waits for `resume`.
    Dropped,
    /// A newer connection resumed this session: park it for that one, then say so.
    TakenOver(oneshot::Sender<()>),
}

/// Reads messages until a valid `join`; answers mistakes before it without giving up.
async fn wait_for_join(
    socket: &mut WebSocket,
    state: &AppState,
    host: Option<&str>,
    budget: &mut Budget,
) -> Result<Option<Start>, Fatal> {
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(f) => f,
            Err(_) => {
                return Err(Fatal::new(
                    ErrorCode::Unauthorized,
                    "send a join message with an access token within 10 seconds",
                ));
            }
        };
        let incoming = parse_frame(frame, state.config.max_message_size);
        match spend(socket, budget, &incoming, Instant::now()).await {
            Spent::Yes => {}
            // A join (or resume) over the budget (its address's, usually: a busy NAT) would
            // otherwise wait for the join timeout: close with "try again later" at once.
            Spent::Refused
                if matches!(
                    incoming,
                    Incoming::Message(ClientMessage::Join { .. } | ClientMessage::Resume { .. })
                ) =>
            {
                close(socket, CLOSE_TRY_AGAIN_LATER, "rate limited").await;
                return Ok(None);
            }
            Spent::Refused => continue,
            Spent::Disconnect => {
                close(socket, CLOSE_RATE_LIMITED, "rate limited").await;
                return Ok(None);
            }
        }
        match incoming {
            // A lone server that drains takes no join; a cluster node may still send the
            // client to another node (`join`).
            Incoming::Message(ClientMessage::Join { .. })
                if state.drain.is_draining() && state.cluster.is_none() =>
            {
                refuse_draining(socket).await;
                return Ok(None);
            }
            Incoming::Message(ClientMessage::Join { room, token }) => {
                match join(state, &room, &token, host).await? {
                    Joining::Here(session) => {
                        return Ok(Some(Start {
                            session,
                            resume_token: Parking::new_token(),
                            missed: None,
                        }));
                    }
                    Joining::Elsewhere(node) => {
                        info!(%room, node = %node.id, "join redirected to the room's node");
                        let redirect = ServerMessage::Redirect {
                            url: node.ws_url(),
                            node: node.id,
                        };
                        send(socket, &redirect).await;
                        close(socket, protocol::CLOSE_REDIRECT, "redirect").await;
                        return Ok(None);
                    }
                    Joining::Draining => {
                        refuse_draining(socket).await;
                        return Ok(None);
                    }
                }
            }
            Incoming::Message(ClientMessage::Resume { token }) => {
                if let Some(resumed) = state.parking.claim(&token).await {
                    return Ok(Some(Start {
                        session: resumed.session,
                        resume_token: token,
                        missed: Some(resumed.missed),
                    }));
                }
                let message = ServerMessage::Error {
                    code: ErrorCode::ResumeFailed,
                    message: "this session cannot be resumed (the resume window is over, or it \
                              left the room); send join with an access token"
                        .into(),
                };
                send(socket, &message).await;
            }
            Incoming::Message(ClientMessage::Ping { ts }) => {
                send(socket, &ServerMessage::Pong { ts }).await;
            }
            Incoming::Message(_) => {
                send(
                    socket,
                    &ServerMessage::Error {
                        code: ErrorCode::NotJoined,
                        message: "send join first".into(),
                    },
                )
                .await;
            }
            Incoming::Mistake(code, message) => {
                send(socket, &ServerMessage::Error { code, message }).await;
            }
            Incoming::Fatal(f) => return Err(f),
            Incoming::Closed { .. } => return Ok(None),
            Incoming::Alive => {}
        }
    }
}

/// Going away: join elsewhere, or here once the server is back.
async fn refuse_draining(socket: &mut WebSocket) {
    send(
        socket,
        &ServerMessage::Closed {
            reason: CloseReason::Draining,
        },
    )
    .await;
    close(socket, CLOSE_TRY_AGAIN_LATER, "draining").await;
}

/// Where a valid join goes.
enum Joining {
    /// Joined on this node.
    Here(Session),
    /// In a cluster: the room is served by another node.
    Elsewhere(cluster::NodeInfo),
    /// This node drains and the room is its own.
    Draining,
}

async fn join(
    state: &AppState,
    room: &str,
    token: &str,
    host: Option<&str>,
) -> Result<Joining, Fatal> {
    if token.is_empty() {
        return Err(Fatal::new(
            ErrorCode::Unauthorized,
            "the join message has no access token",
        ));
    }
    let claims = state.tokens.verify(token).map_err(|e| match e {
        AuthError::Expired => Fatal::new(ErrorCode::TokenExpired, e.to_string()),
        other => Fatal::new(ErrorCode::Unauthorized, other.to_string()),
    })?;
    let room_id = RoomId::new(room).map_err(|e| Fatal::new(ErrorCode::WrongRoom, e.to_string()))?;
    if claims.room != room {
        return Err(Fatal::new(
            ErrorCode::WrongRoom,
            format!(
                "this token admits to room {:?}, not {:?}; get a token for this room",
                claims.room, room
            ),
        ));
    }
    // In a cluster, a room served here takes the join at once (even while Redis is away, or
    // this node drains: the heartbeat re-asserts its claim, and moves it if another node
    // holds it); any other room is placed first.
    if let Some(link) = &state.cluster
        && !state.sfu.has_room(&room_id)
    {
        match link.cluster.place(room).await {
            Ok(cluster::Placement::Here) => {}
            // A node a full node sent this join to serves a part of the room itself.
            Ok(cluster::Placement::Elsewhere(node)) => {
                if !link.cluster.serves_part(room).await.unwrap_or(false) {
                    return Ok(Joining::Elsewhere(node));
                }
            }
            Err(e) => {
                warn!(error = %e, %room, "cannot place a room");
                return Err(Fatal::new(
                    ErrorCode::Internal,
                    format!("the cluster cannot place this room now ({e}); try again"),
                ));
            }
        }
        if state.drain.is_draining() {
            return Ok(Joining::Draining);
        }
    }
    let name = if claims.name.is_empty() {
        claims.sub.clone()
    } else {
        claims.name.clone()
    };
    let mut ice_servers = state.config.ice_servers.clone();
    if let Some(turn) = &state.config.turn {
        ice_servers.push(turn.ice_server(&claims.sub, host));
    }
    let params = JoinParams {
        identity: claims.sub,
        name,
        grants: claims.grants,
        ice_servers,
    };
    let joined = state.sfu.join(room_id.clone(), params).await;
    // This node serves as many of the room's participants as it may: the room spans to
    // another node, where the join is sent.
    if let (Err(JoinError::NodeFull { limit, .. }), Some(link)) = (&joined, &state.cluster) {
        return match link.cluster.span_to(room, *limit).await {
            Ok(Some(node)) => {
                info!(%room, node = %node.id, "this node's part of the room is full; the join goes to another node");
                Ok(Joining::Elsewhere(node))
            }
            Ok(None) => Err(Fatal::new(
                ErrorCode::RoomFull,
                "the room is full: every node of the cluster serves as many of its participants \
                 as it may; try again later",
            )),
            Err(e) => Err(Fatal::new(
                ErrorCode::Internal,
                format!("the cluster cannot place this participant now ({e}); try again"),
            )),
        };
    }
    let session = joined.map_err(|e| match e {
        JoinError::RoomFull { .. } | JoinError::NodeFull { .. } => {
            Fatal::new(ErrorCode::RoomFull, e.to_string())
        }
        JoinError::ShuttingDown => Fatal::new(ErrorCode::Internal, e.to_string()),
        JoinError::NoSuchRoom(_) | JoinError::NotCreated(_) => {
            Fatal::new(ErrorCode::WrongRoom, e.to_string())
        }
        JoinError::Engine(_) => {
            warn!(error = %e, "join failed");
            Fatal::new(
                ErrorCode::Internal,
                "the server could not set up media; try again",
            )
        }
    })?;
    if state.cluster.is_some() {
        crate::spanning::link_span(state, &room_id).await;
    }
    Ok(Joining::Here(session))
}

/// What the budget made of one incoming frame.
enum Spent {
    Yes,
    /// Over budget: dropped (the client was told on the first of a window).
    Refused,
    /// The client keeps going over its budget: close the connection.
    Disconnect,
}

/// Charges an incoming frame to the connection's budget by its cost (control frames and closes
/// are free), telling the client the first time in a window that it is over.
async fn spend(
    socket: &mut WebSocket,
    budget: &mut Budget,
    incoming: &Incoming,
    now: Instant,
) -> Spent {
    let charge = match incoming {
        Incoming::Message(message) => rate_limit::cost(message),
        Incoming::Mistake(..) => 2,
        _ => 0,
    };
    if charge == 0 {
        return Spent::Yes;
    }
    match budget.charge(charge, now) {
        Verdict::Allow => Spent::Yes,
        Verdict::Refuse { first } => {
            if first {
                let message = ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    message: "too many messages: slow down; messages over the limit are \
                              dropped, and a client that keeps going is disconnected"
                        .into(),
                };
                send(socket, &message).await;
            }
            Spent::Refused
        }
        Verdict::Disconnect => Spent::Disconnect,
    }
}

/// Relays between a joined client and its room.
async fn relay(mut socket: WebSocket, start: Start, state: &AppState, mut budget: Budget) {
    let Start {
        mut session,
        resume_token,
        missed,
    } = start;
    let window = state.parking.window();
    let mut nodes = state
        .cluster
        .as_ref()
        .map(|link| link.ws_urls())
        .unwrap_or_default();
    if let Some(missed) = missed {
        info!(room = %session.room, participant = %session.participant_id, missed = missed.len(), "signaling session resumed");
        let resumed = ServerMessage::Resumed {
            room: session.room.to_string(),
            participant_id: session.participant_id.to_string(),
            missed: missed.len(),
        };
        let mut delivered = send(&mut socket, &resumed).await;
        for message in missed {
            if delivered {
                delivered = send(&mut socket, &message).await;
            }
        }
        if !delivered {
            state.parking.park(resume_token, session).await;
            return;
        }
    } else {
        info!(room = %session.room, participant = %session.participant_id, "signaling session started");
    }
    let mut live = state.parking.live(&resume_token);
    let keepalive = state.config.keepalive_timeout;
    let mut last_heard = Instant::now();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut told_draining = false;
    let end = loop {
        tokio::select! {
            event = session.events.recv() => match event {
                Some(SessionEvent::Message(m)) => {
                    let m = with_session_info(m, &resume_token, window, &nodes);
                    if !send(&mut socket, &m).await {
                        break End::Dropped;
                    }
                }
                Some(SessionEvent::Closed(reason)) => {
                    // The room has already removed this participant.
                    say_closed(&mut socket, reason).await;
                    return;
                }
                None => {
                    close(&mut socket, 1011, "room closed").await;
                    return;
                }
            },
            frame = socket.recv() => {
                last_heard = Instant::now();
                let incoming = parse_frame(frame, state.config.max_message_size);
                match spend(&mut socket, &mut budget, &incoming, last_heard).await {
                    Spent::Yes => {}
                    Spent::Refused => continue,
                    Spent::Disconnect => {
                        warn!(participant = %session.participant_id, "over its message budget; disconnecting");
                        close(&mut socket, CLOSE_RATE_LIMITED, "rate limited").await;
                        break End::Leave(LeaveReason::Disconnected);
                    }
                }
                match incoming {
                    Incoming::Message(message) => {
                        match inbound::action(message) {
                            Action::Room(command) => {
                                if !session.handle.send(command).await {
                                    // The room has closed; what it said last is still queued.
                                    pass_on_last_words(&mut socket, &mut session).await;
                                    return;
                                }
                            }
                            Action::Reply(m) => {
                                send(&mut socket, &m).await;
                            }
                            Action::Leave(reason) => break End::Leave(reason),
                        }
                    }
                    Incoming::Mistake(code, message) => {
                        send(&mut socket, &ServerMessage::Error { code, message }).await;
                    }
                    Incoming::Fatal(f) => {
                        fail(&mut socket, f).await;
                        break End::Leave(LeaveReason::Disconnected);
                    }
                    // A close frame is a goodbye; a connection that just breaks may come back.
                    Incoming::Closed { clean: true } => break End::Leave(LeaveReason::Left),
                    Incoming::Closed { clean: false } => break End::Dropped,
                    Incoming::Alive => {}
                }
            }
            ack = live.taken() => break End::TakenOver(ack),
            _ = state.drain.started(), if !told_draining => {
                told_draining = true;
                let closes_in_secs = state.drain.closes_in().unwrap_or_default().as_secs();
                if !send(&mut socket, &ServerMessage::Draining { closes_in_secs }).await {
                    break End::Dropped;
                }
            }
            _ = check.tick() => {
                // In a cluster, the client learns of nodes that come and go: where to join
                // again if this one dies.
                if let Some(link) = &state.cluster {
                    let now = link.ws_urls();
                    if now != nodes {
                        nodes = now;
                        let update = ServerMessage::Nodes { nodes: nodes.clone() };
                        if !send(&mut socket, &update).await {
                            break End::Dropped;
                        }
                    }
                }
                if last_heard.elapsed() > keepalive {
                    info!(participant = %session.participant_id, "no keepalive; disconnecting");
                    close(&mut socket, CLOSE_KEEPALIVE, "keepalive timeout").await;
                    break End::Dropped;
                }
            }
        }
    };
    let participant = session.participant_id.clone();
    drop(live);
    match end {
        End::Dropped => state.parking.park(resume_token, session).await,
        End::TakenOver(ack) => {
            info!(%participant, "session resumed on a newer connection");
            state.parking.park(resume_token, session).await;
            let _ = ack.send(());
            close(&mut socket, CLOSE_RESUMED_ELSEWHERE, "resumed elsewhere").await;
        }
        End::Leave(reason) => {
            session.handle.send(SessionCommand::Leave(reason)).await;
            if reason == LeaveReason::Left {
                close(&mut socket, 1000, "bye").await;
            }
            info!(%participant, ?reason, "signaling session ended");
        }
    }
}

/// Adds what only signaling knows to the room's `joined`: the resume token, and in a cluster
/// the nodes a client can come back to.
fn with_session_info(
    message: ServerMessage,
    token: &str,
    window: Duration,
    nodes: &[String],
) -> ServerMessage {
    match message {
        ServerMessage::Joined {
            room,
            you,
            participants,
            ice_servers,
            ..
        } => ServerMessage::Joined {
            room,
            you,
            participants,
            ice_servers,
            resume: (!window.is_zero()).then(|| {
                Box::new(ResumeInfo {
                    token: token.to_owned(),
                    window_secs: window.as_secs(),
                })
            }),
            nodes: nodes.to_vec(),
        },
        other => other,
    }
}

/// Tells the client why the room let it go, then closes the connection properly.
async fn say_closed(socket: &mut WebSocket, reason: CloseReason) {
    send(socket, &ServerMessage::Closed { reason }).await;
    let code = if reason == CloseReason::ServerShutdown {
        1001
    } else {
        1000
    };
    close(socket, code, "closed").await;
}

/// The room ended while the client was still talking to it (an answer crossing a room close):
/// what the room said last, normally `closed`, is still queued. Passes it on instead of dropping
/// the connection without a word.
async fn pass_on_last_words(socket: &mut WebSocket, session: &mut Session) {
    // The room has dropped its end of the queue, so this ends at once; the bound is a safeguard.
    let last_word = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(event) = session.events.recv().await {
            match event {
                SessionEvent::Message(m) => {
                    if !send(socket, &m).await {
                        return None;
                    }
                }
                SessionEvent::Closed(reason) => return Some(reason),
            }
        }
        None
    })
    .await;
    match last_word {
        Ok(Some(reason)) => say_closed(socket, reason).await,
        _ => close(socket, 1011, "room closed").await,
    }
}
