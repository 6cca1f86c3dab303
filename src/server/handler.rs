//! One client connection: HTTP/1.x served by hyper, each request dispatched by its form —
//! CONNECT to ingress, absolute-form to the proxy, origin-form to admin.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http::{Method, Request};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::admin::Admin;
use crate::{body::Body, ingress::Ingress, shutdown::ConnectionPermit};

/// Serves one client connection until it closes, draining on shutdown. `permit` counts the
/// connection against `max_connections`, and goes with it into a tunnel if it becomes one.
pub async fn serve_client(
    stream: TcpStream,
    peer: SocketAddr,
    ingress: Arc<Ingress>,
    admin: Arc<Admin>,
    permit: ConnectionPermit,
) {
    let shutdown = ingress.shutdown.clone();
    let header_timeout = ingress.config.load().live.client_header_timeout;
    let service = service_fn(move |mut request: Request<Incoming>| {
        let ingress = Arc::clone(&ingress);
        let admin = Arc::clone(&admin);
        request.extensions_mut().insert(permit.clone());
        request.extensions_mut().insert(super::admin::ClientAddr(peer));
        async move { Ok::<_, Infallible>(dispatch(&ingress, &admin, request).await) }
    });
    let connection = http1::Builder::new()
        .preserve_header_case(false)
        .header_read_timeout(header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let result = shutdown.drive(connection, |c| c.graceful_shutdown(), std::future::pending()).await;
    if let Err(error) = result {
        tracing::debug!(%error, "client connection ended with an error");
    }
}

async fn dispatch(ingress: &Arc<Ingress>, admin: &Admin, request: Request<Incoming>) -> http::Response<Body> {
    let is_proxy_request = request.method() == Method::CONNECT || request.uri().scheme().is_some();
    let auth = ingress.loaded.load().proxy_auth.clone();
    match auth {
        Some(auth) if is_proxy_request => {
            if let Err(refusal) = auth.check(request.headers()).await {
                return refusal;
            }
        }
        // What pantry has served is for its proxy users only: scrapers authenticate too.
        Some(auth) if request.uri().path() == "/metrics" => {
            let headers = request.headers();
            let given =
                headers.get(http::header::AUTHORIZATION).or(headers.get(http::header::PROXY_AUTHORIZATION));
            if !auth.verify(given).await {
                return crate::proxy_auth::unauthorized("/metrics needs pantry's proxy credentials\n");
            }
        }
        _ => {}
    }
    if request.method() == Method::CONNECT {
        ingress.connect(request).await
    } else if request.uri().scheme().is_some() {
        ingress.forward(request).await
    } else {
        admin.handle(&request)
    }
}

/// Serves one connection to the admin port: every request is an admin page.
pub async fn serve_admin(
    stream: TcpStream,
    admin: Arc<Admin>,
    shutdown: crate::shutdown::Shutdown,
    header_timeout: std::time::Duration,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let admin = Arc::clone(&admin);
        async move {
            let response = match admin.api() {
                Some(api) if request.uri().path().starts_with("/api/") => api.handle(request).await,
                _ => admin.handle(&request),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .header_read_timeout(header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let result = shutdown.drive(connection, |c| c.graceful_shutdown(), std::future::pending()).await;
    if let Err(error) = result {
        tracing::debug!(%error, "admin connection ended with an error");
    }
}

/// The `conn{id, peer}` span every connection's logs carry.
pub fn span(id: u64, peer: SocketAddr) -> tracing::Span {
    tracing::info_span!("conn", id, %peer)
}
