//! The accept loops: the proxy port and, when configured, the registry-mirror and admin ports; at most
//! `max_connections` clients at once over both, one task per connection; on shutdown no new
//! connections while the current ones drain.

use std::{future::Future, sync::Arc};

use tokio::{net::TcpListener, sync::Semaphore};
use tracing::Instrument;

use super::{admin::Admin, handler};
use crate::{
    ingress::{self, transparent, Ingress},
    mirror,
    shutdown::ConnectionPermit,
};

/// What a listener's clients speak.
#[derive(Debug, Clone)]
pub enum Port {
    /// Proxy clients: CONNECT, absolute-form requests, and pantry's own pages.
    Proxy(Arc<Admin>),
    /// Registry clients of the mirror mode.
    Mirror,
    /// Monitoring: `/metrics`, `/healthz`, `/ca.pem`.
    Admin(Arc<Admin>),
    /// Connections redirected by the kernel; pantry's own addresses, to refuse loops.
    Transparent(Arc<[std::net::SocketAddr]>),
    /// The other members of a fleet, admitted by mutual TLS with this configuration.
    Fleet(Arc<rustls::ServerConfig>),
}

/// Accepts clients and hands each to a handler task.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    ingress: Arc<Ingress>,
    role: Port,
    limit: Arc<Semaphore>,
}

impl Listener {
    /// A listener for `role` on an already bound socket; `limit` is shared by all listeners.
    pub fn new(listener: TcpListener, ingress: Arc<Ingress>, role: Port, limit: Arc<Semaphore>) -> Self {
        Self { listener, ingress, role, limit }
    }

    /// Accepts until `signal` completes.
    pub async fn accept_until(self, signal: impl Future<Output = ()>) {
        tokio::pin!(signal);
        let mut next_id = 0u64;
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&self.limit).acquire_owned() => permit,
                () = &mut signal => break,
            };
            // The semaphore is never closed, so acquiring only fails if that invariant breaks.
            let permit = permit.expect("connection semaphore is never closed");
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut signal => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            if !self.ingress.config.load().allows_client(peer.ip()) {
                tracing::info!(%peer, "connection refused: client address not in allow_clients");
                continue; // dropping the stream closes it
            }
            let _ = stream.set_nodelay(true);
            next_id += 1;
            let ingress = Arc::clone(&self.ingress);
            let permit = ConnectionPermit::new(permit, ingress.proxy.metrics().connection());
            match &self.role {
                Port::Proxy(admin) => {
                    let span = handler::span(next_id, peer);
                    let task = handler::serve_client(stream, peer, ingress, Arc::clone(admin), permit);
                    self.ingress.shutdown.spawn(task.instrument(span));
                }
                Port::Admin(admin) => {
                    let timeout = ingress.config.load().live.client_header_timeout;
                    let task =
                        handler::serve_admin(stream, Arc::clone(admin), ingress.shutdown.clone(), timeout);
                    // The permit is held for the connection's life like any other.
                    self.ingress.shutdown.spawn(async move {
                        task.await;
                        drop(permit);
                    });
                }
                Port::Transparent(own) => {
                    let span = tracing::info_span!("transparent", id = next_id, %peer);
                    let task = transparent::serve_redirected(stream, ingress, permit, Arc::clone(own));
                    self.ingress.shutdown.spawn(task.instrument(span));
                }
                Port::Fleet(tls) => {
                    let span = tracing::info_span!("fleet", id = next_id, %peer);
                    let task = ingress::peer::serve_member(stream, ingress, Arc::clone(tls), permit);
                    self.ingress.shutdown.spawn(task.instrument(span));
                }
                Port::Mirror => {
                    let span = tracing::info_span!("mirror", id = next_id, %peer);
                    self.ingress
                        .shutdown
                        .spawn(mirror::serve_mirror_client(stream, ingress, permit).instrument(span));
                }
            }
        }
    }
}
