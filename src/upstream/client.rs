//! The pooled upstream HTTP client: HTTP/1.1 and h2 (by ALPN) over rustls with the ring provider,
//! trusting the system roots plus every `--upstream-ca`, connecting through [`Dialer`].

use std::{path::PathBuf, sync::Arc, time::Duration};

use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer};

use super::{
    dial::{DialError, Dialer},
    rate_limit::RateLimits,
    redirect, retry,
};
use crate::{
    body::{self, Body},
    error::ProxyError,
};

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// An `--upstream-ca` file could not be read or holds no certificate.
    #[error("upstream CA {path}: {detail}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Idle connections kept per origin (h2 needs one; HTTP/1.1 origins one per parallel fetch).
const POOL_MAX_IDLE_PER_HOST: usize = 16;

/// Sends requests to upstream origins; cheap to clone, connections pooled per origin.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpsConnector<Dialer>, Body>,
    dialer: Dialer,
    response_timeout: Duration,
    limits: Arc<RateLimits>,
}

impl Upstream {
    /// Builds the client: system roots + `extra_roots`, connecting through `dialer`, waiting at
    /// most `response_timeout` for a response's headers, closing connections idle for `idle_timeout`.
    pub fn new(
        dialer: Dialer,
        extra_roots: &[PathBuf],
        response_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, UpstreamSetupError> {
        let connector = https_connector(dialer.clone(), extra_roots)?;
        // Idle connections are closed after `idle_timeout`: without a timer hyper keeps every
        // host's idle connection (with its TLS and h2 buffers, ~45 KiB) until that host is asked
        // again, which with many hosts (--intercept-all, CDNs) is memory without bound.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(idle_timeout)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build(connector);
        Ok(Self { client, dialer, response_timeout, limits: Arc::default() })
    }

    /// The same client with rate-limit pauses measured on `clock`.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.limits = Arc::new(RateLimits::new(clock));
        self
    }

    /// What the registries said of their rate limits.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The dialer, for raw connections (tunnels).
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Sends a body-less request (GET, HEAD), following redirects; `Authorization` and cookies are
    /// dropped as soon as a redirect leaves the original origin.
    pub async fn fetch(
        &self,
        method: Method,
        uri: Uri,
        mut headers: HeaderMap,
    ) -> Result<Response<Incoming>, ProxyError> {
        let origin = uri.clone();
        let mut uri = uri;
        for _ in 0..=redirect::MAX_REDIRECTS {
            let mut request = Request::new(body::empty());
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = headers.clone();
            let response = self.send(request).await?;
            let Some(next) = redirect::next_hop(&uri, response.status(), response.headers()) else {
                return Ok(response);
            };
            tracing::debug!(from = %uri, to = %next, "following redirect");
            if !redirect::same_origin(&origin, &next) {
                redirect::strip_credentials(&mut headers);
            }
            uri = next;
        }
        Err(ProxyError::Upstream { target: target_of(&origin), detail: "too many redirects".into() })
    }

    /// Sends a request with an absolute URI; errors say which step failed. An origin that
    /// answered 429 is not asked again before its `Retry-After`.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, ProxyError> {
        let target = target_of(request.uri());
        let identity = self.limits.identity(request.headers());
        if let Some(wait) = self.limits.blocked(&target, identity) {
            return Err(ProxyError::RateLimited { target, retry_after: wait.as_secs().max(1) });
        }
        let again = retry::resendable(&request);
        let sent = async {
            match (self.client.request(request).await, again) {
                (Err(error), Some(again)) if retry::unprocessed(&error) => {
                    tracing::debug!(%target, %error, "the upstream connection ended before an answer; sending the request again");
                    self.client.request(again).await
                }
                (result, _) => result,
            }
        };
        match tokio::time::timeout(self.response_timeout, sent).await {
            Ok(result) => {
                let response = result.map_err(|e| classify(&target, &e))?;
                self.limits.observe(&target, identity, response.status(), response.headers());
                Ok(response)
            }
            Err(_) => Err(ProxyError::ConnectionTimeout { target }),
        }
    }
}

/// HTTP/1.1 and h2 (by ALPN), over rustls with ring trusting the system roots and `extra_roots`,
/// or in cleartext for `http://`, connecting through `dialer`: how pantry reaches upstreams and
/// the shared store.
pub fn https_connector(
    dialer: Dialer,
    extra_roots: &[PathBuf],
) -> Result<HttpsConnector<Dialer>, UpstreamSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(extra_roots)?)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(dialer))
}

/// The system roots plus every `extra` PEM file: what pantry trusts for TLS towards upstreams and
/// the shared store.
fn root_store(extra: &[PathBuf]) -> Result<RootCertStore, UpstreamSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping a system root certificate");
    }
    roots.add_parsable_certificates(native.certs);
    for path in extra {
        let ca_error = |detail: String| UpstreamSetupError::Ca { path: path.clone(), detail };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    Ok(roots)
}

/// `host:port` of an absolute URI, the port its scheme implies when none is written.
fn target_of(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let default = if uri.scheme_str() == Some("http") { 80 } else { 443 };
    format!("{host}:{}", uri.port_u16().unwrap_or(default))
}

/// Walks the error's cause chain to tell DNS, TCP, TLS and HTTP failures apart.
fn classify(target: &str, error: &(dyn std::error::Error + 'static)) -> ProxyError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut last = error.to_string();
    while let Some(e) = cause {
        if let Some(known) = classify_one(target, e) {
            return known;
        }
        // io::Error::source() skips the error it wraps (often another io::Error), so descend explicitly.
        let mut wrapped = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        while let Some(inner) = wrapped {
            if let Some(known) = classify_one(target, inner) {
                return known;
            }
            wrapped = inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        }
        last = e.to_string();
        cause = e.source();
    }
    ProxyError::Upstream { target: target.to_string(), detail: last }
}

fn classify_one(target: &str, e: &(dyn std::error::Error + 'static)) -> Option<ProxyError> {
    if let Some(dial) = e.downcast_ref::<DialError>() {
        return Some(ProxyError::from(dial));
    }
    let tls = e.downcast_ref::<rustls::Error>()?;
    let (target, detail) = (target.to_string(), tls.to_string());
    Some(match tls {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            ProxyError::TlsCertificate { target, detail }
        }
        _ => ProxyError::TlsProtocol { target, detail },
    })
}
