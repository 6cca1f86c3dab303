//! The TOML configuration file: every key optional and named like its flag (with `_`); unknown
//! keys are errors.

use std::path::PathBuf;

use serde::Deserialize;

/// The TOML file; every key is optional and named like its flag (with `_`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) admin_listen: Option<String>,
    pub(super) admin_token_file: Option<PathBuf>,
    pub(super) transparent: Option<String>,
    pub(super) proxy_auth_file: Option<PathBuf>,
    pub(super) allow_clients: Option<Vec<String>>,
    pub(super) deny_destinations: Option<Vec<String>>,
    pub(super) allow_destinations: Option<Vec<String>>,
    pub(super) mirror_allow_clients: Option<Vec<String>>,
    pub(super) mirror_listen: Option<String>,
    pub(super) mirror_tls: Option<bool>,
    pub(super) mirror_names: Option<Vec<String>>,
    pub(super) mirror_cert: Option<PathBuf>,
    pub(super) mirror_key: Option<PathBuf>,
    pub(super) mirror_default: Option<String>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) certs_dir: Option<PathBuf>,
    pub(super) intercept: Option<Vec<String>>,
    pub(super) intercept_all: Option<bool>,
    pub(super) insecure_registries: Option<Vec<String>>,
    pub(super) upstream_ca: Option<Vec<PathBuf>>,
    pub(super) resolve: Option<Vec<String>>,
    pub(super) upstream_proxy: Option<String>,
    pub(super) upstream_proxy_for: Option<Vec<String>>,
    pub(super) bypass: Option<Vec<String>>,
    pub(super) max_size: Option<String>,
    pub(super) pin: Option<Vec<String>>,
    pub(super) offline: Option<bool>,
    pub(super) http_cache: Option<bool>,
    pub(super) verify_reads: Option<bool>,
    pub(super) log_format: Option<String>,
    #[serde(alias = "connect_ports")]
    pub(super) allow_ports: Option<Vec<u16>>,
    pub(super) tunnel_idle_timeout: Option<String>,
    pub(super) client_header_timeout: Option<String>,
    pub(super) upstream_connect_timeout: Option<String>,
    pub(super) upstream_idle_timeout: Option<String>,
    pub(super) upstream_response_timeout: Option<String>,
    pub(super) upstream_body_timeout: Option<String>,
    pub(super) upstream_min_rate: Option<String>,
    pub(super) shutdown_grace: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) tag_ttl: Option<String>,
    pub(super) tag_rules: Option<Vec<FileTagRule>>,
    pub(super) repositories: Option<Vec<FileNamespaceRule>>,
    pub(super) mirrors: Option<Vec<FileMirror>>,
    pub(super) finish_abandoned_fetches: Option<bool>,
    pub(super) refresh: Option<FileRefresh>,
    pub(super) docker_config: Option<PathBuf>,
    pub(super) upstream_credentials: Option<Vec<super::credentials::FileCredential>>,
}

/// The `[refresh]` table: images kept warm, how often (default 1h), one platform or all.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRefresh {
    pub(super) images: Vec<String>,
    pub(super) every: Option<String>,
    pub(super) platform: Option<String>,
}

/// A `[[mirrors]]` entry: the registry it stands in for, its URL, its priority (lower first).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMirror {
    pub(super) registry: String,
    pub(super) url: String,
    pub(super) priority: Option<u32>,
}

/// A `[[repositories]]` entry: globs (default `*`), `action` (cache, pass, deny), `push` (bool).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileNamespaceRule {
    pub(super) registry: Option<String>,
    pub(super) repository: Option<String>,
    pub(super) action: Option<String>,
    pub(super) push: Option<bool>,
}

/// A `[[tag_rules]]` entry: globs (default `*`) and a TTL (`10m`, `0`, `immutable`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTagRule {
    pub(super) registry: Option<String>,
    pub(super) repository: Option<String>,
    pub(super) tag: Option<String>,
    pub(super) ttl: String,
}
