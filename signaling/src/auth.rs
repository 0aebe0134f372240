//! Access tokens: JWTs signed with HS256 by the API secret, issued by the API key.
//!
//! Verification is strict: HS256 only, `exp` required, `nbf` honoured, 60 s of leeway for clock
//! skew, and the issuer must be our API key. Errors say which rule a token broke, without
//! echoing the token. It never logs a token, and minting never panics: a failed encoding gives an
//! empty string.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::{Claims, Grants};

/// Leeway for clock skew between token minting and this server.
pub const LEEWAY_SECS: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the access token has expired; get a new one and join again")]
    Expired,
    #[error("the access token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the access token was not issued by this server's API key")]
    WrongIssuer,
    #[error("the access token is invalid: {0}")]
    Invalid(String),
}

/// Signs and verifies tokens with one API key and secret.
#[derive(Clone)]
pub struct TokenAuthority {
    api_key: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The raw secret, for the node links of a cluster (`node_link`), which prove to each
    /// other that they share it. Never logged, never sent.
    secret: std::sync::Arc<[u8]>,
}

impl TokenAuthority {
    pub fn new(api_key: &str, api_secret: &str) -> Self {
        TokenAuthority {
            api_key: api_key.to_owned(),
            encoding: EncodingKey::from_secret(api_secret.as_bytes()),
            decoding: DecodingKey::from_secret(api_secret.as_bytes()),
            secret: api_secret.as_bytes().into(),
        }
    }

    /// The API secret's bytes: the nodes of a cluster share it and key their links with it.
    pub(crate) fn secret(&self) -> &std::sync::Arc<[u8]> {
        &self.secret
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[&self.api_key]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Invalid("only HS256 tokens are accepted".into())
                }
                ErrorKind::InvalidSignature => {
                    AuthError::Invalid("the signature does not match".into())
                }
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::Invalid(format!("the {c} claim is missing"))
                }
                _ => AuthError::Invalid("it is not a well-formed JWT".into()),
            }),
        }
    }

    /// Mints a token for `identity` in `room`, valid for `ttl_secs`.
    pub fn mint(
        &self,
        identity: &str,
        name: &str,
        room: &str,
        grants: Grants,
        ttl_secs: u64,
    ) -> String {
        let claims = Claims {
            iss: self.api_key.clone(),
            sub: identity.to_owned(),
            name: name.to_owned(),
            room: room.to_owned(),
            exp: unix_now() + ttl_secs,
            nbf: None,
            grants,
        };
        // Encoding HS256 claims that are plain strings and numbers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TokenAuthority {
        TokenAuthority::new("APIkey", "a-secret-of-enough-length-for-hs256")
    }

    fn sign(claims: serde_json::Value, alg: Algorithm, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn minted_tokens_verify() {
        let a = authority();
        let t = a.mint("alice", "Alice", "demo", Grants::default(), 60);
        let c = a.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.room, "demo");
        assert!(c.grants.can_publish);
    }

    #[test]
    fn attack_table() {
        let a = authority();
        let secret = "a-secret-of-enough-length-for-hs256";
        let now = unix_now();
        let good = serde_json::json!({"iss":"APIkey","sub":"a","room":"r","exp":now+60});
        // Wrong secret (forged).
        let forged = sign(
            good.clone(),
            Algorithm::HS256,
            "another-secret-entirely-0000000",
        );
        assert!(matches!(a.verify(&forged), Err(AuthError::Invalid(_))));
        // Other algorithms.
        let hs512 = sign(good.clone(), Algorithm::HS512, secret);
        assert!(matches!(a.verify(&hs512), Err(AuthError::Invalid(_))));
        // alg: none.
        let none = format!(
            "{}.{}.",
            base64_url(r#"{"alg":"none","typ":"JWT"}"#),
            base64_url(&good.to_string())
        );
        assert!(matches!(a.verify(&none), Err(AuthError::Invalid(_))));
        // Missing exp.
        let no_exp = sign(
            serde_json::json!({"iss":"APIkey","sub":"a","room":"r"}),
            Algorithm::HS256,
            secret,
        );
        assert!(matches!(a.verify(&no_exp), Err(AuthError::Invalid(_))));
        // Expired beyond the leeway, and within it.
        let expired = sign(
            serde_json::json!({"iss":"APIkey","sub":"a","exp":now - 120}),
            Algorithm::HS256,
            secret,
        );
        assert_eq!(a.verify(&expired), Err(AuthError::Expired));
        let within = sign(
            serde_json::json!({"iss":"APIkey","sub":"a","exp":now - 30}),
            Algorithm::HS256,
            secret,
        );
        assert!(a.verify(&within).is_ok());
        // Future nbf.
        let future = sign(
            serde_json::json!({"iss":"APIkey","sub":"a","exp":now + 600,"nbf":now + 300}),
            Algorithm::HS256,
            secret,
        );
        assert_eq!(a.verify(&future), Err(AuthError::NotYetValid));
        // Wrong issuer.
        let issuer = sign(
            serde_json::json!({"iss":"other","sub":"a","exp":now + 60}),
            Algorithm::HS256,
            secret,
        );
        assert_eq!(a.verify(&issuer), Err(AuthError::WrongIssuer));
        // Tampered claims: change the room after signing.
        let t = a.mint("a", "A", "r", Grants::default(), 60);
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = base64_url(
            &serde_json::json!({"iss":"APIkey","sub":"a","room":"other","exp":now+60}).to_string(),
        );
        assert!(matches!(
            a.verify(&parts.join(".")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(a.verify("garbage"), Err(AuthError::Invalid(_))));
    }

    fn base64_url(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
