//! The ACME HTTP-01 answers being offered right now: token → key authorization, filled by the
//! ACME client while an order is open and read by the plain-HTTP listener. It never talks to
//! the network itself.

use std::collections::HashMap;
use std::sync::RwLock;

/// Tokens the CA may ask for at `/.well-known/acme-challenge/{token}`.
#[derive(Debug, Default)]
pub struct Challenges {
    answers: RwLock<HashMap<String, String>>,
}

impl Challenges {
    /// Offers `key_authorization` for `token` until [`Challenges::remove`].
    pub fn offer(&self, token: &str, key_authorization: &str) {
        self.answers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.answers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// The answer for `token`, if it is being offered.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.answers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }
}
