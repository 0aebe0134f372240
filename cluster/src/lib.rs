//! Switchyard's cluster on Redis: what nodes must agree on, and nothing else.
//!
//! - [`registry`]: each node registers itself (id, URL, load) and keeps a heartbeat key alive;
//!   dead nodes' entries and room claims are swept.
//! - [`placement`]: the first join of a room claims it for one node, atomically (a Lua script),
//!   chosen by load; later joins learn the owner.
//! - [`parts`]: rooms larger than one node: which other nodes serve parts of a room, and where
//!   a join goes when the room's node is full.
//! - [`directory`]: each node's rooms, as it reports them, for cluster-wide admin listings.
//! - [`events`]: every node's admin events in one Redis stream, so any node can stream them and
//!   `Last-Event-ID` resumes across nodes; [`stats`]: periodic stats, wanted and shared across
//!   nodes over pub/sub.
//! - [`link_seal`]: the handshake and frame sealing of the encrypted link between two nodes
//!   (the link's transport lives in signaling).
//!
//! Media never goes through Redis and never depends on it: when Redis goes away, calls go on,
//! and the cluster heals when it is back (claims are re-asserted, the heartbeat resumes). It
//! never touches a media socket or a room's state; signaling asks it questions.

mod config;
pub mod directory;
mod error;
pub mod events;
mod keys;
pub mod link_seal;
pub mod load;
mod membership;
mod node_info;
pub mod parts;
pub mod placement;
mod policy;
pub mod registry;
mod scripts;
pub mod stats;

pub use config::ClusterConfig;
pub use error::ClusterError;
pub use keys::Keys;
pub use membership::{Cluster, HEARTBEAT, HEARTBEAT_TTL};
pub use node_info::{NodeInfo, new_node_id, redacted, ws_url};
pub use placement::Placement;
pub use policy::PlacementPolicy;
