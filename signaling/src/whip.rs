//! WHIP ingest (RFC 9725): `POST /whip/{room}` with a join token (`canPublish`) and an SDP
//! offer (sendonly audio and/or video, candidates inside) publishes into the room as a
//! participant named after the token's `sub`, seen and received like any browser's. The answer
//! (`201`, with the server's candidates) names the session's URL in `Location`; `DELETE` there
//! ends it. The participant receives nothing (it never subscribes and is never offered to).
//!
//! It never touches media or parses SDP itself: the offer goes to the room as a publisher
//! offer on a session held by `media_resources`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use protocol::Grants;
use sfu::{JoinParams, SessionCommand};
use tracing::info;

use crate::media_resources::{
    self, Kind, MAX_SDP, ResourceError, Resources, admit, created, negotiate, offer_body,
};
use crate::state::AppState;

/// The WHIP routes (the caller adds the registry as an [`Extension`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/whip/{room}",
            post(publish).options(media_resources::options),
        )
        .route(
            "/whip/{room}/{id}",
            axum::routing::delete(end)
                .patch(media_resources::no_patch)
                .options(media_resources::options),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP))
}

/// `POST /whip/{room}`: publish the offer's tracks into the room.
async fn publish(
    State(state): State<AppState>,
    Extension(resources): Extension<Arc<Resources>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ResourceError> {
    let (claims, room_id) = admit(&state, &headers, &room)?;
    let grants = claims.grants.clone().effective();
    if !grants.can_publish {
        return Err(ResourceError::Forbidden(
            "this token does not grant canPublish; use a token that may publish".into(),
        ));
    }
    let (sdp, media) = offer_body(&headers, &body)?;
    if media.sending == 0 {
        return Err(ResourceError::BadRequest(
            "the offer sends no audio or video: add sendonly audio or video transceivers".into(),
        ));
    }
    if !resources.has_room_for_one() {
        return Err(ResourceError::Unavailable(
            "this server holds as many WHIP and WHEP sessions as it may; try again later".into(),
        ));
    }
    media_resources::place(&state, &room_id, &format!("/whip/{room}")).await?;
    let name = if claims.name.is_empty() {
        claims.sub.clone()
    } else {
        claims.name.clone()
    };
    let params = JoinParams {
        identity: claims.sub.clone(),
        name,
        grants: Grants {
            can_subscribe: false,
            can_publish_data: false,
            ..grants
        },
        ice_servers: Vec::new(),
    };
    let command = SessionCommand::PublisherOffer {
        sdp,
        sources: BTreeMap::new(),
    };
    let (session, answer) = negotiate(&state, room_id.clone(), params, command).await?;
    if state.cluster.is_some() {
        crate::spanning::link_span(&state, &room_id).await;
    }
    let participant = session.participant_id.clone();
    let id = resources.hold(Kind::Whip, claims.sub, session);
    info!(room = %room_id, %participant, "WHIP session started");
    Ok(created(Kind::Whip, &room_id, &id, answer))
}

/// `DELETE /whip/{room}/{id}`: the publisher leaves the room.
async fn end(
    State(state): State<AppState>,
    Extension(resources): Extension<Arc<Resources>>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ResourceError> {
    media_resources::end(Kind::Whip, &state, &resources, &room, &id, &headers).await
}
