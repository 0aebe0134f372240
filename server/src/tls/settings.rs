//! HTTPS settings: the flags (`--tls-cert`, `--tls-self-signed`, `--acme-domain`, ...), the
//! `[tls]` section of the config file, and their resolution into one [`TlsSettings`]. It never
//! reads a certificate, writes a file or binds a socket: it only checks that the settings agree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use super::error::TlsError;

/// Let's Encrypt's production ACME directory, the default for `--acme-domain`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Where certificates Switchyard makes or fetches are kept, relative to the working directory.
pub const DEFAULT_DIR: &str = "switchyard-tls";

/// The HTTPS flags, each also read from the environment variable it names.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "HTTPS")]
pub struct TlsArgs {
    /// PEM file with the certificate chain (server certificate first); reloaded when it
    /// changes and on SIGHUP.
    #[arg(long, env = "SWITCHYARD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key.
    #[arg(long, env = "SWITCHYARD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for this machine's addresses (for a LAN),
    /// made once and kept in --tls-dir; its fingerprint is printed at start.
    #[arg(long, env = "SWITCHYARD_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,
    /// Folder for the self-signed certificate and the ACME account and certificates
    /// [default: switchyard-tls].
    #[arg(long, env = "SWITCHYARD_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Get a certificate for this public domain from an ACME CA (Let's Encrypt by default);
    /// the CA checks it over plain HTTP (--http-bind must be reachable on port 80).
    #[arg(long, env = "SWITCHYARD_ACME_DOMAIN", value_name = "DOMAIN")]
    pub acme_domain: Option<String>,
    /// Contact address given to the ACME CA (expiry warnings).
    #[arg(long, env = "SWITCHYARD_ACME_EMAIL", value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// ACME directory URL [default: Let's Encrypt production].
    #[arg(long, env = "SWITCHYARD_ACME_DIRECTORY", value_name = "URL")]
    pub acme_directory: Option<String>,
    /// PEM root certificate to trust for the ACME CA's own HTTPS (a test CA such as Pebble).
    #[arg(long, env = "SWITCHYARD_ACME_CA_ROOT", value_name = "PEM")]
    pub acme_ca_root: Option<PathBuf>,
    /// Address and port for HTTPS when a certificate is configured [default: 0.0.0.0:8443;
    /// 127.0.0.1:8443 in dev mode].
    #[arg(long, env = "SWITCHYARD_HTTPS_BIND", value_name = "ADDR")]
    pub https_bind: Option<SocketAddr>,
}

/// The config file's `[tls]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub self_signed: Option<bool>,
    pub dir: Option<PathBuf>,
    pub acme_domain: Option<String>,
    pub acme_email: Option<String>,
    pub acme_directory: Option<String>,
    pub acme_ca_root: Option<PathBuf>,
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CertSource {
    /// PEM files the operator manages (and replaces; they are watched).
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate made once and kept in the TLS folder.
    SelfSigned,
    /// A certificate from an ACME CA, kept in the TLS folder and renewed.
    Acme(AcmeSettings),
}

/// Automatic certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSettings {
    pub domain: String,
    pub email: Option<String>,
    /// The ACME directory URL.
    pub directory: String,
    /// Extra root to trust for the directory's HTTPS (test CAs).
    pub ca_root: Option<PathBuf>,
}

/// HTTPS, resolved: present only when a certificate source is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub source: CertSource,
    /// Folder for made and fetched certificates.
    pub dir: PathBuf,
    /// Where HTTPS listens.
    pub https_bind: SocketAddr,
}

