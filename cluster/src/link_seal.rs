//! The security of the link between two nodes of a cluster, as pure state machines: a
//! three-message handshake that proves both nodes know the cluster's API secret and agree on
//! the cluster (key prefix) and on who is who, then AES-256-GCM sealing of each frame with a
//! per-direction key and counter. It never does I/O, never reads a clock and never logs: the
//! transport (`signaling/src/node_link.rs`) carries the bytes and enforces time limits.
//!
//! The handshake (I dials, R accepts; `‖` is concatenation, every part of the transcript is
//! length-prefixed so that concatenations cannot be confused):
//!
//! 1. I → R `hello`: prefix, I's node id, a fresh 32-byte nonce nI.
//! 2. R → I `reply`: R's node id, a fresh nonce nR, mac_R = HMAC-SHA256(secret,
//!    `"switchyard-link/R" ‖ transcript`), transcript = prefix ‖ I id ‖ R id ‖ nI ‖ nR.
//! 3. I checks mac_R (constant time) and that R is the node it meant to dial, then sends
//!    `confirm`: mac_I = HMAC(secret, `"switchyard-link/I" ‖ transcript`). R checks it.
//!
//! Keys: key_IR = HMAC(secret, `"switchyard-link/key/I->R" ‖ transcript`), key_RI likewise.
//! Fresh nonces on both sides make every connection's keys new, so counters restart at 0
//! without ever reusing a (key, nonce) pair. A sealed frame is counter (8 bytes, big endian)
//! ‖ ciphertext ‖ tag, with the GCM nonce 4 zero bytes ‖ counter. The transport is ordered, so
//! an [`Opener`] accepts only the exact next counter: anything else is a replay, a reordering
//! or a drop, and the link is torn down.
//!
//! Either side may answer a failed step with a `refuse` message ([`refusal_bytes`]) so that
//! the other logs why (another cluster, the wrong secret, the wrong node). Refusals are not
//! authenticated: they only ever make a handshake fail, which an attacker on the path can
//! do anyway by closing the connection.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Length of each side's handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes a sealed frame adds to its plaintext: counter and GCM tag.
pub const SEAL_OVERHEAD: usize = 8 + 16;

const VERSION: u8 = 1;
const HELLO: u8 = 1;
const REPLY: u8 = 2;
const CONFIRM: u8 = 3;
const REFUSE: u8 = 4;
/// The longest node id or prefix a handshake carries.
const MAX_NAME: usize = 255;
const MAC_LEN: usize = 32;

const LABEL_R: &[u8] = b"switchyard-link/R";
const LABEL_I: &[u8] = b"switchyard-link/I";
const LABEL_KEY_IR: &[u8] = b"switchyard-link/key/I->R";
const LABEL_KEY_RI: &[u8] = b"switchyard-link/key/R->I";

/// Why a handshake or a frame failed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The peer's MAC does not verify: it signs with another secret (or is not a node at all).
    #[error(
        "{peer} could not prove it knows the cluster's API secret: do all nodes share the same \
         api_secret?"
    )]
    WrongSecret { peer: String },
    /// The node that answered is not the one this node dialled.
    #[error(
        "dialled node {expected} but node {found} answered at its address: the registry is stale \
         or two nodes announce the same URL (check [cluster] node_url)"
    )]
    UnexpectedNode { expected: String, found: String },
    /// The peer belongs to another cluster (another key prefix) on the same secret.
    #[error(
        "node {peer} belongs to another cluster (key prefix {theirs:?}, ours {ours:?}); nodes \
         of one cluster must share [cluster] prefix"
    )]
    OtherCluster {
        peer: String,
        ours: String,
        theirs: String,
    },
    /// The peer claims this node's own id.
    #[error(
        "the peer claims to be node {id}, this node's own id: are two nodes configured with the \
         same [cluster] node_id?"
    )]
    SameNodeId { id: String },
    /// The peer refused the handshake and said why.
    #[error("node {peer} refused the link: {reason}")]
    Refused { peer: String, reason: Refusal },
    /// A handshake message or frame that cannot be parsed.
    #[error("malformed node-link message: {0}")]
    Malformed(&'static str),
    /// A frame with an older counter than expected: a replay or a reordering.
    #[error(
        "a node-link frame was replayed or reordered (counter {got}, expected {expected}); the \
         link is closed"
    )]
    Replay { expected: u64, got: u64 },
    /// A frame with a newer counter than expected: frames were dropped on the way.
    #[error(
        "node-link frames went missing (counter {got}, expected {expected}); the link is closed"
    )]
    Skipped { expected: u64, got: u64 },
    /// A frame whose tag does not verify.
    #[error(
        "a node-link frame failed authentication (tampered with, or not sealed by the peer); \
         the link is closed"
    )]
    Decrypt,
    /// The 64-bit frame counter ran out.
    #[error("the node link's frame counter is exhausted; the link must reconnect")]
    CounterExhausted,
    /// Sealing failed (a frame far too large).
    #[error("a frame could not be sealed for the node link (too large?)")]
    Seal,
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl LinkError {
    /// What to tell the peer about this failure, if anything: send [`refusal_bytes`] of it
    /// before closing so that the peer logs the cause rather than a closed connection.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            LinkError::WrongSecret { .. } => Some(Refusal::WrongSecret),
            LinkError::UnexpectedNode { .. } => Some(Refusal::UnexpectedNode),
            LinkError::OtherCluster { .. } => Some(Refusal::OtherCluster),
            LinkError::SameNodeId { .. } => Some(Refusal::SameNodeId),
            LinkError::Malformed(_) => Some(Refusal::Malformed),
            _ => None,
        }
    }
}

