//! What a failed TLS handshake with the server means, in one sentence that says what to do: a
//! certificate the CLI does not trust, one for another name, one out of date, or an https
//! `--url` on a port that speaks plain HTTP. It never retries or changes a request.

use std::error::Error;

use rustls::CertificateError;

use crate::cli::trust::Trust;

/// The message for `error` when a TLS failure caused it; `None` for any other failure. `at`
/// names the server as the user knows it, `host` is the host the certificate was checked for.
pub(super) fn explain(
    error: &(dyn Error + 'static),
    at: &str,
    host: &str,
    trust: &Trust,
) -> Option<String> {
    find_rustls_error(error).map(|tls| message(tls, at, host, trust))
}

fn message(tls: &rustls::Error, at: &str, host: &str, trust: &Trust) -> String {
    match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the certificate of the Switchyard server at {at} is not for {host} ({tls}); give \
             --url a name or address the certificate covers (a --tls-self-signed certificate \
             covers localhost and the server machine's addresses)"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "the certificate of the Switchyard server at {at} is not valid at this time \
             ({tls}); check this machine's clock, or renew the server's certificate"
        ),
        rustls::Error::InvalidCertificate(_) => format!(
            "the Switchyard server at {at} sent a certificate this CLI does not trust ({tls}): {}",
            trust.advice()
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "the server at {at} does not answer in TLS ({tls}); is that its HTTPS port? A server \
             without a certificate speaks plain http: use an http:// --url"
        ),
        _ => format!("cannot open a TLS connection to the Switchyard server at {at}: {tls}"),
    }
}

/// The rustls error in `error`'s chain, also inside the `io::Error`s that carry it (whose
/// `source()` skips the error they wrap; hyper-rustls nests one `io::Error` in another).
fn find_rustls_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => error.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rustls error as hyper-rustls reports it: in an `io::Error` in another, in another error.
    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn wrapped(tls: rustls::Error) -> Wrapper {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        Wrapper(std::io::Error::other(io))
    }

    #[test]
    fn each_tls_failure_says_what_to_do() {
        let trust = Trust::resolve(None, Some(std::path::Path::new("/nonexistent/tls"))).unwrap();
        let at = "https://127.0.0.1:8443";
        let say = |tls| explain(&wrapped(tls), at, "127.0.0.1", &trust).unwrap();
        let untrusted = say(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert!(
            untrusted.starts_with(&format!(
                "the Switchyard server at {at} sent a certificate this CLI does not trust"
            )) && untrusted.contains("pass --ca <file>")
                && untrusted.contains("/nonexistent/tls/self-signed.pem"),
            "{untrusted}"
        );
        let name = say(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        assert!(name.contains("is not for 127.0.0.1"), "{name}");
        let expired = say(rustls::Error::InvalidCertificate(CertificateError::Expired));
        assert!(expired.contains("clock"), "{expired}");
        let plain = say(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(plain.contains("http://"), "{plain}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(explain(&refused, at, "127.0.0.1", &trust), None);
    }
}
