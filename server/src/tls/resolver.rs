//! The certificate HTTPS serves, swappable while the server runs: a reload or a renewal
//! installs a new one, and the next handshake uses it. It never reads files or talks to a CA.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::pem::LoadedCert;

/// The current certificate; empty until the first one is installed (an ACME server waiting
/// for its first certificate refuses handshakes).
#[derive(Debug, Default)]
pub struct SwappableCert {
    current: RwLock<Option<LoadedCert>>,
    problem: RwLock<Option<String>>,
}

impl SwappableCert {
    /// Serves `cert` from now on.
    pub fn install(&self, cert: LoadedCert) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(cert);
        self.set_problem(None);
    }

    /// Records why the last reload or renewal failed (the certificate served stays as it was).
    pub fn set_problem(&self, problem: Option<String>) {
        *self.problem.write().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// Why the last reload or renewal failed; `None` once one succeeds.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The certificate being served, if any.
    pub fn current(&self) -> Option<LoadedCert> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|c| c.key.clone())
    }
}