/// Why a peer refused a handshake (sent in a `refuse` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This node's MAC did not verify at the peer.
    WrongSecret,
    /// This node is not the node the peer meant to dial.
    UnexpectedNode,
    /// This node's key prefix differs from the peer's.
    OtherCluster,
    /// This node has the peer's own node id.
    SameNodeId,
    /// The peer could not parse this node's message.
    Malformed,
    /// A reason this version does not know.
    Other,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Refusal::WrongSecret => 1,
            Refusal::UnexpectedNode => 2,
            Refusal::OtherCluster => 3,
            Refusal::SameNodeId => 4,
            Refusal::Malformed => 5,
            Refusal::Other => 0,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => Refusal::WrongSecret,
            2 => Refusal::UnexpectedNode,
            3 => Refusal::OtherCluster,
            4 => Refusal::SameNodeId,
            5 => Refusal::Malformed,
            _ => Refusal::Other,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::WrongSecret => {
                "this node could not prove it knows the peer's API secret: do all nodes share \
                 the same api_secret?"
            }
            Refusal::UnexpectedNode => "it meant to dial another node at this address",
            Refusal::OtherCluster => {
                "it belongs to another cluster (key prefix); nodes of one cluster must share \
                 [cluster] prefix"
            }
            Refusal::SameNodeId => "it has this node's id: two nodes share one [cluster] node_id",
            Refusal::Malformed => "it could not parse this node's handshake (another version?)",
            Refusal::Other => "for a reason this version does not know",
        })
    }
}

/// A `refuse` message to send the peer before closing a failed handshake.
pub fn refusal_bytes(reason: Refusal) -> Vec<u8> {
    vec![VERSION, REFUSE, reason.code()]
}

/// The dialling side of a handshake, between `hello` and the peer's reply.
pub struct Initiator {
    key: hmac::Key,
    prefix: String,
    me: String,
    expected: String,
    nonce: [u8; NONCE_LEN],
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("prefix", &self.prefix)
            .field("me", &self.me)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake from node `me` to node `expected_peer` of the cluster `prefix`;
    /// returns the `hello` to send.
    pub fn new(
        secret: &[u8],
        prefix: &str,
        me: &str,
        expected_peer: &str,
    ) -> Result<(Initiator, Vec<u8>), LinkError> {
        check_name(prefix)?;
        check_name(me)?;
        let nonce = fresh_nonce()?;
        let mut hello = vec![VERSION, HELLO];
        put(&mut hello, prefix.as_bytes());
        put(&mut hello, me.as_bytes());
        put(&mut hello, &nonce);
        Ok((
            Initiator {
                key: hmac::Key::new(hmac::HMAC_SHA256, secret),
                prefix: prefix.to_owned(),
                me: me.to_owned(),
                expected: expected_peer.to_owned(),
                nonce,
            },
            hello,
        ))
    }

