//! An intercepted tunnel: TLS with a leaf for the host, then HTTP/1.1 or h2 requests served by
//! hyper and answered by the proxy core for `https://host:port`.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Ingress;
use crate::{mitm, server::serve_http, target::Target};

/// Terminates the client's TLS and serves its requests until it closes or shutdown aborts.
pub async fn serve<IO>(ingress: &Arc<Ingress>, io: IO, target: Target)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tls = match mitm::accept(&ingress.authority, io, &target.host).await {
        Ok(tls) => tls,
        Err(error) => return tracing::info!(%target, %error, "TLS interception failed"),
    };
    let proxy = ingress.proxy.clone();
    let target = Arc::new(target);
    let answer = move |request: Request<Incoming>| {
        let (proxy, target) = (proxy.clone(), Arc::clone(&target));
        async move { proxy.handle(request.map(crate::body::incoming), &target).await }
    };
    let header_timeout = ingress.config.load().client_header_timeout;
    if let Err(error) = serve_http(tls, header_timeout, &ingress.shutdown, answer).await {
        tracing::debug!(%error, "intercepted connection ended with an error");
    }
}
