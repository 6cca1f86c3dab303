//! A certificate supplied instead of one minted from pantry's CA: the mirror's own
//! (`--mirror-cert`, `--mirror-key`), e.g. from the organisation's CA so that clients need no extra
//! trust; otherwise `--mirror-tls` presents a leaf from pantry's CA.

use std::{path::Path, sync::Arc};

use rustls::{sign::CertifiedKey, ServerConfig};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

/// A TLS server configuration (h2 and HTTP/1.1) from a PEM certificate chain and its key.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let leaf = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    super::acceptor::server_config(Arc::new(leaf)).map_err(|e| e.to_string())
}
