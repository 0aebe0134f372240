//! The admin REST API under `/api` (`docs/admin-api.md`, `openapi.json`): list and inspect
//! rooms, create and close them, remove participants, mute tracks, change permissions, send
//! data from the server, mint tokens, and record rooms as HLS ([`crate::recording`]).
//!
//! Every route but the OpenAPI document needs `Authorization: Bearer <JWT>` with the
//! `roomAdmin` grant (checked by [`Admin`], before any body is read). Errors are JSON
//! `{"error": {"code", "message"}}` with messages meant for the operator, never internals.
//! A client that fails authentication too often is told to slow down (429); a valid token is
//! never refused that way. A client address over its request limit gets 429 `rate_limited`
//! ([`Failure::rate_limited`], from the router's per-address layer).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use base64::Engine;
use protocol::Grants;
use protocol::admin::{
    ApiError, ApiErrorBody, CreateRoom, MintToken, MintedToken, MuteTrack, RecordingList, RoomList,
    RoomSettings, SendData, UpdatePermissions, rfc3339,
};
use serde::Serialize;
use sfu::{AdminCommand, AdminError, AdminReply, RoomId};

use crate::auth::AuthError;
use crate::recording::error::RecordingError;
use crate::state::AppState;

pub use crate::auth_failures::{AuthFailures, DEFAULT_MAX_AUTH_FAILURES};

/// Largest request body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest lifetime of a token minted through the API.
const MAX_TOKEN_TTL: u64 = 24 * 3600;
/// The OpenAPI document describing these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API's routes, to be merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{room}", get(get_room).delete(close_room))
        .route(
            "/api/rooms/{room}/participants/{identity}",
            delete(remove_participant),
        )
        .route(
            "/api/rooms/{room}/participants/{identity}/tracks/{track}/mute",
            post(mute_track),
        )
        .route(
            "/api/rooms/{room}/participants/{identity}/permissions",
            patch(update_permissions),
        )
        .route("/api/rooms/{room}/data", post(send_data))
        .route(
            "/api/rooms/{room}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route("/api/recordings", get(list_recordings))
        .route("/api/recordings/{id}", get(get_recording))
        .route("/api/tokens", post(mint_token))
        .route("/api/events", get(stream_events))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// An API error: a status, a stable code and a message for the operator.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429 `rate_limited` for a client address over its request limit, with `Retry-After`
    /// (whole seconds, at least 1).
    pub fn rate_limited(wait: Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut failure = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests from your address; retry in {seconds} s (many people \
                 behind one address share its limit)"
            ),
        );
        failure.retry_after = Some(seconds);
        failure
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: ApiErrorBody {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        match &error {
            AdminError::NoSuchRoom(_)
            | AdminError::NoSuchParticipant { .. }
            | AdminError::NoSuchTrack { .. } => Failure::not_found(error.to_string()),
            AdminError::RoomExists(_) => {
                Failure::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            AdminError::Invalid(_) => Failure::bad_request(error.to_string()),
            AdminError::Unavailable => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                error.to_string(),
            ),
        }
    }
}

impl From<RecordingError> for Failure {
    fn from(error: RecordingError) -> Self {
        let message = error.to_string();
        match error {
            RecordingError::InProgress { .. } => {
                Failure::new(StatusCode::CONFLICT, "recording_in_progress", message)
            }
            RecordingError::Unavailable(_) => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "recorder_unavailable",
                message,
            ),
            RecordingError::NoRecording(_) => {
                Failure::new(StatusCode::NOT_FOUND, "no_recording", message)
            }
            RecordingError::NotFound(_) => Failure::not_found(message),
            RecordingError::Storage(_) => {
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
            RecordingError::ShuttingDown => {
                Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

/// A verified admin: the bearer of a valid token with the `roomAdmin` grant.
pub struct Admin {
    /// The room the token is limited to; `None`: every room.
    room: Option<String>,
}

impl Admin {
    pub(crate) fn check_room(&self, room: &str) -> Result<(), Failure> {
        match &self.room {
            Some(own) if own != room => Err(Failure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this admin token is for room {own:?} only"),
            )),
            _ => Ok(()),
        }
    }

    fn check_all_rooms(&self) -> Result<(), Failure> {
        match &self.room {
            Some(own) => Err(Failure::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this admin token is for room {own:?} only; listing rooms needs a token \
                     without a room"
                ),
            )),
            None => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let now = Instant::now();
        // The client, as the peer or, behind a trusted proxy, as the proxy names it: one
        // client's failures must not lock out everyone behind the same proxy.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| {
                let peer = info.0.ip().to_canonical();
                state.config.trusted_proxies.client_ip(peer, &parts.headers)
            });
        // The lockout slows down guessing: it answers only requests that fail anyway, so a
        // valid admin token is never refused by it.
        let fail = |status: StatusCode, code: &'static str, message: String| {
            let Some(address) = address else {
                return Failure::new(status, code, message);
            };
            if let Some(seconds) = state.auth_failures.retry_after(address, now) {
                let mut failure = Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    format!("too many failed authentications; retry in {seconds} s"),
                );
                failure.retry_after = Some(seconds);
                return failure;
            }
            state.auth_failures.record(address, now);
            Failure::new(status, code, message)
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(fail(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <admin token> (mint one with `switchyard token \
                 --admin`)"
                    .into(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(fail(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
        let claims = state.tokens.verify(token).map_err(|e| {
            let message = match e {
                AuthError::Expired => "the admin token has expired; mint a new one".to_owned(),
                other => other.to_string(),
            };
            fail(StatusCode::UNAUTHORIZED, "unauthorized", message)
        })?;
        if !claims.grants.room_admin {
            return Err(fail(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token lacks the roomAdmin grant".into(),
            ));
        }
        Ok(Admin {
            room: (!claims.room.is_empty()).then_some(claims.room),
        })
    }
}

/// A JSON body whose rejections are API errors (400, or 413 over [`MAX_BODY`]).
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Failure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("request bodies are limited to {MAX_BODY} bytes"),
                ))
            }
            Err(rejection) => Err(Failure::bad_request(rejection.body_text())),
        }
    }
}

