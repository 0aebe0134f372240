//! What WHIP ingest and WHEP playback share: checking the bearer token, the content type and
//! the SDP offer of a request; the errors they answer with (plain text that says what to do
//! next, with the right status); taking a room session through one offer/answer; and the
//! registry of live resources (`/whip/{room}/{id}`, `/whep/{room}/{id}`), each held by a task
//! that drains its session's events until the room ends it or a `DELETE` does.
//!
//! It never touches media or parses SDP itself (the `sfu` crate does), never logs a token,
//! and never panics on what a client sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{Claims, ErrorCode, LeaveReason, ServerMessage};
use sfu::{JoinError, JoinParams, RoomId, Session, SessionCommand, SessionEvent};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::auth::AuthError;
use crate::state::AppState;

/// Largest SDP offer accepted (browsers' offers are a few KiB; OBS's smaller).
pub(crate) const MAX_SDP: usize = 64 * 1024;
/// How long the room may take to answer an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most live WHIP and WHEP resources on one server.
const MAX_RESOURCES: usize = 2000;

/// Why a WHIP or WHEP request was refused. The message is meant for the person at the
/// client (OBS shows it) and says what to do next.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResourceError {
    /// No token, or one that does not verify (401 with `WWW-Authenticate: Bearer`).
    #[error("{message}")]
    Unauthorized { message: String, token_given: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("send the SDP offer as the body with Content-Type: application/sdp")]
    UnsupportedMediaType,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The server cannot take it now (full, draining, shutting down): 503 with `Retry-After`.
    #[error("{0}")]
    Unavailable(String),
    /// In a cluster: the room is served by another node (307 to the same path there).
    #[error("this room is served by {0}")]
    Elsewhere(String),
}

impl IntoResponse for ResourceError {
    fn into_response(self) -> Response {
        let status = match &self {
            ResourceError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ResourceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ResourceError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ResourceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ResourceError::NotFound(_) => StatusCode::NOT_FOUND,
            ResourceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ResourceError::Elsewhere(_) => StatusCode::TEMPORARY_REDIRECT,
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ResourceError::Unauthorized { token_given, .. } => {
                let challenge = if *token_given {
                    "Bearer realm=\"switchyard\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"switchyard\""
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            ResourceError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ResourceError::Elsewhere(url) => {
                if let Ok(location) = HeaderValue::from_str(url) {
                    headers.insert(header::LOCATION, location);
                }
            }
            _ => {}
        }
        response
    }
}

/// WHIP (publish) or WHEP (play).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Whip,
    Whep,
}

impl Kind {
    /// The path segment: `whip` or `whep`.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Whip => "whip",
            Kind::Whep => "whep",
        }
    }
}

/// Verifies the request's bearer token and that it admits to `room`; returns its claims and
/// the room's id.
pub(crate) fn admit(
    state: &AppState,
    headers: &HeaderMap,
    room: &str,
) -> Result<(Claims, RoomId), ResourceError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(ResourceError::Unauthorized {
            message: "send a join token for this room as Authorization: Bearer <token> (in OBS: \
                      Settings, Stream, Bearer Token)"
                .into(),
            token_given: false,
        });
    };
    let claims = state.tokens.verify(token).map_err(|e| {
        let message = match e {
            AuthError::Expired => "the token has expired; mint a new one and try again".into(),
            other => format!("{other}; use a join token minted by this server"),
        };
        ResourceError::Unauthorized {
            message,
            token_given: true,
        }
    })?;
    let room_id = RoomId::new(room).map_err(|e| ResourceError::BadRequest(e.to_string()))?;
    if claims.room != room {
        return Err(ResourceError::Forbidden(format!(
            "this token admits to room {:?}, not {room:?}; use a token for this room",
            claims.room
        )));
    }
    Ok((claims, room_id))
}

/// Checks the content type and reads the body as an SDP offer with audio or video.
pub(crate) fn offer_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, sfu::OfferMedia), ResourceError> {
    let sdp_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp_type {
        return Err(ResourceError::UnsupportedMediaType);
    }
    let sdp = std::str::from_utf8(body)
        .map_err(|_| ResourceError::BadRequest("the SDP offer is not UTF-8 text".into()))?;
    let media = sfu::inspect_offer(sdp).map_err(|e| ResourceError::BadRequest(e.to_string()))?;
    Ok((sdp.to_owned(), media))
}

