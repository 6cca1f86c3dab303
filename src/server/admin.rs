//! Admin pages: `/ca.pem`, `/healthz`, `/metrics`, served on the proxy port to origin-form
//! requests and on the admin port (`--admin-listen`) when there is one; then `/metrics` is served
//! only there, so proxy clients cannot read it.
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
}

impl Admin {
    /// Admin pages on the proxy port about `ingress` (its CA, its proxy's metrics unless an admin
    /// port serves them).
    pub fn new(ingress: Arc<Ingress>) -> Self {
        let metrics_here = ingress.config.load().admin_listen.is_none();
        Self { ingress, metrics_here, api: None }
    }

    /// Admin pages and the API on the admin port; `loopback`: it listens on loopback only.
    pub fn dedicated(ingress: Arc<Ingress>, loopback: bool) -> Self {
        super::status::started();
        let api = Some(Arc::new(super::api::Api::new(Arc::clone(&ingress), loopback)));
        Self { ingress, metrics_here: true, api }
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
            "/" if self.api.is_some() => {
                // The page shows what the API does (the configuration too): the same rule holds.
                if let Some(refusal) = self.api.as_ref().and_then(|api| api.refusal(request)) {
                    return refusal;
                }
                let page = super::status::page(&super::status::snapshot(&self.ingress));
                text(StatusCode::OK, page, "text/html; charset=utf-8")
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
        };
        for (registry, remaining) in proxy.upstream_rate_limits().remaining() {
            proxy.metrics().ratelimit_remaining(&registry, remaining);
        }
        proxy.metrics().render(now)
    }
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
