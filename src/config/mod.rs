//! Configuration: command-line flags, `PANTRY_*` environment variables and an optional TOML file, merged
//! (flags > env > file > embedded defaults) and validated with every problem reported at once.
//!
//! This module only parses and checks values; it opens no sockets and reads no files but the TOML
//! one and those it names (htpasswd, the mirror's certificate). `args`: the flags; `file`: the TOML
//! keys; `merge`: layering and validation; `patterns`: host patterns and `--resolve` rules; `show`:
//! the effective configuration as TOML (`check-config`); `reference`: docs/CONFIGURATION.md.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

mod args;
mod credentials;
mod destinations;
mod explain;
mod file;
mod merge;
mod parent_proxy;
mod patterns;
pub mod reference;
mod show;
mod values;

pub use args::RunArgs;
pub use credentials::{private_file, CredentialEntry, PasswordFrom, Secret, SecretSource};
pub use destinations::{Destination, ParentRule};
pub use parent_proxy::ParentProxy;
pub use patterns::{HostPattern, ResolveRule};
pub use values::{Mirror, Refresh};

use ipnet::IpNet;

use crate::{
    clock::Clock,
    proxy_auth::ProxyAuth,
    registry::{
        policy::{NamespaceRule, PinRule},
        tags::{self, TagRule, Ttl},
    },
};

/// Well-known public registries intercepted when no `--intercept` is given.
pub const DEFAULT_INTERCEPT: &[&str] = &[
    "registry-1.docker.io",
    "index.docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "*.gcr.io",
    "*.pkg.dev",
    "registry.k8s.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "registry.gitlab.com",
    "nvcr.io",
];

