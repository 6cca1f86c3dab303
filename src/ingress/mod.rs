//! What arrives as a proxy request: CONNECT (intercepted or tunnelled) and absolute-form plain HTTP
//! at the proxy port, and redirected connections at the transparent port. Policy (which ports,
//! which hosts are intercepted) is decided here.

pub mod connect;
pub mod intercept;
pub mod loaded;
pub mod peer;
pub mod transparent;
pub mod tunnel;

use std::sync::Arc;

use arc_swap::ArcSwap;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::{
    body::Body, config::Config, error::ProxyError, mitm::Authority, proxy::Proxy, shutdown::Shutdown,
    target::Target, upstream::Dialer,
};

/// Everything a proxy request needs: policy, CA, proxy core, dialer, shutdown.
#[derive(Debug)]
pub struct Ingress {
    /// Policy and limits; a reload replaces it (connections keep what they started with).
    pub config: Arc<ArcSwap<Config>>,
    /// The files the live settings name, read; a reload replaces them with the settings.
    pub loaded: ArcSwap<loaded::Loaded>,
    /// Mints leaves for intercepted hosts.
    pub authority: Arc<Authority>,
    /// Answers intercepted and plain requests.
    pub proxy: Proxy,
    /// Opens tunnels.
    pub dialer: Dialer,
    /// Tracks tunnel and intercepted-connection tasks.
    pub shutdown: Shutdown,
}

impl Ingress {
    /// Whether TLS to `target` is terminated: the configured intercept list, or the token realm of
    /// a registry pantry holds credentials for (its clients' token requests must be seen for them
    /// to pull anonymously), unless `bypass` names it.
    pub fn intercepts(&self, config: &Config, target: &crate::target::Target) -> bool {
        config.intercepts(&target.host, target.port)
            || (self.proxy.credentials().intercepts(&target.host, target.port)
                && !config.live.bypass.iter().any(|d| d.matches(&target.host, target.port)))
    }
}

impl Ingress {
    /// Answers a CONNECT request (see [`connect`]).
    pub async fn connect(self: &Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        connect::handle(self, request).await
    }

    /// Answers an absolute-form request (`GET http://host/path`).
    pub async fn forward(&self, request: Request<Incoming>) -> Response<Body> {
        match Target::from_absolute(request.uri()) {
            Ok(target) => self.answer(request.map(crate::body::incoming), &target).await,
            Err(reason) => ProxyError::BadRequest(reason).into_response(),
        }
    }

    /// Answers a request a client addressed to `target` itself (absolute-form, transparent plain
    /// HTTP, the mirror): through the proxy core, if the port rule allows it.
    pub async fn answer(&self, request: Request<Body>, target: &Target) -> Response<Body> {
        if let Some(why) = self.config.load().refuses_port(target) {
            tracing::info!(%target, %why, "request refused");
            return ProxyError::Denied(format!("{target}: {why}")).into_response();
        }
        self.proxy.handle(request, target).await
    }
}
