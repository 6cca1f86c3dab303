//! The accept loop: at most `max_connections` clients at once, one task per connection, and on
//! shutdown no new connections while the current ones drain.

use std::{future::Future, sync::Arc};

use tokio::{net::TcpListener, sync::Semaphore};
use tracing::Instrument;

use super::{admin::Admin, handler};
use crate::{ingress::Ingress, shutdown::ConnectionPermit};

/// Accepts clients and hands each to a handler task.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    ingress: Arc<Ingress>,
    admin: Arc<Admin>,
    limit: Arc<Semaphore>,
}

impl Listener {
    /// A listener serving `ingress` and `admin` on an already bound socket.
    pub fn new(listener: TcpListener, ingress: Arc<Ingress>, admin: Admin) -> Self {
        let limit = Arc::new(Semaphore::new(ingress.config.max_connections));
        Self { listener, ingress, admin: Arc::new(admin), limit }
    }

    /// Accepts until `signal` completes, then drains for the configured grace period.
    pub async fn run(self, signal: impl Future<Output = ()>) {
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
            let _ = stream.set_nodelay(true);
            next_id += 1;
            let span = handler::span(next_id, peer);
            let (ingress, admin) = (Arc::clone(&self.ingress), Arc::clone(&self.admin));
            let gauge = ingress.proxy.metrics().connection();
            self.ingress.shutdown.spawn(
                handler::serve(stream, ingress, admin, ConnectionPermit::new(permit, gauge)).instrument(span),
            );
        }
        drop(self.listener);
        let grace = self.ingress.config.shutdown_grace;
        tracing::info!(?grace, "shutting down: no new connections, draining in-flight transfers");
        if !self.ingress.shutdown.drain(grace).await {
            tracing::warn!("grace period over: aborted the transfers still running");
        }
    }
}