/// The certificate source and TLS folder from the flags over the file; `None`: no HTTPS (then
/// an HTTPS address, from `--https-bind` or the file's `file_https_bind`, is an error).
pub fn resolve(
    args: &TlsArgs,
    file: TlsSection,
    file_https_bind: Option<SocketAddr>,
) -> Result<Option<(CertSource, PathBuf)>, TlsError> {
    let cert = args.tls_cert.clone().or(file.cert);
    let key = args.tls_key.clone().or(file.key);
    let self_signed = args.tls_self_signed || file.self_signed == Some(true);
    let domain = args.acme_domain.clone().or(file.acme_domain);
    let email = args.acme_email.clone().or(file.acme_email);
    let directory = args.acme_directory.clone().or(file.acme_directory);
    let ca_root = args.acme_ca_root.clone().or(file.acme_ca_root);
    let dir = args
        .tls_dir
        .clone()
        .or(file.dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    if dir.as_os_str().is_empty() {
        return Err(TlsError::EmptyDir);
    }
    let mut chosen = Vec::new();
    if cert.is_some() || key.is_some() {
        chosen.push("--tls-cert/--tls-key");
    }
    if self_signed {
        chosen.push("--tls-self-signed");
    }
    if domain.is_some() {
        chosen.push("--acme-domain");
    }
    if chosen.len() > 1 {
        return Err(TlsError::ConflictingSources(chosen.join(" and ")));
    }
    if domain.is_none() {
        for (set, flag) in [
            (email.is_some(), "--acme-email"),
            (directory.is_some(), "--acme-directory"),
            (ca_root.is_some(), "--acme-ca-root"),
        ] {
            if set {
                return Err(TlsError::AcmeWithoutDomain(flag));
            }
        }
    }
    let source = match (cert, key, domain) {
        (Some(cert), Some(key), _) => CertSource::Files { cert, key },
        (Some(_), None, _) => {
            return Err(TlsError::HalfPair {
                given: "--tls-cert",
                missing: "--tls-key",
            });
        }
        (None, Some(_), _) => {
            return Err(TlsError::HalfPair {
                given: "--tls-key",
                missing: "--tls-cert",
            });
        }
        (None, None, Some(domain)) => CertSource::Acme(acme(domain, email, directory, ca_root)?),
        (None, None, None) if self_signed => CertSource::SelfSigned,
        (None, None, None) => match args.https_bind.or(file_https_bind) {
            Some(addr) => return Err(TlsError::HttpsWithoutCertificate(addr)),
            None => return Ok(None),
        },
    };
    Ok(Some((source, dir)))
}

fn acme(
    domain: String,
    email: Option<String>,
    directory: Option<String>,
    ca_root: Option<PathBuf>,
) -> Result<AcmeSettings, TlsError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let is_name = rustls::pki_types::DnsName::try_from(domain.as_str()).is_ok();
    if !is_name || domain.parse::<std::net::IpAddr>().is_ok() || domain.contains('*') {
        return Err(TlsError::BadDomain(domain));
    }
    if let Some(email) = &email
        && (!email.contains('@') || email.contains(char::is_whitespace) || email.contains(':'))
    {
        return Err(TlsError::BadEmail(email.clone()));
    }
    let directory = directory.unwrap_or_else(|| LETS_ENCRYPT.to_owned());
    let host = directory.strip_prefix("https://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || directory.contains(char::is_whitespace) {
        return Err(TlsError::BadDirectory(directory));
    }
    Ok(AcmeSettings {
        domain,
        email,
        directory,
        ca_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(args: TlsArgs) -> Result<Option<(CertSource, PathBuf)>, TlsError> {
        resolve(&args, TlsSection::default(), None)
    }

    #[test]
    fn no_flag_means_no_https() {
        assert_eq!(resolved(TlsArgs::default()).unwrap(), None);
    }

    #[test]
    fn each_source_resolves_with_its_defaults() {
        let (source, dir) = resolved(TlsArgs {
            tls_self_signed: true,
            ..TlsArgs::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(source, CertSource::SelfSigned);
        assert_eq!(dir, PathBuf::from(DEFAULT_DIR));
        let (source, _) = resolved(TlsArgs {
            acme_domain: Some("Call.Example.com.".into()),
            ..TlsArgs::default()
        })
        .unwrap()
        .unwrap();
        let CertSource::Acme(acme) = source else {
            panic!("{source:?}")
        };
        assert_eq!(acme.domain, "call.example.com");
        assert_eq!(acme.directory, LETS_ENCRYPT);
        let file = TlsSection {
            cert: Some("/etc/c.pem".into()),
            key: Some("/etc/k.pem".into()),
            dir: Some("/var/lib/sy".into()),
            ..TlsSection::default()
        };
        let (source, dir) = resolve(&TlsArgs::default(), file, None).unwrap().unwrap();
        assert_eq!(
            source,
            CertSource::Files {
                cert: "/etc/c.pem".into(),
                key: "/etc/k.pem".into()
            }
        );
        assert_eq!(dir, PathBuf::from("/var/lib/sy"));
    }

    #[test]
    fn contradictions_are_explained() {
        let both = resolved(TlsArgs {
            tls_self_signed: true,
            acme_domain: Some("a.example".into()),
            ..TlsArgs::default()
        })
        .unwrap_err();
        assert!(both.to_string().contains("choose one way"), "{both}");
        let half = resolved(TlsArgs {
            tls_cert: Some("c.pem".into()),
            ..TlsArgs::default()
        })
        .unwrap_err();
        assert!(half.to_string().contains("--tls-key is not"), "{half}");
        let stray = resolved(TlsArgs {
            acme_email: Some("a@b.c".into()),
            ..TlsArgs::default()
        })
        .unwrap_err();
        assert!(stray.to_string().contains("--acme-email"), "{stray}");
        for domain in ["192.0.2.7", "*.example.com", "not a name"] {
            let bad = resolved(TlsArgs {
                acme_domain: Some(domain.into()),
                ..TlsArgs::default()
            })
            .unwrap_err();
            assert!(matches!(bad, TlsError::BadDomain(_)), "{domain}: {bad}");
        }
        let plain = resolved(TlsArgs {
            acme_domain: Some("a.example".into()),
            acme_directory: Some("http://ca.example/dir".into()),
            ..TlsArgs::default()
        })
        .unwrap_err();
        assert!(plain.to_string().contains("https://"), "{plain}");
        let nothing = resolve(
            &TlsArgs::default(),
            TlsSection::default(),
            Some(([0, 0, 0, 0], 8443).into()),
        )
        .unwrap_err();
        assert!(nothing.to_string().contains("no certificate"), "{nothing}");
    }
}