/// Clients allowed by default: loopback and private ranges (RFC 1918, CGNAT, IPv6 ULA), so a
/// pantry listening beyond loopback is never an open proxy for the internet.
pub const DEFAULT_ALLOW_CLIENTS: &[&str] =
    &["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];

/// Destinations always denied (`deny_destinations` adds to them; only `allow_destinations` or a
/// `--resolve` rule opens one): loopback and the unspecified address (pantry's own host) and
/// link-local (cloud metadata services at 169.254.169.254).
pub const BUILT_IN_DENY_DESTINATIONS: &[&str] =
    &["127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10"];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration pantry runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Proxy listen address.
    pub listen: SocketAddr,
    /// Clients allowed to connect to any of pantry's ports.
    pub allow_clients: Vec<IpNet>,
    /// Upstream addresses pantry never connects to, besides the built-in ones (unless `--resolve`
    /// or `allow_destinations` opens them).
    pub deny_destinations: Vec<IpNet>,
    /// Destinations opened despite the deny lists: names, domains, globs, networks, with ports.
    pub allow_destinations: Vec<Destination>,
    /// The htpasswd file proxy clients authenticate against, if any.
    pub proxy_auth_file: Option<PathBuf>,
    /// Its users, loaded.
    pub proxy_auth: Option<std::sync::Arc<ProxyAuth>>,
    /// Admin listen address (`/metrics` only there when set).
    pub admin_listen: Option<SocketAddr>,
    /// The file holding the admin API's bearer token, if any.
    pub admin_token_file: Option<PathBuf>,
    /// That token, loaded.
    pub admin_token: Option<Secret>,
    /// Listen address for connections redirected by the kernel (transparent mode), if any.
    pub transparent: Option<SocketAddr>,
    /// Registry-mirror listen address, if pantry also serves as a mirror.
    pub mirror_listen: Option<SocketAddr>,
    /// Whether the mirror speaks TLS (leaf from pantry's CA) rather than plain HTTP.
    pub mirror_tls: bool,
    /// The names (lower case; addresses without brackets) `mirror_tls` mints leaves for.
    pub mirror_names: Vec<String>,
    /// Registry (`host[:port]`) of mirror requests without `?ns=`.
    pub mirror_default: String,
    /// The supplied certificate and key files of the mirror, if any.
    pub mirror_cert: Option<(PathBuf, PathBuf)>,
    /// TLS with the supplied certificate, loaded.
    pub mirror_tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Content cache directory.
    pub cache_dir: PathBuf,
    /// CA directory.
    pub certs_dir: PathBuf,
    /// Hosts whose TLS is terminated and inspected.
    pub intercept: Vec<HostPattern>,
    /// Intercept every allowed CONNECT.
    pub intercept_all: bool,
    /// Extra upstream trust anchors (PEM files).
    pub upstream_ca: Vec<PathBuf>,
    /// Name overrides for upstream connections.
    pub resolve: Vec<ResolveRule>,
    /// Parent proxy every upstream connection goes through (unless a rule below says otherwise).
    pub upstream_proxy: Option<ParentProxy>,
    /// Parent proxy per destination (`None`: direct); the first matching rule wins.
    pub upstream_proxy_for: Vec<ParentRule>,
    /// Whether plain HTTP and non-registry intercepted content is cached by RFC 9111.
    pub http_cache: bool,
    /// Registries spoken to in cleartext (`http://`); registry requests to other plain hosts are refused.
    pub insecure_registries: Vec<HostPattern>,
    /// Whether every whole read of stored content is verified against its digest as it streams.
    pub verify_reads: bool,
    /// Destinations never intercepted (tunnelled untouched), NO_PROXY style.
    pub bypass: Vec<Destination>,
    /// Cache size cap in bytes.
    pub max_size: u64,
    /// Content eviction never removes.
    pub pin: Vec<PinRule>,
    /// Serve from cache only.
    pub offline: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Ports clients may reach besides 443 (and 80 in cleartext), the intercept entries' and the
    /// `--resolve` rules' ports.
    pub allow_ports: Vec<u16>,
    /// Mirror clients admitted without proxy credentials when `proxy_auth_file` is set.
    pub mirror_allow_clients: Vec<IpNet>,
    /// A tunnel with no bytes either way for this long is closed.
    pub tunnel_idle_timeout: Duration,
    /// A client must send each request head within this long (slow or idle clients are closed).
    pub client_header_timeout: Duration,
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
    /// How long in-flight transfers may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Concurrent client connections at most.
    pub max_connections: usize,
    /// TTL of a tag no rule matches.
    pub tag_ttl: Ttl,
    /// TTL rules for tags, first match wins.
    pub tag_rules: Vec<TagRule>,
    /// Namespace policy for registry repositories, first match wins.
    pub repositories: Vec<NamespaceRule>,
    /// Mirrors tried before their registry for content and tag lookups.
    pub mirrors: Vec<Mirror>,
    /// Whether a fetch every client left runs on to the end (and is stored) or stops.
    pub finish_abandoned_fetches: bool,
    /// Images prefetched at start and on a schedule.
    pub refresh: Option<Refresh>,
    /// Registries and repositories pantry asks with its own credentials, first match wins.
    pub upstream_credentials: Vec<CredentialEntry>,
    /// A docker `config.json` used for every registry it names (after `upstream_credentials`).
    pub docker_config: Option<PathBuf>,
    /// Where time comes from (the system clock; tests use a manual one).
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            admin_listen: None,
            admin_token_file: None,
            admin_token: None,
            transparent: None,
            proxy_auth_file: None,
            proxy_auth: None,
            allow_clients: DEFAULT_ALLOW_CLIENTS
                .iter()
                .map(|n| n.parse().expect("built-in ranges are valid"))
                .collect(),
            deny_destinations: Vec::new(),
            allow_destinations: Vec::new(),
            mirror_listen: None,
            mirror_tls: false,
            mirror_names: vec!["localhost".to_string()],
            mirror_cert: None,
            mirror_tls_config: None,
            mirror_default: crate::registry::reference::DOCKER_HUB.to_string(),
            cache_dir: PathBuf::from("cache"),
            certs_dir: PathBuf::from("certs"),
            intercept: DEFAULT_INTERCEPT
                .iter()
                .map(|p| HostPattern::parse(p).expect("built-in patterns are valid"))
                .collect(),
            intercept_all: false,
            upstream_ca: Vec::new(),
            resolve: Vec::new(),
            upstream_proxy: None,
            upstream_proxy_for: Vec::new(),
            bypass: Vec::new(),
            http_cache: true,
            insecure_registries: Vec::new(),
            verify_reads: false,
            max_size: 20 * 1024 * 1024 * 1024,
            pin: Vec::new(),
            offline: false,
            log_format: LogFormat::Text,
            allow_ports: Vec::new(),
            mirror_allow_clients: Vec::new(),
            tunnel_idle_timeout: Duration::from_secs(600),
            client_header_timeout: Duration::from_secs(30),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_response_timeout: Duration::from_secs(30),
            upstream_idle_timeout: Duration::from_secs(30),
            upstream_body_timeout: Duration::from_secs(60),
            upstream_min_rate: 1024,
            shutdown_grace: Duration::from_secs(30),
            max_connections: 4096,
            tag_ttl: Ttl::For(Duration::from_secs(600)),
            tag_rules: tags::default_rules(),
            repositories: Vec::new(),
            mirrors: Vec::new(),
            finish_abandoned_fetches: false,
            refresh: None,
            upstream_credentials: Vec::new(),
            docker_config: None,
            clock: Clock::System,
        }
    }
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Merges flags/env with the file named by `--config` (if any) over the defaults.
    pub fn load(args: &RunArgs) -> Result<Self, ConfigErrors> {
        merge::layered(args, args.config.as_deref().map(merge::read))
    }

    /// The configuration a TOML file's text gives on its own (no flags or environment), as
    /// `--config` would load it. Used by the config fuzz target.
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        merge::layered(&RunArgs::default(), Some(Ok(("config file".into(), text.to_string(), false))))
    }

    /// The credential entries in the order they are tried: `upstream_credentials`, then
    /// `docker_config` for every registry.
    pub fn credential_entries(&self) -> Vec<CredentialEntry> {
        let docker = self
            .docker_config
            .iter()
            .map(|path| CredentialEntry::new("*", &[], SecretSource::DockerConfig(path.clone())));
        self.upstream_credentials.iter().cloned().chain(docker).collect()
    }

    /// Whether CONNECT to `host:port` is intercepted (TLS terminated) rather than tunnelled.
    pub fn intercepts(&self, host: &str, port: u16) -> bool {
        (self.intercept_all || self.intercept.iter().any(|p| p.matches(host, port)))
            && !self.bypass.iter().any(|d| d.matches(host, port))
    }

    /// How upstream bodies must keep coming.
    pub fn pace(&self) -> crate::body::Pace {
        crate::body::Pace { idle: self.upstream_body_timeout, min_rate: self.upstream_min_rate }
    }

    /// Whether a client at `ip` may connect.
    pub fn allows_client(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow_clients.iter().any(|net| net.contains(&ip))
    }

    /// Every network pantry never connects to: the built-in ones and `deny_destinations`.
    pub fn denied_destinations(&self) -> Vec<IpNet> {
        let built_in =
            BUILT_IN_DENY_DESTINATIONS.iter().map(|n| n.parse().expect("built-in ranges are valid"));
        built_in.chain(self.deny_destinations.iter().copied()).collect()
    }

    /// Why a client may not reach `target`'s port, or `None` when it may: 443, 80 in cleartext,
    /// the ports of intercept entries, of `--resolve` rules, `insecure_registries` and
    /// `allow_destinations` entries for that host, and `allow_ports`. The rule holds on every way in (CONNECT, absolute-form,
    /// transparent plain HTTP, the mirror's `?ns=`), so pantry is never a relay to any port.
    pub fn refuses_port(&self, target: &crate::target::Target) -> Option<String> {
        let port = target.port;
        let allowed = port == 443
            || (port == 80 && !target.https)
            || self.allow_ports.contains(&port)
            || self.intercept.iter().any(|p| p.port() == Some(port))
            || self
                .insecure_registries
                .iter()
                .any(|p| p.port() == Some(port) && p.matches(&target.host, port))
            || self.resolve.iter().any(|r| r.port == port && r.host == target.host)
            || self
                .allow_destinations
                .iter()
                .any(|d| d.port() == Some(port) && d.matches(&target.host, port));
        (!allowed).then(|| {
            format!(
                "port {port} is not allowed (allowed: 443, 80 in cleartext, the ports of intercepted hosts, \
                 of --resolve rules, insecure_registries and allow_destinations entries, allow_ports)"
            )
        })
    }

    /// Whether a mirror client at `ip` may skip proxy credentials (`mirror_allow_clients`).
    pub fn mirror_admits(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.mirror_allow_clients.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests;
