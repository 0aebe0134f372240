//! A room larger than one node, as the admin API shows it: one entry per room in listings (the
//! participants of every node added up, `node` the node that owns it, `nodes` every node
//! serving it), and a room's detail with every node's participants, each with its node. Pure
//! functions over what the nodes reported; it never asks a node or Redis anything.

use std::collections::{BTreeMap, HashMap};

use protocol::admin::{RoomDetail, RoomSummary};

/// The rooms listed by more than one node.
pub(crate) fn spanning_names(rooms: &[RoomSummary]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for room in rooms {
        *seen.entry(room.name.as_str()).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// One entry per room: the entries of a room several nodes list are added up into the owner's
/// (`owners`: room → owning node; the first entry when unknown). Sorted by name.
pub(crate) fn merge_listing(
    rooms: Vec<RoomSummary>,
    owners: &HashMap<String, String>,
) -> Vec<RoomSummary> {
    let mut by_name: BTreeMap<String, Vec<RoomSummary>> = BTreeMap::new();
    for room in rooms {
        by_name.entry(room.name.clone()).or_default().push(room);
    }
    by_name
        .into_values()
        .filter_map(|mut parts| {
            if parts.len() == 1 {
                return parts.pop();
            }
            let owner = owners.get(&parts[0].name);
            let base = parts
                .iter()
                .position(|p| p.node.is_some() && p.node.as_ref() == owner)
                .unwrap_or(0);
            let mut merged = parts.swap_remove(base);
            let mut nodes: Vec<String> = merged.node.iter().cloned().collect();
            for part in parts {
                merged.participant_count += part.participant_count;
                merged.publisher_count += part.publisher_count;
                merged.bitrate_in += part.bitrate_in;
                merged.bitrate_out += part.bitrate_out;
                if part.age_seconds > merged.age_seconds {
                    merged.age_seconds = part.age_seconds;
                    merged.created_at = part.created_at;
                }
                merged.recording_state = merged.recording_state.or(part.recording_state);
                nodes.extend(part.node);
            }
            nodes.sort();
            nodes.dedup();
            merged.nodes = nodes;
            Some(merged)
        })
        .collect()
}

/// Adds the participants other nodes serve in the same room (as they reported them) to this
/// node's detail of it; every participant names its node. Nothing changes when no other node
/// serves the room.
pub(crate) fn merge_detail(detail: &mut RoomDetail, here: &str, others: Vec<(String, RoomDetail)>) {
    if others.is_empty() {
        return;
    }
    for p in &mut detail.participants {
        p.node = Some(here.to_owned());
    }
    let mut nodes = vec![here.to_owned()];
    for (node, other) in others {
        detail.summary.participant_count += other.summary.participant_count;
        detail.summary.publisher_count += other.summary.publisher_count;
        detail
            .participants
            .extend(other.participants.into_iter().map(|mut p| {
                p.node = Some(node.clone());
                p
            }));
        nodes.push(node);
    }
    nodes.sort();
    nodes.dedup();
    detail.summary.nodes = nodes;
}

#[cfg(test)]
mod tests {
    use protocol::admin::RoomSettings;

    use super::*;

    fn room(name: &str, node: &str, count: usize, age: u64) -> RoomSummary {
        RoomSummary {
            name: name.into(),
            participant_count: count,
            publisher_count: count,
            created_at: format!("created {age} s ago"),
            age_seconds: age,
            bitrate_in: 100,
            bitrate_out: 200,
            settings: RoomSettings {
                max_participants: 50,
                empty_timeout_seconds: 20,
                codecs: Vec::new(),
            },
            recording_state: None,
            node: Some(node.into()),
            nodes: Vec::new(),
        }
    }

    #[test]
    fn a_room_on_two_nodes_is_listed_once_under_its_owner() {
        let rooms = vec![
            room("big", "node-a", 2, 30),
            room("big", "node-b", 2, 10),
            room("small", "node-b", 1, 5),
        ];
        assert_eq!(spanning_names(&rooms), ["big"]);
        let owners = HashMap::from([("big".to_owned(), "node-b".to_owned())]);
        let merged = merge_listing(rooms, &owners);
        assert_eq!(merged.len(), 2);
        let big = &merged[0];
        assert_eq!(big.name, "big");
        assert_eq!(big.node.as_deref(), Some("node-b"), "its owner");
        assert_eq!(big.nodes, ["node-a", "node-b"]);
        assert_eq!((big.participant_count, big.publisher_count), (4, 4));
        assert_eq!((big.bitrate_in, big.bitrate_out), (200, 400));
        assert_eq!(big.age_seconds, 30, "as old as its oldest part");
        assert_eq!(big.created_at, "created 30 s ago");
        assert!(
            merged[1].nodes.is_empty(),
            "a room on one node lists no nodes"
        );
    }
}
