//! Which certificates the admin CLI trusts for an https server besides the public web roots:
//! the `--ca` file, else the server's self-signed certificate when its file is on this machine,
//! and the advice an error gives when the server's certificate is not trusted. It never
//! connects anywhere: it reads at most one PEM file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::tls::self_signed::CERT_FILE;
use crate::tls::settings::DEFAULT_DIR;

/// Where the extra trusted certificates come from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// `--ca FILE` (or `SWITCHYARD_CA`).
    Ca(PathBuf),
    /// The self-signed certificate found in the TLS folder, trusted without being asked.
    SelfSigned(PathBuf),
    /// Only the public web roots.
    PublicOnly,
}

/// The certificates to trust besides the public web roots, and where they came from.
pub(super) struct Trust {
    pub(super) roots: Vec<CertificateDer<'static>>,
    pub(super) source: Source,
    /// Where a `--tls-self-signed` server keeps its certificate, for advice.
    self_signed_file: PathBuf,
}

impl Trust {
    /// `--ca` when given (an unreadable file is an error); else `<tls_dir>/self-signed.pem`
    /// when it exists and holds a certificate (the TLS folder defaulting to the server's
    /// default, `switchyard-tls`); else none.
    pub(super) fn resolve(ca: Option<&Path>, tls_dir: Option<&Path>) -> anyhow::Result<Trust> {
        let dir = tls_dir
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(DEFAULT_DIR));
        let self_signed_file = dir.join(CERT_FILE);
        if let Some(ca) = ca {
            let roots = read_certificates(ca).with_context(|| {
                format!(
                    "--ca {}: give a PEM file with the certificate to trust (for a server \
                     with --tls-self-signed: {})",
                    ca.display(),
                    self_signed_file.display()
                )
            })?;
            return Ok(Trust {
                roots,
                source: Source::Ca(ca.to_owned()),
                self_signed_file,
            });
        }
        // A convenience only: a file that is missing or damaged is left out, and the error
        // for an untrusted certificate then says to pass --ca.
        let (roots, source) = match read_certificates(&self_signed_file) {
            Ok(roots) => (roots, Source::SelfSigned(self_signed_file.clone())),
            Err(_) => (Vec::new(), Source::PublicOnly),
        };
        Ok(Trust {
            roots,
            source,
            self_signed_file,
        })
    }

    /// What to do when the server's certificate is not trusted.
    pub(super) fn advice(&self) -> String {
        let self_signed = self.self_signed_file.display();
        match &self.source {
            Source::Ca(ca) => format!(
                "it is signed neither by --ca {} nor by a public CA; pass --ca <file> with the \
                 server's certificate or its CA's (for --tls-self-signed: {self_signed})",
                ca.display()
            ),
            Source::SelfSigned(file) => format!(
                "it is not {} (trusted without --ca), which may be out of date or another \
                 server's; pass --ca <file> with the server's certificate",
                file.display()
            ),
            Source::PublicOnly => format!(
                "pass --ca <file> with the server's certificate (for --tls-self-signed: \
                 {self_signed})"
            ),
        }
    }
}

/// Every certificate in a PEM file, each one checked to parse as a trust anchor.
fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).context("cannot read it")?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("it is not valid PEM ({e})"))?;
    if certificates.is_empty() {
        bail!("it holds no certificate (-----BEGIN CERTIFICATE-----)");
    }
    for certificate in &certificates {
        rustls::RootCertStore::empty()
            .add(certificate.clone())
            .map_err(|e| anyhow::anyhow!("it holds a certificate that cannot be read ({e})"))?;
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sy-cli-trust-{label}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_self_signed_certificate_is_trusted_when_it_is_there() {
        let dir = scratch("auto");
        let none = Trust::resolve(None, Some(&dir)).unwrap();
        assert_eq!(none.source, Source::PublicOnly);
        assert!(none.roots.is_empty());
        let advice = none.advice();
        assert!(advice.contains("pass --ca <file>"), "{advice}");
        assert!(
            advice.contains(&dir.join("self-signed.pem").display().to_string()),
            "{advice}"
        );

        crate::tls::self_signed::load_or_make(&dir, &["localhost".to_owned()]).unwrap();
        let auto = Trust::resolve(None, Some(&dir)).unwrap();
        assert_eq!(auto.source, Source::SelfSigned(dir.join(CERT_FILE)));
        assert_eq!(auto.roots.len(), 1);
        // --ca wins over the file in the folder.
        let ca =
            Trust::resolve(Some(&dir.join(CERT_FILE)), Some(Path::new("/nonexistent"))).unwrap();
        assert_eq!(ca.source, Source::Ca(dir.join(CERT_FILE)));
        assert_eq!(ca.roots.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_bad_ca_file_is_explained() {
        let dir = scratch("bad");
        let missing = Trust::resolve(Some(&dir.join("nope.pem")), None)
            .err()
            .unwrap();
        let text = format!("{missing:#}");
        assert!(
            text.contains("nope.pem") && text.contains("cannot read"),
            "{text}"
        );
        std::fs::write(
            dir.join("key.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let no_cert = Trust::resolve(Some(&dir.join("key.pem")), None)
            .err()
            .unwrap();
        let text = format!("{no_cert:#}");
        assert!(
            text.contains("--ca") && text.contains("holds no certificate"),
            "{text}"
        );
        std::fs::write(
            dir.join("junk.pem"),
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let junk = Trust::resolve(Some(&dir.join("junk.pem")), None)
            .err()
            .unwrap();
        let text = format!("{junk:#}");
        assert!(text.contains("cannot be read"), "{text}");
        // A damaged file in the TLS folder is left out, not an error.
        std::fs::write(dir.join(CERT_FILE), "garbage").unwrap();
        let left_out = Trust::resolve(None, Some(&dir)).unwrap();
        assert_eq!(left_out.source, Source::PublicOnly);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
