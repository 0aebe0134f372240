//! The broadcast part of the admin API: `POST /api/rooms/{room}/broadcast` starts a room's
//! broadcast (body: `{"public": bool, "layout": "grid" | "speaker"}`, both optional), `GET`
//! shows it, `DELETE` stops it. Admin token as for the rest of `/api`. It only checks and
//! translates; [`Broadcasts`](crate::broadcast::Broadcasts) does the work.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use protocol::admin::StartBroadcast;
use sfu::AdminCommand;

use crate::api::{Admin, Failure, json, room_id};
use crate::broadcast::supervisor::BroadcastError;
use crate::state::AppState;

/// The routes, merged into the API's.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/rooms/{room}/broadcast",
        post(start).get(show).delete(stop),
    )
}

impl From<BroadcastError> for Failure {
    fn from(error: BroadcastError) -> Self {
        let message = error.to_string();
        match error {
            BroadcastError::InProgress(_) => {
                Failure::new(StatusCode::CONFLICT, "broadcast_in_progress", message)
            }
            BroadcastError::NotBroadcasting(_) => {
                Failure::new(StatusCode::NOT_FOUND, "no_broadcast", message)
            }
            BroadcastError::Sidecar(error) => error.into(),
        }
    }
}

/// `POST /api/rooms/{room}/broadcast` → 201 with the broadcast.
async fn start(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    // An empty body takes the defaults (grid, not public).
    let request: StartBroadcast = if body.iter().all(u8::is_ascii_whitespace) {
        StartBroadcast::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "the body must be {{\"public\": bool, \"layout\": \"grid\" | \"speaker\"}}: {e}"
                ),
            )
        })?
    };
    // The room must be open (404 otherwise): a broadcast never opens one.
    state
        .sfu
        .admin(&room_id(&room)?, AdminCommand::Snapshot)
        .await?;
    let info = state.broadcasts.start_broadcast(&room, request)?;
    Ok(json(StatusCode::CREATED, info))
}

/// `GET /api/rooms/{room}/broadcast` → the running or recently ended broadcast.
async fn show(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    let live = state
        .broadcasts
        .get(&room)
        .ok_or_else(|| BroadcastError::NotBroadcasting(room.clone()))?;
    Ok(json(StatusCode::OK, live.info))
}

/// `DELETE /api/rooms/{room}/broadcast` → 200; viewers' playlists end.
async fn stop(
    admin: Admin,
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Failure> {
    admin.check_room(&room)?;
    let info = state.broadcasts.stop_broadcast(&room)?;
    Ok(json(StatusCode::OK, info))
}
