//! Resolving and connecting to `host:port`: `--resolve` overrides first, then the system resolver,
//! every address tried in turn within one connect timeout.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{parent::ParentProxy, reach::Reach};
use crate::config::ParentRule;
use crate::{config::ResolveRule, error::ProxyError};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Dns {
        /// Host name.
        host: String,
        /// Resolver error.
        source: io::Error,
    },
    /// Every address refused.
    #[error("connection to {target} refused")]
    Refused {
        /// host:port.
        target: String,
    },
    /// Resolving and connecting took longer than the connect timeout.
    #[error("connection to {target} timed out")]
    Timeout {
        /// host:port.
        target: String,
    },
    /// The parent proxy refused or failed.
    #[error("{detail}")]
    Parent {
        /// host:port asked for.
        target: String,
        /// What the parent said.
        detail: String,
    },
    /// Every address of the name is refused (see [`Reach`]).
    #[error(
        "{target} is not a destination pantry connects to (loopback, link-local, pantry's own \
         addresses and deny_destinations are refused; allow_destinations opens one)"
    )]
    Denied {
        /// host:port, as the client named it.
        target: String,
    },
    /// Another socket error.
    #[error("connection to {target} failed: {source}")]
    Io {
        /// host:port.
        target: String,
        /// Socket error.
        source: io::Error,
    },
}

impl From<&DialError> for ProxyError {
    fn from(e: &DialError) -> Self {
        match e {
            DialError::Dns { host, source } => {
                ProxyError::Dns { host: host.clone(), detail: source.to_string() }
            }
            DialError::Refused { target } => ProxyError::ConnectionRefused { target: target.clone() },
            DialError::Timeout { target } => ProxyError::ConnectionTimeout { target: target.clone() },
            DialError::Io { target, source } => {
                ProxyError::Upstream { target: target.clone(), detail: source.to_string() }
            }
            DialError::Denied { .. } => ProxyError::Denied(e.to_string()),
            DialError::Parent { target, detail } => {
                ProxyError::Upstream { target: target.clone(), detail: detail.clone() }
            }
        }
    }
}

impl From<DialError> for ProxyError {
    fn from(e: DialError) -> Self {
        ProxyError::from(&e)
    }
}

/// Connects to upstreams by name; cheap to clone.
#[derive(Clone, Debug)]
pub struct Dialer {
    overrides: Arc<HashMap<(String, u16), IpAddr>>,
    reach: Reach,
    timeout: Duration,
    parents: Arc<Parents>,
}

/// Which parent proxy, if any, reaches a destination: the first matching rule, else the default.
#[derive(Debug, Default)]
struct Parents {
    rules: Vec<ParentRule>,
    default: Option<ParentProxy>,
}