/// In a cluster, finds where `room` lives before joining it here (as a WebSocket join does):
/// another node's room is a redirect to the same path there.
pub(crate) async fn place(
    state: &AppState,
    room: &RoomId,
    path: &str,
) -> Result<(), ResourceError> {
    if state.drain.is_draining() && state.cluster.is_none() {
        return Err(ResourceError::Unavailable(
            "this server is draining before it goes away; try again on another server".into(),
        ));
    }
    let Some(link) = &state.cluster else {
        return Ok(());
    };
    if state.sfu.has_room(room) {
        return Ok(());
    }
    match link.cluster.place(room.as_str()).await {
        Ok(cluster::Placement::Here) if state.drain.is_draining() => Err(
            ResourceError::Unavailable("this node is draining; try again in a moment".into()),
        ),
        Ok(cluster::Placement::Here) => Ok(()),
        Ok(cluster::Placement::Elsewhere(node)) => Err(ResourceError::Elsewhere(format!(
            "{}{path}",
            node.url.trim_end_matches('/')
        ))),
        Err(e) => {
            warn!(error = %e, %room, "cannot place a room");
            Err(ResourceError::Unavailable(format!(
                "the cluster cannot place this room now ({e}); try again"
            )))
        }
    }
}

/// Joins `room`, hands the room `command` (an offer) and waits for the answer's SDP. A
/// refused offer ends the session again.
pub(crate) async fn negotiate(
    state: &AppState,
    room: RoomId,
    params: JoinParams,
    command: SessionCommand,
) -> Result<(Session, String), ResourceError> {
    let mut session = state.sfu.join(room, params).await.map_err(|e| match e {
        JoinError::RoomFull { .. } | JoinError::NodeFull { .. } => {
            ResourceError::Unavailable(format!("{e}; try again later"))
        }
        JoinError::NotCreated(_) | JoinError::NoSuchRoom(_) => {
            ResourceError::NotFound(e.to_string())
        }
        JoinError::ShuttingDown => ResourceError::Unavailable(e.to_string()),
        JoinError::Engine(_) => {
            warn!(error = %e, "join failed");
            ResourceError::Unavailable("the server could not set up media; try again".into())
        }
    })?;
    let gone = || ResourceError::Unavailable("the room closed; try again".into());
    if !session.handle.send(command).await {
        return Err(gone());
    }
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            match session.events.recv().await {
                Some(SessionEvent::Message(ServerMessage::Answer { sdp, .. })) => {
                    return Ok(sdp);
                }
                Some(SessionEvent::Message(ServerMessage::Error { code, message })) => {
                    return Err(match code {
                        ErrorCode::UnknownParticipant => ResourceError::NotFound(message),
                        ErrorCode::PermissionDenied => ResourceError::Forbidden(message),
                        _ => ResourceError::BadRequest(message),
                    });
                }
                Some(SessionEvent::Message(_)) => continue,
                Some(SessionEvent::Closed(_)) | None => return Err(gone()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(ResourceError::Unavailable(
            "the room did not answer in time; try again".into(),
        ))
    });
    match answer {
        Ok(sdp) => Ok((session, sdp)),
        Err(e) => {
            session
                .handle
                .send(SessionCommand::Leave(LeaveReason::Left))
                .await;
            Err(e)
        }
    }
}

/// One live resource.
struct Resource {
    kind: Kind,
    room: RoomId,
    /// The identity of the token that created it (the same may delete it).
    owner: String,
    /// Tells its task to leave the room; the task answers once the room has been told.
    stop: oneshot::Sender<oneshot::Sender<()>>,
}

/// The live WHIP and WHEP resources of this server, by id.
#[derive(Default)]
pub(crate) struct Resources {
    live: Mutex<HashMap<String, Resource>>,
}

/// Why a `DELETE` found nothing to end.
pub(crate) enum EndError {
    Unknown,
    NotYours,
}

impl Resources {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resource>> {
        // Held for map operations only, which never panic; recover from poisoning anyway.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether another resource may be made.
    pub fn has_room_for_one(&self) -> bool {
        self.live().len() < MAX_RESOURCES
    }

