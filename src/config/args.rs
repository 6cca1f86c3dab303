//! What flags, `PANTRY_*` variables and the TOML file give, declared once: `RunArgs` is both the
//! flags of `pantry run` (clap, each with its variable) and the file's keys (serde, named like the
//! flags with `_`; unknown keys are errors). The tables (`[[tag_rules]]`, `[[repositories]]`,
//! `[[mirrors]]`, `[refresh]`, `[[upstream_credentials]]`) exist only in the file. `merge` layers
//! flags/env over the file (`RunArgs::over`) and validates the values.

use std::path::PathBuf;

super::declare::given! {
    /// Flags of `pantry run` (each with its `PANTRY_*` variable) and keys of the file; unset ones
    /// fall back to the layer below.
    #[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RunArgs {
        /// Address to listen on for proxy clients [default: 127.0.0.1:3128].
        #[arg(long, env = "PANTRY_LISTEN", value_name = "ADDR")]
        pub listen: Option<String>,
        /// TOML configuration file.
        #[arg(long, env = "PANTRY_CONFIG", value_name = "FILE")]
        #[serde(skip)]
        pub config: Option<PathBuf>,
        /// Directory of the content cache [default: ./cache].
        #[arg(long, env = "PANTRY_CACHE_DIR", value_name = "DIR")]
        pub cache_dir: Option<PathBuf>,
        /// Directory of the CA (ca.pem, ca.key) [default: ./certs].
        #[arg(long, env = "PANTRY_CERTS_DIR", value_name = "DIR")]
        pub certs_dir: Option<PathBuf>,
        /// Host to intercept, HOST[:PORT] with globs (repeatable) [default: well-known registries].
        #[arg(long, env = "PANTRY_INTERCEPT", value_name = "HOST[:PORT]", value_delimiter = ',')]
        pub intercept: Option<Vec<String>>,
        /// Intercept every CONNECT to an allowed port (`--intercept-all=false` or PANTRY_INTERCEPT_ALL=false overrides the file).
        #[arg(long, env = "PANTRY_INTERCEPT_ALL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub intercept_all: Option<bool>,
        /// Never intercept these destinations, NO_PROXY style: corp.example (and names under it), *.glob, CIDR, :PORT (repeatable).
        #[arg(long, env = "PANTRY_BYPASS", value_name = "PATTERN", value_delimiter = ',')]
        pub bypass: Option<Vec<String>>,
        /// Extra CA certificate (PEM) trusted for upstream TLS (repeatable).
        #[arg(long, env = "PANTRY_UPSTREAM_CA", value_name = "FILE", value_delimiter = ',')]
        pub upstream_ca: Option<Vec<PathBuf>>,
        /// Resolve HOST:PORT to ADDR instead of asking DNS, like curl's --resolve (repeatable).
        #[arg(long, env = "PANTRY_RESOLVE", value_name = "HOST:PORT:ADDR", value_delimiter = ',')]
        pub resolve: Option<Vec<String>>,
        /// Reach every upstream through this HTTP proxy: http://[user:pass@]host:port.
        #[arg(long, env = "PANTRY_UPSTREAM_PROXY", value_name = "URL")]
        pub upstream_proxy: Option<String>,
        /// Parent proxy per destination, PATTERN=http://host:port or PATTERN=direct; first match wins over --upstream-proxy (repeatable).
        #[arg(long, env = "PANTRY_UPSTREAM_PROXY_FOR", value_name = "PATTERN=URL", value_delimiter = ',')]
        pub upstream_proxy_for: Option<Vec<String>>,
        /// Upper bound of the cache size, e.g. 20GiB [default: 20GiB].
        #[arg(long, env = "PANTRY_MAX_SIZE", value_name = "SIZE")]
        pub max_size: Option<String>,
        /// Never evict what REGISTRY/REPOSITORY[:TAG] names (globs; repeatable).
        #[arg(long, env = "PANTRY_PIN", value_name = "REGISTRY/REPO[:TAG]", value_delimiter = ',')]
        pub pin: Option<Vec<String>>,
        /// Serve only from the cache; never contact upstreams (`--offline=false` or PANTRY_OFFLINE=false overrides the file).
        #[arg(long, env = "PANTRY_OFFLINE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub offline: Option<bool>,
        /// Clients allowed to connect, as CIDR (repeatable) [default: loopback and private ranges].
        #[arg(long, env = "PANTRY_ALLOW_CLIENTS", value_name = "CIDR", value_delimiter = ',')]
        pub allow_clients: Option<Vec<String>>,
        /// Upstream addresses never connected to, as CIDR (repeatable), besides the built-in loopback, unspecified and link-local (cloud metadata) ranges and pantry's own addresses.
        #[arg(long, env = "PANTRY_DENY_DESTINATIONS", value_name = "CIDR", value_delimiter = ',')]
        pub deny_destinations: Option<Vec<String>>,
        /// Destinations reached despite the deny lists, NO_PROXY style: host, .domain, *.glob or CIDR, each with an optional :PORT that also opens the port (repeatable).
        #[arg(long, env = "PANTRY_ALLOW_DESTINATIONS", value_name = "PATTERN", value_delimiter = ',')]
        pub allow_destinations: Option<Vec<String>>,
        /// With --proxy-auth-file: mirror clients admitted without Proxy-Authorization, as CIDR (repeatable) [default: none].
        #[arg(long, env = "PANTRY_MIRROR_ALLOW_CLIENTS", value_name = "CIDR", value_delimiter = ',')]
        pub mirror_allow_clients: Option<Vec<String>>,
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
        /// Serve the fleet's peer protocol on ADDR (HTTPS with mutual TLS: only nodes with a leaf from this CA get in).
        #[arg(long, env = "PANTRY_FLEET_LISTEN", value_name = "ADDR")]
        pub fleet_listen: Option<String>,
        /// The fleet's members, `https://host:port` each (this node may be among them; repeatable).
        #[arg(long, env = "PANTRY_PEERS", value_name = "URL", value_delimiter = ',')]
        pub peers: Option<Vec<String>>,
        /// A name whose A/AAAA records are the fleet's members (a headless Service), re-resolved every 10 s.
        #[arg(long, env = "PANTRY_PEERS_DNS", value_name = "NAME:PORT")]
        pub peers_dns: Option<String>,
        /// The URL the other members reach this node at [default: https://FLEET_LISTEN].
        #[arg(long, env = "PANTRY_ADVERTISE", value_name = "URL")]
        pub advertise: Option<String>,
        /// A bucket the fleet shares (S3 API): verified blobs are written behind to it, and read from it before the origin.
        #[arg(long, env = "PANTRY_SHARED_STORE", value_name = "s3://BUCKET[/PREFIX]")]
        pub shared_store: Option<String>,
        /// The S3 endpoint of a store that is not AWS (MinIO, SeaweedFS, Garage, Ceph); `http://` works as given.
        #[arg(long, env = "PANTRY_SHARED_STORE_ENDPOINT", value_name = "URL")]
        pub shared_store_endpoint: Option<String>,
        /// The bucket's region [default: us-east-1].
        #[arg(long, env = "PANTRY_SHARED_STORE_REGION", value_name = "REGION")]
        pub shared_store_region: Option<String>,
        /// A file (chmod 600) with `aws_access_key_id = …` and `aws_secret_access_key = …` lines (an AWS credentials file) [default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY].
        #[arg(long, env = "PANTRY_SHARED_STORE_CREDENTIALS", value_name = "FILE")]
        pub shared_store_credentials: Option<PathBuf>,
        /// Registries that speak plain HTTP (HOST[:PORT], globs; no port means 80, `:*` any): registry requests in cleartext go only to these (repeatable) [default: none].
        #[arg(long, env = "PANTRY_INSECURE_REGISTRIES", value_name = "HOST[:PORT]", value_delimiter = ',')]
        pub insecure_registries: Option<Vec<String>>,
        /// Serve the mirror over TLS with a certificate from pantry's CA (plain HTTP otherwise; `--mirror-tls=false` overrides the file).
        #[arg(long, env = "PANTRY_MIRROR_TLS", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub mirror_tls: Option<bool>,
        /// Names --mirror-tls mints certificates for; other SNI gets a TLS alert (repeatable) [default: localhost and the mirror's listen address].
        #[arg(long, env = "PANTRY_MIRROR_NAMES", value_name = "NAME", value_delimiter = ',')]
        pub mirror_names: Option<Vec<String>>,
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
        /// A tunnel with no bytes either way for this long is closed [default: 10m].
        #[arg(long, env = "PANTRY_TUNNEL_IDLE_TIMEOUT", value_name = "DURATION")]
        pub tunnel_idle_timeout: Option<String>,
        /// A client must finish its TLS handshake and send each request head within this long, on every port, and
        /// a connection with no request in flight for this long is closed (h2 and before the first request too);
        /// slow (slowloris), silent and idle keep-alive clients so give their slot back [default: 30s].
        #[arg(long, env = "PANTRY_CLIENT_HEADER_TIMEOUT", value_name = "DURATION")]
        pub client_header_timeout: Option<String>,
        /// DNS + TCP connect to an upstream [default: 10s].
        #[arg(long, env = "PANTRY_UPSTREAM_CONNECT_TIMEOUT", value_name = "DURATION")]
        pub upstream_connect_timeout: Option<String>,
        /// An upstream's response headers; a stalled upstream then counts as down [default: 30s].
        #[arg(long, env = "PANTRY_UPSTREAM_RESPONSE_TIMEOUT", value_name = "DURATION")]
        pub upstream_response_timeout: Option<String>,
        /// Longest silence within an upstream body before the transfer is aborted (the clients see a broken
        /// transfer, nothing is stored) [default: 60s].
        #[arg(long, env = "PANTRY_UPSTREAM_BODY_TIMEOUT", value_name = "DURATION")]
        pub upstream_body_timeout: Option<String>,
        /// An idle pooled connection to an upstream is closed after this long (each holds its TLS and h2 buffers,
        /// ~45 KiB) [default: 30s].
        #[arg(long, env = "PANTRY_UPSTREAM_IDLE_TIMEOUT", value_name = "DURATION")]
        pub upstream_idle_timeout: Option<String>,
        /// Slowest average an upstream body may keep over each `upstream_body_timeout` window (a drip is as good
        /// as a stall), e.g. `1KiB/s`; `0` allows any [default: 1KiB/s].
        #[arg(long, env = "PANTRY_UPSTREAM_MIN_RATE", value_name = "RATE")]
        pub upstream_min_rate: Option<String>,
        /// How long transfers in flight may run on after SIGINT/SIGTERM [default: 30s].
        #[arg(long, env = "PANTRY_SHUTDOWN_GRACE", value_name = "DURATION")]
        pub shutdown_grace: Option<String>,
        /// Concurrent client connections over all ports [default: 4096].
        #[arg(long, env = "PANTRY_MAX_CONNECTIONS", value_name = "N")]
        pub max_connections: Option<usize>,
        /// How long a tag's answer is trusted when no `[[tag_rules]]` entry matches: a duration, `0` (always
        /// revalidate) or `immutable` [default: 10m].
        #[arg(long, env = "PANTRY_TAG_TTL", value_name = "TTL")]
        pub tag_ttl: Option<String>,
        /// Extra ports clients may reach, by CONNECT, absolute-form URL, transparent plain HTTP or the mirror's
        /// `?ns=`; 443, 80 in cleartext and the ports of intercept entries, `--resolve` rules and
        /// `allow_destinations` entries with a port are always allowed, so pantry is never a relay to any port
        /// [default: none].
        #[arg(long, env = "PANTRY_ALLOW_PORTS", value_name = "PORT", value_delimiter = ',')]
        #[serde(alias = "connect_ports")]
        pub allow_ports: Option<Vec<u16>>,
        /// Cache plain HTTP and intercepted non-registry hosts by RFC 9111 (Cache-Control, Vary, revalidation) in
        /// the same store; `false` only forwards them [default: true].
        #[arg(long, env = "PANTRY_HTTP_CACHE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub http_cache: Option<bool>,
        /// Verify every whole read of stored content against its digest while it streams; a mismatch breaks the
        /// transfer off before its end and removes the file (small content such as manifests is verified on every
        /// read from disk regardless, and large content whose mtime changed since its commit before it is served; ranges
        /// are not). It halves warm throughput on the benchmark (476 vs 942 MB/s for a 1 GiB blob, bench
        /// `pantry_verify`), hence off by default [default: false].
        #[arg(long, env = "PANTRY_VERIFY_READS", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub verify_reads: Option<bool>,
        /// `false`: a fetch every client has left stops (spares metered links); `true`: it finishes and is stored
        /// [default: false].
        #[arg(long, env = "PANTRY_FINISH_ABANDONED_FETCHES", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
        pub finish_abandoned_fetches: Option<bool>,
        /// `[[tag_rules]]` entries (file only).
        #[arg(skip)]
        pub tag_rules: Option<Vec<super::file::FileTagRule>>,
        /// `[[repositories]]` entries (file only).
        #[arg(skip)]
        pub repositories: Option<Vec<super::file::FileNamespaceRule>>,
        /// `[[mirrors]]` entries (file only).
        #[arg(skip)]
        pub mirrors: Option<Vec<super::file::FileMirror>>,
        /// The `[refresh]` table (file only).
        #[arg(skip)]
        pub refresh: Option<super::file::FileRefresh>,
        /// `[[upstream_credentials]]` entries (file only).
        #[arg(skip)]
        pub upstream_credentials: Option<Vec<super::credentials::FileCredential>>,
    }
}
