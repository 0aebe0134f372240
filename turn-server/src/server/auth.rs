//! Authentication of TURN requests: long-term credentials with REST usernames, our nonces,
//! and the per-source bound on unauthenticated replies. It never creates or changes allocations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use stun_rs::attributes::stun::{MessageIntegrity, Nonce, Realm, UserName};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageDecoderBuilder, StunMessage,
    methods,
};
use tracing::debug;

use super::table::AllocationTable;
use crate::credentials::{NonceCheck, RestUsername, unix_now};
use crate::stats::RelayStats;

/// A request's verdict before the method-specific handling.
pub(super) enum Authenticated {
    /// Credentials checked: sign the response with this key.
    Yes { username: String, key: HMACKey },
    /// An error response is ready in the output buffer (or nothing is to be sent).
    Replied(Option<usize>),
}

impl AllocationTable {
    /// RFC 8489 §9.2.4 long-term credential checks with REST usernames and our nonces.
    pub(super) fn authenticate(
        &mut self,
        client: SocketAddr,
        packet: &[u8],
        message: &StunMessage,
        now: Instant,
    ) -> Authenticated {
        let shared = Arc::clone(&self.shared);
        let unix = unix_now();
        if message.get::<MessageIntegrity>().is_none() {
            return Authenticated::Replied(self.challenge(
                client,
                message,
                401,
                "Unauthorized",
                now,
            ));
        }
        let username = message
            .get::<UserName>()
            .and_then(|a| a.as_user_name().ok());
        let realm = message.get::<Realm>().and_then(|a| a.as_realm().ok());
        let nonce = message.get::<Nonce>().and_then(|a| a.as_nonce().ok());
        let (Some(username), Some(realm), Some(nonce)) = (username, realm, nonce) else {
            return Authenticated::Replied(self.reply_error(
                message,
                400,
                "Missing USERNAME, REALM or NONCE",
                None,
                |b| b,
            ));
        };
        match shared.nonces.check(nonce.as_str(), client.ip(), unix) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale | NonceCheck::Invalid => {
                RelayStats::count(&shared.stats.stale_nonces);
                return Authenticated::Replied(self.challenge(
                    client,
                    message,
                    438,
                    "Stale Nonce",
                    now,
                ));
            }
        }
        let username = username.as_str();
        let unauthorized = |table: &mut Self| {
            Authenticated::Replied(table.challenge(client, message, 401, "Unauthorized", now))
        };
        if realm.as_str() != shared.config.realm {
            return unauthorized(self);
        }
        let Ok(rest) = RestUsername::parse(username) else {
            return unauthorized(self);
        };
        let password = shared.config.secret.password_for(username);
        let Ok(key) = HMACKey::new_long_term(
            username,
            realm.as_str(),
            password,
            Algorithm::from(AlgorithmId::MD5),
        ) else {
            return unauthorized(self);
        };
        let context = DecoderContextBuilder::default()
            .with_key(key.clone())
            .with_validation()
            .build();
        if MessageDecoderBuilder::default()
            .with_context(context)
            .build()
            .decode(packet)
            .is_err()
        {
            return unauthorized(self);
        }
        // An expired credential may not start an allocation, but one already made with it
        // keeps being served (a call in progress survives).
        if message.method() == methods::ALLOCATE && rest.check_fresh(unix).is_err() {
            return unauthorized(self);
        }
        Authenticated::Yes {
            username: username.to_owned(),
            key,
        }
    }

    /// Whether `client` may get another reply to an unauthenticated request (401, 438, 400,
    /// Binding): bounded per source address, so the relay is no amplifier.
    pub(super) fn may_answer_unauthenticated(&self, client: SocketAddr, now: Instant) -> bool {
        let allowed = self.shared.challenges.allow(client.ip(), now);
        if !allowed {
            debug!(%client, "unauthenticated reply limit reached; request dropped");
        }
        allowed
    }

    /// A 401 or 438 with REALM and a fresh NONCE, unless this source has drawn too many.
    fn challenge(
        &mut self,
        client: SocketAddr,
        message: &StunMessage,
        code: u16,
        reason: &str,
        now: Instant,
    ) -> Option<usize> {
        let shared = Arc::clone(&self.shared);
        if !self.may_answer_unauthenticated(client, now) {
            return None;
        }
        if code == 401 {
            RelayStats::count(&shared.stats.unauthorized);
        }
        let nonce = shared.nonces.issue(client.ip(), unix_now());
        let realm = Realm::new(shared.config.realm.as_str()).ok()?;
        let nonce = Nonce::new(nonce).ok()?;
        self.reply_error(message, code, reason, None, |b| {
            b.with_attribute(realm).with_attribute(nonce)
        })
    }
}
