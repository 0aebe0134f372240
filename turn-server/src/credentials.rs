//! Short-lived credentials and stateless nonces.
//!
//! Credentials follow the TURN REST API scheme (draft-uberti-behave-turn-rest): the username
//! is `expiry:identity` (expiry in Unix seconds) and the password is
//! `base64(HMAC-SHA1(secret, username))`, so the relay needs no user database: any
//! username can be checked against the shared secret alone.
//!
//! Nonces carry their own issue time and a MAC over it and the client's IP, so the relay
//! keeps no per-nonce state: a nonce is valid for [`NONCE_LIFETIME`] and only for the
//! address it was issued to.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// How long a nonce stays fresh (RFC 8656 asks for stale nonces to be refused with 438).
pub const NONCE_LIFETIME: Duration = Duration::from_secs(600);
/// The longest credential lifetime the relay hands out.
pub const MAX_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A minted TURN credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `expiry:identity`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
    /// Unix time after which a new allocation is refused.
    pub expires_at: u64,
}

/// The shared secret behind REST credentials.
#[derive(Clone)]
pub struct RestSecret(Vec<u8>);

impl std::fmt::Debug for RestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestSecret(..)")
    }
}

/// Why a username is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not `expiry:identity` with a numeric expiry.
    #[error("username is not `expiry:identity`")]
    Malformed,
    /// The expiry has passed.
    #[error("credential expired at {0}")]
    Expired(u64),
}

impl RestSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// Mints a credential for `identity`, valid for `lifetime` (capped at 24 h).
    pub fn mint(&self, identity: &str, lifetime: Duration) -> Credential {
        let expires_at = unix_now() + lifetime.min(MAX_CREDENTIAL_LIFETIME).as_secs();
        self.mint_expiring_at(identity, expires_at)
    }

    /// Mints a credential with an explicit expiry (tests use past ones).
    pub fn mint_expiring_at(&self, identity: &str, expires_at: u64) -> Credential {
        let username = format!("{expires_at}:{identity}");
        let password = self.password_for(&username);
        Credential {
            username,
            password,
            expires_at,
        }
    }

    /// The password that belongs to `username`.
    pub fn password_for(&self, username: &str) -> String {
        let mut mac = HmacSha1::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(username.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// A REST username split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// Unix expiry time.
    pub expires_at: u64,
    /// Who the credential was minted for (quotas count per identity).
    pub identity: &'a str,
}

impl<'a> RestUsername<'a> {
    /// Parses `expiry:identity`. The identity may itself contain colons.
    pub fn parse(username: &'a str) -> Result<Self, CredentialError> {
        let (expiry, identity) = username.split_once(':').ok_or(CredentialError::Malformed)?;
        let expires_at = expiry.parse().map_err(|_| CredentialError::Malformed)?;
        Ok(Self {
            expires_at,
            identity,
        })
    }

    /// `Err(Expired)` if the credential's expiry is before `now` (Unix seconds).
    pub fn check_fresh(&self, now: u64) -> Result<(), CredentialError> {
        if self.expires_at < now {
            Err(CredentialError::Expired(self.expires_at))
        } else {
            Ok(())
        }
    }
}

/// Issues and checks stateless nonces: `<issued-at hex>.<MAC hex>`.
#[derive(Clone)]
pub struct NonceIssuer {
    key: [u8; 32],
    lifetime_secs: u64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceIssuer(..)")
    }
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by us to this address, less than [`NONCE_LIFETIME`] ago.
    Fresh,
    /// Issued by us to this address, but too long ago.
    Stale,
    /// Not one of ours (or for another address).
    Invalid,
}

impl NonceIssuer {
    /// A new issuer with a random key (nonces do not survive a restart) whose nonces go
    /// stale after [`NONCE_LIFETIME`].
    pub fn new() -> Self {
        Self::with_lifetime(NONCE_LIFETIME)
    }

    /// A new issuer whose nonces go stale after `lifetime` (whole seconds, at least one).
    pub fn with_lifetime(lifetime: Duration) -> Self {
        Self {
            key: rand::random(),
            lifetime_secs: lifetime.as_secs().max(1),
        }
    }

    /// A nonce for `client`, issued at `now` (Unix seconds).
    pub fn issue(&self, client: IpAddr, now: u64) -> String {
        let mac = self.mac(client, now);
        format!("{now:x}.{mac:016x}")
    }

    /// Checks a nonce presented by `client` at `now`.
    pub fn check(&self, nonce: &str, client: IpAddr, now: u64) -> NonceCheck {
        let Some((issued, mac)) = nonce.split_once('.') else {
            return NonceCheck::Invalid;
        };
        let (Ok(issued), Ok(mac)) = (
            u64::from_str_radix(issued, 16),
            u64::from_str_radix(mac, 16),
        ) else {
            return NonceCheck::Invalid;
        };
        if self.mac(client, issued) != mac || issued > now + 60 {
            return NonceCheck::Invalid;
        }
        if now - issued.min(now) >= self.lifetime_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }

    fn mac(&self, client: IpAddr, issued: u64) -> u64 {
        let mut mac = HmacSha1::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(&issued.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

impl Default for NonceIssuer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_password_matches_the_published_scheme() {
        // base64(HMAC-SHA1("secret", "1700000000:alice")), computed independently with
        // `printf '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64`.
        let secret = RestSecret::new("secret");
        let credential = secret.mint_expiring_at("alice", 1_700_000_000);
        assert_eq!(credential.username, "1700000000:alice");
        assert_eq!(credential.password, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
    }

    #[test]
    fn usernames_parse_and_expire() {
        let parsed = RestUsername::parse("100:bob:with:colons").unwrap();
        assert_eq!(parsed.expires_at, 100);
        assert_eq!(parsed.identity, "bob:with:colons");
        assert_eq!(parsed.check_fresh(100), Ok(()));
        assert_eq!(parsed.check_fresh(101), Err(CredentialError::Expired(100)));
        assert_eq!(RestUsername::parse("bob"), Err(CredentialError::Malformed));
        assert_eq!(
            RestUsername::parse("x:bob"),
            Err(CredentialError::Malformed)
        );
    }

    #[test]
    fn minted_lifetime_is_capped() {
        let credential = RestSecret::new("s").mint("a", Duration::from_secs(10 * 24 * 3600));
        assert!(credential.expires_at <= unix_now() + MAX_CREDENTIAL_LIFETIME.as_secs());
    }

    #[test]
    fn nonces_are_bound_to_time_and_address() {
        let issuer = NonceIssuer::new();
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        let nonce = issuer.issue(here, 1000);
        assert_eq!(issuer.check(&nonce, here, 1000), NonceCheck::Fresh);
        assert_eq!(issuer.check(&nonce, here, 1599), NonceCheck::Fresh);
        assert_eq!(issuer.check(&nonce, here, 1600), NonceCheck::Stale);
        assert_eq!(issuer.check(&nonce, there, 1000), NonceCheck::Invalid);
        assert_eq!(issuer.check("garbage", here, 1000), NonceCheck::Invalid);
        assert_eq!(issuer.check("3e8.0", here, 1000), NonceCheck::Invalid);
        let other = NonceIssuer::new();
        assert_eq!(other.check(&nonce, here, 1000), NonceCheck::Invalid);
    }
}
