//! pantry's own `Authorization` for a registry and repository: what the registry asks for (its
//! challenge, learned from its answers or asked once with an anonymous `GET /v2/`), then Basic
//! for a Basic registry, or a token from the Bearer realm asked with pantry's login (Basic, or an
//! identity token through OAuth2's `refresh_token` grant). Tokens stay in memory only, per
//! registry and scope, until shortly before they expire; one request per scope at a time.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::{challenge, challenge::Challenge, login::Login, realms::Realms};
use crate::{body, clock::Clock, single_flight::SingleCall, target::Target, upstream::Upstream};

/// A token's lifetime when its realm does not say (the distribution spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// A token is replaced at most this long before it expires (a fifth of short lifetimes).
const MAX_MARGIN: Duration = Duration::from_secs(30);
/// How long a Basic credential is used before its source is read again.
const BASIC_TTL: Duration = Duration::from_secs(60);
/// Token answers larger than this are refused.
const MAX_ANSWER: usize = 64 * 1024;
/// The longest wait for a version check or a token answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// After a registry or realm could not be reached, requests go without asking it again for this
/// long (a registry that is down must not slow down what the store can serve).
const UNREACHABLE_BACKOFF: Duration = Duration::from_secs(10);

type Key = (String, String);
type Outcome = Result<Option<(HeaderValue, u64)>, Failure>;

/// Scopes are named by clients (any repository an entry's glob matches), so what is held is
/// bounded: at most this many tokens, the least recently used dropped first.
const MAX_HELD: u64 = 10_000;
/// After the realm refused a login, that login is not tried again for this long (a wrong
/// password retried on every request can lock the account).
const REFUSED_BACKOFF: Duration = Duration::from_secs(60);
/// Longest lifetime a token is used for, whatever the realm says.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// A token held: the header, until when it is used (ms), the entry it was obtained for, the
/// generation of the entries it belongs to and when it was obtained (ms).
type Held = (HeaderValue, u64, Arc<str>, u64, u64);
/// A token refused within this long of being obtained was refused for its scope (no such
/// repository, no access): it is kept, so that such requests cost no new token each. One
/// refused later was revoked or expired early, and is dropped.
const FRESH: Duration = Duration::from_secs(10);

/// Tokens pantry obtained, by registry and scope.
#[derive(Debug)]
pub struct Tokens {
    held: moka::sync::Cache<Key, Held>,
    /// Registries that could not be asked, until when (ms), and why.
    unreachable: moka::sync::Cache<String, (Arc<str>, u64)>,
    /// Logins a realm refused (registry, fingerprint), until when (ms), and why.
    refused: moka::sync::Cache<(String, u64), (Arc<str>, u64)>,
    /// Bumped by [`Tokens::clear`]: a token obtained for older entries is never held.
    generation: AtomicU64,
    calls: SingleCall<Key, Outcome>,
}

impl Default for Tokens {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self {
            held: moka::sync::Cache::builder().max_capacity(MAX_HELD).time_to_live(hour).build(),
            unreachable: moka::sync::Cache::builder().max_capacity(1_000).time_to_live(hour).build(),
            refused: moka::sync::Cache::builder().max_capacity(1_000).time_to_live(hour).build(),
            generation: AtomicU64::new(0),
            calls: SingleCall::default(),
        }
    }
}

/// Why no token was obtained; `refused`: the realm (or registry) said no to pantry's login
/// (asking again with another secret may help), otherwise it could not be asked.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What happened, without any secret.
    pub text: Arc<str>,
    /// The login itself was refused.
    pub refused: bool,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Self { text: text.into(), refused: false }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What an `Authorization` is for: the registry, the repository and pantry's login there.
pub struct Ask<'a> {
    /// The registry.
    pub target: &'a Target,
    /// The repository (the token's scope is pulling from it).
    pub repository: &'a str,
    /// pantry's login at that registry.
    pub login: &'a Login,
    /// The entry the login comes from (as `check-config` names it).
    pub entry: &'a str,
}

impl Tokens {
    /// A token still held for `repository` of `registry` (`host:port`), with its entry.
    pub fn held(&self, registry: &str, repository: &str, clock: &Clock) -> Option<(HeaderValue, Arc<str>)> {
        let (value, until, entry, generation, _) =
            self.held.get(&(registry.to_string(), scope(repository)))?;
        let current = generation == self.generation.load(Ordering::SeqCst);
        (current && until > clock.now_ms()).then_some((value, entry))
    }

