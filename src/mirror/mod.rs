//! Registry-mirror mode: a second listener that speaks the registry API itself, for clients
//! configured with pantry as a mirror (containerd hosts.toml, podman registries.conf, dockerd
//! `registry-mirrors`) instead of a proxy. Each request is mapped to its registry
//! ([`route::upstream_of`]) and answered by the same proxy core as intercepted requests: same
//! store, tag rules, credential rules and single flight, so a blob pulled through the proxy is a
//! hit through the mirror and the other way round.
//!
//! Authentication is relayed: upstream's 401 challenges reach the client unchanged, the client
//! fetches its token from the registry's realm itself and sends it back through the mirror. With
//! `proxy_auth_file` set, a mirror client also sends pantry's proxy credentials
//! (`Proxy-Authorization`, e.g. a header in containerd's hosts.toml) unless its address is in
//! `mirror_allow_clients`; `/healthz` needs none.

pub mod route;

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use crate::{
    body::{self, Body},
    error::{registry_error, ProxyError},
    ingress::Ingress,
    mitm,
    registry::route::Route,
    shutdown::ConnectionPermit,
};

/// Serves one mirror client (TLS first when configured) until it closes or shutdown aborts.
pub async fn serve_mirror_client(stream: TcpStream, ingress: Arc<Ingress>, permit: ConnectionPermit) {
    let config = ingress.config.load_full();
    let loaded = ingress.loaded.load_full();
    let admitted = match (&loaded.proxy_auth, stream.peer_addr()) {
        (None, _) => true,
        (Some(_), Ok(peer)) => config.mirror_admits(peer.ip()),
        (Some(_), Err(_)) => false,
    };
    let client = Client { ingress, admitted };
    // A TLS handshake must end within the header timeout, like a request head.
    let limit = config.live.client_header_timeout;
    if let Some(tls) = loaded.mirror_tls.clone() {
        match tokio::time::timeout(limit, tokio_rustls::TlsAcceptor::from(tls).accept(stream)).await {
            Ok(Ok(tls)) => serve_http(tls, client, permit).await,
            Ok(Err(error)) => tracing::info!(%error, "mirror TLS handshake failed"),
            Err(_) => tracing::info!(?limit, "mirror TLS handshake: none in time"),
        }
    } else if config.live.mirror_tls {
        // Without SNI (a client that dialled an address) the leaf names the address it reached.
        let fallback = stream.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        let accepting =
            mitm::accept_named(&client.ingress.authority, stream, &fallback, &config.live.mirror_names);
        match tokio::time::timeout(limit, accepting).await {
            Ok(Ok(tls)) => serve_http(tls, client, permit).await,
            Ok(Err(error)) => tracing::info!(%error, "mirror TLS handshake failed"),
            Err(_) => tracing::info!(?limit, "mirror TLS handshake: none in time"),
        }
    } else {
        serve_http(stream, client, permit).await
    }
}

/// One mirror connection's client: whether it is admitted without proxy credentials.
#[derive(Clone)]
struct Client {
    ingress: Arc<Ingress>,
    admitted: bool,
}

async fn serve_http<IO>(io: IO, client: Client, permit: ConnectionPermit)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ingress = &client.ingress;
    let (shutdown, header_timeout) =
        (ingress.shutdown.clone(), ingress.config.load().live.client_header_timeout);
    let answer = move |request: Request<Incoming>| {
        let client = client.clone();
        let _permit = permit.clone();
        async move { handle(&client, request).await }
    };
    if let Err(error) = crate::connection::serve_http(io, header_timeout, &shutdown, answer).await {
        tracing::debug!(%error, "mirror connection ended with an error");
    }
}

/// Answers one mirror request through the proxy core.
async fn handle(client: &Client, request: Request<Incoming>) -> Response<Body> {
    let ingress = &client.ingress;
    if request.uri().path() == "/healthz" {
        return Response::new(body::full("ok\n"));
    }
    let auth = ingress.loaded.load().proxy_auth.clone();
    if let (Some(auth), false) = (auth, client.admitted) {
        if !auth.verify(request.headers().get(header::PROXY_AUTHORIZATION)).await {
            return registry_error(
                StatusCode::FORBIDDEN,
                "DENIED",
                "this mirror needs pantry's proxy credentials (a Proxy-Authorization header) \
                 or a client address in mirror_allow_clients",
            );
        }
    }
    let upstream = match route::upstream_of(request.uri(), &ingress.config.load().live.mirror_default) {
        Ok(upstream) => upstream,
        Err(reason) => return not_found(reason),
    };
    // Only the registry API: no other path of the named host is served under the mirror's name.
    let path = upstream.path_and_query.split('?').next().unwrap_or_default();
    match crate::registry::route::classify_escaped(request.method(), path, None) {
        Ok(Route::Other) => return not_found(format!("{path} is not a registry API route")),
        Ok(_) => {}
        Err(reason) => return registry_error(StatusCode::BAD_REQUEST, "NAME_INVALID", &reason),
    }
    let (mut parts, incoming) = request.into_parts();
    // The mirror's cookies are no registry's business.
    parts.headers.remove(header::COOKIE);
    parts.extensions.insert(crate::credentials::ViaMirror);
    parts.uri = match upstream.path_and_query.parse() {
        Ok(uri) => uri,
        Err(error) => return ProxyError::BadRequest(format!("mirror path: {error}")).into_response(),
    };
    parts.headers.insert(
        header::HOST,
        HeaderValue::from_str(&upstream.target.host_port()).unwrap_or(HeaderValue::from_static("")),
    );
    let request = Request::from_parts(parts, body::incoming(incoming));
    let mut response = ingress.answer(request, &upstream.target).await;
    // Registries announce their API version; some clients check it on `/v2/`.
    response
        .headers_mut()
        .entry("docker-distribution-api-version")
        .or_insert(HeaderValue::from_static("registry/2.0"));
    response
}

fn not_found(reason: String) -> Response<Body> {
    registry_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", &reason)
}
