//! pantry — a forward HTTPS proxy that caches container images.
//!
//! ```text
//! client ─TCP─▶ server::listener ─▶ server::handler (hyper HTTP/1.x, one task per connection)
//!               ├─ CONNECT host:port ─▶ ingress::connect (port allowed? intercept this host?)
//!               │    ├─ intercept ─▶ mitm::acceptor (leaf from mitm::authority, ALPN h2/http1.1)
//!               │    │              ─▶ ingress::intercept (hyper server) ─▶ proxy::handle
//!               │    └─ otherwise ─▶ ingress::tunnel (bytes both ways, idle timeout)
//!               ├─ absolute-form http://… ─▶ proxy::handle
//!               └─ origin-form /ca.pem /healthz ─▶ server::admin
//! proxy::handle ─▶ upstream::client (pooled, rustls/ring, --upstream-ca, --resolve via upstream::dial)
//! registry::{route,digest}: pure parsing of the registry API, used by the cache.
//! ```
//!
//! Map: `config` (flags/env/file), `error` (side → status, Proxy-Status), `body` (streaming body
//! type), `target` (host:port parsing), `hop_by_hop` (headers that never cross), `shutdown` (drain
//! then abort), `server`, `ingress`, `mitm`, `proxy`, `upstream`, `registry`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod config;
pub mod error;
pub mod hop_by_hop;
pub mod ingress;
pub mod mitm;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod shutdown;
pub mod target;
pub mod upstream;

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;

use crate::{
    config::Config,
    ingress::Ingress,
    mitm::{Authority, CaError},
    proxy::Proxy,
    server::{admin::Admin, Listener},
    shutdown::Shutdown,
    upstream::{client::UpstreamSetupError, Dialer, Upstream},
};

/// Why pantry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CA could not be loaded or created.
    #[error("certificate authority: {0}")]
    Ca(#[from] CaError),
    /// The upstream client could not be built.
    #[error("upstream client: {0}")]
    Upstream(#[from] UpstreamSetupError),
}

/// A configured pantry: CA loaded, upstream client built, ready to serve a listener.
#[derive(Debug)]
pub struct Pantry {
    ingress: Arc<Ingress>,
}

impl Pantry {
    /// Loads (or creates) the CA and builds the upstream client from `config`.
    pub fn new(config: Config) -> Result<Self, StartError> {
        let config = Arc::new(config);
        let authority = Arc::new(Authority::load_or_create(&config.certs_dir)?);
        let dialer = Dialer::new(&config.resolve, config.upstream_connect_timeout);
        let upstream = Upstream::new(dialer.clone(), &config.upstream_ca)?;
        let proxy = Proxy::new(upstream, config.offline);
        let ingress = Ingress { config, authority, proxy, dialer, shutdown: Shutdown::default() };
        Ok(Self { ingress: Arc::new(ingress) })
    }

    /// The certificate authority (for its PEM and minting statistics).
    pub fn authority(&self) -> &Authority {
        &self.ingress.authority
    }

    /// Serves clients on `listener` until `signal` completes, then shuts down gracefully.
    pub async fn serve(&self, listener: TcpListener, signal: impl Future<Output = ()>) {
        let admin = Admin::new(self.ingress.authority.ca_pem().to_string());
        Listener::new(listener, Arc::clone(&self.ingress), admin).run(signal).await
    }
}
