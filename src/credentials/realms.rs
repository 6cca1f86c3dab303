//! What each registry asks for (its challenge, as its own answers say), and the stand-in tokens
//! pantry gives clients that do the token dance anonymously for what pantry's credentials cover.
//!
//! Registry clients pull "anonymously" by asking the registry's token realm for a token without
//! credentials and then sending that token. For a scope an entry covers, pantry answers that
//! request itself, at the realm the registry named, with a stand-in token: a random value that
//! carries no right anywhere. A request bearing it is an anonymous request to pantry, which sends
//! it upstream with pantry's own credentials when an entry covers it (and without any otherwise).
//! Neither pantry's login nor its tokens ever reach a client.

use http::{header, HeaderMap, Response, StatusCode};

use super::challenge::Challenge;
use crate::{
    body::{self, Body},
    target::Target,
};

/// Every stand-in token starts with this.
const STAND_IN_PREFIX: &str = "pantry-stand-in.";
/// The lifetime a stand-in token is announced with (it is never checked: it grants nothing).
const STAND_IN_LIFETIME_S: u64 = 300;

/// What a registry asks for: its challenge (`None`: it answered an anonymous version check),
/// and a Bearer challenge's realm as a target and path (only `https` realms).
#[derive(Debug, Clone)]
struct Known {
    challenge: Option<Challenge>,
    realm: Option<(Target, String)>,
}

/// The last challenge of each registry pantry holds a login for (at most [`MAX_REGISTRIES`]).
#[derive(Debug)]
pub struct Realms {
    known: moka::sync::Cache<String, Known>,
}

/// Registries whose challenge is remembered.
const MAX_REGISTRIES: u64 = 1_000;

impl Default for Realms {
    fn default() -> Self {
        Self { known: moka::sync::Cache::builder().max_capacity(MAX_REGISTRIES).build() }
    }
}

impl Realms {
    /// What `registry` (`host:port`) asks for, if known.
    pub fn challenge(&self, registry: &str) -> Option<Option<Challenge>> {
        self.known.get(registry).map(|known| known.challenge)
    }

    /// Records what `registry` asks for, from its own answer.
    pub fn learn(&self, registry: &str, challenge: Option<Challenge>) {
        if self.challenge(registry).as_ref() == Some(&challenge) {
            return;
        }
        tracing::debug!(registry, ?challenge, "learned what the registry asks for");
        let realm = match &challenge {
            Some(Challenge::Bearer { realm, .. }) => realm.parse::<http::Uri>().ok().and_then(|uri| {
                let target = Target::from_absolute(&uri).ok().filter(|t| t.https)?;
                Some((target, uri.path().to_string()))
            }),
            _ => None,
        };
        self.known.insert(registry.to_string(), Known { challenge, realm });
    }

    /// The registries whose Bearer realm is `target`'s `path` (`https` only).
    pub fn registries_with_realm(&self, target: &Target, path: &str) -> Vec<String> {
        self.known
            .iter()
            .filter(|(_, known)| known.realm.as_ref().is_some_and(|(t, p)| t == target && p == path))
            .map(|(registry, _)| (*registry).clone())
            .collect()
    }

    /// Whether `host:port` is the realm of one of `registries` (so it must be intercepted).
    pub fn is_realm_of(&self, host: &str, port: u16, registries: impl Fn(&str) -> bool) -> bool {
        self.known.iter().any(|(registry, known)| {
            known.realm.as_ref().is_some_and(|(t, _)| t.host == host && t.port == port)
                && registries(&registry)
        })
    }
}

/// The challenge in a registry's 401 headers, if pantry can answer it.
pub fn challenge_in(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::parse)
}

/// Whether a request's `Authorization` is a stand-in token pantry gave out.
pub fn is_stand_in(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim().starts_with(STAND_IN_PREFIX))
}

/// The repositories a token request asks to pull from, or `None` when it asks for anything else
/// (pushing, another resource type, no scope at all).
pub fn pull_scopes(query: Option<&str>) -> Option<Vec<String>> {
    let mut repositories = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query?.as_bytes()) {
        if name != "scope" {
            continue;
        }
        for scope in value.split(' ').filter(|s| !s.is_empty()) {
            let (kind, rest) = scope.split_once(':')?;
            let (repository, actions) = rest.rsplit_once(':')?;
            if kind != "repository" || repository.is_empty() || actions.split(',').any(|a| a != "pull") {
                return None;
            }
            repositories.push(repository.to_string());
        }
    }
    (!repositories.is_empty()).then_some(repositories)
}

/// A token endpoint's answer carrying a fresh stand-in token.
pub fn stand_in_answer(now_ms: u64) -> Response<Body> {
    let token = format!("{STAND_IN_PREFIX}{}", random_hex());
    let issued =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms));
    let json = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": STAND_IN_LIFETIME_S,
        "issued_at": issued.to_string(),
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body::full(json.to_string()))
        .unwrap_or_else(|_| Response::new(body::empty()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap_or(());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pull_scopes_of_repositories_are_stood_in_for() {
        let q = |s: &str| pull_scopes(Some(s));
        assert_eq!(q("service=r&scope=repository%3Aprivate%2Fapp%3Apull"), Some(vec!["private/app".into()]));
        assert_eq!(
            q("scope=repository:a:pull&scope=repository:b/c:pull"),
            Some(vec!["a".to_string(), "b/c".to_string()])
        );
        assert_eq!(q("scope=repository:a:pull,push"), None, "pushes go with the client's own");
        assert_eq!(q("scope=registry:catalog:*"), None);
        assert_eq!(q("service=r"), None, "no scope: a login check");
        assert_eq!(pull_scopes(None), None);
    }

    #[test]
    fn realms_are_known_by_the_registries_that_named_them() {
        let realms = Realms::default();
        let bearer =
            Challenge::Bearer { realm: "https://auth.test/token".into(), service: None, scope: None };
        realms.learn("registry.test:443", Some(bearer));
        let auth = Target::from_absolute(&"https://auth.test/".parse().unwrap()).unwrap();
        assert_eq!(realms.registries_with_realm(&auth, "/token"), vec!["registry.test:443".to_string()]);
        assert!(realms.registries_with_realm(&auth, "/other").is_empty());
        assert!(realms.is_realm_of("auth.test", 443, |r| r == "registry.test:443"));
        assert!(!realms.is_realm_of("auth.test", 443, |_| false));
        let plain = Target::from_absolute(&"http://auth.test/".parse().unwrap()).unwrap();
        assert!(realms.registries_with_realm(&plain, "/token").is_empty(), "never in cleartext");
    }

    #[test]
    fn stand_in_tokens_are_recognised_and_random() {
        let body_of = |r: Response<Body>| r.headers().get(header::CONTENT_TYPE).cloned();
        assert!(body_of(stand_in_answer(0)).is_some());
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer pantry-stand-in.00ff".parse().unwrap());
        assert!(is_stand_in(&headers));
        headers.insert(header::AUTHORIZATION, "Bearer eyJhbGciOi".parse().unwrap());
        assert!(!is_stand_in(&headers));
        assert_ne!(random_hex(), random_hex());
    }
}
