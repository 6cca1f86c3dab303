//! Configuration: command-line flags, `PANTRY_*` environment variables and an optional TOML file, merged
//! (flags > env > file > embedded defaults) and validated with every problem reported at once.
//!
//! Plain values only: it opens no sockets and reads no file but the TOML one (the files settings
//! name are read by `ingress::loaded`, secrets by `credentials`; `private_file` checks their
//! permissions). `args`: what flags, environment and file give, declared once; `file`: the file's
//! tables; `merge`: layering and validation; `startup`/`live`: the validated settings, split by
//! whether a reload may change them (`declare` writes both); `patterns`: host patterns and
//! `--resolve` rules; `show`: the effective configuration as TOML (`check-config`); `reference`:
//! docs/CONFIGURATION.md.

mod args;
mod credentials;
mod declare;
mod destinations;
mod explain;
mod file;
mod fleet;
mod live;
mod merge;
mod parent_proxy;
mod patterns;
pub mod reference;
mod show;
mod startup;
mod values;

pub use args::RunArgs;
pub use credentials::{private_file, CredentialEntry, PasswordFrom, Secret, SecretSource};
pub use destinations::{Destination, ParentRule};
pub use fleet::{member_url, PeersDns, SharedStore};
pub use live::Live;
pub use parent_proxy::ParentProxy;
pub use patterns::{HostPattern, ResolveRule};
pub use startup::Startup;
pub use values::{Mirror, Refresh};

use crate::clock::Clock;

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

/// The validated configuration pantry runs with: what only a restart changes and what a reload
/// replaces, as two types, so a reload cannot apply a restart-only setting halfway.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The settings fixed at start.
    pub startup: Startup,
    /// The settings a reload replaces.
    pub live: Live,
    /// Where time comes from (the system clock; tests use a manual one).
    pub clock: Clock,
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Merges flags/env with the file named by `--config` (if any) over the defaults.
    pub fn load(args: &RunArgs) -> Result<Self, ConfigErrors> {
        Self::load_checked(args, |_| Vec::new())
    }

    /// Like `load`, with the problems `check` finds in the merged values (those of the files the
    /// settings name, which other modules read) listed with the rest.
    pub fn load_checked(
        args: &RunArgs,
        check: impl FnOnce(&Config) -> Vec<String>,
    ) -> Result<Self, ConfigErrors> {
        merge::layered(args, args.config.as_deref().map(merge::read), check)
    }

    /// The configuration a TOML file's text gives on its own (no flags or environment), as
    /// `--config` would load it. Used by the config fuzz target.
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        let file = Some(Ok(("config file".into(), text.to_string(), false)));
        merge::layered(&RunArgs::default(), file, |_| Vec::new())
    }

    /// The credential entries in the order they are tried: `upstream_credentials`, then
    /// `docker_config` for every registry.
    pub fn credential_entries(&self) -> Vec<CredentialEntry> {
        let docker = self
            .live
            .docker_config
            .iter()
            .map(|path| CredentialEntry::new("*", &[], SecretSource::DockerConfig(path.clone())));
        self.live.upstream_credentials.iter().cloned().chain(docker).collect()
    }

    /// Whether CONNECT to `host:port` is intercepted (TLS terminated) rather than tunnelled.
    pub fn intercepts(&self, host: &str, port: u16) -> bool {
        (self.live.intercept_all || self.live.intercept.iter().any(|p| p.matches(host, port)))
            && !self.live.bypass.iter().any(|d| d.matches(host, port))
    }

    /// Whether a client at `ip` may connect.
    pub fn allows_client(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.live.allow_clients.iter().any(|net| net.contains(&ip))
    }

    /// Why a client may not reach `target`'s port, or `None` when it may: 443, 80 in cleartext,
    /// the ports of intercept entries, of `--resolve` rules, `insecure_registries` and
    /// `allow_destinations` entries for that host, and `allow_ports`. The rule holds on every way in (CONNECT, absolute-form,
    /// transparent plain HTTP, the mirror's `?ns=`), so pantry is never a relay to any port.
    pub fn refuses_port(&self, target: &crate::target::Target) -> Option<String> {
        let port = target.port;
        let allowed = port == 443
            || (port == 80 && !target.https)
            || self.live.allow_ports.contains(&port)
            || self.live.intercept.iter().any(|p| p.port() == Some(port))
            || self
                .live
                .insecure_registries
                .iter()
                .any(|p| p.port() == Some(port) && p.matches(&target.host, port))
            || self.startup.resolve.iter().any(|r| r.port == port && r.host == target.host)
            || self
                .startup
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
        self.live.mirror_allow_clients.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests;
