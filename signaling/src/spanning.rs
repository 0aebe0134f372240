//! Rooms larger than one node, signaling's part: after a join in a cluster, the node reads
//! which other nodes serve parts of the room (its owner and its parts, in Redis), makes sure a
//! link to each is up, and tells the room to greet them ([`link_span`]); a background loop does
//! the same for every local room that spans, so a link that dropped comes back and a node that
//! joined the room later is greeted ([`keep_linked`]). It never touches media: the room and the
//! link carry it.

use std::time::Duration;

use sfu::RoomId;
use tracing::debug;

use crate::node_link::ensure_link;
use crate::state::AppState;

/// How often the rooms that span are checked.
const RECHECK: Duration = Duration::from_secs(2);

/// Links `room` to every other node serving it; nothing when it lives on this node alone.
pub(crate) async fn link_span(state: &AppState, room: &RoomId) -> bool {
    let Some(link) = &state.cluster else {
        return false;
    };
    let peers = match link.cluster.span_peers(room.as_str()).await {
        Ok(peers) => peers,
        Err(e) => {
            debug!(%room, error = %e, "cannot read which nodes serve the room");
            return false;
        }
    };
    if peers.is_empty() {
        return false;
    }
    let dials = peers.iter().map(|node| ensure_link(state, node));
    let linked: Vec<String> = futures::future::join_all(dials)
        .await
        .into_iter()
        .zip(&peers)
        .filter(|(result, _)| result.is_ok())
        .map(|(_, node)| node.id.clone())
        .collect();
    if !linked.is_empty() {
        state.sfu.span(room, linked);
    }
    true
}

/// Keeps every local room that spans linked to the other nodes serving it, until shutdown.
pub async fn keep_linked(state: AppState) {
    loop {
        tokio::select! {
            _ = state.cancel.cancelled() => return,
            _ = tokio::time::sleep(RECHECK) => {}
        }
        let Some(link) = &state.cluster else {
            return;
        };
        let rooms: Vec<String> = state
            .sfu
            .room_names()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        let Ok(spanning) = link.cluster.spanning(&rooms).await else {
            continue;
        };
        for room in spanning {
            if let Ok(room) = RoomId::new(&room) {
                link_span(&state, &room).await;
            }
        }
    }
}
