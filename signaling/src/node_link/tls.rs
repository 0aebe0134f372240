//! TLS under a node link to a node whose URL is `https://`. The link's own handshake is what
//! authenticates the other node (it must prove it knows the cluster's API secret, over fresh
//! nonces and both node ids) and AES-256-GCM is what keeps frames secret; TLS here is only the
//! way into a port that speaks HTTPS. So the certificate is not checked against a CA: a node
//! with a self-signed certificate (`--tls-self-signed`, a LAN) links as well as one with a
//! public certificate, and a man in the middle gains nothing (it cannot answer the handshake,
//! read a frame or forge one). It never carries anything but a link.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::http::Uri;

/// Opens TCP and TLS to the host and port of `url` (`wss://host[:port]/...`).
pub(super) async fn connect(url: &str) -> Result<TlsStream<TcpStream>, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad link URL: {e}"))?;
    let host = uri
        .host()
        .ok_or("the link URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    // No Nagle: frames are media, each wanted at once.
    let _ = tcp.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LinkVerifier(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

/// Accepts the node's certificate (see the module doc) but still checks that the TLS
/// handshake is signed by its key.
#[derive(Debug)]
struct LinkVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for LinkVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
