//! A docker `config.json` as docker reads it for one registry: `auths` (`auth` as base64
//! `user:password`, or `username` + `password`, or an `identitytoken`), then `credHelpers`, then
//! `credsStore`. Errors never quote the file (it holds secrets).

use std::{collections::HashMap, path::Path};

use base64::Engine;
use serde::Deserialize;

use super::login::{server_name, Login};
use crate::config::Secret;

/// What a docker `config.json` holds for one registry.
pub(super) enum FromConfig {
    Login(Login),
    Helper(String),
    Nothing,
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(rename = "identitytoken", default)]
    identity_token: Option<String>,
}

/// The registry a `config.json` key names, as `host[:port]` with Docker Hub's aliases folded.
fn config_key(key: &str) -> String {
    let key = key.trim().to_ascii_lowercase();
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(&key);
    let host = key.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".into(),
        other => other.strip_suffix(":443").unwrap_or(other).to_string(),
    }
}

pub(super) async fn from_docker_config(path: &Path, registry: &str) -> Result<FromConfig, String> {
    let text = tokio::fs::read(path).await.map_err(|e| format!("docker_config {}: {e}", path.display()))?;
    let config: DockerConfig = serde_json::from_slice(&text).map_err(|e| {
        format!("docker_config {}: not a docker config.json ({})", path.display(), e.classify_name())
    })?;
    let wanted = server_name(registry);
    if let Some(entry) = config.auths.iter().find(|(k, _)| config_key(k) == wanted).map(|(_, v)| v) {
        if let Some(token) = entry.identity_token.as_ref().filter(|t| !t.is_empty()) {
            return Ok(FromConfig::Login(Login::IdentityToken(Secret::new(token.clone()))));
        }
        let pair = match (&entry.auth, &entry.username, &entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| format!("docker_config {}: an auth value is not base64", path.display()))?;
                let text = String::from_utf8(decoded).map_err(|_| {
                    format!("docker_config {}: an auth value is not user:password", path.display())
                })?;
                let (user, password) = text.split_once(':').ok_or_else(|| {
                    format!("docker_config {}: an auth value is not user:password", path.display())
                })?;
                Some((user.to_string(), password.to_string()))
            }
            (_, Some(user), Some(password)) => Some((user.clone(), password.clone())),
            _ => None,
        };
        if let Some((username, password)) = pair {
            return Ok(FromConfig::Login(Login::Basic { username, password: Secret::new(password) }));
        }
    }
    if let Some(helper) = config.cred_helpers.iter().find(|(k, _)| config_key(k) == wanted).map(|(_, v)| v) {
        return Ok(FromConfig::Helper(helper.clone()));
    }
    Ok(config.creds_store.filter(|s| !s.is_empty()).map_or(FromConfig::Nothing, FromConfig::Helper))
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    /// What kind of JSON error, without the text around it (which may be a secret).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_registries_as_docker_does() {
        assert_eq!(server_name("registry-1.docker.io:443"), "https://index.docker.io/v1/");
        assert_eq!(server_name("ghcr.io:443"), "ghcr.io");
        assert_eq!(server_name("registry.test:5000"), "registry.test:5000");
        assert_eq!(config_key("https://index.docker.io/v1/"), "https://index.docker.io/v1/");
        assert_eq!(config_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(config_key("https://ghcr.io"), "ghcr.io");
        assert_eq!(config_key("registry.test:5000"), "registry.test:5000");
    }

    #[tokio::test]
    async fn docker_config_auths_helpers_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:pw:with:colons");
        let text = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"tok.test":{{"identitytoken":"refresh-1"}}}},
               "credHelpers":{{"ecr.test":"ecr-login"}},"credsStore":"desktop"}}"#
        );
        std::fs::write(&path, text).unwrap();
        let login = |registry: &'static str| {
            let path = path.clone();
            async move { from_docker_config(&path, registry).await.unwrap() }
        };
        match login("registry-1.docker.io:443").await {
            FromConfig::Login(Login::Basic { username, password }) => {
                assert_eq!((username.as_str(), password.expose()), ("ci", "pw:with:colons"))
            }
            _ => panic!("auths entry"),
        }
        assert!(
            matches!(login("tok.test:443").await, FromConfig::Login(Login::IdentityToken(t)) if t.expose() == "refresh-1")
        );
        assert!(matches!(login("ecr.test:443").await, FromConfig::Helper(h) if h == "ecr-login"));
        assert!(matches!(login("other.test:443").await, FromConfig::Helper(h) if h == "desktop"));
        std::fs::write(&path, r#"{"auths":{"x":{"auth":"hunter2-not-base64!"}}}"#).unwrap();
        assert!(matches!(from_docker_config(&path, "x:443").await, Err(e) if !e.contains("hunter2")));
    }
}
