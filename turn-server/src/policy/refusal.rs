//! Why the relay refuses to reach a peer: the error every policy check returns.
//! Only the reasons; which addresses get which one is decided elsewhere. Data only: it never
//! inspects an address.

/// Why the relay refuses to reach a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer is a Teredo address (`2001::/32`); always refused.
    #[error("peer address is a Teredo address (2001::/32), which the relay never reaches")]
    Teredo,
    /// The (canonical) peer lies in a special-purpose range, named here
    /// (e.g. `"loopback"`, `"private"`), and no allow rule covers it.
    #[error("peer address is in a special-purpose range ({0}) that no allow rule covers")]
    SpecialPurpose(&'static str),
    /// Allow-list-only mode: no allow rule covers the peer.
    #[error("peer address is not on the relay's allow list")]
    NotAllowed,
}
