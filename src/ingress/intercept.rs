//! An intercepted tunnel: TLS with a leaf for the host, then HTTP/1.1 or h2 requests served by
//! hyper and answered by the proxy core for `https://host:port`.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Ingress;
use crate::{connection::serve_http, mitm, target::Target};

/// Terminates the client's TLS and serves its requests until it closes or shutdown aborts.
pub async fn serve_intercepted<IO>(ingress: &Arc<Ingress>, io: IO, target: Target)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The client must finish its handshake within the header timeout, like a request head.
    let header_timeout = ingress.config.load().live.client_header_timeout;
    let accepting = mitm::accept(&ingress.authority, io, &target.host);
    let tls = match tokio::time::timeout(header_timeout, accepting).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => return tracing::info!(%target, %error, "TLS interception failed"),
        Err(_) => return tracing::info!(%target, ?header_timeout, "TLS interception: no handshake in time"),
    };
    let proxy = ingress.proxy.clone();
    let target = Arc::new(target);
    let answer = move |request: Request<Incoming>| {
        let (proxy, target) = (proxy.clone(), Arc::clone(&target));
        async move { proxy.handle(request.map(crate::body::incoming), &target).await }
    };
    if let Err(error) = serve_http(tls, header_timeout, &ingress.shutdown, answer).await {
        tracing::debug!(%error, "intercepted connection ended with an error");
    }
}
