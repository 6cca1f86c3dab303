//! Admin pages: `/ca.pem`, `/healthz`, `/metrics`, served on the proxy port to origin-form
//! requests and on the admin port (`--admin-listen`) when there is one; then `/metrics` is served
//! only there, so proxy clients cannot read it. The status page `/` is served on the admin port
//! and, on the proxy port, to loopback clients, under the API's rule (`api::refusal`).
//!
//! Serves the CA certificate only, never its key.

use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::{
    body::{self, Body},
    ingress::Ingress,
    metrics::Snapshot,
};

/// Answers admin requests.
#[derive(Debug, Clone)]
pub struct Admin {
    ingress: Arc<Ingress>,
    metrics_here: bool,
    api: Option<Arc<super::api::Api>>,
    /// The admin port listens on loopback only.
    loopback: bool,
}

/// The address of the client a request came from (set by the connection handler).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl Admin {
    /// Admin pages on the proxy port about `ingress` (its CA, its proxy's metrics unless an admin
    /// port serves them).
    pub fn new(ingress: Arc<Ingress>) -> Self {
        let metrics_here = ingress.config.load().startup.admin_listen.is_none();
        Self { ingress, metrics_here, api: None, loopback: false }
    }

    /// Admin pages and the API on the admin port; `loopback`: it listens on loopback only.
    pub fn dedicated(ingress: Arc<Ingress>, loopback: bool) -> Self {
        let api = Some(Arc::new(super::api::Api::new(Arc::clone(&ingress), loopback)));
        Self { ingress, metrics_here: true, api, loopback }
    }

    /// The API, when this is the admin port.
    pub fn api(&self) -> Option<&Arc<super::api::Api>> {
        self.api.as_ref()
    }

    /// Answers one origin-form request.
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD are served here\n".into(),
                "text/plain",
            );
        }
        match request.uri().path() {
            "/ca.pem" => {
                text(StatusCode::OK, self.ingress.authority.ca_pem().to_string(), "application/x-pem-file")
            }
            "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
            "/" if self.api.is_some() || from_loopback(request) => {
                // The page shows what the API does (the configuration too): the same rule holds.
                let local = if self.api.is_some() { self.loopback } else { true };
                if let Some(refusal) = super::api::refusal(&self.ingress.loaded.load(), request, local, true)
                {
                    return refusal;
                }
                let page = super::page::render(&super::status::snapshot(&self.ingress));
                let mut response = text(StatusCode::OK, page, "text/html; charset=utf-8");
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            "/metrics" if self.metrics_here => {
                text(StatusCode::OK, self.metrics(), "text/plain; version=0.0.4")
            }
            "/metrics" => {
                text(StatusCode::NOT_FOUND, "metrics are served on the admin port\n".into(), "text/plain")
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "pantry is a proxy: send proxy requests (CONNECT host:port or GET http://host/path); \
                 admin pages: /ca.pem, /healthz, /metrics\n"
                    .into(),
                "text/plain",
            ),
        }
    }

    fn metrics(&self) -> String {
        let proxy = &self.ingress.proxy;
        let now = Snapshot {
            in_flight: proxy.flights().in_flight() as u64,
            stored_bytes: proxy.store().stored_bytes(),
            max_bytes: proxy.store().max_bytes(),
            leaves_minted: self.ingress.authority.minted(),
            store_read_errors: proxy.store().read_errors(),
        };
        for (registry, remaining) in proxy.upstream_rate_limits().remaining() {
            proxy.metrics().ratelimit_remaining(&registry, remaining);
        }
        proxy.metrics().render(now)
    }
}

/// Whether `request` came from a loopback address (an IPv4-mapped one too).
fn from_loopback<B>(request: &Request<B>) -> bool {
    request.extensions().get::<ClientAddr>().is_some_and(|c| c.0.ip().to_canonical().is_loopback())
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_clients_count_as_local() {
        let from = |peer: Option<&str>| {
            let mut request = Request::new(());
            if let Some(peer) = peer {
                request.extensions_mut().insert(ClientAddr(peer.parse().unwrap()));
            }
            from_loopback(&request)
        };
        assert!(
            from(Some("127.0.0.1:5000")) && from(Some("[::1]:5000")) && from(Some("[::ffff:127.0.0.1]:5000"))
        );
        assert!(!from(Some("10.0.0.7:5000")) && !from(Some("[::ffff:10.0.0.7]:5000")) && !from(None));
    }
}
