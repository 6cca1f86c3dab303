//! Accepts TLS from a client inside a CONNECT tunnel: reads the ClientHello first (SNI, ALPN), then
//! presents the leaf for that name, offering h2 and http/1.1.

use std::sync::Arc;

use rustls::{server::Acceptor, sign::CertifiedKey, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{server::TlsStream, LazyConfigAcceptor};

use super::authority::{Authority, CaError};

/// Why the client-side TLS handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum MitmError {
    /// The client's TLS handshake failed or it went away.
    #[error("client TLS handshake: {0}")]
    Handshake(#[from] std::io::Error),
    /// The ClientHello names another host than the CONNECT request.
    #[error("SNI {sni:?} does not match the CONNECT host {host:?}")]
    SniMismatch {
        /// Name in the ClientHello.
        sni: String,
        /// Host of the CONNECT request.
        host: String,
    },
    /// The client asked one of pantry's own endpoints for a name it does not serve.
    #[error("SNI {0:?} is not one of mirror_names")]
    UnknownName(String),
    /// No certificate could be minted.
    #[error(transparent)]
    Ca(#[from] Arc<CaError>),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Completes the TLS handshake with the client as `host` (the CONNECT host, or SNI when equal).
pub async fn accept<IO>(authority: &Authority, io: IO, host: &str) -> Result<TlsStream<IO>, MitmError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
    let bare_host = crate::target::bare(host);
    if let Some(sni) = start.client_hello().server_name() {
        if !sni.eq_ignore_ascii_case(bare_host) {
            return Err(MitmError::SniMismatch { sni: sni.to_string(), host: host.to_string() });
        }
    }
    finish(authority, start, bare_host).await
}

/// Completes the TLS handshake for pantry's own endpoints (the registry mirror), not interception:
/// as the client's SNI when `names` holds it, as `fallback` (the address the client reached)
/// without SNI; any other SNI is refused with a TLS alert, so no leaf for a foreign name is minted.
pub async fn accept_named<IO>(
    authority: &Authority,
    io: IO,
    fallback: &str,
    names: &[String],
) -> Result<TlsStream<IO>, MitmError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
    let name = start.client_hello().server_name().unwrap_or(fallback).to_ascii_lowercase();
    if name != fallback && !names.contains(&name) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let refuse = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate));
        // With no certificate to present, rustls answers the ClientHello with an alert.
        let _ = start.into_stream(Arc::new(refuse)).await;
        return Err(MitmError::UnknownName(name));
    }
    finish(authority, start, &name).await
}

/// A resolver with no certificate for any name.
#[derive(Debug)]
struct NoCertificate;

impl rustls::server::ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

async fn finish<IO>(
    authority: &Authority,
    start: tokio_rustls::StartHandshake<IO>,
    name: &str,
) -> Result<TlsStream<IO>, MitmError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let leaf = authority.leaf(name).await?;
    Ok(start.into_stream(Arc::new(server_config(leaf)?)).await?)
}

/// A TLS server configuration presenting `leaf` and offering h2 and HTTP/1.1 (ring provider):
/// what every TLS pantry terminates uses, minted leaves and the mirror's supplied certificate.
pub fn server_config(leaf: Arc<CertifiedKey>) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(leaf)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
