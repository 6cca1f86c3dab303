//! Configuration: command-line flags, `PANTRY_*` environment variables and an optional TOML file, merged
//! (flags > env > file > embedded defaults) and validated with every problem reported at once.
//!
//! This module only parses and checks values; it opens no sockets and reads no file but the TOML one.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

mod file;
mod patterns;
pub mod reference;
mod show;

pub use patterns::{HostPattern, ResolveRule};

use file::FileConfig;
use ipnet::IpNet;

use crate::{
    clock::Clock,
    ingress::proxy_auth::ProxyAuth,
    prefetch::Refresh,
    registry::{
        manifest::Platform,
        policy::{Action, NamespaceRule, PinRule},
        reference::{registry_glob, ImageRef},
        tags::{self, TagRule, Ttl},
    },
    target::Target,
    upstream::{mirrors::Mirror, parent::ParentProxy},
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

/// Destinations denied by default: link-local (cloud metadata services at 169.254.169.254).
pub const DEFAULT_DENY_DESTINATIONS: &[&str] = &["169.254.0.0/16", "fe80::/10"];

/// Flags of `pantry run` (each with its `PANTRY_*` variable); unset ones fall back to the file.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct RunArgs {
    /// Address to listen on for proxy clients [default: 127.0.0.1:3128].
    #[arg(long, env = "PANTRY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "PANTRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the content cache [default: ./cache].
    #[arg(long, env = "PANTRY_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Directory of the CA (ca.pem, ca.key) [default: ./certs].
    #[arg(long, env = "PANTRY_CERTS_DIR", value_name = "DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Host to intercept, HOST[:PORT] with globs (repeatable) [default: well-known registries].
    #[arg(long, env = "PANTRY_INTERCEPT", value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub intercept: Vec<String>,
    /// Intercept every CONNECT to an allowed port.
    #[arg(long, env = "PANTRY_INTERCEPT_ALL")]
    pub intercept_all: bool,
    /// Extra CA certificate (PEM) trusted for upstream TLS (repeatable).
    #[arg(long, env = "PANTRY_UPSTREAM_CA", value_name = "FILE", value_delimiter = ',')]
    pub upstream_ca: Vec<PathBuf>,
    /// Resolve HOST:PORT to ADDR instead of asking DNS, like curl's --resolve (repeatable).
    #[arg(long, env = "PANTRY_RESOLVE", value_name = "HOST:PORT:ADDR", value_delimiter = ',')]
    pub resolve: Vec<String>,
    /// Reach every upstream through this HTTP proxy: http://[user:pass@]host:port.
    #[arg(long, env = "PANTRY_UPSTREAM_PROXY", value_name = "URL")]
    pub upstream_proxy: Option<String>,
    /// Upper bound of the cache size, e.g. 20GiB [default: 20GiB].
    #[arg(long, env = "PANTRY_MAX_SIZE", value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Never evict what REGISTRY/REPOSITORY[:TAG] names (globs; repeatable).
    #[arg(long, env = "PANTRY_PIN", value_name = "REGISTRY/REPO[:TAG]", value_delimiter = ',')]
    pub pin: Vec<String>,
    /// Serve only from the cache; never contact upstreams.
    #[arg(long, env = "PANTRY_OFFLINE")]
    pub offline: bool,
    /// Clients allowed to connect, as CIDR (repeatable) [default: loopback and private ranges].
    #[arg(long, env = "PANTRY_ALLOW_CLIENTS", value_name = "CIDR", value_delimiter = ',')]
    pub allow_clients: Vec<String>,
    /// Upstream addresses never connected to, as CIDR (repeatable) [default: link-local, i.e. cloud metadata].
    #[arg(long, env = "PANTRY_DENY_DESTINATIONS", value_name = "CIDR", value_delimiter = ',')]
    pub deny_destinations: Vec<String>,
    /// Require Proxy-Authorization: Basic from proxy clients, checked against this htpasswd file (bcrypt).
    #[arg(long, env = "PANTRY_PROXY_AUTH_FILE", value_name = "FILE")]
    pub proxy_auth_file: Option<PathBuf>,
    /// Serve /metrics, /healthz and /ca.pem on ADDR too (and /metrics there only) [default: the proxy port].
    #[arg(long, env = "PANTRY_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Also serve as a registry mirror on ADDR (containerd hosts.toml, registries.conf, dockerd registry-mirrors).
    #[arg(long, env = "PANTRY_MIRROR_LISTEN", value_name = "ADDR")]
    pub mirror_listen: Option<String>,
    /// Serve the mirror over TLS with a certificate from pantry's CA (plain HTTP otherwise).
    #[arg(long, env = "PANTRY_MIRROR_TLS")]
    pub mirror_tls: bool,
    /// Certificate chain (PEM) the mirror presents instead of a leaf from pantry's CA (implies TLS).
    #[arg(long, env = "PANTRY_MIRROR_CERT", value_name = "FILE", requires = "mirror_key")]
    pub mirror_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, RSA or EC) of --mirror-cert.
    #[arg(long, env = "PANTRY_MIRROR_KEY", value_name = "FILE", requires = "mirror_cert")]
    pub mirror_key: Option<PathBuf>,
    /// Registry mirror requests without `?ns=` go to [default: registry-1.docker.io].
    #[arg(long, env = "PANTRY_MIRROR_DEFAULT", value_name = "HOST[:PORT]")]
    pub mirror_default: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "PANTRY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

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
    /// Upstream addresses pantry never connects to (unless `--resolve` names them).
    pub deny_destinations: Vec<IpNet>,
    /// The htpasswd file proxy clients authenticate against, if any.
    pub proxy_auth_file: Option<PathBuf>,
    /// Its users, loaded.
    pub proxy_auth: Option<std::sync::Arc<ProxyAuth>>,
    /// Admin listen address (`/metrics` only there when set).
    pub admin_listen: Option<SocketAddr>,
    /// Registry-mirror listen address, if pantry also serves as a mirror.
    pub mirror_listen: Option<SocketAddr>,
    /// Whether the mirror speaks TLS (leaf from pantry's CA) rather than plain HTTP.
    pub mirror_tls: bool,
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
    /// Parent proxy every upstream connection goes through.
    pub upstream_proxy: Option<ParentProxy>,
    /// Cache size cap in bytes.
    pub max_size: u64,
    /// Content eviction never removes.
    pub pin: Vec<PinRule>,
    /// Serve from cache only.
    pub offline: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Ports CONNECT may reach besides 443 and the intercept entries' ports.
    pub connect_ports: Vec<u16>,
    /// A tunnel with no bytes either way for this long is closed.
    pub tunnel_idle_timeout: Duration,
    /// A client must send each request head within this long (slow or idle clients are closed).
    pub client_header_timeout: Duration,
    /// Upper bound for DNS + TCP connect to an upstream.
    pub upstream_connect_timeout: Duration,
    /// Upper bound for an upstream's response headers (a stalled upstream counts as down).
    pub upstream_response_timeout: Duration,
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
    /// Where time comes from (the system clock; tests use a manual one).
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            admin_listen: None,
            proxy_auth_file: None,
            proxy_auth: None,
            allow_clients: DEFAULT_ALLOW_CLIENTS
                .iter()
                .map(|n| n.parse().expect("built-in ranges are valid"))
                .collect(),
            deny_destinations: DEFAULT_DENY_DESTINATIONS
                .iter()
                .map(|n| n.parse().expect("built-in ranges are valid"))
                .collect(),
            mirror_listen: None,
            mirror_tls: false,
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
            max_size: 20 * 1024 * 1024 * 1024,
            pin: Vec::new(),
            offline: false,
            log_format: LogFormat::Text,
            connect_ports: Vec::new(),
            tunnel_idle_timeout: Duration::from_secs(600),
            client_header_timeout: Duration::from_secs(30),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_response_timeout: Duration::from_secs(30),
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
        let mut problems = Vec::new();
        let file = match &args.config {
            Some(path) => read_file(path).unwrap_or_else(|e| {
                problems.push(e);
                FileConfig::default()
            }),
            None => FileConfig::default(),
        };
        let config = merge(args, file, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// The configuration a TOML file's text gives on its own (no flags or environment), as
    /// `--config` would load it. Used by the config fuzz target.
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let file = toml::from_str(text).unwrap_or_else(|e| {
            problems.push(format!("config file: {e}"));
            FileConfig::default()
        });
        let config = merge(&RunArgs::default(), file, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// Whether CONNECT to `host:port` is intercepted (TLS terminated) rather than tunnelled.
    pub fn intercepts(&self, host: &str, port: u16) -> bool {
        self.intercept_all || self.intercept.iter().any(|p| p.matches(host, port))
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

    /// Whether CONNECT may reach `port` at all: 443, ports of intercept entries, `connect_ports`.
    pub fn connect_port_allowed(&self, port: u16) -> bool {
        port == 443
            || self.connect_ports.contains(&port)
            || self.intercept.iter().any(|p| p.port() == Some(port))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Picks flag/env first, then file, then default, and validates each value.
fn merge(args: &RunArgs, file: FileConfig, problems: &mut Vec<String>) -> Config {
    let mut config = Config::default();
    if let Some(listen) = args.listen.clone().or(file.listen) {
        match listen.parse() {
            Ok(addr) => config.listen = addr,
            Err(_) => problems.push(format!("listen: {listen:?} is not an address like 127.0.0.1:3128")),
        }
    }
    let nets = |key: &str, values: Vec<String>, problems: &mut Vec<String>| -> Vec<IpNet> {
        values
            .iter()
            .filter_map(|v| {
                let parsed = v.parse::<IpNet>().or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from));
                parsed.map_err(|_| problems.push(format!("{key}: {v:?} is not a CIDR like 10.0.0.0/8"))).ok()
            })
            .collect()
    };
    if let Some(values) = non_empty(args.allow_clients.clone()).or(file.allow_clients) {
        config.allow_clients = nets("allow_clients", values, problems);
    }
    if let Some(values) = non_empty(args.deny_destinations.clone()).or(file.deny_destinations) {
        config.deny_destinations = nets("deny_destinations", values, problems);
    }
    if let Some(path) = args.proxy_auth_file.clone().or(file.proxy_auth_file) {
        match ProxyAuth::load(&path) {
            Ok(auth) => config.proxy_auth = Some(std::sync::Arc::new(auth)),
            Err(e) => problems.push(e),
        }
        config.proxy_auth_file = Some(path);
    }
    if let Some(listen) = args.admin_listen.clone().or(file.admin_listen) {
        match listen.parse() {
            Ok(addr) => config.admin_listen = Some(addr),
            Err(_) => {
                problems.push(format!("admin_listen: {listen:?} is not an address like 127.0.0.1:9090"))
            }
        }
    }
    if let Some(listen) = args.mirror_listen.clone().or(file.mirror_listen) {
        match listen.parse() {
            Ok(addr) => config.mirror_listen = Some(addr),
            Err(_) => {
                problems.push(format!("mirror_listen: {listen:?} is not an address like 127.0.0.1:5000"))
            }
        }
    }
    config.mirror_tls = args.mirror_tls || file.mirror_tls.unwrap_or(false);
    let cert = args.mirror_cert.clone().or(file.mirror_cert);
    let key = args.mirror_key.clone().or(file.mirror_key);
    match (cert, key) {
        (Some(cert), Some(key)) => {
            match crate::mirror::tls::supplied(&cert, &key) {
                Ok(tls) => config.mirror_tls_config = Some(std::sync::Arc::new(tls)),
                Err(e) => problems.push(format!("mirror_cert: {e}")),
            }
            config.mirror_tls = true;
            config.mirror_cert = Some((cert, key));
        }
        (None, None) => {}
        _ => problems.push("mirror_cert and mirror_key go together".into()),
    }
    if let Some(default) = args.mirror_default.clone().or(file.mirror_default) {
        let valid = format!("https://{default}/").parse::<http::Uri>().map_err(|e| e.to_string());
        match valid.and_then(|u| Target::from_absolute(&u)) {
            Ok(_) if !default.contains('/') => config.mirror_default = default.to_ascii_lowercase(),
            _ => problems.push(format!("mirror_default: {default:?} is not a registry host[:port]")),
        }
    }
    if let Some(dir) = args.cache_dir.clone().or(file.cache_dir) {
        config.cache_dir = dir;
    }
    if let Some(dir) = args.certs_dir.clone().or(file.certs_dir) {
        config.certs_dir = dir;
    }
    let intercept = non_empty(args.intercept.clone()).or(file.intercept);
    if let Some(patterns) = intercept {
        config.intercept = patterns
            .iter()
            .filter_map(|p| HostPattern::parse(p).map_err(|e| problems.push(e)).ok())
            .collect();
    }
    config.intercept_all = args.intercept_all || file.intercept_all.unwrap_or(false);
    config.upstream_ca = non_empty(args.upstream_ca.clone()).or(file.upstream_ca).unwrap_or_default();
    for path in &config.upstream_ca {
        if !path.is_file() {
            problems.push(format!("upstream_ca: {} is not a readable file", path.display()));
        }
    }
    let resolve = non_empty(args.resolve.clone()).or(file.resolve).unwrap_or_default();
    config.resolve =
        resolve.iter().filter_map(|r| ResolveRule::parse(r).map_err(|e| problems.push(e)).ok()).collect();
    if let Some(url) = args.upstream_proxy.clone().or(file.upstream_proxy) {
        match ParentProxy::parse(&url) {
            Ok(parent) => config.upstream_proxy = Some(parent),
            Err(e) => problems.push(e),
        }
    }
    if let Some(size) = args.max_size.clone().or(file.max_size) {
        match size.parse::<bytesize::ByteSize>() {
            Ok(size) if size.as_u64() > 0 => config.max_size = size.as_u64(),
            _ => problems.push(format!("max_size: {size:?} is not a size like 20GiB")),
        }
    }
    let pin = non_empty(args.pin.clone()).or(file.pin).unwrap_or_default();
    config.pin = pin.iter().filter_map(|p| PinRule::parse(p).map_err(|e| problems.push(e)).ok()).collect();
    if let Some(rate) = file.upstream_min_rate {
        match rate.trim_end_matches("/s").parse::<bytesize::ByteSize>() {
            Ok(rate) => config.upstream_min_rate = rate.as_u64(),
            Err(_) => problems.push(format!("upstream_min_rate: {rate:?} is not a rate like 1KiB/s or 0")),
        }
    }
    config.offline = args.offline || file.offline.unwrap_or(false);
    if let Some(format) = args.log_format.clone().or(file.log_format) {
        match format.as_str() {
            "text" => config.log_format = LogFormat::Text,
            "json" => config.log_format = LogFormat::Json,
            _ => problems.push(format!("log_format: {format:?} is neither text nor json")),
        }
    }
    config.connect_ports = file.connect_ports.unwrap_or_default();
    let durations = [
        ("tunnel_idle_timeout", file.tunnel_idle_timeout, &mut config.tunnel_idle_timeout),
        ("client_header_timeout", file.client_header_timeout, &mut config.client_header_timeout),
        ("upstream_connect_timeout", file.upstream_connect_timeout, &mut config.upstream_connect_timeout),
        ("upstream_response_timeout", file.upstream_response_timeout, &mut config.upstream_response_timeout),
        ("upstream_body_timeout", file.upstream_body_timeout, &mut config.upstream_body_timeout),
        ("shutdown_grace", file.shutdown_grace, &mut config.shutdown_grace),
    ];
    for (key, text, slot) in durations {
        if let Some(text) = text {
            match humantime::parse_duration(&text) {
                Ok(d) => *slot = d,
                Err(_) => problems.push(format!("{key}: {text:?} is not a duration like 30s or 10m")),
            }
        }
    }
    if let Some(ttl) = file.tag_ttl {
        match Ttl::parse(&ttl) {
            Ok(ttl) => config.tag_ttl = ttl,
            Err(e) => problems.push(format!("tag_ttl: {e}")),
        }
    }
    if let Some(rules) = file.tag_rules {
        config.tag_rules = rules
            .into_iter()
            .filter_map(|rule| {
                let ttl = Ttl::parse(&rule.ttl).map_err(|e| problems.push(format!("tag_rules: {e}"))).ok()?;
                let glob = |g: Option<String>| g.unwrap_or_else(|| "*".into());
                let registry = registry_glob(&glob(rule.registry));
                Some(TagRule::new(&registry, &glob(rule.repository), &glob(rule.tag), ttl))
            })
            .collect();
    }
    for rule in file.repositories.unwrap_or_default() {
        let action = Action::parse(rule.action.as_deref().unwrap_or("cache"));
        let action = action.map_err(|e| problems.push(format!("repositories: {e}"))).ok();
        let glob = |g: Option<String>| g.unwrap_or_else(|| "*".into());
        if let Some(action) = action {
            let push = rule.push.unwrap_or(true);
            config.repositories.push(NamespaceRule::new(
                &registry_glob(&glob(rule.registry)),
                &glob(rule.repository),
                action,
                push,
            ));
        }
    }
    for mirror in file.mirrors.unwrap_or_default() {
        let target = mirror
            .url
            .parse::<http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|u| Target::from_absolute(&u));
        let registry = HostPattern::parse(&mirror.registry).map(|p| p.to_string());
        match (target, registry) {
            (Ok(target), Ok(_)) => {
                let registry = registry_glob(&mirror.registry);
                config.mirrors.push(Mirror { registry, target, priority: mirror.priority.unwrap_or(0) });
            }
            (Err(e), _) => problems.push(format!("mirrors: url {:?}: {e}", mirror.url)),
            (_, Err(e)) => problems.push(format!("mirrors: {e}")),
        }
    }
    config.finish_abandoned_fetches = file.finish_abandoned_fetches.unwrap_or(false);
    if let Some(refresh) = file.refresh {
        config.refresh = refresh_from(refresh, problems);
    }
    if let Some(max) = file.max_connections {
        if max == 0 {
            problems.push("max_connections: must be at least 1".into());
        }
        config.max_connections = max.max(1);
    }
    config
}

fn refresh_from(refresh: file::FileRefresh, problems: &mut Vec<String>) -> Option<Refresh> {
    let images: Vec<ImageRef> = refresh
        .images
        .iter()
        .filter_map(|i| i.parse().map_err(|e| problems.push(format!("refresh: {e}"))).ok())
        .collect();
    let every = humantime::parse_duration(refresh.every.as_deref().unwrap_or("1h"))
        .map_err(|_| problems.push(format!("refresh: every {:?} is not a duration like 1h", refresh.every)))
        .ok()
        .filter(|every| !every.is_zero());
    let platform = match refresh.platform.as_deref().map(Platform::parse).transpose() {
        Ok(platform) => platform,
        Err(e) => {
            problems.push(format!("refresh: {e}"));
            None
        }
    };
    Some(Refresh { images, every: every?, platform })
}

fn non_empty<T>(values: Vec<T>) -> Option<Vec<T>> {
    (!values.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_any_input() {
        let config = Config::load(&RunArgs::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3128");
        assert!(config.intercepts("ghcr.io", 443));
        assert!(!config.intercepts("example.com", 443));
        assert!(config.connect_port_allowed(443));
        assert!(!config.connect_port_allowed(22));
    }

    #[test]
    fn flags_win_over_file_and_every_problem_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pantry.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\ncache_dir = \"/file/cache\"\nmax_size = \"lots\"\n\
             log_format = \"xml\"\nintercept = [\"registry.test:5000\"]\n",
        )
        .unwrap();
        let args = RunArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:2".into()),
            resolve: vec!["bad".into()],
            ..RunArgs::default()
        };
        let errors = Config::load(&args).unwrap_err().0;
        assert_eq!(errors.len(), 3, "{errors:?}");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\ncache_dir = \"/file/cache\"\n").unwrap();
        let config = Config::load(&args_without_resolve(&args)).unwrap();
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.cache_dir, PathBuf::from("/file/cache"));
    }

    fn args_without_resolve(args: &RunArgs) -> RunArgs {
        RunArgs { resolve: Vec::new(), ..args.clone() }
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pantry.toml");
        let config = Config::load(&RunArgs { config: Some(path), ..RunArgs::default() }).unwrap();
        assert_eq!(config.tag_rules.len(), 3);
        assert_eq!(config.repositories.len(), 3);
        assert_eq!(config.mirrors[0].registry, "registry-1.docker.io:443");
        assert!(config.intercepts("registry.internal", 5000));
    }

    #[test]
    fn unknown_file_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pantry.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let args = RunArgs { config: Some(path), ..RunArgs::default() };
        let errors = Config::load(&args).unwrap_err().0;
        assert!(errors[0].contains("lisen"), "{errors:?}");
    }
}
