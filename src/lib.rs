//! pantry — a forward HTTPS proxy that caches container images.
//!
//! ```text
//! client ─TCP─▶ server::listener ─▶ server::handler (hyper HTTP/1.x, one task per connection)
//!               ├─ CONNECT host:port ─▶ ingress::connect (port allowed? intercept this host?)
//!               │    ├─ intercept ─▶ mitm::acceptor (leaf from mitm::authority, ALPN h2/http1.1)
//!               │    │              ─▶ ingress::intercept (hyper server) ─▶ proxy::handle
//!               │    └─ otherwise ─▶ ingress::tunnel (bytes both ways, idle timeout)
//!               ├─ absolute-form http://… ─▶ proxy::handle
//!               └─ origin-form /ca.pem /healthz ─▶ server::admin (the admin port: /metrics, and
//!                  the pipeline API /api/prefetch, /api/purge: server::api; the status page `/`
//!                  and /api/status: server::status's snapshot drawn by server::page)
//! redirected (--transparent) ─▶ ingress::transparent (SO_ORIGINAL_DST, SNI peeked: intercept,
//!               tunnel, or plain HTTP by Host) ─▶ the same paths
//! registry mirror (--mirror-listen) ─▶ mirror (?ns= routing) ─▶ proxy::handle
//! fleet members (--fleet-listen, mutual TLS) ─▶ ingress::peer (pulls' reads only) ─▶ proxy::handle
//! h2 clients that cancel most of their requests are sent away: connection::cancels; idle and silent
//! connections (before the first request, over h2) give their slot back: connection::idle
//! proxy::handle: registry::route::classify; an anonymous read an `[[upstream_credentials]]` entry
//!   covers gets pantry's own Authorization (credentials), a token request at its realm a stand-in
//!   ├─ blob/manifest by digest ─▶ proxy::by_digest: cache::store hit? proxy::access check ─▶ cache::respond
//!   │                             miss ─▶ cache::coalesce (one fetch per digest, spool + watermark,
//!   │                             verified, committed to cacache) ◀─ proxy::sources: the fleet's
//!   │                             owner (fleet), the shared store (shared_store), upstream::client
//!   │                             (follows redirects), the other members
//!   ├─ manifest by tag ─▶ proxy::by_tag (TTL rules, revalidation, stale when upstream is down)
//!   ├─ anonymous GET /v2/ ─▶ proxy::ping (the answer remembered per registry for the tag TTL)
//!   ├─ other GET/HEAD ─▶ proxy::http_cache (RFC 9111, http-cache-semantics, same store)
//!   └─ anything else ─▶ proxy::forward ─▶ upstream::client (pooled, rustls/ring, --upstream-ca,
//!                                         --resolve and parent proxies via upstream::dial; where it
//!                                         may connect: upstream::reach)
//! ```
//!
//! Map (layers and the no-cycle rule: docs/ARCHITECTURE.md): `config` (flags/env/file as plain
//! values, `Startup` kept until a restart and `Live` replaced by a reload; host, NO_PROXY-style
//! destination and parent rules; credential entries; mirrors, parent proxy and refresh values;
//! the files they name are read by `ingress::loaded`), `connection` (one connection's HTTP/1.1 and h2 with its idle and rapid-reset
//! guards), `proxy_auth` (htpasswd proxy credentials), `credentials` (pantry's own upstream credentials: secrets, the token dance, stand-in
//! tokens), `error` (side → status, Proxy-Status), `cache_status` (Cache-Status values and the
//! outcome metrics count), `body` (streaming body
//! type), `target` (host:port parsing), `hop_by_hop` (headers that never cross), `shutdown` (drain
//! then abort), `single_flight` (work in progress by key: fetches, revalidations, tokens and leaves
//! are each run once for their concurrent askers), `server`, `ingress`, `mirror` (the registry-mirror
//! port), `mitm`, `proxy`, `cache` (store, its disk layout, cacache's index (`index`), a blob as a lookup finds it, content files read
//! without touching their atime and checked against their digest, mutable records, small content and records
//! read within the last second kept in memory (`hot`), single flight, ranges, access grants, holds against eviction (`in_use`), eviction and pinning with
//! its store walks at low priority (`idle_work`), lifetime tally, inventory tools), `upstream`
//! (dialing, where pantry may connect, the pooled client and its resending of requests a server
//! closed on (`retry`), parents, mirrors, redirects, rate limits), `registry`
//! (pure: routes, digests, manifests, image references), `fleet` (the other pantries of a fleet:
//! members, rendezvous owners, the fleet port's mutual TLS, the client that asks them),
//! `shared_store` (the bucket a fleet shares, S3 API), `prefetch` (images pulled ahead through
//! the proxy core; scheduled refresh), `metrics` (and its last hour, `metrics::history`), `clock`.
//!
//! The `pantry` binary adds the command line (`main`), the cache tools (`tools`, `listing`),
//! `pantry prefetch` (`prefetch_command`) and `pantry healthcheck` (`healthcheck`) on top.
//!
//! The design, the store's format and the access model: docs/ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// O_NOATIME reads, /proc, prctl and SO_ORIGINAL_DST (see README's "Run it"): the calls that need
// Linux are gated on it (and `nix` is a Linux-only dependency), and other platforms are told so
// once, here.
#[cfg(not(target_os = "linux"))]
compile_error!("pantry runs on Linux only (O_NOATIME, /proc, prctl, SO_ORIGINAL_DST)");

