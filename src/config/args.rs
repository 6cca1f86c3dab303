//! The command-line flags of `pantry run` (and of the tools that read the same configuration), each
//! with its `PANTRY_*` environment variable. Parsed by clap; validated in `merge`.

use std::path::PathBuf;

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
    /// Intercept every CONNECT to an allowed port (`--intercept-all=false` or PANTRY_INTERCEPT_ALL=false overrides the file).
    #[arg(long, env = "PANTRY_INTERCEPT_ALL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub intercept_all: Option<bool>,
    /// Never intercept these destinations, NO_PROXY style: corp.example (and names under it), *.glob, CIDR, :PORT (repeatable).
    #[arg(long, env = "PANTRY_BYPASS", value_name = "PATTERN", value_delimiter = ',')]
    pub bypass: Vec<String>,
    /// Extra CA certificate (PEM) trusted for upstream TLS (repeatable).
    #[arg(long, env = "PANTRY_UPSTREAM_CA", value_name = "FILE", value_delimiter = ',')]
    pub upstream_ca: Vec<PathBuf>,
    /// Resolve HOST:PORT to ADDR instead of asking DNS, like curl's --resolve (repeatable).
    #[arg(long, env = "PANTRY_RESOLVE", value_name = "HOST:PORT:ADDR", value_delimiter = ',')]
    pub resolve: Vec<String>,
    /// Reach every upstream through this HTTP proxy: http://[user:pass@]host:port.
    #[arg(long, env = "PANTRY_UPSTREAM_PROXY", value_name = "URL")]
    pub upstream_proxy: Option<String>,
    /// Parent proxy per destination, PATTERN=http://host:port or PATTERN=direct; first match wins over --upstream-proxy (repeatable).
    #[arg(long, env = "PANTRY_UPSTREAM_PROXY_FOR", value_name = "PATTERN=URL", value_delimiter = ',')]
    pub upstream_proxy_for: Vec<String>,
    /// Upper bound of the cache size, e.g. 20GiB [default: 20GiB].
    #[arg(long, env = "PANTRY_MAX_SIZE", value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Never evict what REGISTRY/REPOSITORY[:TAG] names (globs; repeatable).
    #[arg(long, env = "PANTRY_PIN", value_name = "REGISTRY/REPO[:TAG]", value_delimiter = ',')]
    pub pin: Vec<String>,
    /// Serve only from the cache; never contact upstreams (`--offline=false` or PANTRY_OFFLINE=false overrides the file).
    #[arg(long, env = "PANTRY_OFFLINE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub offline: Option<bool>,
    /// Clients allowed to connect, as CIDR (repeatable) [default: loopback and private ranges].
    #[arg(long, env = "PANTRY_ALLOW_CLIENTS", value_name = "CIDR", value_delimiter = ',')]
    pub allow_clients: Vec<String>,
    /// Upstream addresses never connected to, as CIDR (repeatable), besides the built-in loopback, unspecified and link-local (cloud metadata) ranges and pantry's own addresses.
    #[arg(long, env = "PANTRY_DENY_DESTINATIONS", value_name = "CIDR", value_delimiter = ',')]
    pub deny_destinations: Vec<String>,
    /// Destinations reached despite the deny lists, NO_PROXY style: host, .domain, *.glob or CIDR, each with an optional :PORT that also opens the port (repeatable).
    #[arg(long, env = "PANTRY_ALLOW_DESTINATIONS", value_name = "PATTERN", value_delimiter = ',')]
    pub allow_destinations: Vec<String>,
    /// With --proxy-auth-file: mirror clients admitted without Proxy-Authorization, as CIDR (repeatable) [default: none].
    #[arg(long, env = "PANTRY_MIRROR_ALLOW_CLIENTS", value_name = "CIDR", value_delimiter = ',')]
    pub mirror_allow_clients: Vec<String>,
    /// A docker config.json whose auths, credHelpers and credsStore pantry uses for anonymous requests to the registries it names (files holding secrets must be chmod 600).
    #[arg(long, env = "PANTRY_DOCKER_CONFIG", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Require Proxy-Authorization: Basic from proxy clients, checked against this htpasswd file (bcrypt).
    #[arg(long, env = "PANTRY_PROXY_AUTH_FILE", value_name = "FILE")]
    pub proxy_auth_file: Option<PathBuf>,
    /// Bearer token (a file, chmod 600) every /api/ call on the admin port needs; without it the API answers only on a loopback admin port.
    #[arg(long, env = "PANTRY_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve /metrics, /healthz and /ca.pem on ADDR too (and /metrics there only) [default: the proxy port].
    #[arg(long, env = "PANTRY_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Also accept connections redirected here by iptables/nftables (REDIRECT or DNAT) on ADDR (Linux).
    #[arg(long, env = "PANTRY_TRANSPARENT", value_name = "ADDR")]
    pub transparent: Option<String>,
    /// Also serve as a registry mirror on ADDR (containerd hosts.toml, registries.conf, dockerd registry-mirrors).
    #[arg(long, env = "PANTRY_MIRROR_LISTEN", value_name = "ADDR")]
    pub mirror_listen: Option<String>,
    /// Registries that speak plain HTTP (HOST[:PORT], globs; no port means 80, `:*` any): registry requests in cleartext go only to these (repeatable) [default: none].
    #[arg(long, env = "PANTRY_INSECURE_REGISTRIES", value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
    /// Serve the mirror over TLS with a certificate from pantry's CA (plain HTTP otherwise; `--mirror-tls=false` overrides the file).
    #[arg(long, env = "PANTRY_MIRROR_TLS", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub mirror_tls: Option<bool>,
    /// Names --mirror-tls mints certificates for; other SNI gets a TLS alert (repeatable) [default: localhost and the mirror's listen address].
    #[arg(long, env = "PANTRY_MIRROR_NAMES", value_name = "NAME", value_delimiter = ',')]
    pub mirror_names: Vec<String>,
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