pub(crate) fn room_id(name: &str) -> Result<RoomId, Failure> {
    RoomId::new(name).map_err(|e| Failure::bad_request(e.to_string()))
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, axum::Json(value)).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_owned(),
    )
        .into_response()
}

async fn list_rooms(admin: Admin, State(state): State<AppState>) -> Result<Response, Failure> {
    admin.check_all_rooms()?;
    if let Some(link) = &state.cluster {
        let rooms = link.list_rooms(&state.sfu, &state.recordings).await;
        return Ok(json(StatusCode::OK, RoomList { rooms }));
    }
    let mut rooms = Vec::new();
    for room in state.sfu.room_names() {
        // A room that closes meanwhile is simply not listed.
        if let Ok(AdminReply::Room(detail)) = state.sfu.admin(&room, AdminCommand::Snapshot).await {
            let mut summary = detail.summary;
            summary.recording_state = state.recordings.latest(&summary.name).map(|r| r.state);
            rooms.push(summary);
        }
    }
    Ok(json(StatusCode::OK, RoomList { rooms }))
}

async fn create_room(
    admin: Admin,
    State(state): State<AppState>,
    Body(body): Body<CreateRoom>,
) -> Result<Response, Failure> {
    admin.check_room(&body.name)?;
    let room = room_id(&body.name)?;
    let defaults = state.sfu.default_room_settings();
    let settings = RoomSettings {
        max_participants: body.max_participants.unwrap_or(defaults.max_participants),
        empty_timeout_seconds: body
            .empty_timeout_seconds
            .unwrap_or(defaults.empty_timeout_seconds),
        codecs: body.codecs.iter().map(|c| c.to_ascii_lowercase()).collect(),
    };
    if !(1..=1000).contains(&settings.max_participants) {
        return Err(Failure::bad_request("maxParticipants must be 1 to 1000"));
    }
    if settings.empty_timeout_seconds > 86_400 {
        return Err(Failure::bad_request(
            "emptyTimeoutSeconds must be at most 86400",
        ));
    }
    if let Some(bad) = settings
        .codecs
        .iter()
        .find(|c| !matches!(c.as_str(), "vp8" | "vp9" | "h264"))
    {
        return Err(Failure::bad_request(format!(
            "unknown codec {bad:?}: use vp8, vp9 or h264"
        )));
    }
    if let Some(link) = &state.cluster {
        // The room lives on this node, unless a node already serves it.
        match link.cluster.claim_here(&body.name).await {
            Ok(cluster::Placement::Here) => {}
            Ok(cluster::Placement::Elsewhere(node)) => {
                return Err(Failure::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("room {:?} already exists on node {}", body.name, node.id),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                ));
            }
        }
    }
    state.sfu.create_room(room.clone(), &settings)?;
    match state.sfu.admin(&room, AdminCommand::Snapshot).await? {
        AdminReply::Room(mut detail) => {
            detail.summary.node = state
                .cluster
                .as_ref()
                .map(|link| link.cluster.node_id().to_owned());
            Ok(json(StatusCode::CREATED, detail.summary))
        }
        _ => Err(AdminError::Unavailable.into()),
    }
}

