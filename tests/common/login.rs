//! The fake registry's accounts: repositories that only a user with the right password may read,
//! either with HTTP Basic or with tokens from the registry's `/token` realm (asked with Basic),
//! which expire after a set lifetime on a clock the test moves. Anonymous token requests get a
//! token that grants nothing, as Docker Hub gives for a private repository.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use base64::Engine;
use http::{header, HeaderMap, Response, StatusCode};
use pantry::{
    body::{self, Body},
    clock::Clock,
};

/// How the protected repositories authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
}

struct Account {
    scheme: Scheme,
    user: String,
    password: String,
    lifetime_s: u64,
    clock: Clock,
}

/// Protected repositories, the account that may read them and the tokens issued.
#[derive(Default)]
pub struct Logins {
    account: Mutex<Option<Account>>,
    repos: Mutex<HashSet<String>>,
    /// token → (repositories it may pull, expiry in ms)
    issued: Mutex<HashMap<String, (Vec<String>, u64)>>,
    identity_token: Mutex<Option<String>>,
    /// Protected repositories the account may not read either (its tokens leave them out).
    no_access: Mutex<HashSet<String>>,
    /// Authorization values of token requests (None: anonymous), in order.
    pub token_requests: Mutex<Vec<Option<String>>>,
    /// Authorization values the protected repositories saw, in order.
    pub seen: Mutex<Vec<Option<String>>>,
}

impl Logins {
    /// Protects `repos` with `scheme` for `user:password`; tokens live `lifetime_s` on `clock`.
    pub fn require(
        &self,
        scheme: Scheme,
        user: &str,
        password: &str,
        lifetime_s: u64,
        clock: Clock,
        repos: &[&str],
    ) {
        *self.account.lock().unwrap() =
            Some(Account { scheme, user: user.into(), password: password.into(), lifetime_s, clock });
        self.repos.lock().unwrap().extend(repos.iter().map(|r| r.to_string()));
    }

    /// Changes the account's password (tokens already issued stay valid until they expire).
    pub fn set_password(&self, password: &str) {
        if let Some(account) = self.account.lock().unwrap().as_mut() {
            account.password = password.into();
        }
    }

    /// Also accepts OAuth2 `refresh_token` grants (POST /token) with this identity token.
    pub fn accept_identity_token(&self, token: &str) {
        *self.identity_token.lock().unwrap() = Some(token.to_string());
    }

    /// The answer to `POST /token` (OAuth2's form: `grant_type=refresh_token`, `refresh_token`, `scope`).
    pub fn token_form(&self, form: &[u8]) -> Response<Body> {
        let fields: HashMap<String, String> = url::form_urlencoded::parse(form).into_owned().collect();
        self.token_requests
            .lock()
            .unwrap()
            .push(Some(format!("POST {}", fields.get("grant_type").cloned().unwrap_or_default())));
        let wanted = self.identity_token.lock().unwrap().clone();
        let good = fields.get("grant_type").map(String::as_str) == Some("refresh_token")
            && wanted.is_some()
            && fields.get("refresh_token") == wanted.as_ref();
        if !good {
            return status_json(StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_grant\"}");
        }
        let query = fields.get("scope").map(|s| {
            format!("scope={}", url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
        });
        self.issue(true, query.as_deref().unwrap_or(""))
    }

    /// Protects `repo` from the account too (as a registry answers for a repository that does
    /// not exist, or that the account has no access to).
    pub fn deny(&self, repo: &str) {
        self.repos.lock().unwrap().insert(repo.to_string());
        self.no_access.lock().unwrap().insert(repo.to_string());
    }

    /// Revokes every token issued so far.
    pub fn revoke_all(&self) {
        self.issued.lock().unwrap().clear();
    }

    fn scheme(&self) -> Option<Scheme> {
        self.account.lock().unwrap().as_ref().map(|a| a.scheme)
    }

    fn basic_ok(&self, headers: &HeaderMap) -> Option<bool> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        let account = self.account.lock().unwrap();
        let account = account.as_ref()?;
        Some(decoded == format!("{}:{}", account.user, account.password).as_bytes())
    }

    /// The answer to a version check, when an account is set.
    pub fn ping(&self, realm: &str) -> Option<Response<Body>> {
        let scheme = self.scheme()?;
        Some(challenge(scheme, realm, None))
    }

    /// The refusal for a request to `repo`, or `None` when it may be served.
    pub fn refuse(&self, headers: &HeaderMap, repo: &str, realm: &str) -> Option<Response<Body>> {
        if !self.repos.lock().unwrap().contains(repo) {
            return None;
        }
        let authorization =
            headers.get(header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        self.seen.lock().unwrap().push(authorization.clone());
        let scheme = self.scheme()?;
        let allowed = match scheme {
            Scheme::Basic => self.basic_ok(headers) == Some(true),
            Scheme::Bearer => {
                let token = authorization.as_deref().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
                let now = self.account.lock().unwrap().as_ref().map_or(0, |a| a.clock.now_ms());
                self.issued
                    .lock()
                    .unwrap()
                    .get(token)
                    .is_some_and(|(repos, until)| *until > now && repos.iter().any(|r| r == repo))
            }
        };
        (!allowed).then(|| challenge(scheme, realm, Some(repo)))
    }

    /// The token endpoint's answer (`query`: the request's query string).
    pub fn token(&self, headers: &HeaderMap, query: &str) -> Response<Body> {
        let authorization =
            headers.get(header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        self.token_requests.lock().unwrap().push(authorization.clone());
        let good = match authorization {
            None => false,
            Some(_) => match self.basic_ok(headers) {
                Some(true) => true,
                _ => {
                    return status_json(
                        StatusCode::UNAUTHORIZED,
                        "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
                    )
                }
            },
        };
        self.issue(good, query)
    }

    fn issue(&self, good: bool, query: &str) -> Response<Body> {
        let repos: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == "scope")
            .filter_map(|(_, v)| Some(v.strip_prefix("repository:")?.rsplit_once(':')?.0.to_string()))
            .collect();
        let account = self.account.lock().unwrap();
        let (lifetime_s, now) = account.as_ref().map_or((300, 0), |a| (a.lifetime_s, a.clock.now_ms()));
        drop(account);
        let mut issued = self.issued.lock().unwrap();
        let number = self.token_requests.lock().unwrap().len();
        let token = format!("{}{number}-tok-5e1f0c9a7d", if good { "L" } else { "A" });
        let denied = self.no_access.lock().unwrap().clone();
        let access =
            if good { repos.into_iter().filter(|r| !denied.contains(r)).collect() } else { Vec::new() };
        issued.insert(token.clone(), (access, now + lifetime_s * 1000));
        status_json(StatusCode::OK, &format!("{{\"token\":\"{token}\",\"expires_in\":{lifetime_s}}}"))
    }
}

fn challenge(scheme: Scheme, realm: &str, repo: Option<&str>) -> Response<Body> {
    let value = match (scheme, repo) {
        (Scheme::Basic, _) => "Basic realm=\"fake\"".to_string(),
        (Scheme::Bearer, None) => format!("Bearer realm=\"{realm}\",service=\"registry.test\""),
        (Scheme::Bearer, Some(repo)) => {
            format!("Bearer realm=\"{realm}\",service=\"registry.test\",scope=\"repository:{repo}:pull\"")
        }
    };
    let mut response = status_json(StatusCode::UNAUTHORIZED, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, value.parse().unwrap());
    response
}

fn status_json(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body::full(text.to_string()))
        .unwrap()
}
