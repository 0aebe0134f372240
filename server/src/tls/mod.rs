//! HTTPS in the binary: a certificate from files, a self-signed one, or one from an ACME CA,
//! served by a TLS listener whose certificate can be swapped while it runs. It never decides
//! what is served over HTTPS: the caller hands it the app.

pub mod acme;
pub mod challenges;
pub mod error;
pub mod files;
pub mod listener;
pub mod pem;
pub mod redirect;
pub mod resolver;
pub mod self_signed;
pub mod settings;

use std::net::IpAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use challenges::Challenges;
use error::TlsError;
use listener::TlsListener;
use resolver::SwappableCert;
use settings::{CertSource, TlsSettings};

/// HTTPS, ready to serve.
pub struct Https {
    /// Hands out handshaken connections.
    pub listener: TlsListener,
    /// ACME challenges for the plain-HTTP listener to answer.
    pub challenges: Arc<Challenges>,
    /// The certificate being served.
    pub certificate: Arc<SwappableCert>,
    /// Self-signed mode: the certificate's SHA-256 fingerprint, for people to compare.
    pub self_signed_fingerprint: Option<String>,
    /// ACME: the task that obtains and renews the certificate, to start once challenges are
    /// answered.
    pub renewal: Option<acme::Renewal>,
}

/// Loads or makes the certificate and binds the HTTPS port. Errors stop the server: a
/// certificate that cannot be read, a TLS folder that cannot be written, a port in use.
pub async fn prepare(
    settings: &TlsSettings,
    announce_ip: Option<IpAddr>,
    cancel: &CancellationToken,
) -> Result<Https, TlsError> {
    let certificate = Arc::new(SwappableCert::default());
    let challenges = Arc::new(Challenges::default());
    let mut self_signed_fingerprint = None;
    let mut renewal = None;
    match &settings.source {
        CertSource::Files { cert, key } => {
            let loaded = files::start(
                cert.clone(),
                key.clone(),
                certificate.clone(),
                cancel.clone(),
            )?;
            tracing::info!(
                fingerprint = %loaded.fingerprint,
                "HTTPS certificate from {} covers {}",
                cert.display(),
                loaded.names.join(", ")
            );
        }
        CertSource::SelfSigned => {
            let names = self_signed::local_names(announce_ip);
            let (loaded, made) = self_signed::load_or_make(&settings.dir, &names)?;
            tracing::info!(
                "{} self-signed certificate in {} for {}",
                if made { "made a new" } else { "reusing the" },
                settings.dir.display(),
                loaded.names.join(", ")
            );
            self_signed_fingerprint = Some(loaded.fingerprint.clone());
            certificate.install(loaded);
        }
        CertSource::Acme(acme) => {
            let (cached, task) = acme::prepare(
                acme.clone(),
                &settings.dir,
                certificate.clone(),
                challenges.clone(),
                cancel.clone(),
            )?;
            if let Some(cached) = cached {
                tracing::info!(
                    fingerprint = %cached.fingerprint,
                    "reusing the cached certificate for {}",
                    acme.domain
                );
            }
            renewal = Some(task);
        }
    }
    let config = listener::server_config(certificate.clone())?;
    let listener = TlsListener::bind(settings.https_bind, config).await?;
    Ok(Https {
        listener,
        challenges,
        certificate,
        self_signed_fingerprint,
        renewal,
    })
}
