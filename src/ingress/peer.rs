//! The fleet port: requests from the other members of a fleet (see [`crate::fleet`]). A member
//! gets in with a client certificate from the shared CA (mutual TLS, checked by rustls before
//! any byte of HTTP), and may ask only what a pull reads — `GET`/`HEAD` of content by digest
//! (`/v2/<name>/(blobs|manifests)/<digest>`), of a manifest by tag and the anonymous version check
//! (`/v2/`) of the origin its `pantry-origin` header names — which this node answers through the
//! proxy core as it would answer that client: its store, its single flight, its tag records and
//! their TTLs, the client's credentials forwarded with the request for the registry to judge.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpStream;

use super::Ingress;
use crate::{
    body::{self, Body},
    error::registry_error,
    fleet::{FromPeer, ORIGIN_HEADER},
    registry::route::{classify_escaped, Route},
    shutdown::ConnectionPermit,
    target::Target,
};

/// Serves one member's connection: the mutual-TLS handshake within the header timeout, then
/// HTTP/1.1 or h2 until it closes or shutdown aborts it.
pub async fn serve_member(
    stream: TcpStream,
    ingress: Arc<Ingress>,
    tls: Arc<rustls::ServerConfig>,
    permit: ConnectionPermit,
) {
    let limit = ingress.config.load().live.client_header_timeout;
    let tls = match tokio::time::timeout(limit, tokio_rustls::TlsAcceptor::from(tls).accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::warn!(%error, "fleet port: TLS handshake refused (not a member of this fleet?)");
            return;
        }
        Err(_) => {
            tracing::info!(?limit, "fleet port: no TLS handshake in time");
            return;
        }
    };
    let shutdown = ingress.shutdown.clone();
    let answer = move |request: Request<Incoming>| {
        let (ingress, _permit) = (Arc::clone(&ingress), permit.clone());
        async move { answer(&ingress, request).await }
    };
    if let Err(error) = crate::connection::serve_http(tls, limit, &shutdown, answer).await {
        tracing::debug!(%error, "fleet connection ended with an error");
    }
}

/// Answers one member's request, or says why it is not one the fleet port serves.
async fn answer(ingress: &Ingress, request: Request<Incoming>) -> Response<Body> {
    let refuse = |status, reason: String| {
        tracing::info!(%reason, "fleet port: request refused");
        registry_error(status, "UNSUPPORTED", &reason)
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "the fleet port serves GET and HEAD only".into());
    }
    let origin = request.headers().get(ORIGIN_HEADER).and_then(|v| v.to_str().ok());
    let target = match origin.map(|o| o.parse::<http::Uri>().map_err(|e| e.to_string())) {
        Some(Ok(uri)) if uri.path() == "/" => match Target::from_absolute(&uri) {
            Ok(target) => target,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, format!("{ORIGIN_HEADER}: {reason}")),
        },
        Some(Ok(uri)) => {
            return refuse(StatusCode::BAD_REQUEST, format!("{ORIGIN_HEADER}: {uri} is not an origin"))
        }
        Some(Err(reason)) => return refuse(StatusCode::BAD_REQUEST, format!("{ORIGIN_HEADER}: {reason}")),
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("a fleet request names its origin in {ORIGIN_HEADER}"),
            )
        }
    };
    let uri = request.uri();
    match classify_escaped(request.method(), uri.path(), uri.query()) {
        Ok(Route::BlobByDigest { .. } | Route::ManifestByDigest { .. } | Route::ManifestByTag { .. })
            if uri.query().is_none() => {}
        Ok(Route::Ping) if crate::proxy::anonymous_ping(request.headers(), uri) => {}
        _ => {
            let path = uri.path();
            let reason =
                format!("the fleet port serves content, tags and the version check only, not {path}");
            return refuse(StatusCode::NOT_FOUND, reason);
        }
    }
    let (mut parts, incoming) = request.into_parts();
    parts.headers.remove(ORIGIN_HEADER);
    parts.extensions.insert(FromPeer);
    ingress.answer(Request::from_parts(parts, body::incoming(incoming)), &target).await
}
