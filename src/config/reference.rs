//! The configuration reference (docs/CONFIGURATION.md), generated from the flag definitions and
//! the file keys so that it cannot drift: a test compares the committed file with this output and
//! checks that every key the file parser accepts is described here.

use clap::{Args, Command};

use super::RunArgs;

/// Keys that exist only in the TOML file (its tables), with their meaning and default.
pub const FILE_ONLY: &[(&str, &str)] = &[
    ("connect_ports", "the old name of `allow_ports`, still read"),
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
        let error = toml::from_str::<super::super::RunArgs>("no_such_key = 1").unwrap_err().to_string();
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
