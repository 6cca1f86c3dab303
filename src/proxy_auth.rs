//! `Proxy-Authorization: Basic` against an htpasswd file of bcrypt hashes (`proxy_auth_file`):
//! proxy requests without valid credentials get 407 with `Proxy-Authenticate`; `/metrics` on the
//! proxy port (also `Authorization: Basic`) a 401, and mirror requests a registry-style 403
//! unless their client is in `mirror_allow_clients`. Unknown users take as long as known ones. A verified header
//! is remembered (as a keyed hash, in memory) for a few minutes, so bcrypt runs once per client
//! credential, not per request. Passwords and hashes are never logged or printed.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    path::Path,
    time::Duration,
};

use base64::Engine;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// How long a verified credential is trusted without running bcrypt again.
const REMEMBER: Duration = Duration::from_secs(300);

/// The users of an htpasswd file and the credentials verified recently.
pub struct ProxyAuth {
    users: HashMap<String, String>,
    /// A hash as costly as the users' own: what unknown users' passwords are checked against.
    dummy: String,
    hasher: RandomState,
    verified: moka::sync::Cache<u64, ()>,
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyAuth({} users)", self.users.len())
    }
}

impl ProxyAuth {
    /// Reads `user:bcrypt-hash` lines (`htpasswd -B`); blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("proxy_auth_file {}: {e}", path.display()))?;
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("proxy_auth_file {} line {}: {why}", path.display(), n + 1);
            let (user, hash) = line.split_once(':').ok_or_else(|| bad("expected user:hash"))?;
            if !hash.starts_with("$2") {
                return Err(bad("only bcrypt hashes are accepted (htpasswd -B)"));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(format!("proxy_auth_file {}: no users", path.display()));
        }
        let cost = users
            .values()
            .filter_map(|h| h.get(4..6)?.parse::<u32>().ok())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        // Its password does not matter: a match for an unknown user is still a refusal.
        let dummy = bcrypt::hash("pantry: no such user", cost)
            .map_err(|e| format!("proxy_auth_file {}: {e}", path.display()))?;
        Ok(Self {
            users,
            dummy,
            hasher: RandomState::new(),
            verified: moka::sync::Cache::builder().time_to_live(REMEMBER).max_capacity(10_000).build(),
        })
    }

    /// `Ok` when `headers` carry valid proxy credentials; otherwise the 407 to answer.
    pub async fn check(&self, headers: &HeaderMap) -> Result<(), Response<Body>> {
        match self.verify(headers.get(header::PROXY_AUTHORIZATION)).await {
            true => Ok(()),
            false => Err(challenge()),
        }
    }

    /// Whether `value` (a `Basic` credential) names a user with the right password. An unknown
    /// user costs a bcrypt run too (against a hash of the same cost), so the answer's time does
    /// not tell which user names exist.
    pub async fn verify(&self, value: Option<&HeaderValue>) -> bool {
        let Some(value) = value else { return false };
        let key = self.hasher.hash_one(value.as_bytes());
        if self.verified.contains_key(&key) {
            return true;
        }
        let Some((user, password)) = basic_credentials(value) else { return false };
        let (known, hash) = match self.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => (false, self.dummy.clone()),
        };
        let matched = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        match (known, matched) {
            (true, true) => {
                self.verified.insert(key, ());
                true
            }
            (true, false) => {
                tracing::info!(%user, "proxy authentication failed: wrong password");
                false
            }
            (false, _) => {
                tracing::info!(%user, "proxy authentication failed: unknown user");
                false
            }
        }
    }
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value
        .to_str()
        .ok()?
        .strip_prefix("Basic ")
        .or_else(|| value.to_str().ok()?.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// 401 asking for Basic credentials (a page of pantry's own, not a proxy request).
pub fn unauthorized(message: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(message));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"pantry\""));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// 407 asking for Basic credentials.
fn challenge() -> Response<Body> {
    let mut response = Response::new(body::full("proxy authentication required\n"));
    *response.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
    let headers = response.headers_mut();
    headers.insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"pantry\""));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bcrypt_users_and_407s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        std::fs::write(&path, format!("# users\nalice:{hash}\n")).unwrap();
        let auth = ProxyAuth::load(&path).unwrap();
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::PROXY_AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        let basic = |text: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(text));
        assert!(auth.check(&header(&basic("alice:s3cret"))).await.is_ok());
        assert!(auth.check(&header(&basic("alice:s3cret"))).await.is_ok(), "remembered");
        for bad in [basic("alice:wrong"), basic("bob:s3cret"), "Bearer x".into(), "Basic !!".into()] {
            let refused = auth.check(&header(&bad)).await.unwrap_err();
            assert_eq!(refused.status(), 407);
            assert_eq!(refused.headers()[header::PROXY_AUTHENTICATE], "Basic realm=\"pantry\"");
        }
        assert_eq!(auth.check(&HeaderMap::new()).await.unwrap_err().status(), 407);
        std::fs::write(&path, "alice:plaintext\n").unwrap();
        assert!(ProxyAuth::load(&path).unwrap_err().contains("bcrypt"));
    }
}
