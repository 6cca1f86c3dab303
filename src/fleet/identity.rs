//! The fleet's mutual TLS. Every node holds the same CA (its clients trust one CA), so the CA is the
//! fleet's membership card: a node presents a leaf the CA signed for its advertised name, both
//! when it serves the fleet port and when it asks another node; the fleet port admits only client
//! certificates that chain to the CA and carry the client-auth usage, which the leaves minted for
//! intercepted hosts never do.

use std::sync::{Arc, Mutex};

use rustls::{
    client::ResolvesClientCert,
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
    ClientConfig, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::time::Instant;

use crate::mitm::{Authority, CaError};

/// A leaf older than this is replaced on the next handshake (leaves are valid for 30 days).
const RENEW_AFTER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Why the fleet's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The node's leaf could not be minted.
    #[error("{0}")]
    Ca(#[from] CaError),
    /// rustls refused the configuration.
    #[error("fleet TLS: {0}")]
    Tls(String),
}

/// This node's leaf, renewed before it expires.
#[derive(Debug)]
pub struct Identity {
    authority: Arc<Authority>,
    name: String,
    leaf: Mutex<(Arc<CertifiedKey>, Instant)>,
}

impl Identity {
    /// Mints the leaf for `name` (the advertised host).
    pub fn new(authority: Arc<Authority>, name: &str) -> Result<Arc<Self>, IdentityError> {
        let leaf = Arc::new(authority.fleet_leaf(name)?);
        Ok(Arc::new(Self { authority, name: name.to_string(), leaf: Mutex::new((leaf, Instant::now())) }))
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut leaf = self.leaf.lock().unwrap_or_else(|e| e.into_inner());
        if leaf.1.elapsed() >= RENEW_AFTER {
            match self.authority.fleet_leaf(&self.name) {
                Ok(fresh) => *leaf = (Arc::new(fresh), Instant::now()),
                Err(error) => tracing::warn!(%error, "cannot renew the fleet leaf; keeping the current one"),
            }
        }
        Arc::clone(&leaf.0)
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // The CA parsed when it was loaded; a store of one anchor cannot refuse it but for a
        // malformed certificate, which would have failed at load.
        if let Err(error) = roots.add(self.authority.ca_der()) {
            tracing::error!(%error, "the CA certificate is not usable as a trust anchor");
        }
        roots
    }

    /// The fleet port's TLS: this leaf, and a client certificate from the CA required.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), Arc::clone(&provider))
                .build()
                .map_err(|e| IdentityError::Tls(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// TLS towards the other members: only the CA is trusted, this leaf is presented.
    pub fn client_config(self: &Arc<Self>) -> Result<ClientConfig, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::Tls(e.to_string()))?
            .with_root_certificates(self.roots())
            .with_client_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesClientCert>))
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
