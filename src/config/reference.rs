//! The configuration reference (docs/CONFIGURATION.md), generated from the flag definitions and
//! the file keys so that it cannot drift: a test compares the committed file with this output and
//! checks that every key the file parser accepts is described here.

use clap::{Args, Command};

use super::RunArgs;

/// Keys that exist only in the TOML file, with their meaning and default.
pub const FILE_ONLY: &[(&str, &str)] = &[
    ("allow_ports", "extra ports clients may reach, by CONNECT, absolute-form URL, transparent plain HTTP or the mirror's `?ns=`; 443, 80 in cleartext and the ports of intercept entries, `--resolve` rules and `allow_destinations` entries with a port are always allowed, so pantry is never a relay to any port [default: none]"),
    ("connect_ports", "the old name of `allow_ports`, still read"),
    ("tunnel_idle_timeout", "a tunnel with no bytes either way for this long is closed [default: 10m]"),
    ("client_header_timeout", "a client must finish its TLS handshake and send each request head within this long, on every port, and a connection with no request in flight for this long is closed (h2 and before the first request too); slow (slowloris), silent and idle keep-alive clients so give their slot back [default: 30s]"),
    ("upstream_connect_timeout", "DNS + TCP connect to an upstream [default: 10s]"),
    ("upstream_response_timeout", "an upstream's response headers; a stalled upstream then counts as down [default: 30s]"),
    ("upstream_body_timeout", "longest silence within an upstream body before the transfer is aborted (the clients see a broken transfer, nothing is stored) [default: 60s]"),
    ("upstream_idle_timeout", "an idle pooled connection to an upstream is closed after this long (each holds its TLS and h2 buffers, ~45 KiB) [default: 30s]"),
    ("upstream_min_rate", "slowest average an upstream body may keep over each `upstream_body_timeout` window (a drip is as good as a stall), e.g. `1KiB/s`; `0` allows any [default: 1KiB/s]"),
    ("shutdown_grace", "how long transfers in flight may run on after SIGINT/SIGTERM [default: 30s]"),
    ("max_connections", "concurrent client connections over all ports [default: 4096]"),
    ("http_cache", "cache plain HTTP and intercepted non-registry hosts by RFC 9111 (Cache-Control, Vary, revalidation) in the same store; `false` only forwards them [default: true]"),
    ("verify_reads", "verify every whole read of stored content against its digest while it streams; a mismatch breaks the transfer off before its end and removes the file (small content such as manifests is verified on every read regardless, and large content whose mtime changed since its commit before it is served; ranges are not). It halves warm throughput on the benchmark (476 vs 942 MB/s for a 1 GiB blob, bench `pantry_verify`), hence off by default [default: false]"),
    ("finish_abandoned_fetches", "`false`: a fetch every client has left stops (spares metered links); `true`: it finishes and is stored [default: false]"),
    ("tag_ttl", "how long a tag's answer is trusted when no `[[tag_rules]]` entry matches: a duration, `0` (always revalidate) or `immutable` [default: 10m]"),
    ("tag_rules", "`[[tag_rules]]` entries `registry`, `repository`, `tag` (globs, default `*`) and `ttl`; first match wins; built in: `latest` 1m"),
    ("repositories", "`[[repositories]]` entries `registry`, `repository` (globs), `action` (`cache`, `pass`, `deny`), `push` (bool); first match wins"),
    ("mirrors", "`[[mirrors]]` entries `registry` (the one mirrored), `url` (`https://host[:port]`), `priority` (lower first); tried before the registry for content and tags, with failover"),
    ("upstream_credentials", "`[[upstream_credentials]]` entries: `registry` (glob; `docker.io` is Docker Hub), `repositories` (globs, default every one), and exactly one of `username` + `password_file` / `password_env` / `password` (inline only in a file no one else may read), `helper` (`docker-credential-NAME`), `docker_config` (a config.json); anonymous requests an entry covers go upstream with pantry's credentials (first match wins; secret files must be chmod 600)"),
    ("refresh", "`[refresh]` table: `images` (image references), `every` (default 1h), `platform` (default every platform); prefetched at start and on that schedule"),
];

/// The reference as Markdown.
pub fn markdown() -> String {
    let command = RunArgs::augment_args(Command::new("pantry"));
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from pantry's flag definitions and file keys (`src/config/reference.rs`); a test keeps \
         it current.\n\n\
         Every flag has a `PANTRY_*` environment variable and a key in the TOML file given with \
         `--config` (the flag's name with `_` for `-`). Flags win over the environment, the environment \
         over the file, the file over the defaults. An invalid configuration lists every problem at once \
         and exits with status 2; `pantry check-config` prints the effective configuration. Registry \
         names in rules (`tag_rules`, `repositories`, `mirrors`, `pin`) mean port 443 when they have no \
         port, and `docker.io` means Docker Hub's API host `registry-1.docker.io`. SIGHUP reads the file again \
         (flags and environment stay as given at start) and applies every setting to new connections and requests, except \
         these, which keep their running value until a restart (the log names each one that changed): ",
    );
    let restart: Vec<String> = super::Startup::NAMES.iter().map(|n| format!("`{n}`")).collect();
    out.push_str(&restart.join(", "));
    out.push_str(
        ".\n\n## Flags, environment, file keys\n\n\
         | flag | environment | file key | meaning |\n|---|---|---|---|\n",
    );
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let value = match arg.get_action().takes_values() {
            true => {
                arg.get_value_names().and_then(|v| v.first()).map(|v| format!(" {v}")).unwrap_or_default()
            }
            false => String::new(),
        };
        let env = arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())).unwrap_or_default();
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default().replace('|', "\\|");
        let key = if long == "config" { "—".to_string() } else { format!("`{}`", long.replace('-', "_")) };
        out.push_str(&format!("| `--{long}{value}` | {env} | {key} | {help} |\n"));
    }
    out.push_str("\n## Keys only in the file\n\n| key | meaning |\n|---|---|\n");
    for (key, meaning) in FILE_ONLY {
        out.push_str(&format!("| `{key}` | {meaning} |\n"));
    }
    out.push_str("\nSee `examples/pantry.toml` and the other `examples/pantry-*.toml` for complete files.\n");
    out
}

/// Every key of the file a flag or `FILE_ONLY` describes.
pub fn described_keys() -> Vec<String> {
    let command = RunArgs::augment_args(Command::new("pantry"));
    let flags = command.get_arguments().filter_map(|a| a.get_long()).map(|l| l.replace('-', "_"));
    flags.chain(FILE_ONLY.iter().map(|(k, _)| k.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The keys the file parser accepts, read from its own "unknown field" error.
    fn parser_keys() -> Vec<String> {
        let error =
            toml::from_str::<super::super::file::FileConfig>("no_such_key = 1").unwrap_err().to_string();
        let expected = error.split("expected one of").nth(1).expect("serde lists the fields");
        expected.split(',').map(|k| k.trim().trim_matches(|c| c == '`' || c == '\n').to_string()).collect()
    }

    #[test]
    fn every_file_key_is_described_and_nothing_else() {
        let mut parsed = parser_keys();
        let mut described: Vec<String> = described_keys().into_iter().filter(|k| k != "config").collect();
        parsed.sort();
        described.sort();
        assert_eq!(parsed, described);
    }

    #[test]
    fn the_committed_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CONFIGURATION.md");
        let generated = markdown();
        if std::env::var_os("PANTRY_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/CONFIGURATION.md is stale: run `PANTRY_BLESS=1 cargo test --lib reference` and commit it"
        );
    }
}
