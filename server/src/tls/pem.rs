//! Reading a certificate chain and its private key from PEM (files or text) into what rustls
//! serves, with an error that names the file and says what it should hold. It never writes a
//! file and never serves anything: callers install the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::error::TlsError;

const CHAIN: &str = "the certificate chain";
const KEY: &str = "the certificate's private key";

/// A certificate and key ready to serve, and what the log and banner say about it.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the server's own certificate, `AA:BB:...` as browsers show it.
    pub fingerprint: String,
    /// When the server's own certificate starts and stops being valid.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Its DNS names and IP addresses.
    pub names: Vec<String>,
}

/// Reads `cert` and `key` (PEM files); `what` names them in errors (`--tls-cert`, `the cached
/// certificate`).
pub fn load_files(
    cert: &Path,
    key: &Path,
    what: (&'static str, &'static str),
) -> Result<LoadedCert, TlsError> {
    let read = |path: &Path, what: &'static str, expected: &'static str| {
        std::fs::read(path).map_err(|error| TlsError::Read {
            what,
            path: path.to_path_buf(),
            expected,
            error,
        })
    };
    let cert_pem = read(cert, what.0, CHAIN)?;
    let key_pem = read(key, what.1, KEY)?;
    from_pem(&cert_pem, &key_pem, (cert, key), what)
}

/// Builds a [`LoadedCert`] from PEM text; `paths` and `what` only word the errors.
pub fn from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    paths: (&Path, &Path),
    what: (&'static str, &'static str),
) -> Result<LoadedCert, TlsError> {
    let bad_pem =
        |path: &Path, what, expected, e: rustls::pki_types::pem::Error| TlsError::BadPem {
            what,
            path: path.to_path_buf(),
            expected,
            detail: e.to_string(),
        };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(paths.0, what.0, CHAIN, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            what: what.0,
            path: paths.0.to_path_buf(),
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                what: what.1,
                path: paths.1.to_path_buf(),
            });
        }
        Err(e) => return Err(bad_pem(paths.1, what.1, KEY, e)),
    };
    let (not_before, not_after, names) =
        inspect(&chain[0]).map_err(|detail| TlsError::BadCertificate {
            path: paths.0.to_path_buf(),
            detail,
        })?;
    let fingerprint = fingerprint(&chain[0]);
    let provider = rustls::crypto::ring::default_provider();
    let signing =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::UnsupportedKey {
                path: paths.1.to_path_buf(),
                detail: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError::KeyMismatch {
                cert: paths.0.to_path_buf(),
                key: paths.1.to_path_buf(),
            });
        }
    }
    Ok(LoadedCert {
        key: Arc::new(certified),
        fingerprint,
        not_before,
        not_after,
        names,
    })
}

/// The certificate's validity and subject alternative names.
fn inspect(der: &CertificateDer<'_>) -> Result<(SystemTime, SystemTime, Vec<String>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let time = |t: x509_parser::time::ASN1Time| {
        let seconds = t.timestamp();
        if seconds >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    let (not_before, not_after) = (
        time(cert.validity().not_before),
        time(cert.validity().not_after),
    );
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .map(std::net::IpAddr::from)
                            .ok(),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok((not_before, not_after, names))
}

/// SHA-256 of a certificate, as browsers show it: `AA:BB:...`.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half
/// of it; `private` files are readable by their owner only.
pub fn write_atomically(path: &Path, text: &str, private: bool) -> Result<(), TlsError> {
    let failed = |error| TlsError::Write {
        path: path.to_path_buf(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut temporary = PathBuf::from(path);
    temporary.as_mut_os_string().push(".new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn load(cert: &str, key: &str) -> Result<LoadedCert, TlsError> {
        from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            (Path::new("/x/cert.pem"), Path::new("/x/key.pem")),
            ("--tls-cert", "--tls-key"),
        )
    }

    #[test]
    fn a_matching_pair_loads_with_its_names_and_fingerprint() {
        let (cert, key) = pair(&["localhost", "192.0.2.2"]);
        let loaded = load(&cert, &key).unwrap();
        assert_eq!(loaded.names, ["localhost", "192.0.2.2"]);
        assert_eq!(loaded.fingerprint.len(), 32 * 3 - 1);
        assert!(loaded.not_after > SystemTime::now());
    }

    #[test]
    fn bad_files_are_explained() {
        let (cert, key) = pair(&["localhost"]);
        let (_, other_key) = pair(&["localhost"]);
        let e = load(&cert, &other_key).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        let e = load(&key, &key).unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let e = load(&cert, &cert).unwrap_err();
        assert!(e.to_string().contains("holds no private key"), "{e}");
        let e = load(
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            &key,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a valid PEM file"), "{e}");
        let e = load_files(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
            ("--tls-cert", "--tls-key"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read --tls-cert /nonexistent/c.pem"),
            "{e}"
        );
        assert!(e.to_string().contains("give a PEM file"), "{e}");
    }
}