async fn get_room(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    match state
        .sfu
        .admin(&room_id(&room)?, AdminCommand::Snapshot)
        .await?
    {
        AdminReply::Room(mut detail) => {
            detail.recording = state.recordings.latest(&room);
            detail.summary.recording_state = detail.recording.as_ref().map(|r| r.state);
            detail.summary.node = state
                .cluster
                .as_ref()
                .map(|link| link.cluster.node_id().to_owned());
            if let Some(link) = &state.cluster {
                link.with_other_parts(&mut detail).await;
            }
            Ok(json(StatusCode::OK, detail))
        }
        _ => Err(AdminError::Unavailable.into()),
    }
}

/// `POST /api/rooms/{room}/recording`: starts the HLS sidecar for an open room → 201.
async fn start_recording(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    // The room must be open (404 otherwise): a recorder never opens one.
    state
        .sfu
        .admin(&room_id(&room)?, AdminCommand::Snapshot)
        .await?;
    let info = state.recordings.start_recording(&room)?;
    Ok(json(StatusCode::CREATED, info))
}

/// `DELETE /api/rooms/{room}/recording`: asks the running recording to finish → 200.
async fn stop_recording(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    room_id(&room)?;
    let info = state.recordings.stop_recording(&room)?;
    Ok(json(StatusCode::OK, info))
}

/// `GET /api/recordings`: newest first; a room-scoped admin sees its room's only.
async fn list_recordings(
    admin: Admin,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let mut recordings = state.recordings.list(admin.room.as_deref());
    // In a cluster, every node's recordings.
    if let Some(link) = &state.cluster {
        recordings.extend(link.remote_recordings(&headers).await);
        recordings.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    }
    json(StatusCode::OK, RecordingList { recordings })
}