    /// Checks the acceptor's reply; returns the `confirm` to send and this side's sealer
    /// (I → R) and opener (R → I).
    pub fn on_reply(self, reply: &[u8]) -> Result<(Vec<u8>, Sealer, Opener), LinkError> {
        let mut r = Reader::new(reply, REPLY, &self.expected)?;
        let peer = r.name()?;
        let peer_nonce: [u8; NONCE_LEN] = r.fixed()?;
        let mac: [u8; MAC_LEN] = r.fixed()?;
        r.end()?;
        let transcript = transcript(&self.prefix, &self.me, &peer, &self.nonce, &peer_nonce);
        // The MAC first: an unauthenticated node id is not worth reporting.
        hmac::verify(&self.key, &labelled(LABEL_R, &transcript), &mac)
            .map_err(|_| LinkError::WrongSecret { peer: peer.clone() })?;
        if peer != self.expected {
            return Err(LinkError::UnexpectedNode {
                expected: self.expected,
                found: peer,
            });
        }
        let mut confirm = vec![VERSION, CONFIRM];
        put(
            &mut confirm,
            hmac::sign(&self.key, &labelled(LABEL_I, &transcript)).as_ref(),
        );
        let sealer = Sealer::new(&derive(&self.key, LABEL_KEY_IR, &transcript));
        let opener = Opener::new(&derive(&self.key, LABEL_KEY_RI, &transcript));
        Ok((confirm, sealer, opener))
    }
}

/// The accepting side of a handshake, between its reply and the dialler's confirmation.
pub struct Acceptor {
    key: hmac::Key,
    peer: String,
    transcript: Vec<u8>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Answers a `hello` to node `me` of the cluster `prefix`: returns the acceptor state,
    /// the reply to send, and the node id the dialler claims (not proven until
    /// [`Acceptor::on_confirm`] succeeds).
    pub fn on_hello(
        secret: &[u8],
        prefix: &str,
        me: &str,
        hello: &[u8],
    ) -> Result<(Acceptor, Vec<u8>, String), LinkError> {
        check_name(me)?;
        let mut r = Reader::new(hello, HELLO, "the dialling node")?;
        let theirs = r.name()?;
        let peer = r.name()?;
        let peer_nonce: [u8; NONCE_LEN] = r.fixed()?;
        r.end()?;
        if theirs != prefix {
            return Err(LinkError::OtherCluster {
                peer,
                ours: prefix.to_owned(),
                theirs,
            });
        }
        if peer == me {
            return Err(LinkError::SameNodeId { id: peer });
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let nonce = fresh_nonce()?;
        let transcript = transcript(prefix, &peer, me, &peer_nonce, &nonce);
        let mut reply = vec![VERSION, REPLY];
        put(&mut reply, me.as_bytes());
        put(&mut reply, &nonce);
        put(
            &mut reply,
            hmac::sign(&key, &labelled(LABEL_R, &transcript)).as_ref(),
        );
        Ok((
            Acceptor {
                key,
                peer: peer.clone(),
                transcript,
            },
            reply,
            peer,
        ))
    }

    /// The node id the dialler claims.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Checks the dialler's confirmation; returns this side's sealer (R → I) and opener
    /// (I → R).
    pub fn on_confirm(self, confirm: &[u8]) -> Result<(Sealer, Opener), LinkError> {
        let mut r = Reader::new(confirm, CONFIRM, &self.peer)?;
        let mac: [u8; MAC_LEN] = r.fixed()?;
        r.end()?;
        hmac::verify(&self.key, &labelled(LABEL_I, &self.transcript), &mac)
            .map_err(|_| LinkError::WrongSecret { peer: self.peer })?;
        let sealer = Sealer::new(&derive(&self.key, LABEL_KEY_RI, &self.transcript));
        let opener = Opener::new(&derive(&self.key, LABEL_KEY_IR, &self.transcript));
        Ok((sealer, opener))
    }
}

/// Seals the frames of one direction. Not `Clone`: two copies would reuse nonces.
pub struct Sealer {
    key: LessSafeKey,
    counter: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    fn new(key: &[u8; 32]) -> Self {
        Sealer {
            key: aes_key(key),
            counter: 0,
        }
    }

    /// The next frame: counter (8 bytes, big endian) ‖ ciphertext ‖ tag.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, LinkError> {
        // The last value is never used, so that an exhausted sealer stays exhausted.
        if self.counter == u64::MAX {
            return Err(LinkError::CounterExhausted);
        }
        let counter = self.counter;
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), &mut out[8..])
            .map_err(|_| LinkError::Seal)?;
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
        Ok(out)
    }

    /// Frames sealed so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

