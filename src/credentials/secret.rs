//! Reading an entry's secret: a password from a file, a variable or the configuration; a docker
//! credential helper (`docker-credential-NAME get`: the server on stdin, JSON out); a docker
//! `config.json` (`auths`, then `credHelpers`, then `credsStore`, as docker reads them). Helper
//! answers are kept until their `ExpiresAt` (or [`HELPER_TTL`]) and forgotten after a 401.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{
    docker_config::{from_docker_config, FromConfig},
    login::{server_name, Login},
};

use crate::{
    clock::Clock,
    config::{PasswordFrom, Secret, SecretSource},
    single_flight::SingleCall,
};

/// How long a helper's answer is used when it gives no `ExpiresAt`.
pub const HELPER_TTL: Duration = Duration::from_secs(15 * 60);
/// A helper's answer is replaced this long before its `ExpiresAt`.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// A helper that has not answered after this long is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// A helper's answer (`None`: it holds nothing for the server; `Err`: it failed) and until when
/// it is used (ms).
type HelperAnswerKept = (Result<Option<Login>, Arc<str>>, u64);

/// Helper answers by helper and server: at most this many (servers are named by the registries
/// clients reach, with a `credsStore` any of them).
const MAX_HELPER_ANSWERS: u64 = 1_000;
/// A helper that failed is not run again for this long.
const HELPER_FAILURE_TTL: Duration = Duration::from_secs(10);

/// Helper answers by helper and server, one run at a time for each.
#[derive(Debug)]
pub struct Secrets {
    helpers: moka::sync::Cache<(String, String), HelperAnswerKept>,
    runs: SingleCall<(String, String), HelperAnswerKept>,
}

impl Default for Secrets {
    fn default() -> Self {
        let helpers = moka::sync::Cache::builder().max_capacity(MAX_HELPER_ANSWERS).build();
        Self { helpers, runs: SingleCall::default() }
    }
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

    async fn helper(&self, name: &str, registry: &str, clock: &Clock) -> Result<Option<Login>, String> {
        let key = (name.to_string(), server_name(registry));
        if let Some((answer, until)) = self.helpers.get(&key) {
            if until > clock.now_ms() {
                return answer.map_err(|e| e.to_string());
            }
        }
        let run = || async {
            let now = clock.now_ms();
            let kept = match run_helper(name, &key.1).await {
                Ok((login, expires_at_ms)) => {
                    let ttl_ms = HELPER_TTL.as_millis() as u64;
                    let margin = EXPIRY_MARGIN.as_millis() as u64;
                    let until = expires_at_ms.map_or(now + ttl_ms, |at| at.saturating_sub(margin));
                    tracing::debug!(
                        helper = name,
                        server = key.1,
                        found = login.is_some(),
                        "credential helper answered"
                    );
                    (Ok(login), until)
                }
                Err(error) => (Err(Arc::from(error)), now + HELPER_FAILURE_TTL.as_millis() as u64),
            };
            self.helpers.insert(key.clone(), kept.clone());
            kept
        };
        let ((answer, _), _) = self.runs.run(key.clone(), run, || ()).await;
        answer.map_err(|e| e.to_string())
    }

    /// Forgets what helpers said for `registry` (its credential was refused).
    pub fn forget(&self, registry: &str) {
        let server = server_name(registry);
        let keys: Vec<(String, String)> =
            self.helpers.iter().map(|(k, _)| (*k).clone()).filter(|(_, s)| *s == server).collect();
        for key in keys {
            self.helpers.invalidate(&key);
        }
    }

    /// Forgets every helper answer (the entries changed).
    pub fn forget_all(&self) {
        self.helpers.invalidate_all();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_headers_and_debug_hide_the_secret() {
        let login = Login::Basic { username: "u".into(), password: Secret::new("hunter2") };
        assert_eq!(login.basic_header().unwrap(), "Basic dTpodW50ZXIy");
        assert!(!format!("{login:?}").contains("hunter2"));
        assert_eq!(expiry_ms("1970-01-01T00:00:10Z"), Some(10_000));
    }
}
