//! The settings a reload (SIGHUP) applies to new connections and requests: who may connect and
//! with which credentials, what is intercepted, the registry rules (tags, namespaces, mirrors,
//! pins, offline mode), upstream credentials, the mirror's TLS and names, client-side timeouts.

use std::{path::PathBuf, time::Duration};

use ipnet::IpNet;

use super::{
    CredentialEntry, Destination, HostPattern, Mirror, Refresh, DEFAULT_ALLOW_CLIENTS, DEFAULT_INTERCEPT,
};
use crate::registry::{
    policy::{NamespaceRule, PinRule},
    tags::{self, TagRule, Ttl},
};

super::declare::settings! {
    /// The settings a reload replaces.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Live {
        /// Clients allowed to connect to any of pantry's ports.
        pub allow_clients: Vec<IpNet>,
        /// The htpasswd file proxy clients authenticate against, if any.
        pub proxy_auth_file: Option<PathBuf>,
        /// The file holding the admin API's bearer token, if any.
        pub admin_token_file: Option<PathBuf>,
        /// Whether the mirror speaks TLS (leaf from pantry's CA) rather than plain HTTP.
        pub mirror_tls: bool,
        /// The names (lower case; addresses without brackets) `mirror_tls` mints leaves for.
        pub mirror_names: Vec<String>,
        /// Registry (`host[:port]`) of mirror requests without `?ns=`.
        pub mirror_default: String,
        /// The supplied certificate and key files of the mirror, if any.
        pub mirror_cert: Option<(PathBuf, PathBuf)>,
        /// Hosts whose TLS is terminated and inspected.
        pub intercept: Vec<HostPattern>,
        /// Intercept every allowed CONNECT.
        pub intercept_all: bool,
        /// Whether plain HTTP and non-registry intercepted content is cached by RFC 9111.
        pub http_cache: bool,
        /// Registries spoken to in cleartext (`http://`); registry requests to other plain hosts are refused.
        pub insecure_registries: Vec<HostPattern>,
        /// Whether every whole read of stored content is verified against its digest as it streams.
        pub verify_reads: bool,
        /// Destinations never intercepted (tunnelled untouched), NO_PROXY style.
        pub bypass: Vec<Destination>,
        /// Content eviction never removes.
        pub pin: Vec<PinRule>,
        /// Serve from cache only.
        pub offline: bool,
        /// Ports clients may reach besides 443 (and 80 in cleartext), the intercept entries' and the
        /// `--resolve` rules' ports.
        pub allow_ports: Vec<u16>,
        /// Mirror clients admitted without proxy credentials when `proxy_auth_file` is set.
        pub mirror_allow_clients: Vec<IpNet>,
        /// A tunnel with no bytes either way for this long is closed.
        pub tunnel_idle_timeout: Duration,
        /// A client must send each request head within this long (slow or idle clients are closed).
        pub client_header_timeout: Duration,
        /// How long in-flight transfers may run on after a shutdown signal.
        pub shutdown_grace: Duration,
        /// TTL of a tag no rule matches.
        pub tag_ttl: Ttl,
        /// TTL rules for tags, first match wins.
        pub tag_rules: Vec<TagRule>,
        /// Namespace policy for registry repositories, first match wins.
        pub repositories: Vec<NamespaceRule>,
        /// Mirrors tried before their registry for content and tag lookups.
        pub mirrors: Vec<Mirror>,
        /// Images prefetched at start and on a schedule.
        pub refresh: Option<Refresh>,
        /// Registries and repositories pantry asks with its own credentials, first match wins.
        pub upstream_credentials: Vec<CredentialEntry>,
        /// A docker `config.json` used for every registry it names (after `upstream_credentials`).
        pub docker_config: Option<PathBuf>,
    }
}

impl Default for Live {
    fn default() -> Self {
        Self {
            allow_clients: DEFAULT_ALLOW_CLIENTS
                .iter()
                .map(|n| n.parse().expect("built-in ranges are valid"))
                .collect(),
            proxy_auth_file: None,
            admin_token_file: None,
            mirror_tls: false,
            mirror_names: vec!["localhost".to_string()],
            mirror_default: crate::registry::reference::DOCKER_HUB.to_string(),
            mirror_cert: None,
            intercept: DEFAULT_INTERCEPT
                .iter()
                .map(|p| HostPattern::parse(p).expect("built-in patterns are valid"))
                .collect(),
            intercept_all: false,
            http_cache: true,
            insecure_registries: Vec::new(),
            verify_reads: false,
            bypass: Vec::new(),
            pin: Vec::new(),
            offline: false,
            allow_ports: Vec::new(),
            mirror_allow_clients: Vec::new(),
            tunnel_idle_timeout: Duration::from_secs(600),
            client_header_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            tag_ttl: Ttl::For(Duration::from_secs(600)),
            tag_rules: tags::default_rules(),
            repositories: Vec::new(),
            mirrors: Vec::new(),
            refresh: None,
            upstream_credentials: Vec::new(),
            docker_config: None,
        }
    }
}