    /// pantry's `Authorization` for `ask`, or `None` when the registry asks for none.
    pub async fn header(
        &self,
        upstream: &Upstream,
        realms: &Realms,
        ask: Ask<'_>,
        clock: &Clock,
    ) -> Result<Option<HeaderValue>, Failure> {
        let key = (ask.target.key_name(), scope(ask.repository));
        if let Some((value, _)) = self.held(&key.0, ask.repository, clock) {
            return Ok(Some(value));
        }
        let now = clock.now_ms();
        let refused_key = (key.0.clone(), ask.login.fingerprint());
        for (backoff, refused) in
            [(self.unreachable.get(&key.0), false), (self.refused.get(&refused_key), true)]
        {
            if let Some((text, _)) = backoff.filter(|(_, until)| *until > now) {
                return Err(Failure { text, refused });
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let call = || async {
            let obtained = obtain(upstream, realms, &ask, clock).await.inspect_err(|failure| {
                let (cache, wait) = if failure.refused {
                    (None, REFUSED_BACKOFF)
                } else {
                    (Some(&self.unreachable), UNREACHABLE_BACKOFF)
                };
                let until = clock.now_ms() + wait.as_millis() as u64;
                match cache {
                    Some(unreachable) => {
                        unreachable.insert(key.0.clone(), (Arc::clone(&failure.text), until))
                    }
                    None => self.refused.insert(refused_key.clone(), (Arc::clone(&failure.text), until)),
                }
            })?;
            if let Some((value, until)) = &obtained {
                if generation == self.generation.load(Ordering::SeqCst) {
                    let held = (value.clone(), *until, Arc::from(ask.entry), generation, clock.now_ms());
                    self.held.insert(key.clone(), held);
                }
            }
            Ok(obtained)
        };
        let (outcome, _) = self.calls.run(key.clone(), call, || ()).await;
        outcome.map(|held| held.map(|(value, _)| value))
    }

    /// The registry refused pantry's credential for `repository` of `registry` (`host:port`):
    /// a token that had worked for a while is dropped (see [`FRESH`]); `login` (a password the
    /// registry checks itself, HTTP Basic) is not tried again for a while.
    pub fn refused(&self, registry: &str, repository: &str, login: Option<u64>, clock: &Clock) {
        let key = (registry.to_string(), scope(repository));
        let now = clock.now_ms();
        if let Some((.., obtained)) = self.held.get(&key) {
            if now.saturating_sub(obtained) > FRESH.as_millis() as u64 || login.is_some() {
                self.held.invalidate(&key);
            }
        }
        if let Some(fingerprint) = login {
            let text = Arc::from(format!("{registry} refused pantry's password"));
            let until = now + REFUSED_BACKOFF.as_millis() as u64;
            self.refused.insert((registry.to_string(), fingerprint), (text, until));
        }
    }

    /// Forgets every token and back-off (a reload may have changed whose they are).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.held.invalidate_all();
        self.unreachable.invalidate_all();
        self.refused.invalidate_all();
    }
}

/// The scope pantry asks for: pulling from one repository, never more.
pub fn scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

async fn obtain(
    upstream: &Upstream,
    realms: &Realms,
    ask: &Ask<'_>,
    clock: &Clock,
) -> Result<Option<(HeaderValue, u64)>, Failure> {
    let registry = ask.target.key_name();
    let challenge = match realms.challenge(&registry) {
        Some(known) => known,
        None => {
            let asked = version_check(upstream, ask.target).await?;
            realms.learn(&registry, asked.clone());
            asked
        }
    };
    let now = clock.now_ms();
    match challenge {
        None => Ok(None),
        Some(Challenge::Basic) => {
            let value = ask.login.basic_header().ok_or_else(|| {
                format!("{registry} asks for a user and password; the helper gave an identity token")
            })?;
            Ok(Some((header_value(&value)?, now + BASIC_TTL.as_millis() as u64)))
        }
        Some(bearer @ Challenge::Bearer { .. }) => {
            let (token, lifetime) = token(upstream, ask, &bearer).await?;
            let lifetime =
                Duration::from_secs(lifetime.unwrap_or(DEFAULT_LIFETIME.as_secs()).max(1)).min(MAX_LIFETIME);
            let usable = lifetime - MAX_MARGIN.min(lifetime / 5);
            Ok(Some((header_value(&format!("Bearer {token}"))?, now + usable.as_millis() as u64)))
        }
    }
}

fn header_value(text: &str) -> Result<HeaderValue, String> {
    let mut value =
        HeaderValue::from_str(text).map_err(|_| "the credential is not a valid header value".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// What an anonymous `GET /v2/` says the registry asks for (`None`: nothing).
async fn version_check(upstream: &Upstream, target: &Target) -> Result<Option<Challenge>, String> {
    let uri = target.url("/v2/")?;
    let response = upstream.fetch(Method::GET, uri, HeaderMap::new()).await.map_err(|e| e.to_string())?;
    match response.status() {
        StatusCode::UNAUTHORIZED => {
            let challenge = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(Challenge::parse);
            challenge
                .map(Some)
                .ok_or_else(|| format!("{target} answers 401 without a challenge pantry can answer"))
        }
        status if status.is_success() => Ok(None),
        status => Err(format!("{target}'s version check answered {status}")),
    }
}

/// A token from `bearer`'s realm for `ask`, with its lifetime in seconds if the realm says.
async fn token(
    upstream: &Upstream,
    ask: &Ask<'_>,
    bearer: &Challenge,
) -> Result<(String, Option<u64>), Failure> {
    let scope = scope(ask.repository);
    let url = bearer.token_url_for(Some(&scope)).unwrap_or_default();
    let uri: http::Uri =
        url.parse().map_err(|_| format!("{} names a token realm that is not a URL", ask.target))?;
    let realm = format!("{}{}", uri.authority().map_or("", |a| a.as_str()), uri.path());
    // pantry's login never crosses the network in the clear.
    if uri.scheme_str() != Some("https") {
        return Err(format!(
            "{} names a token realm without TLS ({realm}): pantry sends no credentials there",
            ask.target
        )
        .into());
    }
    let response = match ask.login {
        Login::Basic { .. } => {
            let mut headers = HeaderMap::new();
            headers
                .insert(header::AUTHORIZATION, header_value(&ask.login.basic_header().unwrap_or_default())?);
            upstream.fetch(Method::GET, uri, headers).await
        }
        Login::IdentityToken(refresh) => {
            let Challenge::Bearer { service, .. } = bearer else { unreachable!("a Bearer challenge") };
            let mut form = format!(
                "grant_type=refresh_token&client_id=pantry&refresh_token={}&scope={}",
                challenge::encode(refresh.expose()),
                challenge::encode(&scope)
            );
            if let Some(service) = service {
                form.push_str(&format!("&service={}", challenge::encode(service)));
            }
            let realm_uri: http::Uri =
                bearer_realm(bearer).parse().map_err(|_| "token realm is not a URL".to_string())?;
            let mut request = Request::new(body::full(form));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = realm_uri;
            let form_type = HeaderValue::from_static("application/x-www-form-urlencoded");
            request.headers_mut().insert(header::CONTENT_TYPE, form_type);
            upstream.send(request).await
        }
    }
    .map_err(|e| format!("token realm {realm}: {e}"))?;
    let status = response.status();
    let answer = small_body(response.into_body()).await.map_err(|e| format!("token realm {realm}: {e}"))?;
    if status != StatusCode::OK {
        let text =
            format!("token realm {realm} answered {status} to pantry's credentials for {}", ask.target);
        let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
        return Err(Failure { text: text.into(), refused });
    }
    Ok(challenge::token_answer(&answer)
        .ok_or_else(|| format!("token realm {realm} answered without a token"))?)
}

fn bearer_realm(challenge: &Challenge) -> &str {
    match challenge {
        Challenge::Bearer { realm, .. } => realm,
        Challenge::Basic => "",
    }
}

async fn small_body(body: Incoming) -> Result<Bytes, String> {
    let collected = tokio::time::timeout(ANSWER_TIMEOUT, Limited::new(body, MAX_ANSWER).collect())
        .await
        .map_err(|_| "went silent".to_string())?;
    Ok(collected.map_err(|e| e.to_string())?.to_bytes())
}
