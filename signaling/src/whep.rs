//! WHEP playback: `POST /whep/{room}` with a join token (`canSubscribe`) and an SDP offer
//! (recvonly audio and video) answers with one participant's audio and video: the one named
//! by `?participant=<identity>`, or else the room's active speaker at that moment (the
//! loudest, else the latest heard, else the first to publish video). The viewer is a hidden
//! participant that receives only those tracks; it does not follow the speaker afterwards.
//! `DELETE` on the answer's `Location` ends it.
//!
//! It never opens a room (an empty room has nothing to play), never touches media and never
//! parses SDP itself.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use protocol::Grants;
use serde::Deserialize;
use sfu::{JoinParams, SessionCommand};
use tracing::info;

use crate::media_resources::{
    self, Kind, MAX_SDP, ResourceError, Resources, admit, created, negotiate, offer_body,
};
use crate::state::AppState;

/// Longest identity a viewer may ask for.
const MAX_IDENTITY: usize = 128;

/// The WHEP routes (the caller adds the registry as an [`Extension`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/whep/{room}", post(play).options(media_resources::options))
        .route(
            "/whep/{room}/{id}",
            axum::routing::delete(end)
                .patch(media_resources::no_patch)
                .options(media_resources::options),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP))
}

#[derive(Deserialize)]
struct PlayQuery {
    /// The identity to watch; none: the active speaker.
    participant: Option<String>,
}

/// `POST /whep/{room}`: receive one participant's audio and video.
async fn play(
    State(state): State<AppState>,
    Extension(resources): Extension<Arc<Resources>>,
    Path(room): Path<String>,
    Query(query): Query<PlayQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ResourceError> {
    let (claims, room_id) = admit(&state, &headers, &room)?;
    if !claims.grants.can_subscribe {
        return Err(ResourceError::Forbidden(
            "this token does not grant canSubscribe; use a token that may subscribe".into(),
        ));
    }
    let wanted = query.participant.filter(|p| !p.is_empty());
    if wanted.as_ref().is_some_and(|p| p.len() > MAX_IDENTITY) {
        return Err(ResourceError::BadRequest(format!(
            "participant must be at most {MAX_IDENTITY} characters"
        )));
    }
    let (sdp, media) = offer_body(&headers, &body)?;
    if media.receiving == 0 {
        return Err(ResourceError::BadRequest(
            "the offer receives no audio or video: add recvonly audio and video transceivers"
                .into(),
        ));
    }
    if !state.sfu.has_room(&room_id) {
        return Err(ResourceError::NotFound(format!(
            "room {room:?} is not open here: nobody is in it"
        )));
    }
    if state.drain.is_draining() {
        return Err(ResourceError::Unavailable(
            "this server is draining before it goes away; try again on another server".into(),
        ));
    }
    if !resources.has_room_for_one() {
        return Err(ResourceError::Unavailable(
            "this server holds as many WHIP and WHEP sessions as it may; try again later".into(),
        ));
    }
    // Unique per viewer: one token may watch many times, and never replaces its holder's
    // own participant in the room.
    let identity = format!("{}#whep-{:08x}", claims.sub, rand::random::<u32>());
    let params = JoinParams {
        identity,
        name: claims.sub.clone(),
        grants: Grants {
            can_publish: false,
            can_subscribe: false,
            can_publish_data: false,
            hidden: true,
            room_admin: false,
            recorder: false,
        },
        ice_servers: Vec::new(),
    };
    let command = SessionCommand::ViewerOffer {
        sdp,
        participant: wanted,
    };
    let (session, answer) = negotiate(&state, room_id.clone(), params, command).await?;
    let participant = session.participant_id.clone();
    let id = resources.hold(Kind::Whep, claims.sub, session);
    info!(room = %room_id, %participant, "WHEP session started");
    Ok(created(Kind::Whep, &room_id, &id, answer))
}

/// `DELETE /whep/{room}/{id}`: the viewer leaves the room.
async fn end(
    State(state): State<AppState>,
    Extension(resources): Extension<Arc<Resources>>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ResourceError> {
    media_resources::end(Kind::Whep, &state, &resources, &room, &id, &headers).await
}