impl Parents {
    fn for_target(&self, host: &str, port: u16) -> Option<&ParentProxy> {
        match self.rules.iter().find(|rule| rule.destination.matches(host, port)) {
            Some(rule) => rule.parent.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

impl Dialer {
    /// A dialer with `--resolve` overrides and a connect timeout, connecting directly.
    pub fn new(rules: &[ResolveRule], timeout: Duration) -> Self {
        let overrides = rules.iter().map(|r| ((r.host.clone(), r.port), r.addr)).collect();
        Self { overrides: Arc::new(overrides), reach: Reach::default(), timeout, parents: Arc::default() }
    }

    /// The same dialer, connecting only where `reach` allows (names mapped by `--resolve` always).
    pub fn reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// The destination rules this dialer applies.
    pub fn rules(&self) -> &Reach {
        &self.reach
    }

    /// The same dialer, reaching upstreams through a CONNECT to the parent the first matching
    /// rule names (or directly, if it says so), else through `default`.
    pub fn via(mut self, default: Option<ParentProxy>, rules: &[ParentRule]) -> Self {
        self.parents = Arc::new(Parents { rules: rules.to_vec(), default });
        self
    }

    /// The addresses `host:port` stands for (an override, an IP literal, or DNS), without those
    /// pantry may not connect to; an error when none is left.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DialError> {
        let bare = crate::target::bare(host).to_ascii_lowercase();
        if self.overrides.contains_key(&(bare.clone(), port)) || self.reach.opens_name(&bare, port) {
            return self.lookup(&bare, port).await;
        }
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for addr in self.lookup(&bare, port).await? {
            match self.reach.refusal(addr) {
                None => allowed.push(addr),
                Some(why) => refused.push(format!("{addr} ({why})")),
            }
        }
        if allowed.is_empty() {
            tracing::info!(target = %format!("{host}:{port}"), addresses = %refused.join(", "), "destination refused");
            return Err(DialError::Denied { target: format!("{host}:{port}") });
        }
        Ok(allowed)
    }

    /// The addresses `host` (bare, lower case) stands for: an override, an IP literal, or DNS.
    async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DialError> {
        let host = host.to_string();
        if let Some(addr) = self.overrides.get(&(host.clone(), port)) {
            return Ok(vec![SocketAddr::new(*addr, port)]);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if host == "invalid" || host.ends_with(".invalid") {
            // RFC 6761 §6.4: `.invalid` never resolves, so no resolver is asked.
            let source = io::Error::new(io::ErrorKind::NotFound, "`.invalid` names never resolve");
            return Err(DialError::Dns { host, source });
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| DialError::Dns { host: host.clone(), source })?
            .collect();
        if addrs.is_empty() {
            let source = io::Error::new(io::ErrorKind::NotFound, "no addresses");
            return Err(DialError::Dns { host, source });
        }
        Ok(addrs)
    }

    /// Opens a connection to `host:port`: directly, trying each address until one answers, or as a
    /// tunnel through the parent proxy (asked for the `--resolve` address when there is one).
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, DialError> {
        let Some(parent) = self.parents.for_target(host, port) else {
            return self.connect_addresses(host, port, true).await;
        };
        let bare = crate::target::bare(host).to_ascii_lowercase();
        // The parent resolves names; an address literal is checked here.
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if !self.overrides.contains_key(&(bare.clone(), port)) {
                self.resolve(&ip.to_string(), port).await?;
            }
        }
        let via_host = self.overrides.get(&(bare.clone(), port)).map_or(bare, |addr| addr.to_string());
        // The parent is the operator's own choice: its address is not checked against the rules.
        let mut stream = self.connect_addresses(&parent.host, parent.port, false).await?;
        let asked = parent.open_tunnel(&mut stream, &via_host, port);
        match tokio::time::timeout(self.timeout, asked).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(detail)) => Err(DialError::Parent { target: format!("{host}:{port}"), detail }),
            Err(_) => Err(DialError::Timeout { target: format!("{host}:{port} via the parent proxy") }),
        }
    }

    /// Connects directly to the first address of `host:port` that answers; `checked`: only to
    /// addresses the destination rules allow (a parent proxy, the operator's choice, is not).
    async fn connect_addresses(&self, host: &str, port: u16, checked: bool) -> Result<TcpStream, DialError> {
        let target = format!("{host}:{port}");
        let attempt = async {
            let mut last = None;
            let addrs = if checked {
                self.resolve(host, port).await?
            } else {
                self.lookup(&crate::target::bare(host).to_ascii_lowercase(), port).await?
            };
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    DialError::Refused { target: target.clone() }
                }
                Some(source) => DialError::Io { target: target.clone(), source },
                None => DialError::Refused { target: target.clone() },
            })
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(DialError::Timeout { target: target.clone() }))
    }
}

/// The dialer as a hyper-util connector (for the pooled client).
impl tower_service::Service<http::Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().to_string();
            let default_port = if uri.scheme_str() == Some("http") { 80 } else { 443 };
            let port = uri.port_u16().unwrap_or(default_port);
            dialer.connect(&host, port).await.map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overrides_win_over_dns_and_are_per_port() {
        let rule = ResolveRule::parse("registry.test:5000:127.0.0.2").unwrap();
        let dialer = Dialer::new(&[rule], Duration::from_secs(1));
        let addrs = dialer.resolve("Registry.TEST", 5000).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.2:5000".parse().unwrap()]);
        let ip = dialer.resolve("[::1]", 443).await.unwrap();
        assert_eq!(ip, vec!["[::1]:443".parse().unwrap()]);
        assert!(matches!(dialer.resolve("registry.test", 5001).await, Err(DialError::Dns { .. })));
    }

    #[tokio::test]
    async fn refused_is_reported_as_such() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dialer = Dialer::new(&[], Duration::from_secs(5));
        let error = dialer.connect("127.0.0.1", port).await.unwrap_err();
        assert!(matches!(error, DialError::Refused { .. }), "{error}");
    }
}
