//! `handle()`: the one place where a client's request meets the cache and the upstream.
//!
//! Requests arrive from intercepted tunnels and plain-HTTP absolute-form requests. Registry reads
//! by digest go through the cache ([`by_digest`]), tags through their TTL rules ([`by_tag`]), the
//! anonymous version check through its remembered answer ([`ping`]), other reads through RFC 9111
//! ([`http_cache`]); everything else is forwarded ([`forward`]).
//! Every answer carries `Cache-Status` (RFC 9211); errors carry `Proxy-Status` (RFC 9209).

mod access;
pub mod activity;
mod by_digest;
mod by_tag;
mod forward;
mod from_shared;
mod http_cache;
mod ping;
mod sources;

use std::sync::Arc;

use arc_swap::ArcSwap;

use http::{header, request::Parts, HeaderValue, Method, Request, Response};
use tracing::Instrument;

use crate::{
    body::{Body, Pace},
    cache::{grants::Grants, respond, store::CachedBlob, Flights, Store},
    clock::Clock,
    config::Config,
    credentials::{Covered, Credentials},
    error::{ProxyError, Side},
    metrics::Metrics,
    registry::route::{classify_escaped, Route},
    registry::{
        policy::{rule_for, Action, NamespaceRule},
        tags::{TagRule, Ttl},
    },
    shutdown::Shutdown,
    target::Target,
    upstream::{mirrors::Mirrors, Upstream},
};

pub use crate::cache_status::CacheStatus;

/// Whether a version check (`/v2/`) is the anonymous one answered from memory (and through a
/// fleet's owner): no credentials, no query.
pub fn anonymous_ping(headers: &http::HeaderMap, uri: &http::Uri) -> bool {
    ping::anonymous(headers, uri)
}

/// A registry-style 400 for a path no rule can be decided on (distribution's `NAME_INVALID`).
fn name_invalid(reason: &str) -> Response<Body> {
    tracing::info!(reason, "refused a registry path that names no valid repository");
    crate::error::registry_error(http::StatusCode::BAD_REQUEST, "NAME_INVALID", reason)
}

/// The rules a reload (SIGHUP) replaces at once: requests in progress keep the set they started with.
#[derive(Debug)]
struct Rules {
    offline: bool,
    tag_rules: Vec<TagRule>,
    tag_ttl: Ttl,
    repositories: Vec<NamespaceRule>,
    mirrors: Mirrors,
    http_cache: bool,
    insecure_registries: Vec<crate::config::HostPattern>,
}

impl Rules {
    fn from(config: &Config) -> Self {
        Self {
            offline: config.live.offline,
            tag_rules: config.live.tag_rules.clone(),
            tag_ttl: config.live.tag_ttl,
            repositories: config.live.repositories.clone(),
            mirrors: Mirrors::new(&config.live.mirrors),
            http_cache: config.live.http_cache,
            insecure_registries: config.live.insecure_registries.clone(),
        }
    }
}

/// The proxy core: cache, single flight, access grants and the upstream client.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstream: Upstream,
    store: Arc<Store>,
    flights: Arc<Flights>,
    grants: Arc<Grants>,
    rules: Arc<ArcSwap<Rules>>,
    pace: Pace,
    metrics: Arc<Metrics>,
    revalidations: Arc<by_tag::Revalidations>,
    pings: Arc<ping::Pings>,
    credentials: Arc<Credentials>,
    activity: Arc<activity::Activity>,
    /// The other pantries of a fleet, asked for content this node does not own.
    fleet: Option<Arc<crate::fleet::Fleet>>,
    /// The bucket a fleet shares: read before the origin, written behind.
    shared: Option<Arc<crate::shared_store::SharedStore>>,
    clock: Clock,
    /// Tracks work that outlives a request, so a drain waits for it.
    shutdown: Shutdown,
}

impl Proxy {
    /// A proxy over `store` sending through `upstream`, with `config`'s offline mode and tag rules.
    /// Work that outlives a request (fetches storing what they stream) is spawned on `shutdown`.
    pub fn new(
        upstream: Upstream,
        store: Arc<Store>,
        config: &Config,
        metrics: Arc<Metrics>,
        shutdown: &Shutdown,
    ) -> Self {
        let pace =
            Pace { idle: config.startup.upstream_body_timeout, min_rate: config.startup.upstream_min_rate };
        Self {
            upstream,
            store,
            flights: Arc::new(Flights::new(
                Arc::clone(&metrics),
                config.startup.finish_abandoned_fetches,
                pace,
                shutdown.clone(),
            )),
            pace,
            shutdown: shutdown.clone(),
            metrics,
            revalidations: Arc::default(),
            pings: Arc::default(),
            grants: Arc::default(),
            credentials: Arc::new(Credentials::new(config.credential_entries(), config.clock.clone())),
            activity: Arc::default(),
            fleet: None,
            shared: None,
            rules: Arc::new(ArcSwap::from_pointee(Rules::from(config))),
            clock: config.clock.clone(),
        }
    }