pub mod body;
pub mod cache;
pub mod cache_status;
pub mod clock;
pub mod config;
pub mod connection;
pub mod credentials;
pub mod error;
pub mod fleet;
pub mod hop_by_hop;
pub mod ingress;
pub mod metrics;
pub mod mirror;
pub mod mitm;
pub mod prefetch;
pub mod proxy;
pub mod proxy_auth;
pub mod registry;
pub mod server;
pub mod shared_store;
pub mod shutdown;
pub mod single_flight;
pub mod target;
pub mod upstream;

use std::{future::Future, sync::Arc};

use arc_swap::ArcSwap;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{
    cache::{store::StoreError, tally::Tally, Store},
    config::{Config, ConfigErrors, RunArgs},
    ingress::{loaded::Loaded, Ingress},
    metrics::Metrics,
    mitm::{Authority, CaError},
    proxy::Proxy,
    server::{
        admin::Admin,
        listener::{Listener, Port},
    },
    shutdown::Shutdown,
    upstream::{client::UpstreamSetupError, Dialer, Reach, Upstream},
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
    /// The cache directory could not be opened.
    #[error("cache: {0}")]
    Store(#[from] StoreError),
    /// The shared store could not be set up.
    #[error("shared store: {0}")]
    SharedStore(#[from] shared_store::SharedStoreError),
    /// The fleet's mutual TLS could not be set up.
    #[error("fleet: {0}")]
    Fleet(#[from] fleet::identity::IdentityError),
    /// A file the configuration names could not be read.
    #[error("{0}")]
    Files(ConfigErrors),
}

/// What a reload changed, by file key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Live settings that changed and now apply.
    pub applied: Vec<&'static str>,
    /// Restart-only settings that changed and keep their running value until a restart.
    pub restart: Vec<&'static str>,
}

/// The bound sockets pantry serves: the proxy port, and the mirror, admin and transparent ports if
/// configured.
#[derive(Debug)]
pub struct Sockets {
    /// Proxy clients.
    pub proxy: TcpListener,
    /// Registry-mirror clients (`--mirror-listen`).
    pub mirror: Option<TcpListener>,
    /// Monitoring (`--admin-listen`).
    pub admin: Option<TcpListener>,
    /// Connections redirected by the kernel (`--transparent`).
    pub transparent: Option<TcpListener>,
    /// The other members of a fleet (`--fleet-listen`).
    pub fleet: Option<TcpListener>,
}

impl Sockets {
    /// Every address pantry listens on (a redirect to one of them is a loop).
    fn addresses(&self) -> Vec<std::net::SocketAddr> {
        [
            Some(&self.proxy),
            self.mirror.as_ref(),
            self.admin.as_ref(),
            self.transparent.as_ref(),
            self.fleet.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|socket| socket.local_addr().ok())
        .collect()
    }
}

/// A configured pantry: CA loaded, upstream client built, ready to serve a listener.
#[derive(Debug)]
pub struct Pantry {
    ingress: Arc<Ingress>,
    tally: Tally,
    /// Woken by every reload, so loops that wait on a live setting (the refresh schedule) see it.
    reloads: Arc<tokio::sync::Notify>,
    /// The fleet port's TLS (mutual, with the CA), when this node is a member of a fleet.
    fleet_tls: Option<Arc<rustls::ServerConfig>>,
}

/// A configuration with the files its live settings name, read.
#[derive(Debug)]
pub struct Configured {
    /// The settings.
    pub config: Config,
    /// What the files they name hold (htpasswd users, admin token, mirror certificate).
    pub loaded: Loaded,
}

/// The configuration `args` (and the file they name) give, with the files its settings name read:
/// every problem at once. What `pantry run`, `check-config` and a reload use; the files are read
/// once, here, and handed on ([`Pantry::with_files`], [`Pantry::apply`]).
pub fn configuration(args: &RunArgs) -> Result<Configured, ConfigErrors> {
    let mut loaded = None;
    let config = Config::load_checked(args, |config| match Loaded::read(&config.live) {
        Ok(files) => {
            loaded = Some(files);
            Vec::new()
        }
        Err(problems) => problems,
    })?;
    Ok(Configured { config, loaded: loaded.unwrap_or_default() })
}

/// The proxy core without CA or listener (what `pantry prefetch` drives): upstream client, store
/// with its evictor, metrics.
pub async fn proxy_core(config: &Config) -> Result<Proxy, StartError> {
    Ok(core(config, &Shutdown::default()).await?.0)
}

async fn core(config: &Config, shutdown: &Shutdown) -> Result<(Proxy, Dialer), StartError> {
    let dialer = Dialer::new(&config.startup.resolve, config.startup.upstream_connect_timeout)
        .reach(Reach::new(&config.startup.denied_destinations(), &config.startup.allow_destinations))
        .via(config.startup.upstream_proxy.clone(), &config.startup.upstream_proxy_for);
    let upstream = Upstream::new(
        dialer.clone(),
        &config.startup.upstream_ca,
        config.startup.upstream_response_timeout,
        config.startup.upstream_idle_timeout,
    )?
    .with_clock(config.clock.clone());
    let store = Arc::new(
        Store::open(&config.startup.cache_dir, config.startup.max_size, config.clock.clone()).await?,
    );
    let metrics = Arc::new(Metrics::default());
    store.set_pins(config.live.pin.clone());
    store.set_verify_reads(config.live.verify_reads);
    store.spawn_evictor(Arc::clone(&metrics), shutdown);
    let shared = match &config.startup.shared_store {
        Some(settings) => {
            Some(shared_store::SharedStore::open(settings, &config.startup, Arc::clone(&metrics))?)
        }
        None => None,
    };
    let mut proxy = Proxy::new(upstream, store, config, metrics, shutdown);
    if let Some(shared) = shared {
        proxy = proxy.with_shared_store(shared);
    }
    Ok((proxy, dialer))
}

/// How often a running pantry writes the cache's lifetime statistics.
const TALLY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl Pantry {
    /// Reads the files `config` names, then [`Self::with_files`].
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let loaded = Loaded::read(&config.live).map_err(|e| StartError::Files(ConfigErrors(e)))?;
        Self::with_files(Configured { config, loaded }).await
    }

    /// Loads (or creates) the CA, opens the cache and builds the upstream client from a
    /// configuration whose files are read.
    pub async fn with_files(Configured { config, loaded }: Configured) -> Result<Self, StartError> {
        let authority = Arc::new(Authority::load_or_create(&config.startup.certs_dir)?);
        let shutdown = Shutdown::default();
        let (mut proxy, dialer) = core(&config, &shutdown).await?;
        let mut fleet_tls = None;
        if let Some(fleet) =
            fleet::Fleet::new(&config.startup, Arc::clone(&authority), Arc::clone(proxy.metrics()))?
        {
            fleet_tls = Some(fleet.server_config()?);
            if let Some(dns) = config.startup.peers_dns.clone() {
                fleet.spawn_dns(dns, &shutdown);
            }
            proxy = proxy.with_fleet(fleet);
        }
        let tally = Tally::load(&config.startup.cache_dir);
        let config = Arc::new(ArcSwap::from_pointee(config));
        let reloads = Arc::new(tokio::sync::Notify::new());
        prefetch::spawn_refresh(proxy.clone(), Arc::clone(&config), Arc::clone(&reloads), &shutdown);
        let ingress =
            Ingress { config, loaded: ArcSwap::from_pointee(loaded), authority, proxy, dialer, shutdown };
        let pantry = Self { ingress: Arc::new(ingress), tally, fleet_tls, reloads };
        pantry.spawn_tally_writer();
        pantry.spawn_history();
        Ok(pantry)
    }

    /// Runs `task` (a loop that lives as long as pantry serves, such as the binary's SIGHUP
    /// handler) until draining begins, tracked with every other task.
    pub fn spawn_background<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.ingress.shutdown.spawn_background(task);
    }

    /// Writes the lifetime statistics every few seconds while they change.
    fn spawn_tally_writer(&self) {
        let (base, metrics) = (self.tally, Arc::clone(self.ingress.proxy.metrics()));
        let root = self.ingress.config.load().startup.cache_dir.clone();
        self.ingress.shutdown.spawn_background(async move {
            let mut written = base;
            loop {
                tokio::time::sleep(TALLY_INTERVAL).await;
                let now = base.plus(&metrics.totals);
                if now != written {
                    match now.save(&root).await {
                        Ok(()) => written = now,
                        Err(error) => tracing::warn!(%error, "cannot write the cache statistics"),
                    }
                }
            }
        });
    }

    /// Keeps the last hour of the totals, one point per interval (the status page's chart).
    fn spawn_history(&self) {
        let metrics = Arc::clone(self.ingress.proxy.metrics());
        let clock = self.ingress.config.load().clock.clone();
        self.ingress.shutdown.spawn_background(async move {
            let mut every = tokio::time::interval(metrics::history::INTERVAL);
            loop {
                every.tick().await;
                metrics.history.push(metrics::history::Point::of(&metrics.totals, clock.now_ms()));
            }
        });
    }

    /// Reads the files `config` names (again, even when their names did not change), then
    /// [`Self::apply`]; if they cannot be read, nothing changes.
    pub fn reload(&self, config: Config) -> Result<Reloaded, ConfigErrors> {
        let loaded = Loaded::read(&config.live).map_err(ConfigErrors)?;
        Ok(self.apply(Configured { config, loaded }))
    }

    /// Applies a reloaded configuration (SIGHUP) without dropping connections: every `Live`
    /// setting, and what its files hold, take effect for new connections and requests; the
    /// running `Startup` settings stay. Says which settings changed on either side.
    pub fn apply(&self, Configured { config, loaded }: Configured) -> Reloaded {
        let old = self.ingress.config.load_full();
        let reloaded = Reloaded {
            applied: old.live.changed(&config.live),
            restart: old.startup.changed(&config.startup),
        };
        let config = Config { startup: old.startup.clone(), live: config.live, clock: old.clock.clone() };
        self.ingress.proxy.reload(&config);
        self.ingress.loaded.store(Arc::new(loaded));
        self.ingress.config.store(Arc::new(config));
        self.reloads.notify_waiters();
        reloaded
    }

    /// The configuration in force (a reload replaces its live part).
    pub fn config(&self) -> Arc<Config> {
        self.ingress.config.load_full()
    }

    /// The cache's lifetime statistics: what earlier runs recorded plus this run's counts.
    pub fn tally(&self) -> Tally {
        self.tally.plus(&self.ingress.proxy.metrics().totals)
    }

    /// The proxy core (for cache statistics).
    pub fn proxy(&self) -> &Proxy {
        &self.ingress.proxy
    }

    /// The certificate authority (for its PEM and minting statistics).
    pub fn authority(&self) -> &Authority {
        &self.ingress.authority
    }

    /// Serves proxy clients on `listener` until `signal` completes, then shuts down gracefully.
    pub async fn serve(&self, listener: TcpListener, signal: impl Future<Output = ()>) {
        let sockets = Sockets { proxy: listener, mirror: None, admin: None, transparent: None, fleet: None };
        self.serve_sockets(sockets, signal).await
    }

    /// Serves every socket until `signal` completes; then accepts no more, drains for the grace
    /// period and aborts the rest.
    pub async fn serve_sockets(&self, sockets: Sockets, signal: impl Future<Output = ()>) {
        let ingress = &self.ingress;
        server::status::started();
        let limit = Arc::new(Semaphore::new(ingress.config.load().startup.max_connections));
        let stop = CancellationToken::new();
        let admin = Arc::new(Admin::new(Arc::clone(ingress)));
        let own = sockets.addresses();
        ingress.dialer.rules().set_own(own.clone());
        let mut listeners =
            vec![Listener::new(sockets.proxy, Arc::clone(ingress), Port::Proxy(admin), Arc::clone(&limit))];
        if let Some(mirror) = sockets.mirror {
            listeners.push(Listener::new(mirror, Arc::clone(ingress), Port::Mirror, Arc::clone(&limit)));
        }
        if let Some(socket) = sockets.transparent {
            let port = Port::Transparent(own.into());
            listeners.push(Listener::new(socket, Arc::clone(ingress), port, Arc::clone(&limit)));
        }
        match (sockets.fleet, &self.fleet_tls) {
            (Some(socket), Some(tls)) => {
                let port = Port::Fleet(Arc::clone(tls));
                listeners.push(Listener::new(socket, Arc::clone(ingress), port, Arc::clone(&limit)));
            }
            (Some(_), None) => {
                tracing::error!("a fleet socket without fleet settings (fleet_listen): not served")
            }
            (None, _) => {}
        }
        if let Some(socket) = sockets.admin {
            let loopback = socket.local_addr().is_ok_and(|a| a.ip().is_loopback());
            let admin = Port::Admin(Arc::new(Admin::dedicated(Arc::clone(ingress), loopback)));
            listeners.push(Listener::new(socket, Arc::clone(ingress), admin, Arc::clone(&limit)));
        }
        let accepting = listeners.into_iter().map(|l| l.accept_until(stop.clone().cancelled_owned()));
        tokio::join!(futures_util::future::join_all(accepting), async {
            signal.await;
            stop.cancel();
        });
        let grace = ingress.config.load().live.shutdown_grace;
        tracing::info!(?grace, "shutting down: no new connections, draining in-flight transfers");
        if !ingress.shutdown.drain(grace).await {
            tracing::warn!("grace period over: aborted the transfers still running");
        }
        if let Err(error) = self.tally().save(&self.ingress.config.load().startup.cache_dir).await {
            tracing::warn!(%error, "cannot write the cache statistics");
        }
    }
}
