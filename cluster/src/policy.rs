//! Placement policies ([`PlacementPolicy`]): which live node a new room should go to, by load.
//! Pure choice over the nodes it is given: it never talks to Redis, and never picks a draining
//! node.

use crate::node_info::NodeInfo;

/// How a new room's node is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlacementPolicy {
    /// The node with the fewest participants (then the least CPU).
    #[default]
    Participants,
    /// The node using the least CPU (then the fewest participants).
    Cpu,
    /// The node the join arrived at, unless it drains.
    Local,
}

impl std::str::FromStr for PlacementPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "participants" => Ok(PlacementPolicy::Participants),
            "cpu" => Ok(PlacementPolicy::Cpu),
            "local" => Ok(PlacementPolicy::Local),
            other => Err(format!(
                "unknown placement policy {other:?}: use participants, cpu or local"
            )),
        }
    }
}

/// The node a new room should go to under `policy`: never a draining node. `here` is this node,
/// which counts even before its first registration is visible.
pub(crate) fn choose(
    policy: PlacementPolicy,
    here: &str,
    here_draining: bool,
    nodes: &[NodeInfo],
) -> Option<String> {
    let open: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| !(n.draining || (n.id == here && here_draining)))
        .collect();
    let here_open = !here_draining;
    match policy {
        PlacementPolicy::Local if here_open => return Some(here.to_owned()),
        _ => {}
    }
    let best = match policy {
        PlacementPolicy::Cpu => open.iter().min_by(|a, b| {
            a.cpu
                .total_cmp(&b.cpu)
                .then(a.participants.cmp(&b.participants))
                .then(a.id.cmp(&b.id))
        }),
        _ => open.iter().min_by(|a, b| {
            a.participants
                .cmp(&b.participants)
                .then(a.cpu.total_cmp(&b.cpu))
                .then(a.id.cmp(&b.id))
        }),
    };
    match best {
        Some(node) => Some(node.id.clone()),
        None if here_open => Some(here.to_owned()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: usize, cpu: f32, draining: bool) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            url: format!("http://{id}"),
            rooms: 0,
            participants,
            cpu,
            draining,
            started_at: 0,
        }
    }

    #[test]
    fn the_least_loaded_open_node_gets_the_room() {
        let nodes = [
            node("a", 5, 10.0, false),
            node("b", 1, 90.0, false),
            node("c", 0, 0.0, true),
        ];
        let by_people = choose(PlacementPolicy::Participants, "a", false, &nodes);
        assert_eq!(by_people.as_deref(), Some("b"));
        let by_cpu = choose(PlacementPolicy::Cpu, "a", false, &nodes);
        assert_eq!(by_cpu.as_deref(), Some("a"));
        let local = choose(PlacementPolicy::Local, "a", false, &nodes);
        assert_eq!(local.as_deref(), Some("a"));
    }

    #[test]
    fn a_draining_node_takes_no_new_room() {
        let nodes = [node("a", 0, 0.0, true), node("b", 9, 50.0, false)];
        assert_eq!(
            choose(PlacementPolicy::Local, "a", true, &nodes).as_deref(),
            Some("b")
        );
        assert_eq!(
            choose(PlacementPolicy::Participants, "a", true, &nodes[..1]),
            None
        );
        // Before its own registration is visible, a node still counts itself.
        assert_eq!(
            choose(PlacementPolicy::Participants, "a", false, &[]).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn policies_parse_by_name() {
        assert_eq!("cpu".parse(), Ok(PlacementPolicy::Cpu));
        assert!("round-robin".parse::<PlacementPolicy>().is_err());
    }
}
