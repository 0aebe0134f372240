//! What can go wrong with HTTPS: settings that contradict each other, certificate and key files
//! that cannot be read or do not match, a TLS folder that cannot be written, an ACME CA that
//! refuses. Each message says what to do. It never logs or retries: callers decide.

use std::path::PathBuf;

/// An HTTPS problem, worded for the person running the server.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "choose one way to get a certificate, not {0}: --tls-cert/--tls-key (your own files), \
         --tls-self-signed (a LAN) or --acme-domain (a public domain)"
    )]
    ConflictingSources(String),
    #[error(
        "{given} is set but {missing} is not: give both the certificate chain and its private key"
    )]
    HalfPair {
        given: &'static str,
        missing: &'static str,
    },
    #[error("{0} applies to automatic certificates only: add --acme-domain, or remove it")]
    AcmeWithoutDomain(&'static str),
    #[error(
        "--acme-domain {0:?} is not a name an ACME CA can check over HTTP: give one DNS name \
         that points at this server, such as call.example.com (no IP address, no wildcard)"
    )]
    BadDomain(String),
    #[error(
        "--acme-directory {0:?} must be an https:// URL of an ACME directory, such as \
         https://acme-v02.api.letsencrypt.org/directory"
    )]
    BadDirectory(String),
    #[error("--acme-email {0:?} is not an e-mail address: give one such as admin@example.com")]
    BadEmail(String),
    #[error(
        "https_bind {0} is set but there is no certificate: add --tls-self-signed, \
         --tls-cert/--tls-key or --acme-domain, or remove it"
    )]
    HttpsWithoutCertificate(std::net::SocketAddr),
    #[error("tls.dir must not be empty: remove it to use `switchyard-tls`")]
    EmptyDir,
    #[error("cannot read {what} {path}: {error}; give a PEM file with {expected}")]
    Read {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        error: std::io::Error,
    },
    #[error("{what} {path} is not a valid PEM file ({detail}); give a PEM file with {expected}")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        detail: String,
    },
    #[error(
        "{what} {path} holds no certificate: give a PEM file with the certificate chain \
         (`-----BEGIN CERTIFICATE-----` blocks, the server's own certificate first)"
    )]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error(
        "{what} {path} holds no private key: give a PEM file with the certificate's private key \
         (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NoKey { what: &'static str, path: PathBuf },
    #[error(
        "the certificate in {path} cannot be read ({detail}); give a PEM file with the \
         certificate chain, the server's own certificate first"
    )]
    BadCertificate { path: PathBuf, detail: String },
    #[error(
        "the private key in {path} is not usable ({detail}); use an RSA, ECDSA (P-256, P-384) \
         or Ed25519 key"
    )]
    UnsupportedKey { path: PathBuf, detail: String },
    #[error(
        "the private key in {key} does not belong to the certificate in {cert}: give the key \
         the certificate was issued for"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot write {path}: {error}; check that the TLS folder (--tls-dir) is writable")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot generate a certificate or key: {0}")]
    Generate(rcgen::Error),
    #[error("the ACME CA at {directory} {step}: {detail}")]
    Acme {
        directory: String,
        step: &'static str,
        detail: String,
    },
    #[error("cannot listen for HTTPS on {addr}: {error}; choose another --https-bind")]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("the TLS library refused the server settings: {0}")]
    Rustls(rustls::Error),
}

// The messages above carry their cause's text, so no variant names a `source`: a report of
// the error chain would say it twice.
impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        TlsError::Generate(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}