    /// The same proxy as a member of `fleet`: content by digest this node misses and does not own
    /// is asked of its owner before the origin.
    pub fn with_fleet(mut self, fleet: Arc<crate::fleet::Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The same proxy over a shared store: content it misses is looked for there before the
    /// origin, and what it fetches from the origin is written behind to it.
    pub fn with_shared_store(mut self, shared: Arc<crate::shared_store::SharedStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The fleet this node is a member of, if any.
    pub fn fleet(&self) -> Option<&crate::fleet::Fleet> {
        self.fleet.as_deref()
    }

    /// Takes offline mode, tag rules, namespace policy, mirrors, pins, `verify_reads` and the
    /// upstream credentials from `config` (a reload).
    pub fn reload(&self, config: &Config) {
        self.rules.store(Arc::new(Rules::from(config)));
        self.credentials.reload(config.credential_entries());
        self.store.set_pins(config.live.pin.clone());
        self.store.set_verify_reads(config.live.verify_reads);
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    fn offline(&self) -> bool {
        self.rules.load().offline
    }

    /// This pantry's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The content store (for statistics and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The registries' recent answers and the last errors (for the status page).
    pub fn activity(&self) -> &activity::Activity {
        &self.activity
    }

    /// The configured mirrors and which are skipped after failures (for the status page).
    pub fn mirror_states(&self) -> Vec<crate::upstream::mirrors::MirrorState> {
        self.rules.load().mirrors.states()
    }

    /// What the registries said of their rate limits.
    pub fn upstream_rate_limits(&self) -> &crate::upstream::rate_limit::RateLimits {
        self.upstream.rate_limits()
    }

    /// pantry's own upstream credentials (which token realms must be intercepted).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The in-flight fetches (for statistics and tests).
    pub fn flights(&self) -> &Flights {
        &self.flights
    }

    /// Answers one request for `target`: never fails, errors become responses.
    pub async fn handle(&self, request: Request<Body>, target: &Target) -> Response<Body> {
        let classified = classify_escaped(request.method(), request.uri().path(), request.uri().query());
        let route = classified.clone().unwrap_or(Route::Other);
        let route_name = route.as_str();
        let span = tracing::info_span!(
            "req",
            method = %request.method(),
            host = %target,
            route = route.as_str(),
            path = %request.uri().path(),
        );
        let head = request.method() == http::Method::HEAD;
        let method_get = request.method() == http::Method::GET;
        let uri = request.uri().clone();
        async {
            let dispatched = match classified {
                Ok(route) => self.dispatch(request, target, route).await,
                Err(reason) => Ok(name_invalid(&reason)),
            };
            let mut response = match dispatched {
                Ok(response) => response,
                Err(error) => {
                    match error.side() {
                        Side::Internal => tracing::error!(%error, "request failed"),
                        Side::Upstream => {
                            self.metrics.upstream_error(error.proxy_status_error());
                            tracing::info!(%error, "request failed")
                        }
                        Side::Client | Side::Configured => tracing::info!(%error, "request failed"),
                    }
                    let mut response = error.into_response();
                    CacheStatus::Error.set(&mut response);
                    response
                }
            };
            let status = CacheStatus::marked(&response).unwrap_or_else(|| {
                // Passed on as it came; an upstream cache's own Cache-Status stays, pantry's
                // member follows it.
                let value = HeaderValue::from_static(CacheStatus::Forwarded.text());
                response.headers_mut().append(crate::cache_status::NAME, value);
                CacheStatus::Forwarded
            });
            if head {
                // Whatever answered (a GET upstream, an error page), a HEAD gets the head only:
                // over h2 a body would be DATA frames on a stream the client ended.
                *response.body_mut() = crate::body::empty();
            }
            self.metrics.request(route_name, status);
            let asked = (&route, method_get);
            self.activity.record((&target.key_name(), uri.path()), asked, &response, status, &self.clock);
            tracing::debug!(status = response.status().as_u16(), "answered");
            response
        }
        .instrument(span)
        .await
    }

    /// Answers from stored content, held from eviction since its lookup until it is sent, and
    /// records the access.
    async fn serve_stored(
        &self,
        blob: &CachedBlob,
        parts: &Parts,
        cache_status: CacheStatus,
    ) -> Response<Body> {
        self.store.touch(blob);
        let (served, verify) = (self.metrics.served_counter(), self.store.verifies_reads());
        let content = respond::Content::Stored { blob, served, verify };
        respond::answer(parts, &blob.digest, blob.meta.media_type.as_deref(), cache_status, content).await
    }

    /// [`Self::route`], with pantry's own credentials for the anonymous requests they cover, and
    /// what the registry's answer says of them.
    async fn dispatch(
        &self,
        mut request: Request<Body>,
        target: &Target,
        route: Route,
    ) -> Result<Response<Body>, ProxyError> {
        let read = request.method() == Method::GET || request.method() == Method::HEAD;
        // A stand-in token grants nothing anywhere: it never goes upstream.
        if crate::credentials::realms::is_stand_in(request.headers()) {
            request.headers_mut().remove(header::AUTHORIZATION);
        }
        if self.credentials.is_empty() {
            return self.route(request, target, route).await;
        }
        if let (true, Some(name)) = (read, route.repository()) {
            self.act_for_anonymous(&mut request, target, name.as_str()).await;
        }
        if read && matches!(route, Route::Other) {
            let (parts, body) = request.into_parts();
            if let Some(answer) = self.credentials.stand_in(&parts, target).await {
                return Ok(answer);
            }
            request = Request::from_parts(parts, body);
        }
        let covered = request.extensions().get::<Covered>().cloned();
        let via_mirror = request.extensions().get::<crate::credentials::ViaMirror>().is_some();
        let registry_route = !matches!(route, Route::Other);
        let ping = matches!(route, Route::Ping);
        let head = request.method() == Method::HEAD;
        let response = self.route(request, target, route).await?;
        if response.status() == http::StatusCode::UNAUTHORIZED && registry_route {
            self.credentials.learn(target, &response).await;
            if let Some(covered) = &covered {
                self.credentials.refused(covered);
            }
            let challenge = crate::credentials::realms::challenge_in(response.headers());
            if ping && self.credentials.answers_version_check(target, challenge.as_ref(), via_mirror).await {
                return Ok(ping::plain_ok(head, CacheStatus::Miss));
            }
        }
        Ok(response)
    }

    /// Sends an anonymous read an entry covers with pantry's own credentials (marking it
    /// [`Covered`] even when no token can be obtained now, so what pantry fetched with them
    /// before is still served).
    async fn act_for_anonymous(&self, request: &mut Request<Body>, target: &Target, repository: &str) {
        if request.headers().contains_key(header::AUTHORIZATION) {
            return;
        }
        let Some((covered, header)) =
            self.credentials.authorize(&self.upstream, target, repository, self.offline()).await
        else {
            return;
        };
        match header {
            Ok(Some(value)) => {
                request.headers_mut().insert(header::AUTHORIZATION, value);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(entry = covered.entry, %error, "cannot obtain pantry's credential; asking without it")
            }
        }
        request.extensions_mut().insert(covered);
    }

    async fn route(
        &self,
        request: Request<Body>,
        target: &Target,
        route: Route,
    ) -> Result<Response<Body>, ProxyError> {
        let read = request.method() == Method::GET || request.method() == Method::HEAD;
        let registry = target.to_string();
        let rules = self.rules();
        // In cleartext anyone on the path can answer: pantry speaks the registry API there only to
        // registries the operator says are plain HTTP.
        let plain =
            !target.https && !rules.insecure_registries.iter().any(|p| p.matches(&target.host, target.port));
        if plain && !matches!(route, Route::Other) {
            return Err(ProxyError::Denied(format!(
                "{registry} is not in insecure_registries: registry requests in cleartext are refused (use https://, or list it if it really is a plain-HTTP registry)"
            )));
        }
        let rule =
            route.repository().and_then(|name| rule_for(&rules.repositories, &registry, name.as_str()));
        if let Some(rule) = rule {
            if matches!(route, Route::Upload { .. }) && !rule.push {
                return Err(ProxyError::Denied(format!("pushes to {rule} are not allowed by policy")));
            }
            match rule.action {
                Action::Deny => return Err(ProxyError::Denied(format!("{rule} is denied by policy"))),
                Action::Pass => return forward::forward(self, request, target).await,
                Action::Cache => {}
            }
        }
        match route {
            Route::BlobByDigest { name, digest } | Route::ManifestByDigest { name, digest } if read => {
                let (parts, _) = request.into_parts();
                by_digest::lookup_or_fetch(self, &parts, target, &name, &digest).await
            }
            Route::ManifestByTag { name, tag } if read => {
                let (parts, _) = request.into_parts();
                by_tag::resolve(self, &parts, target, &name, &tag).await
            }
            Route::Ping if read && ping::anonymous(request.headers(), request.uri()) => {
                let (parts, _) = request.into_parts();
                ping::version_check(self, parts, target).await
            }
            Route::Other if read && rules.http_cache => {
                http_cache::cached_or_forwarded(self, request, target).await
            }
            _ => forward::forward(self, request, target).await,
        }
    }
}
