//! pantry's own upstream credentials (`[[upstream_credentials]]`, `--docker-config`): requests a
//! client sends without credentials, for repositories an entry covers, go upstream with pantry's.
//!
//! - `secret`: reading an entry's login (password file or variable, credential helper);
//!   `docker_config`: a docker `config.json`;
//! - `tokens`: the token dance with that login, tokens kept in memory per registry and scope;
//! - `realms`: what each registry asks for, and the stand-in tokens that let clients which do the
//!   token dance themselves pull "anonymously" through pantry;
//! - `challenge`: parsing `WWW-Authenticate` and token answers.
//!
//! A client that sends credentials of its own always goes with its own. What pantry fetched with
//! its credentials is served to the clients it lets in whose requests an entry covers (see
//! `proxy::access`), never to a client of another registry or repository.

pub mod challenge;
pub mod docker_config;
pub mod login;
pub mod realms;
pub mod secret;
pub mod tokens;

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{request::Parts, HeaderValue, Response};

use self::{challenge::Challenge, login::Login, realms::Realms, secret::Secrets, tokens::Tokens};
use crate::{body::Body, clock::Clock, config::CredentialEntry, target::Target, upstream::Upstream};

/// A request pantry sends with its own credentials: which entry covers it. Kept in the request's
/// extensions; its identity (not the token, which changes) is what access grants are keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// The entry, as `check-config` names it.
    pub entry: String,
    /// The registry (`host:port`).
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// The fingerprint of the login used, when one was read for this request.
    pub login: Option<u64>,
}

/// Marks a request that came in on the mirror port.
#[derive(Debug, Clone, Copy)]
pub struct ViaMirror;

/// The configured entries, with the secrets, tokens and challenges they have led to.
#[derive(Debug)]
pub struct Credentials {
    entries: ArcSwap<Vec<CredentialEntry>>,
    secrets: Secrets,
    tokens: Tokens,
    realms: Realms,
    clock: Clock,
}

impl Credentials {
    /// Credentials for `entries` (tried in order), reading time from `clock`.
    pub fn new(entries: Vec<CredentialEntry>, clock: Clock) -> Self {
        Self {
            entries: ArcSwap::from_pointee(entries),
            secrets: Secrets::default(),
            tokens: Tokens::default(),
            realms: Realms::default(),
            clock,
        }
    }

    /// Takes new entries (a reload): tokens and helper answers obtained so far are dropped.
    pub fn reload(&self, entries: Vec<CredentialEntry>) {
        if **self.entries.load() != entries {
            self.entries.store(Arc::new(entries));
            self.tokens.clear();
            self.secrets.forget_all();
        }
    }

