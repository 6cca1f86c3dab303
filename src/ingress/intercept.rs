//! An intercepted tunnel: TLS with a leaf for the host, then HTTP/1.1 or h2 requests served by
//! hyper and answered by the proxy core for `https://host:port`.

use std::{convert::Infallible, sync::Arc};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Ingress;
use crate::{mitm, server::cancels::Cancels, target::Target};

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
    let cancels = Cancels::new();
    let watch = Arc::clone(&cancels);
    let service = service_fn(move |request| {
        let proxy = proxy.clone();
        let target = Arc::clone(&target);
        watch.watch(async move {
            Ok::<_, Infallible>(proxy.handle(request.map(crate::body::incoming), &target).await)
        })
    });
    let builder = crate::server::http_server(ingress.config.load().client_header_timeout);
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    log_end(ingress.shutdown.serve(connection, |c| c.graceful_shutdown(), cancels.abusive()).await);
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        tracing::debug!(%error, "intercepted connection ended with an error");
    }
}
