//! The names of every Redis key the cluster uses, all under one prefix, so two clusters can
//! share a Redis without seeing each other. Names only: it never talks to Redis.

/// Key names under a prefix (`switchyard` by default, as `switchyard:...`).
#[derive(Debug, Clone)]
pub struct Keys {
    /// The prefix with its trailing colon.
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: format!("{prefix}:"),
        }
    }

    /// The prefix with its trailing colon (Lua scripts build key names from it).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Set of every registered node id.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// A node's heartbeat: present while the node lives (short TTL, refreshed).
    pub fn alive(&self, node: &str) -> String {
        format!("{}alive:{node}", self.prefix)
    }

    /// A node's registration (JSON [`crate::NodeInfo`]).
    pub fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    /// A node's rooms as it last reported them (JSON), for cluster-wide listings.
    pub fn rooms_of(&self, node: &str) -> String {
        format!("{}rooms:{node}", self.prefix)
    }

    /// The rooms a node has claimed (a set), so a dead node's claims can be swept.
    pub fn claims_of(&self, node: &str) -> String {
        format!("{}claims:{node}", self.prefix)
    }

    /// Which node owns a room.
    pub fn room(&self, room: &str) -> String {
        format!("{}room:{room}", self.prefix)
    }

    /// The nodes serving parts of a room that spans nodes (a sorted set: node → until when,
    /// Redis milliseconds).
    pub fn parts(&self, room: &str) -> String {
        format!("{}parts:{room}", self.prefix)
    }

    /// The cluster's event stream (a Redis stream).
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Dev mode's API key and secret, shared by every node.
    pub fn dev_credentials(&self) -> String {
        format!("{}dev-credentials", self.prefix)
    }
}
