//! In a cluster, admin, WHIP and WHEP requests about a room go to the node that serves it ([`to_owner`]): a
//! middleware in front of the API. A request about one participant of a room that spans nodes
//! goes to the node serving that participant. A request about a room this node serves, about no
//! room, or forwarded by another node is served here. It never changes a request; the node
//! that answers checks the token as for any request.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sfu::RoomId;

use crate::cluster_link::FORWARDED;
use crate::state::AppState;

/// The room a `/api/rooms/{room}/...`, `/whip/{room}/...` or `/whep/{room}/...` path is
/// about.
fn room_of(path: &str) -> Option<&str> {
    ["/api/rooms/", "/whip/", "/whep/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))?
        .split('/')
        .next()
        .filter(|r| !r.is_empty())
}

/// Middleware: a request about a room this node does not serve, but another live node does,
/// is answered by that node. Everything else (and every request another node forwarded) is
/// served here.
pub async fn to_owner(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(link) = &state.cluster else {
        return next.run(request).await;
    };
    if request.headers().contains_key(FORWARDED) {
        return next.run(request).await;
    }
    let Some(room) = room_of(request.uri().path()).map(str::to_owned) else {
        return next.run(request).await;
    };
    if let Some(identity) = participant_of(request.uri().path())
        && let Ok(nodes) = link.cluster.rooms().await
    {
        // A room that spans nodes: the participant's own node answers.
        let serving = nodes.into_iter().find(|n| {
            n.rooms.iter().any(|r| {
                r.summary.name == room && r.participants.iter().any(|p| p.identity == identity)
            })
        });
        if let Some(serving) = serving {
            if serving.node == link.cluster.node_id() {
                return next.run(request).await;
            }
            if let Some(node) = link
                .cluster
                .nodes()
                .into_iter()
                .find(|n| n.id == serving.node)
            {
                return link.forward(&node, request).await;
            }
        }
    }
    let local = RoomId::new(&room).is_ok_and(|id| state.sfu.has_room(&id));
    if local {
        return next.run(request).await;
    }
    match link.cluster.owner(&room).await {
        Ok(Some(node)) if node.id != link.cluster.node_id() => link.forward(&node, request).await,
        _ => next.run(request).await,
    }
}

/// The participant a `/api/rooms/{room}/participants/{identity}...` path is about.
fn participant_of(path: &str) -> Option<&str> {
    let mut parts = path.strip_prefix("/api/rooms/")?.split('/');
    parts.next()?;
    (parts.next()? == "participants")
        .then(|| parts.next())
        .flatten()
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_paths_name_their_room() {
        assert_eq!(room_of("/api/rooms/demo"), Some("demo"));
        assert_eq!(room_of("/api/rooms/demo/participants/ann"), Some("demo"));
        assert_eq!(room_of("/api/rooms"), None);
        assert_eq!(room_of("/api/rooms/"), None);
        assert_eq!(room_of("/api/recordings"), None);
        assert_eq!(
            participant_of("/api/rooms/demo/participants/ann/tracks/TR_1/mute"),
            Some("ann")
        );
        assert_eq!(
            participant_of("/api/rooms/demo/participants/ann"),
            Some("ann")
        );
        assert_eq!(participant_of("/api/rooms/demo/participants/"), None);
        assert_eq!(participant_of("/api/rooms/demo"), None);
        assert_eq!(participant_of("/api/rooms/demo/close"), None);
    }
}
