//! Automatic certificates from an ACME CA (`--acme-domain`): an account and certificate kept in
//! the TLS folder and reused, HTTP-01 challenges handed to the plain-HTTP listener, renewal in
//! the background before expiry. It never serves HTTP itself and never touches other domains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::challenges::Challenges;
use super::error::TlsError;
use super::pem::{LoadedCert, from_pem, load_files, write_atomically};
use super::resolver::SwappableCert;
use super::settings::AcmeSettings;

/// Renew when less than this is left (or a third of the lifetime, for short-lived certificates).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86400);
/// The longest sleep between two looks at the certificate's expiry.
const RECHECK: Duration = Duration::from_secs(12 * 3600);
/// Waits after a failed attempt: the first, and the most.
const RETRY_FIRST: Duration = Duration::from_secs(60);
const RETRY_MOST: Duration = Duration::from_secs(6 * 3600);
/// How long the CA may take to check the challenge, and to issue.
const POLL: RetryPolicy = RetryPolicy::new().timeout(Duration::from_secs(120));

const CACHED: (&str, &str) = ("the cached ACME certificate", "the cached ACME key");

/// The ACME client of one server.
struct Acme {
    settings: AcmeSettings,
    /// This directory's account and certificates.
    cache: PathBuf,
    challenges: Arc<Challenges>,
}

/// Keeps a valid certificate in a resolver: obtains one, then renews it. Run it once the
/// plain-HTTP listener answers challenges.
pub type Renewal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Checks the settings' files and installs a cached certificate when there is one. Returns it,
/// if any, and the task that keeps a valid certificate in `resolver` from then on (obtaining
/// one, then renewing it) until `cancel`.
pub fn prepare(
    settings: AcmeSettings,
    dir: &Path,
    resolver: Arc<SwappableCert>,
    challenges: Arc<Challenges>,
    cancel: CancellationToken,
) -> Result<(Option<LoadedCert>, Renewal), TlsError> {
    if let Some(root) = &settings.ca_root {
        check_root(root)?;
    }
    let acme = Acme {
        cache: dir.join("acme").join(cache_name(&settings.directory)),
        settings,
        challenges,
    };
    let (cert, key) = acme.cert_paths();
    let cached = if cert.exists() {
        match load_files(&cert, &key, CACHED) {
            Ok(loaded) => {
                resolver.install(loaded.clone());
                Some(loaded)
            }
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", cert.display());
                None
            }
        }
    } else {
        None
    };
    let renewal = Box::pin(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = acme.keep_current(&resolver) => {}
        }
    });
    Ok((cached, renewal))
}

/// When a certificate valid over `[not_before, not_after]` should be renewed.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    not_after - RENEW_BEFORE.min(lifetime / 3)
}

/// A folder name for one ACME directory: its host and a hash of its URL.
fn cache_name(directory: &str) -> String {
    let host: String = directory
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = Sha256::digest(directory.as_bytes());
    format!(
        "{host}-{:02x}{:02x}{:02x}{:02x}",
        hash[0], hash[1], hash[2], hash[3]
    )
}

fn check_root(root: &Path) -> Result<(), TlsError> {
    let text = std::fs::read(root).map_err(|error| TlsError::Read {
        what: "--acme-ca-root",
        path: root.to_path_buf(),
        expected: "the ACME CA's root certificate",
        error,
    })?;
    match CertificateDer::pem_slice_iter(&text).next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(TlsError::BadPem {
            what: "--acme-ca-root",
            path: root.to_path_buf(),
            expected: "the ACME CA's root certificate",
            detail: e.to_string(),
        }),
        None => Err(TlsError::NoCertificate {
            what: "--acme-ca-root",
            path: root.to_path_buf(),
        }),
    }
}

impl Acme {
    fn cert_paths(&self) -> (PathBuf, PathBuf) {
        let domain = &self.settings.domain;
        (
            self.cache.join(format!("{domain}.pem")),
            self.cache.join(format!("{domain}.key.pem")),
        )
    }