/// `GET /api/recordings/{id}`.
async fn get_recording(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Failure> {
    let info = match (state.recordings.get(&id), &state.cluster) {
        (Ok(info), _) => info,
        (Err(RecordingError::NotFound(_)), Some(link)) => link
            .remote_recordings(&headers)
            .await
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(RecordingError::NotFound(id.clone()))?,
        (Err(e), _) => return Err(e.into()),
    };
    if admin.check_room(&info.room).is_err() {
        // Another room's recording is not this admin's to know about.
        return Err(RecordingError::NotFound(id).into());
    }
    Ok(json(StatusCode::OK, info))
}

async fn close_room(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    state
        .sfu
        .admin(&room_id(&room)?, AdminCommand::Close)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_participant(
    admin: Admin,
    State(state): State<AppState>,
    Path((room, identity)): Path<(String, String)>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    state
        .sfu
        .admin(&room_id(&room)?, AdminCommand::Remove { identity })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn mute_track(
    admin: Admin,
    State(state): State<AppState>,
    Path((room, identity, track)): Path<(String, String, String)>,
    Body(body): Body<MuteTrack>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    let command = AdminCommand::MuteTrack {
        identity,
        track,
        muted: body.muted,
    };
    match state.sfu.admin(&room_id(&room)?, command).await? {
        AdminReply::Track(track) => Ok(json(StatusCode::OK, track)),
        _ => Err(AdminError::Unavailable.into()),
    }
}

async fn update_permissions(
    admin: Admin,
    State(state): State<AppState>,
    Path((room, identity)): Path<(String, String)>,
    Body(body): Body<UpdatePermissions>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    let room = room_id(&room)?;
    let AdminReply::Room(detail) = state.sfu.admin(&room, AdminCommand::Snapshot).await? else {
        return Err(AdminError::Unavailable.into());
    };
    let current = detail
        .participants
        .iter()
        .find(|p| p.identity == identity)
        .ok_or_else(|| AdminError::NoSuchParticipant {
            room: room.to_string(),
            identity: identity.clone(),
        })?;
    let grants = Grants {
        can_publish: body.can_publish.unwrap_or(current.grants.can_publish),
        can_subscribe: body.can_subscribe.unwrap_or(current.grants.can_subscribe),
        can_publish_data: body
            .can_publish_data
            .unwrap_or(current.grants.can_publish_data),
        ..current.grants.clone()
    };
    match state
        .sfu
        .admin(&room, AdminCommand::UpdateGrants { identity, grants })
        .await?
    {
        AdminReply::Participant(participant) => Ok(json(StatusCode::OK, participant)),
        _ => Err(AdminError::Unavailable.into()),
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    room: Option<String>,
}

/// `GET /api/events`: Server-Sent Events, optionally for one room, resuming after
/// `Last-Event-ID` from the bounded history.
async fn stream_events(
    admin: Admin,
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<EventsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Failure> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let room = match (&admin.room, query.room) {
        (Some(own), Some(asked)) if *own != asked => {
            admin.check_room(&asked)?;
            None
        }
        (Some(own), _) => Some(own.clone()),
        (None, asked) => asked,
    };
    let last_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    if let Some(link) = &state.cluster {
        // Every node's events, from the cluster's stream; ids are the stream's.
        let interest = state.sfu.events().want_stats(room.as_deref());
        let stream = link
            .events(&state.sfu, last_header, room)
            .await
            .map(move |event| {
                let _reading = &interest;
                Ok::<_, std::convert::Infallible>(event)
            })
            .take_until(state.cancel.clone().cancelled_owned());
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let last_id = last_header.and_then(|v| v.parse::<u64>().ok());
    let (missed, live) = state.sfu.events().subscribe(last_id);
    // Stats are taken while someone reads them: this reader, for as long as it reads.
    let interest = state.sfu.events().want_stats(room.as_deref());
    let live = futures::stream::unfold(live, |mut live| async move {
        loop {
            match live.recv().await {
                Ok(event) => return Some((event, live)),
                // A reader too slow for the live stream skips ahead (ids show the gap).
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures::stream::iter(missed)
        .chain(live)
        .filter(move |event| {
            let keep = room.as_ref().is_none_or(|r| *r == event.room);
            async move { keep }
        })
        .map(move |event| {
            let _reading = &interest;
            Ok::<_, std::convert::Infallible>(
                Event::default()
                    .id(event.id.to_string())
                    .event(event.kind)
                    .data(event.data.to_string()),
            )
        })
        .take_until(state.cancel.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Every 2 s while someone wants them (an event stream reader, or webhooks configured with
/// stats): a `stats` event per wanted room with its bitrates and each participant's tracks
/// (bitrate, loss, jitter). While nobody wants them, no room is asked for a snapshot. They go
/// to live readers only, never into the event history.
///
/// In a cluster, `wish` says whether another node's readers want stats: then every room's are
/// taken here too (and the cluster's stats channel carries them there).
pub async fn publish_stats(
    sfu: sfu::Sfu,
    wish: Option<cluster::stats::StatsWish>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut wanted = sfu.events().stats_wanted();
        if wish.as_ref().is_some_and(|w| w.wanted()) {
            wanted = sfu::events::StatsWanted::AllRooms;
        }
        if wanted == sfu::events::StatsWanted::None {
            continue;
        }
        for room in sfu.room_names() {
            if !wanted.includes(room.as_str()) {
                continue;
            }
            let Ok(AdminReply::Room(detail)) = sfu.admin(&room, AdminCommand::Snapshot).await
            else {
                continue;
            };
            let participants: Vec<serde_json::Value> = detail
                .participants
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "identity": p.identity,
                        "state": p.state,
                        "candidateType": p.candidate_type,
                        "rttMs": p.rtt_ms,
                        "tracks": p.tracks.iter().map(|t| serde_json::json!({
                            "id": t.id, "kind": t.kind, "codec": t.codec, "muted": t.muted,
                            "bitrate": t.bitrate, "lossRate": t.loss_rate,
                            "jitterMs": t.jitter_ms, "width": t.width, "height": t.height,
                            "fps": t.fps,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            sfu.events().emit_live(
                "stats",
                room.as_str(),
                serde_json::json!({
                    "participantCount": detail.summary.participant_count,
                    "bitrateIn": detail.summary.bitrate_in,
                    "bitrateOut": detail.summary.bitrate_out,
                    "participants": participants,
                }),
            );
        }
    }
}

#[derive(Serialize)]
struct Delivered {
    delivered: usize,
}

async fn send_data(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
    Body(body): Body<SendData>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    let payload = match (body.text, body.base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| Failure::bad_request(format!("base64 is not valid base64: {e}")))?,
        _ => return Err(Failure::bad_request("give exactly one of text and base64")),
    };
    let command = AdminCommand::SendData {
        topic: body.topic,
        payload,
        to: body.to,
    };
    match state.sfu.admin(&room_id(&room)?, command).await? {
        AdminReply::Delivered(delivered) => Ok(json(StatusCode::ACCEPTED, Delivered { delivered })),
        _ => Err(AdminError::Unavailable.into()),
    }
}

async fn mint_token(
    admin: Admin,
    State(state): State<AppState>,
    Body(body): Body<MintToken>,
) -> Result<Response, Failure> {
    if body.room.is_empty() {
        admin.check_all_rooms()?;
    } else {
        admin.check_room(&body.room)?;
        room_id(&body.room)?;
    }
    if body.identity.is_empty() || body.identity.len() > 128 {
        return Err(Failure::bad_request("identity must be 1 to 128 characters"));
    }
    let ttl = body.ttl_seconds.unwrap_or(3600);
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(Failure::bad_request(format!(
            "ttlSeconds must be 1 to {MAX_TOKEN_TTL}"
        )));
    }
    let name = if body.name.is_empty() {
        body.identity.clone()
    } else {
        body.name.clone()
    };
    let token = state
        .tokens
        .mint(&body.identity, &name, &body.room, body.grants, ttl);
    let expires_at = rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + ttl,
    );
    Ok(json(StatusCode::OK, MintedToken { token, expires_at }))
}