    /// Registers `session` as a new resource and drains its events in a task of its own
    /// until the room ends it or [`Resources::end`] does. Returns its unguessable id.
    pub fn hold(self: &Arc<Self>, kind: Kind, owner: String, mut session: Session) -> String {
        let id = random_id();
        let (stop_tx, mut stop_rx) = oneshot::channel::<oneshot::Sender<()>>();
        let room = session.room.clone();
        self.live().insert(
            id.clone(),
            Resource {
                kind,
                room: room.clone(),
                owner,
                stop: stop_tx,
            },
        );
        let resources = Arc::clone(self);
        let key = id.clone();
        tokio::spawn(async move {
            let participant = session.participant_id.clone();
            let ended_by = loop {
                tokio::select! {
                    event = session.events.recv() => match event {
                        // Nobody reads what the room tells the participant (it has no
                        // signaling connection); draining keeps its queue from filling.
                        Some(SessionEvent::Message(_)) => continue,
                        Some(SessionEvent::Closed(reason)) => break format!("room: {reason:?}"),
                        None => break "room closed".to_owned(),
                    },
                    ack = &mut stop_rx => {
                        session.handle.send(SessionCommand::Leave(LeaveReason::Left)).await;
                        if let Ok(ack) = ack {
                            let _ = ack.send(());
                        }
                        break "DELETE".to_owned();
                    }
                }
            };
            resources.live().remove(&key);
            info!(kind = kind.segment(), %room, %participant, %ended_by, "resource ended");
        });
        id
    }

    /// Ends resource `id` of `room` for the token of `identity` (or a room admin): its
    /// participant leaves the room before this returns.
    pub async fn end(
        &self,
        kind: Kind,
        room: &RoomId,
        id: &str,
        identity: &str,
        admin: bool,
    ) -> Result<(), EndError> {
        let stop = {
            let mut live = self.live();
            let resource = live
                .get(id)
                .filter(|r| r.kind == kind && &r.room == room)
                .ok_or(EndError::Unknown)?;
            if resource.owner != identity && !admin {
                return Err(EndError::NotYours);
            }
            live.remove(id).map(|r| r.stop).ok_or(EndError::Unknown)?
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        if stop.send(ack_tx).is_ok() {
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, ack_rx).await;
        }
        Ok(())
    }
}

/// 128 random bits as hex: a resource's id, which only its creator learns.
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The `201 Created` answer to an offer: the SDP answer, and where the resource lives.
pub(crate) fn created(kind: Kind, room: &RoomId, id: &str, answer: String) -> Response {
    let location = format!("/{}/{room}/{id}", kind.segment());
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/sdp")],
        answer,
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `DELETE /{whip,whep}/{room}/{id}` with the token that created it (or a room admin's for
/// that room): the participant leaves the room. 200, or 404 for a resource that is not live.
pub(crate) async fn end(
    kind: Kind,
    state: &AppState,
    resources: &Resources,
    room: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, ResourceError> {
    let (claims, room_id) = admit(state, headers, room)?;
    match resources
        .end(kind, &room_id, id, &claims.sub, claims.grants.room_admin)
        .await
    {
        Ok(()) => Ok((StatusCode::OK, "ended\n").into_response()),
        Err(EndError::Unknown) => Err(ResourceError::NotFound(format!(
            "no live {} session at this URL (it has ended, or the URL is wrong)",
            kind.segment().to_uppercase()
        ))),
        Err(EndError::NotYours) => Err(ResourceError::Forbidden(
            "this session was started with another identity's token; end it with that token".into(),
        )),
    }
}

/// `PATCH` (ICE trickle and restart) is not supported: 405, saying what to do instead.
pub(crate) async fn no_patch() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::ALLOW, "DELETE, OPTIONS"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "ICE trickle and restart (PATCH) are not supported: put every candidate in the offer \
         (wait for ICE gathering to complete); to restart, DELETE this session and POST a new \
         offer\n",
    )
        .into_response()
}

/// `OPTIONS`: what may be sent (CORS preflight headers come from [`cors`]).
pub(crate) async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "POST, DELETE, OPTIONS"),
            (
                header::HeaderName::from_static("accept-post"),
                "application/sdp",
            ),
        ],
    )
        .into_response()
}

/// Lets pages of any origin use WHIP and WHEP: they authenticate with a bearer token, never a
/// cookie, so no origin gains anything another could not do; `Location` is readable.
pub(crate) async fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "POST, DELETE, PATCH, OPTIONS",
        ),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, If-Match",
        ),
        (
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            "Location, Link, ETag",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
