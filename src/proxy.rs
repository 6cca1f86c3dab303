//! `handle()`: the one place where a client's request meets the upstream (and, later, the cache).
//!
//! Requests arrive here from intercepted tunnels and from plain-HTTP absolute-form requests; answers
//! always carry `Cache-Status` (RFC 9211), errors `Proxy-Status` (RFC 9209).

use http::{header, HeaderValue, Request, Response, Version};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::{
    body::{self, Body},
    error::{ProxyError, Side},
    hop_by_hop,
    target::Target,
    upstream::Upstream,
};

/// `Cache-Status` of a response pantry forwarded without consulting a cache.
const FORWARDED: &str = "pantry; fwd=uri-miss";

/// Forwards requests to their upstream origin.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstream: Upstream,
    offline: bool,
}

impl Proxy {
    /// A proxy sending through `upstream`; with `offline`, nothing is sent.
    pub fn new(upstream: Upstream, offline: bool) -> Self {
        Self { upstream, offline }
    }

    /// Answers one request for `target`: never fails, errors become responses.
    pub async fn handle(&self, request: Request<Incoming>, target: &Target) -> Response<Body> {
        let span = tracing::info_span!(
            "req",
            method = %request.method(),
            host = %target,
            path = %request.uri().path(),
        );
        async {
            let mut response = match self.forward(request, target).await {
                Ok(response) => response,
                Err(error) => {
                    match error.side() {
                        Side::Internal => tracing::error!(%error, "request failed"),
                        _ => tracing::info!(%error, "request failed"),
                    }
                    error.into_response()
                }
            };
            response.headers_mut().insert("cache-status", HeaderValue::from_static(FORWARDED));
            tracing::debug!(status = response.status().as_u16(), "answered");
            response
        }
        .instrument(span)
        .await
    }

    async fn forward(
        &self,
        request: Request<Incoming>,
        target: &Target,
    ) -> Result<Response<Body>, ProxyError> {
        if self.offline {
            return Err(ProxyError::Offline(format!("{target} is not in the cache")));
        }
        let (mut parts, incoming) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = target.url(path).map_err(ProxyError::BadRequest)?;
        parts.version = Version::HTTP_11;
        hop_by_hop::strip(&mut parts.headers);
        parts.headers.remove(header::HOST);
        let request = Request::from_parts(parts, body::incoming(incoming));
        let response = self.upstream.send(request).await?;
        let (mut parts, incoming) = response.into_parts();
        hop_by_hop::strip(&mut parts.headers);
        parts.version = Version::HTTP_11;
        Ok(Response::from_parts(parts, body::incoming(incoming)))
    }
}
