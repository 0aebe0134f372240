//! Newtype identifiers for rooms, participants and tracks, so that no bare string crosses a
//! module boundary meaning the wrong thing.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;

fn random_suffix(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A room's name, as users type it in the lobby and in `/room/{room}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room name must be 1 to 64 characters of letters, digits, '-', '_' or '.', got {0:?}")]
pub struct InvalidRoomId(pub String);

impl RoomId {
    /// Validates a room name: 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn new(name: &str) -> Result<Self, InvalidRoomId> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(RoomId(name.to_owned()))
        } else {
            Err(InvalidRoomId(name.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server-assigned id of one participant session (`PA_…`), new on every join.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParticipantId(String);

/// Whether an id another node sent looks like one of ours (`PA_`/`TR_` and 1 to 32
/// alphanumerics).
fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

impl ParticipantId {
    pub fn random() -> Self {
        ParticipantId(format!("PA_{}", random_suffix(12)))
    }

    /// The id of a participant another node serves, as that node named it.
    pub(crate) fn from_remote(id: &str) -> Option<Self> {
        well_formed(id, "PA_").then(|| ParticipantId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server-assigned id of one published track (`TR_…`). Cloning is a reference-count
/// increment, so the per-packet path can hold one without allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackId(std::sync::Arc<str>);

impl TrackId {
    pub fn random() -> Self {
        TrackId(format!("TR_{}", random_suffix(12)).into())
    }

    /// The id of a track another node publishes (the same id on every node).
    pub(crate) fn from_remote(id: &str) -> Option<Self> {
        well_formed(id, "TR_").then(|| TrackId(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Hashes as its string does (`Arc<str>` hashes its contents), so maps keyed by track id can be
// searched with the `&str` a frame carries.
impl std::borrow::Borrow<str> for TrackId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_validated() {
        assert!(RoomId::new("blue-harbor_42.x").is_ok());
        assert!(RoomId::new("").is_err());
        assert!(RoomId::new("a b").is_err());
        assert!(RoomId::new("../etc").is_err());
        assert!(RoomId::new(&"x".repeat(65)).is_err());
    }

    #[test]
    fn generated_ids_have_prefixes_and_differ() {
        let a = ParticipantId::random();
        let b = ParticipantId::random();
        assert!(a.as_str().starts_with("PA_"));
        assert_ne!(a, b);
        assert!(TrackId::random().as_str().starts_with("TR_"));
    }
}
