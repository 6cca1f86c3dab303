//! The effective configuration as a TOML file (`pantry check-config`): every key with the value
//! pantry runs with, whether it came from a flag, the environment, the file or the defaults.
//! Credentials in `upstream_proxy` and inline `upstream_credentials` passwords are masked (`***`);
//! otherwise loading the output gives the same configuration.

use toml::{Table, Value};

use super::{Config, CredentialEntry, LogFormat, ParentRule, PasswordFrom, SecretSource};

fn text(value: impl std::fmt::Display) -> Value {
    Value::String(value.to_string())
}

fn list<T: std::fmt::Display>(items: &[T]) -> Value {
    Value::Array(items.iter().map(text).collect())
}

fn duration(value: std::time::Duration) -> Value {
    text(humantime::format_duration(value))
}

impl Config {
    /// This configuration as a pantry TOML file.
    pub fn effective_toml(&self) -> String {
        let mut t = Table::new();
        t.insert("listen".into(), text(self.startup.listen));
        t.insert("allow_clients".into(), list(&self.live.allow_clients));
        t.insert("deny_destinations".into(), list(&self.startup.deny_destinations));
        t.insert("allow_destinations".into(), list(&self.startup.allow_destinations));
        t.insert("mirror_allow_clients".into(), list(&self.live.mirror_allow_clients));
        if let Some(path) = &self.live.proxy_auth_file {
            t.insert("proxy_auth_file".into(), text(path.display()));
        }
        if let Some(path) = &self.live.admin_token_file {
            t.insert("admin_token_file".into(), text(path.display()));
        }
        if let Some(admin) = self.startup.admin_listen {
            t.insert("admin_listen".into(), text(admin));
        }
        if let Some(transparent) = self.startup.transparent {
            t.insert("transparent".into(), text(transparent));
        }
        if let Some(mirror) = self.startup.mirror_listen {
            t.insert("mirror_listen".into(), text(mirror));
        }
        if let Some(fleet) = self.startup.fleet_listen {
            t.insert("fleet_listen".into(), text(fleet));
        }
        let peers: Vec<_> = self.startup.peers.iter().map(|p| format!("https://{p}")).collect();
        t.insert("peers".into(), list(&peers));
        if let Some(dns) = &self.startup.peers_dns {
            t.insert("peers_dns".into(), text(dns));
        }
        if let Some(advertise) = &self.startup.advertise {
            t.insert("advertise".into(), text(format!("https://{advertise}")));
        }
        if let Some(shared) = &self.startup.shared_store {
            t.insert("shared_store".into(), text(shared.url()));
            if let Some(endpoint) = &shared.endpoint {
                t.insert("shared_store_endpoint".into(), text(endpoint));
            }
            t.insert("shared_store_region".into(), text(&shared.region));
            if let Some(file) = &shared.credentials {
                t.insert("shared_store_credentials".into(), text(file.display()));
            }
        }
        t.insert("mirror_tls".into(), Value::Boolean(self.live.mirror_tls));
        t.insert("mirror_names".into(), list(&self.live.mirror_names));
        t.insert("mirror_default".into(), text(&self.live.mirror_default));
        if let Some((cert, key)) = &self.live.mirror_cert {
            t.insert("mirror_cert".into(), text(cert.display()));
            t.insert("mirror_key".into(), text(key.display()));
        }
        t.insert("cache_dir".into(), text(self.startup.cache_dir.display()));
        t.insert("certs_dir".into(), text(self.startup.certs_dir.display()));
        t.insert("intercept".into(), list(&self.live.intercept));
        t.insert("intercept_all".into(), Value::Boolean(self.live.intercept_all));
        t.insert("insecure_registries".into(), list(&self.live.insecure_registries));
        let cas: Vec<_> = self.startup.upstream_ca.iter().map(|p| p.display().to_string()).collect();
        t.insert("upstream_ca".into(), list(&cas));
        let resolve: Vec<_> =
            self.startup.resolve.iter().map(|r| format!("{}:{}:{}", r.host, r.port, r.addr)).collect();
        t.insert("resolve".into(), list(&resolve));
        if let Some(parent) = &self.startup.upstream_proxy {
            t.insert("upstream_proxy".into(), text(parent.redacted_url()));
        }
        let rules: Vec<_> = self.startup.upstream_proxy_for.iter().map(ParentRule::redacted).collect();
        t.insert("upstream_proxy_for".into(), list(&rules));
        t.insert("bypass".into(), list(&self.live.bypass));
        t.insert("max_size".into(), text(self.startup.max_size));
        t.insert("pin".into(), list(&self.live.pin));
        t.insert("offline".into(), Value::Boolean(self.live.offline));
        t.insert("http_cache".into(), Value::Boolean(self.live.http_cache));
        t.insert("verify_reads".into(), Value::Boolean(self.live.verify_reads));
        let format = match self.startup.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        t.insert("log_format".into(), text(format));
        let ports = self.live.allow_ports.iter().map(|p| Value::Integer(i64::from(*p))).collect();
        t.insert("allow_ports".into(), Value::Array(ports));
        t.insert("tunnel_idle_timeout".into(), duration(self.live.tunnel_idle_timeout));
        t.insert("client_header_timeout".into(), duration(self.live.client_header_timeout));
        t.insert("upstream_connect_timeout".into(), duration(self.startup.upstream_connect_timeout));
        t.insert("upstream_response_timeout".into(), duration(self.startup.upstream_response_timeout));
        t.insert("upstream_body_timeout".into(), duration(self.startup.upstream_body_timeout));
        t.insert("upstream_idle_timeout".into(), duration(self.startup.upstream_idle_timeout));
        t.insert("upstream_min_rate".into(), text(format!("{}/s", self.startup.upstream_min_rate)));
        t.insert("shutdown_grace".into(), duration(self.live.shutdown_grace));
        t.insert("max_connections".into(), Value::Integer(self.startup.max_connections as i64));
        t.insert("finish_abandoned_fetches".into(), Value::Boolean(self.startup.finish_abandoned_fetches));
        t.insert("tag_ttl".into(), text(self.live.tag_ttl));
        let tag_rules = self.live.tag_rules.iter().map(|rule| {
            let [registry, repository, tag] = rule.globs();
            table([
                ("registry", text(registry)),
                ("repository", text(repository)),
                ("tag", text(tag)),
                ("ttl", text(rule.ttl)),
            ])
        });
        t.insert("tag_rules".into(), Value::Array(tag_rules.collect()));
        let repositories = self.live.repositories.iter().map(|rule| {
            let [registry, repository] = rule.globs();
            table([
                ("registry", text(registry)),
                ("repository", text(repository)),
                ("action", text(rule.action.as_str())),
                ("push", Value::Boolean(rule.push)),
            ])
        });
        t.insert("repositories".into(), Value::Array(repositories.collect()));
        let mirrors = self.live.mirrors.iter().map(|mirror| {
            let scheme = if mirror.target.https { "https" } else { "http" };
            table([
                ("registry", text(&mirror.registry)),
                ("url", text(format!("{scheme}://{}", mirror.target))),
                ("priority", Value::Integer(i64::from(mirror.priority))),
            ])
        });
        t.insert("mirrors".into(), Value::Array(mirrors.collect()));
        let credentials = self.live.upstream_credentials.iter().map(credential_table);
        t.insert("upstream_credentials".into(), Value::Array(credentials.collect()));
        if let Some(path) = &self.live.docker_config {
            t.insert("docker_config".into(), text(path.display()));
        }
        if let Some(refresh) = &self.live.refresh {
            let mut r = Table::new();
            r.insert("images".into(), list(&refresh.images));
            r.insert("every".into(), duration(refresh.every));
            if let Some(platform) = &refresh.platform {
                r.insert("platform".into(), text(platform));
            }
            t.insert("refresh".into(), Value::Table(r));
        }
        toml::to_string(&t).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// An `[[upstream_credentials]]` entry with its secret masked (paths and variable names shown).
fn credential_table(entry: &CredentialEntry) -> Value {
    let registry = entry.to_string();
    let registry = registry.split_once("/{").map_or(registry.as_str(), |(r, _)| r).to_string();
    let mut t = Table::new();
    t.insert("registry".into(), text(registry));
    if !entry.repositories().is_empty() {
        t.insert("repositories".into(), list(&entry.repositories()));
    }
    match &entry.source {
        SecretSource::Password { username, password } => {
            t.insert("username".into(), text(username));
            let (key, value) = match password {
                PasswordFrom::File(path) => ("password_file", text(path.display())),
                PasswordFrom::Env(name) => ("password_env", text(name)),
                PasswordFrom::Inline(_) => ("password", text("***")),
            };
            t.insert(key.into(), value);
        }
        SecretSource::Helper(name) => {
            t.insert("helper".into(), text(name));
        }
        SecretSource::DockerConfig(path) => {
            t.insert("docker_config".into(), text(path.display()));
        }
    }
    Value::Table(t)
}

fn table<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::RunArgs;

    #[test]
    fn the_printed_configuration_loads_back_the_same() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pantry.toml");
        let args = RunArgs {
            config: Some(example),
            upstream_proxy: Some("http://user:hunter2@parent.example:3128".into()),
            ..RunArgs::default()
        };
        let config = Config::load(&args).unwrap();
        let printed = config.effective_toml();
        assert!(
            !printed.contains("hunter2") && printed.contains("***@parent"),
            "credentials are masked:\n{printed}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("effective.toml");
        std::fs::write(&file, &printed).unwrap();
        let again = Config::load(&RunArgs { config: Some(file), ..RunArgs::default() }).unwrap();
        assert_eq!(again.effective_toml(), printed);
    }
}