/// Opens the frames of one direction, in order.
pub struct Opener {
    key: LessSafeKey,
    next: u64,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Opener {
    fn new(key: &[u8; 32]) -> Self {
        Opener {
            key: aes_key(key),
            next: 0,
        }
    }

    /// The plaintext of `frame`, if it is the exact next frame and authentic.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, LinkError> {
        if frame.len() < SEAL_OVERHEAD {
            return Err(LinkError::Malformed(
                "a sealed frame shorter than its overhead",
            ));
        }
        let (head, body) = frame.split_at(8);
        let got = u64::from_be_bytes(head.try_into().map_err(|_| LinkError::Decrypt)?);
        if self.next == u64::MAX {
            return Err(LinkError::CounterExhausted);
        }
        let expected = self.next;
        if got < expected {
            return Err(LinkError::Replay { expected, got });
        }
        if got > expected {
            return Err(LinkError::Skipped { expected, got });
        }
        let mut buffer = body.to_vec();
        let len = self
            .key
            .open_in_place(nonce(got), Aad::empty(), &mut buffer)
            .map_err(|_| LinkError::Decrypt)?
            .len();
        buffer.truncate(len);
        self.next += 1;
        Ok(buffer)
    }

    /// Frames opened so far.
    pub fn counter(&self) -> u64 {
        self.next
    }
}

fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key always fits AES-256.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes 32-byte keys"))
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn fresh_nonce() -> Result<[u8; NONCE_LEN], LinkError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| LinkError::Random)?;
    Ok(nonce)
}

fn check_name(name: &str) -> Result<(), LinkError> {
    if name.len() > MAX_NAME {
        return Err(LinkError::Malformed("a node id or prefix over 255 bytes"));
    }
    Ok(())
}

/// Appends `part` with its length (2 bytes, big endian).
fn put(out: &mut Vec<u8>, part: &[u8]) {
    // Every part is a name of at most 255 bytes, a nonce or a MAC.
    let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&part[..usize::from(len)]);
}

/// prefix ‖ I id ‖ R id ‖ nI ‖ nR, each with its length (4 bytes, big endian).
fn transcript(prefix: &str, initiator: &str, acceptor: &str, n_i: &[u8], n_r: &[u8]) -> Vec<u8> {
    let parts: [&[u8]; 5] = [
        prefix.as_bytes(),
        initiator.as_bytes(),
        acceptor.as_bytes(),
        n_i,
        n_r,
    ];
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn labelled(label: &[u8], transcript: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + transcript.len());
    out.extend_from_slice(label);
    out.extend_from_slice(transcript);
    out
}

fn derive(key: &hmac::Key, label: &[u8], transcript: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(key, &labelled(label, transcript));
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Reads one handshake message: version, kind, then length-prefixed parts.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Expects a message of `kind`; a `refuse` from `peer` becomes [`LinkError::Refused`].
    fn new(message: &'a [u8], kind: u8, peer: &str) -> Result<Self, LinkError> {
        match message {
            [VERSION, REFUSE, code, ..] => Err(LinkError::Refused {
                peer: peer.to_owned(),
                reason: Refusal::from_code(*code),
            }),
            [VERSION, k, rest @ ..] if *k == kind => Ok(Reader { rest }),
            [VERSION, ..] => Err(LinkError::Malformed("a handshake message out of turn")),
            [_, ..] => Err(LinkError::Malformed(
                "an unknown handshake version (are all nodes on the same release?)",
            )),
            [] => Err(LinkError::Malformed("an empty handshake message")),
        }
    }

    fn part(&mut self) -> Result<&'a [u8], LinkError> {
        let [a, b, rest @ ..] = self.rest else {
            return Err(LinkError::Malformed("a truncated handshake message"));
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if rest.len() < len {
            return Err(LinkError::Malformed("a truncated handshake message"));
        }
        let (part, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(part)
    }

    fn name(&mut self) -> Result<String, LinkError> {
        let part = self.part()?;
        if part.len() > MAX_NAME {
            return Err(LinkError::Malformed("a node id or prefix over 255 bytes"));
        }
        String::from_utf8(part.to_vec())
            .map_err(|_| LinkError::Malformed("a node id or prefix that is not UTF-8"))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], LinkError> {
        self.part()?
            .try_into()
            .map_err(|_| LinkError::Malformed("a nonce or MAC of the wrong length"))
    }

    fn end(&self) -> Result<(), LinkError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(LinkError::Malformed(
                "trailing bytes after a handshake message",
            ))
        }
    }
}

#[cfg(test)]
mod tests;
