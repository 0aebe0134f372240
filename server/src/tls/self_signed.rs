//! The self-signed certificate for a LAN (`--tls-self-signed`): made once for this machine's
//! names and addresses, kept in the TLS folder and reused on the next start (made again only
//! when an address is missing from it or it nears expiry). It never talks to the network.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::TlsError;
use super::pem::{LoadedCert, from_pem, load_files, write_atomically};

/// The certificate's file name in the TLS folder (the admin CLI trusts it from there).
pub const CERT_FILE: &str = "self-signed.pem";
const KEY_FILE: &str = "self-signed.key.pem";
const WHAT: (&str, &str) = ("the self-signed certificate", "the self-signed key");

/// Validity of a new certificate: under the 825 days some browsers allow.
const VALIDITY_DAYS: i64 = 800;
/// A kept certificate with less left than this is made again.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86400);

/// What this machine is called: `localhost`, its loopback and interface addresses (link-local
/// ones aside) and the announced address.
pub fn local_names(announce_ip: Option<IpAddr>) -> Vec<String> {
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => ips.extend(
            interfaces
                .iter()
                .filter(|i| !i.is_link_local())
                .map(|i| i.ip()),
        ),
        Err(e) => tracing::warn!(
            "cannot list network interfaces ({e}); the self-signed certificate covers localhost and --announce-ip only"
        ),
    }
    ips.extend(announce_ip);
    let mut names = vec!["localhost".to_owned()];
    for ip in ips {
        let ip = ip.to_string();
        if !names.contains(&ip) {
            names.push(ip);
        }
    }
    names
}

/// The kept certificate when it covers `names` and is not about to expire; else a new one,
/// written to `dir`. The flag says whether it was made now.
pub fn load_or_make(dir: &Path, names: &[String]) -> Result<(LoadedCert, bool), TlsError> {
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert.exists() || key.exists() {
        match load_files(&cert, &key, WHAT) {
            Ok(kept) => {
                let missing: Vec<&String> =
                    names.iter().filter(|n| !kept.names.contains(n)).collect();
                let fresh = kept
                    .not_after
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > RENEW_BEFORE);
                if missing.is_empty() && fresh {
                    return Ok((kept, false));
                }
                if fresh {
                    tracing::warn!(
                        "the self-signed certificate in {} does not cover {missing:?}; making a \
                         new one (browsers will ask again)",
                        dir.display()
                    );
                } else {
                    tracing::info!("the self-signed certificate nears expiry; making a new one");
                }
            }
            Err(e) => tracing::warn!("making a new self-signed certificate: {e}"),
        }
    }
    make(&cert, &key, names).map(|made| (made, true))
}

fn make(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<LoadedCert, TlsError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Switchyard (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let loaded = from_pem(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        (cert_path, key_path),
        WHAT,
    )?;
    write_atomically(key_path, &key_pem, true)?;
    write_atomically(cert_path, &cert_pem, false)?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(label: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "sy-self-signed-{label}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    #[test]
    fn it_is_made_once_and_reused() {
        let dir = scratch("reuse");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (first, made) = load_or_make(&dir, &names).unwrap();
        assert!(made);
        let (again, made) = load_or_make(&dir, &names).unwrap();
        assert!(!made);
        assert_eq!(first.fingerprint, again.fingerprint);
        // A new address the kept one does not cover: a new certificate that does.
        let more = [names.clone(), vec!["192.0.2.77".to_owned()]].concat();
        let (third, made) = load_or_make(&dir, &more).unwrap();
        assert!(made);
        assert_ne!(third.fingerprint, first.fingerprint);
        assert!(third.names.contains(&"192.0.2.77".to_owned()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_replaced() {
        let dir = scratch("damaged");
        let names = vec!["localhost".to_owned()];
        load_or_make(&dir, &names).unwrap();
        std::fs::write(dir.join(CERT_FILE), "garbage").unwrap();
        let (_, made) = load_or_make(&dir, &names).unwrap();
        assert!(made);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn local_names_include_loopback_and_the_announced_address() {
        let names = local_names(Some([192, 0, 2, 99].into()));
        for n in ["localhost", "127.0.0.1", "::1", "192.0.2.99"] {
            assert!(names.contains(&n.to_owned()), "{names:?}");
        }
    }
}
