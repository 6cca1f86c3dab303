//! Reading an entry's secret: a password from a file, a variable or the configuration; a docker
//! credential helper (`docker-credential-NAME get`: the server on stdin, JSON out); a docker
//! `config.json` (`auths`, then `credHelpers`, then `credsStore`, as docker reads them). Helper
//! answers are kept until their `ExpiresAt` (or [`HELPER_TTL`]) and forgotten after a 401.

use std::{collections::HashMap, path::Path, sync::Mutex, time::Duration};

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::{
    clock::Clock,
    config::{PasswordFrom, Secret, SecretSource},
    registry::reference::DOCKER_HUB,
};

/// How long a helper's answer is used when it gives no `ExpiresAt`.
pub const HELPER_TTL: Duration = Duration::from_secs(15 * 60);
/// A helper's answer is replaced this long before its `ExpiresAt`.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// A helper that has not answered after this long is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// What pantry presents to a registry (or its token realm) as itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A user name and a password (HTTP Basic; a token realm's Basic).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An identity (refresh) token, exchanged at the realm for access tokens (OAuth2).
    IdentityToken(Secret),
}

impl Login {
    /// `Authorization: Basic …` for a user and password.
    pub fn basic_header(&self) -> Option<String> {
        let Self::Basic { username, password } = self else { return None };
        let pair = format!("{username}:{}", password.expose());
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
    }
}

/// The name docker tools give `registry` (`host:port`) when they ask a helper or a config file:
/// Docker Hub is `https://index.docker.io/v1/`, port 443 is left out.
pub fn server_name(registry: &str) -> String {
    if registry == format!("{DOCKER_HUB}:443") {
        return "https://index.docker.io/v1/".to_string();
    }
    registry.strip_suffix(":443").unwrap_or(registry).to_string()
}

/// A helper's answer (`None`: it holds nothing for the server) and until when it is used (ms).
type HelperAnswerKept = (Option<Login>, u64);

/// Helper answers by helper and server.
#[derive(Debug, Default)]
pub struct Secrets {
    helpers: Mutex<HashMap<(String, String), HelperAnswerKept>>,
}

impl Secrets {
    /// The login `source` gives for `registry` (`host:port`), or `None` when it holds none for it.
    pub async fn login(
        &self,
        source: &SecretSource,
        registry: &str,
        clock: &Clock,
    ) -> Result<Option<Login>, String> {
        match source {
            SecretSource::Password { username, password } => {
                let password = match password {
                    PasswordFrom::File(path) => {
                        let text = tokio::fs::read_to_string(path)
                            .await
                            .map_err(|e| format!("password_file {}: {e}", path.display()))?;
                        Secret::new(text.strip_suffix('\n').unwrap_or(&text).trim_end_matches('\r'))
                    }
                    PasswordFrom::Env(name) => Secret::new(
                        std::env::var(name).map_err(|_| format!("password_env {name} is not set"))?,
                    ),
                    PasswordFrom::Inline(secret) => secret.clone(),
                };
                Ok(Some(Login::Basic { username: username.clone(), password }))
            }
            SecretSource::Helper(name) => self.helper(name, registry, clock).await,
            SecretSource::DockerConfig(path) => match from_docker_config(path, registry).await? {
                FromConfig::Login(login) => Ok(Some(login)),
                FromConfig::Helper(name) => self.helper(&name, registry, clock).await,
                FromConfig::Nothing => Ok(None),
            },
        }
    }

    /// Forgets what helpers said for `registry` (its credential was refused).
    pub fn forget(&self, registry: &str) {
        let server = server_name(registry);
        self.helpers.lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, s), _| *s != server);
    }

    /// Forgets every helper answer (the entries changed).
    pub fn forget_all(&self) {
        self.helpers.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn helper(&self, name: &str, registry: &str, clock: &Clock) -> Result<Option<Login>, String> {
        let key = (name.to_string(), server_name(registry));
        let now = clock.now_ms();
        if let Some((login, until)) = self.helpers.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            if *until > now {
                return Ok(login.clone());
            }
        }
        let (login, expires_at_ms) = run_helper(name, &key.1).await?;
        let ttl_ms = HELPER_TTL.as_millis() as u64;
        let until =
            expires_at_ms.map_or(now + ttl_ms, |at| at.saturating_sub(EXPIRY_MARGIN.as_millis() as u64));
        tracing::debug!(helper = name, server = key.1, found = login.is_some(), "credential helper answered");
        self.helpers.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (login.clone(), until));
        Ok(login)
    }
}

/// A helper's answer to `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
    #[serde(rename = "ExpiresAt", default)]
    expires_at: Option<String>,
}

/// Runs `docker-credential-NAME get` for `server`: the login and when it expires (ms), or `None`
/// when the helper holds nothing for it.
async fn run_helper(name: &str, server: &str) -> Result<(Option<Login>, Option<u64>), String> {
    let program = format!("docker-credential-{name}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes()).await.map_err(|e| format!("credential helper {program}: {e}"))?;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("credential helper {program} did not answer within {HELPER_TIMEOUT:?}"))?
        .map_err(|e| format!("credential helper {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok((None, None));
        }
        // Neither stream is shown: a failing helper may print what it was about to answer.
        return Err(format!("credential helper {program} failed ({})", output.status));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| format!("credential helper {program} answered something that is not its JSON"))?;
    let expires = match answer.expires_at.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => Some(
            expiry_ms(text)
                .ok_or_else(|| format!("credential helper {program}: ExpiresAt {text:?} is not RFC 3339"))?,
        ),
        None => None,
    };
    if answer.secret.is_empty() {
        return Ok((None, expires));
    }
    let login = if answer.username == "<token>" {
        Login::IdentityToken(Secret::new(answer.secret))
    } else {
        Login::Basic { username: answer.username, password: Secret::new(answer.secret) }
    };
    Ok((Some(login), expires))
}

fn expiry_ms(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339_weak(text).ok()?;
    Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// What a docker `config.json` holds for one registry.
enum FromConfig {
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

async fn from_docker_config(path: &Path, registry: &str) -> Result<FromConfig, String> {
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

    #[test]
    fn login_headers_and_debug_hide_the_secret() {
        let login = Login::Basic { username: "u".into(), password: Secret::new("hunter2") };
        assert_eq!(login.basic_header().unwrap(), "Basic dTpodW50ZXIy");
        assert!(!format!("{login:?}").contains("hunter2"));
        assert_eq!(expiry_ms("1970-01-01T00:00:10Z"), Some(10_000));
    }
}
