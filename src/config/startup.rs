//! The settings that take effect only at start: listen addresses, directories, the upstream
//! client (trust, name overrides, parent proxies, reachable destinations, timeouts), the size cap,
//! the connection limit, the log format. A reload keeps the running values and names every one of
//! these that changed (`Startup::changed`), so a restart-only setting is never half applied.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;

use super::{Destination, LogFormat, ParentProxy, ParentRule, PeersDns, ResolveRule, SharedStore};
use crate::target::Target;

super::declare::settings! {
    /// The settings a running pantry keeps until it restarts.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Startup {
        /// Proxy listen address.
        pub listen: SocketAddr,
        /// Upstream addresses pantry never connects to, besides the built-in ones (unless `--resolve`
        /// or `allow_destinations` opens them).
        pub deny_destinations: Vec<IpNet>,
        /// Destinations opened despite the deny lists: names, domains, globs, networks, with ports.
        pub allow_destinations: Vec<Destination>,
        /// Admin listen address (`/metrics` only there when set).
        pub admin_listen: Option<SocketAddr>,
        /// Listen address for connections redirected by the kernel (transparent mode), if any.
        pub transparent: Option<SocketAddr>,
        /// Registry-mirror listen address, if pantry also serves as a mirror.
        pub mirror_listen: Option<SocketAddr>,
        /// The fleet's peer port (mutual TLS), if this node is part of a fleet.
        pub fleet_listen: Option<SocketAddr>,
        /// Fleet members named statically.
        pub peers: Vec<Target>,
        /// A name whose addresses are the fleet's members.
        pub peers_dns: Option<PeersDns>,
        /// This node as the other members name it (set whenever `fleet_listen` is).
        pub advertise: Option<Target>,
        /// The bucket the fleet shares, if any.
        pub shared_store: Option<SharedStore>,
        /// Content cache directory.
        pub cache_dir: PathBuf,
        /// CA directory.
        pub certs_dir: PathBuf,
        /// Extra upstream trust anchors (PEM files).
        pub upstream_ca: Vec<PathBuf>,
        /// Name overrides for upstream connections.
        pub resolve: Vec<ResolveRule>,
        /// Parent proxy every upstream connection goes through (unless a rule below says otherwise).
        pub upstream_proxy: Option<ParentProxy>,
        /// Parent proxy per destination (`None`: direct); the first matching rule wins.
        pub upstream_proxy_for: Vec<ParentRule>,
        /// Cache size cap in bytes.
        pub max_size: u64,
        /// Log format.
        pub log_format: LogFormat,
        /// Upper bound for DNS + TCP connect to an upstream.
        pub upstream_connect_timeout: Duration,
        /// Upper bound for an upstream's response headers (a stalled upstream counts as down).
        pub upstream_response_timeout: Duration,
        /// An idle pooled upstream connection is closed after this long.
        pub upstream_idle_timeout: Duration,
        /// Longest silence within an upstream body before the transfer is aborted.
        pub upstream_body_timeout: Duration,
        /// Slowest average (bytes a second, over each `upstream_body_timeout` window) an upstream body
        /// may keep before the transfer is aborted; 0 allows any.
        pub upstream_min_rate: u64,
        /// Concurrent client connections at most.
        pub max_connections: usize,
        /// Whether a fetch every client left runs on to the end (and is stored) or stops.
        pub finish_abandoned_fetches: bool,
    }
}

impl Default for Startup {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            deny_destinations: Vec::new(),
            allow_destinations: Vec::new(),
            admin_listen: None,
            transparent: None,
            mirror_listen: None,
            fleet_listen: None,
            peers: Vec::new(),
            peers_dns: None,
            advertise: None,
            shared_store: None,
            cache_dir: PathBuf::from("cache"),
            certs_dir: PathBuf::from("certs"),
            upstream_ca: Vec::new(),
            resolve: Vec::new(),
            upstream_proxy: None,
            upstream_proxy_for: Vec::new(),
            max_size: 20 * 1024 * 1024 * 1024,
            log_format: LogFormat::Text,
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_response_timeout: Duration::from_secs(30),
            upstream_idle_timeout: Duration::from_secs(30),
            upstream_body_timeout: Duration::from_secs(60),
            upstream_min_rate: 1024,
            max_connections: 4096,
            finish_abandoned_fetches: false,
        }
    }
}

impl Startup {
    /// Every network pantry never connects to: the built-in ones and `deny_destinations`.
    pub fn denied_destinations(&self) -> Vec<IpNet> {
        let built_in =
            super::BUILT_IN_DENY_DESTINATIONS.iter().map(|n| n.parse().expect("built-in ranges are valid"));
        built_in.chain(self.deny_destinations.iter().copied()).collect()
    }
}