    fn failed(&self, step: &'static str) -> impl Fn(instant_acme::Error) -> TlsError + '_ {
        move |e| TlsError::Acme {
            directory: self.settings.directory.clone(),
            step,
            detail: with_causes(&e),
        }
    }

    /// Obtains a certificate when there is none or it is due for renewal, forever.
    async fn keep_current(&self, resolver: &SwappableCert) {
        let mut retry = RETRY_FIRST;
        loop {
            let due = resolver.current().map_or(SystemTime::UNIX_EPOCH, |c| {
                renew_at(c.not_before, c.not_after)
            });
            if let Ok(wait) = due.duration_since(SystemTime::now()) {
                tokio::time::sleep(wait.min(RECHECK)).await;
                continue;
            }
            let domain = &self.settings.domain;
            tracing::info!(
                "asking {} for a certificate for {domain} (HTTP-01 challenge on the plain-HTTP port)",
                self.settings.directory
            );
            match self.obtain().await {
                Ok(loaded) => {
                    let days = loaded
                        .not_after
                        .duration_since(SystemTime::now())
                        .unwrap_or_default()
                        .as_secs()
                        / 86400;
                    tracing::info!(
                        fingerprint = %loaded.fingerprint,
                        "HTTPS certificate for {domain} obtained, valid for {days} more days"
                    );
                    resolver.install(loaded);
                    retry = RETRY_FIRST;
                }
                Err(e) => {
                    resolver.set_problem(Some(e.to_string()));
                    tracing::error!(
                        "no certificate for {domain} yet (next try in {} s): {e}",
                        retry.as_secs()
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MOST);
                }
            }
        }
    }

    /// One order: challenges offered, checked by the CA, a new key, the certificate saved.
    async fn obtain(&self) -> Result<LoadedCert, TlsError> {
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(self.settings.domain.clone())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(self.failed("refused a new order"))?;
        let mut offered = Vec::new();
        let answered = self.answer_challenges(&mut order, &mut offered).await;
        let ready = match answered {
            Ok(()) => order
                .poll_ready(&POLL)
                .await
                .map_err(self.failed("did not validate the challenge")),
            Err(e) => Err(e),
        };
        let ready = match ready {
            Ok(OrderStatus::Ready) => Ok(()),
            Ok(status) => Err(TlsError::Acme {
                directory: self.settings.directory.clone(),
                step: "did not validate the challenge",
                detail: format!("{status:?}: {}", invalid_reason(&mut order).await),
            }),
            Err(e) => Err(e),
        };
        for token in &offered {
            self.challenges.remove(token);
        }
        ready?;
        let key = rcgen::KeyPair::generate()?;
        let csr = rcgen::CertificateParams::new(vec![self.settings.domain.clone()])?
            .serialize_request(&key)?;
        order
            .finalize_csr(csr.der().as_ref())
            .await
            .map_err(self.failed("refused to finalize the order"))?;
        let chain = order
            .poll_certificate(&POLL)
            .await
            .map_err(self.failed("did not issue the certificate"))?;
        let key_pem = key.serialize_pem();
        let (cert_path, key_path) = self.cert_paths();
        let loaded = from_pem(
            chain.as_bytes(),
            key_pem.as_bytes(),
            (&cert_path, &key_path),
            ("the certificate from the ACME CA", "the new key"),
        )?;
        write_atomically(&key_path, &key_pem, true)?;
        write_atomically(&cert_path, &chain, false)?;
        Ok(loaded)
    }

    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        offered: &mut Vec<String>,
    ) -> Result<(), TlsError> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(self.failed("did not list the authorizations"))?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(TlsError::Acme {
                        directory: self.settings.directory.clone(),
                        step: "refused the authorization",
                        detail: format!("its status is {status:?}"),
                    });
                }
            }
            let mut challenge =
                authorization
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| TlsError::Acme {
                        directory: self.settings.directory.clone(),
                        step: "offers no HTTP-01 challenge",
                        detail: "Switchyard answers HTTP-01 only".into(),
                    })?;
            self.challenges
                .offer(&challenge.token, challenge.key_authorization().as_str());
            offered.push(challenge.token.clone());
            challenge
                .set_ready()
                .await
                .map_err(self.failed("did not take the challenge"))?;
        }
        Ok(())
    }

    /// The account kept for this directory, or a new one (then kept).
    async fn account(&self) -> Result<Account, TlsError> {
        let path = self.cache.join("account.json");
        let builder = || match &self.settings.ca_root {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let kept = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<AccountCredentials>(&bytes).ok());
        if let Some(credentials) = kept {
            return builder()
                .map_err(self.failed("cannot be reached"))?
                .from_credentials(credentials)
                .await
                .map_err(self.failed("did not accept the kept account"));
        }
        let contact = self.settings.email.iter().map(|e| format!("mailto:{e}"));
        let contact: Vec<String> = contact.collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()
            .map_err(self.failed("cannot be reached"))?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(self.failed("did not create an account"))?;
        let text = serde_json::to_string(&credentials).unwrap_or_default();
        write_atomically(&path, &text, true)?;
        Ok(account)
    }
}

/// An error and its causes, `outer: inner: innermost` ("client error (Connect)" alone does
/// not say that the connection was refused).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = e.source();
    }
    text
}

/// What the CA said about the failed challenges, and a hint.
async fn invalid_reason(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        if let Ok(state) = authorization.refresh().await {
            reasons.extend(
                state
                    .challenges
                    .iter()
                    .filter_map(|c| c.error.as_ref().map(|e| e.to_string())),
            );
        }
    }
    format!(
        "{}; check that the domain points at this machine and that port 80 there reaches \
         --http-bind",
        if reasons.is_empty() {
            "no reason given".to_owned()
        } else {
            reasons.join("; ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_30_days_before_expiry_or_at_two_thirds() {
        let day = Duration::from_secs(86400);
        let start = SystemTime::UNIX_EPOCH + 1000 * day;
        assert_eq!(renew_at(start, start + 90 * day), start + 60 * day);
        assert_eq!(renew_at(start, start + 6 * day), start + 4 * day);
    }

    #[test]
    fn each_directory_gets_its_own_folder() {
        let le = cache_name("https://acme-v02.api.letsencrypt.org/directory");
        assert!(le.starts_with("acme-v02.api.letsencrypt.org-"), "{le}");
        let pebble = cache_name("https://127.0.0.1:14000/dir");
        assert!(pebble.starts_with("127.0.0.1_14000-"), "{pebble}");
        assert_ne!(cache_name("https://a/1"), cache_name("https://a/2"));
    }
}