    /// Whether any entry is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.load().is_empty()
    }

    /// pantry's `Authorization` for `repository` of `target`, when an entry covers it and holds a
    /// login for the registry: the entry, and the header (`Ok(None)`: the registry asks for none;
    /// `Err`: it could not be obtained now, e.g. the realm is down). `offline`: nothing is asked.
    /// Never for a cleartext target: pantry's credentials only travel over TLS.
    pub async fn authorize(
        &self,
        upstream: &Upstream,
        target: &Target,
        repository: &str,
        offline: bool,
    ) -> Option<(Covered, Result<Option<HeaderValue>, String>)> {
        if !target.https {
            return None;
        }
        let registry = target.to_string();
        let covered = |entry: &str, login: Option<&Login>| Covered {
            entry: entry.to_string(),
            registry: target.key_name(),
            repository: repository.to_string(),
            login: login.map(Login::fingerprint),
        };
        if let Some((value, entry)) = self.tokens.held(&target.key_name(), repository, &self.clock) {
            return Some((covered(&entry, None), Ok(Some(value))));
        }
        let entries = self.entries.load_full();
        if offline {
            // Nothing is asked upstream: the request is only marked as one pantry's credentials cover.
            let entry = entries.iter().find(|e| e.covers(&registry, repository))?;
            return Some((covered(&entry.to_string(), None), Ok(None)));
        }
        for entry in entries.iter().filter(|e| e.covers(&registry, repository)) {
            let name = entry.to_string();
            let login = match self.secrets.login(&entry.source, &registry, &self.clock).await {
                Ok(Some(login)) => login,
                Ok(None) => continue,
                Err(error) => return Some((covered(&name, None), Err(error))),
            };
            let ask = tokens::Ask { target, repository, login: &login, entry: &name };
            let mut header = self.tokens.header(upstream, &self.realms, ask, &self.clock).await;
            let mut used = login.clone();
            if header.as_ref().is_err_and(|failure| failure.refused) {
                // A helper's secret may have been rotated since it was asked: ask it again once.
                self.secrets.forget(&registry);
                if let Ok(Some(fresh)) = self.secrets.login(&entry.source, &registry, &self.clock).await {
                    if fresh != login {
                        let ask = tokens::Ask { target, repository, login: &fresh, entry: &name };
                        header = self.tokens.header(upstream, &self.realms, ask, &self.clock).await;
                        used = fresh;
                    }
                }
            }
            return Some((covered(&name, Some(&used)), header.map_err(|failure| failure.to_string())));
        }
        None
    }

    /// Whether some entry covers a repository of `target`.
    pub fn covers_registry(&self, target: &Target) -> bool {
        let registry = target.to_string();
        target.https && self.entries.load().iter().any(|e| e.covers_registry(&registry))
    }

    /// Whether pantry answers `target`'s anonymous version check itself (200: no credentials
    /// needed), because its credentials stand in for the client's there: for a Basic registry
    /// (clients without credentials stop at its challenge), and, through the mirror port (whose
    /// clients do the token dance with the realm directly, where pantry cannot stand in), for a
    /// registry an entry covers whole. Only where an entry holds a login for that registry.
    /// Clients then send no credentials of their own there (`docker login` checks nothing).
    pub async fn answers_version_check(
        &self,
        target: &Target,
        challenge: Option<&Challenge>,
        via_mirror: bool,
    ) -> bool {
        if !target.https {
            return false;
        }
        let registry = target.to_string();
        let basic = challenge == Some(&Challenge::Basic);
        self.holds_login(&registry, |entry| {
            (basic && entry.covers_registry(&registry))
                || (via_mirror && entry.covers_every_repository(&registry))
        })
        .await
    }

    /// Learns what `target` asks for from its own answer to a registry request (a 401's
    /// challenge): only for a registry, over TLS, for which an entry holds a login, since any
    /// host a client reaches may answer 401, and a learned realm is intercepted.
    pub async fn learn(&self, target: &Target, response: &Response<Body>) {
        if response.status() != http::StatusCode::UNAUTHORIZED || !self.covers_registry(target) {
            return;
        }
        let Some(challenge) = realms::challenge_in(response.headers()) else { return };
        let registry = target.key_name();
        if self.realms.challenge(&registry).flatten().as_ref() == Some(&challenge) {
            return;
        }
        let name = target.to_string();
        if self.holds_login(&name, |entry| entry.covers_registry(&name)).await {
            self.realms.learn(&registry, Some(challenge));
        }
    }

    /// The registry refused pantry's credential for a request: its token is dropped if it had
    /// worked for a while, a password (Basic) is not tried again for a while.
    pub fn refused(&self, covered: &Covered) {
        tracing::info!(
            entry = covered.entry,
            repository = covered.repository,
            "the registry refused pantry's credential"
        );
        let basic = self.realms.challenge(&covered.registry).flatten() == Some(Challenge::Basic);
        let login = covered.login.filter(|_| basic);
        self.tokens.refused(&covered.registry, &covered.repository, login, &self.clock);
        if basic {
            self.secrets.forget(&covered.registry);
        }
    }

    /// Whether `host:port` is the token realm of a registry an entry covers: clients' token
    /// requests there must be seen (intercepted) for them to pull anonymously.
    pub fn intercepts(&self, host: &str, port: u16) -> bool {
        if self.is_empty() {
            return false;
        }
        let entries = self.entries.load();
        self.realms.is_realm_of(host, port, |registry| entries.iter().any(|e| e.covers_registry(registry)))
    }

    /// The answer to an anonymous token request at a registry's realm when every repository it
    /// asks to pull from is covered by an entry with a login for that registry: a stand-in token.
    pub async fn stand_in(&self, parts: &Parts, target: &Target) -> Option<Response<Body>> {
        if self.is_empty()
            || parts.method != http::Method::GET
            || parts.headers.contains_key(http::header::AUTHORIZATION)
        {
            return None;
        }
        let repositories = realms::pull_scopes(parts.uri.query())?;
        let registries = self.realms.registries_with_realm(target, parts.uri.path());
        for registry in registries {
            let mut all = true;
            for repository in &repositories {
                if !self.holds_login(&registry, |entry| entry.covers(&registry, repository)).await {
                    all = false;
                    break;
                }
            }
            if all {
                tracing::debug!(
                    registry,
                    ?repositories,
                    "answered an anonymous token request with a stand-in"
                );
                return Some(realms::stand_in_answer(self.clock.now_ms()));
            }
        }
        None
    }

    /// Whether an entry for which `applies` holds a login for `registry` (`host:port`).
    async fn holds_login(&self, registry: &str, applies: impl Fn(&CredentialEntry) -> bool) -> bool {
        let entries = self.entries.load_full();
        for entry in entries.iter().filter(|e| applies(e)) {
            if let Ok(Some(_)) = self.secrets.login(&entry.source, registry, &self.clock).await {
                return true;
            }
        }
        false
    }
}
