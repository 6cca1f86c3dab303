//! The registry's version check, `GET /v2/`: every pull starts with it, without credentials, to
//! learn whether and how to authenticate. Its answer (200, or 401 with the challenge) is the same
//! for every anonymous client, so pantry remembers it per registry and answers from memory while
//! the default tag TTL says it is fresh: a second pull within that time costs no upstream request.
//! When upstream cannot answer (down, 5xx, 429) or pantry is offline, the last answer is given,
//! marked stale, so cached images can still be pulled. The answer is kept on disk with the tag
//! records too, so a pantry restarted while the registry is down (or started `--offline`) still
//! answers the version check and the cached images pull. A ping that carries credentials (a login
//! check) always goes upstream, as does anything but a plain `GET`/`HEAD /v2/`.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::{by_tag::stale, forward, from_shared, Proxy};
use crate::{
    body::{self, Body},
    cache_status::CacheStatus,
    error::ProxyError,
    target::Target,
};

/// Upstream headers an answer keeps; everything else (dates, connection details) is dropped.
const KEPT: [&str; 3] = ["www-authenticate", "docker-distribution-api-version", "content-type"];
/// A ping answer is a few bytes of JSON; anything larger is relayed, not remembered.
const MAX_BODY: usize = 4096;

/// The last ping answer per registry.
#[derive(Debug, Default)]
pub(super) struct Pings(Mutex<HashMap<String, Answer>>);

#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    at_ms: u64,
}

/// An answer as the store keeps it.
#[derive(Serialize, Deserialize)]
struct Record {
    status: u16,
    headers: Vec<(String, String)>,
    body_base64: String,
    at_ms: u64,
}

impl Pings {
    /// The last answer for `registry`: in memory, else on disk (from an earlier run).
    async fn get(&self, proxy: &Proxy, registry: &str) -> Option<Answer> {
        if let Some(answer) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(registry).cloned() {
            return Some(answer);
        }
        let key = crate::cache::layout::ping_key(registry);
        let record: Record = proxy.store.or_miss(&key, proxy.store.record(&key).await)?;
        let answer = Answer::from_record(record)?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(registry.to_string(), answer.clone());
        Some(answer)
    }

    async fn put(&self, proxy: &Proxy, registry: String, answer: Answer) {
        if let Err(error) =
            proxy.store.put_record(&crate::cache::layout::ping_key(&registry), &answer.to_record()).await
        {
            tracing::warn!(%error, "cannot record the version check's answer");
        }
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(registry, answer);
    }
}

/// Whether this ping may be answered from memory: no credentials, no query.
pub(super) fn anonymous(headers: &HeaderMap, uri: &http::Uri) -> bool {
    !headers.contains_key(header::AUTHORIZATION) && uri.query().is_none()
}

/// Answers an anonymous `GET`/`HEAD /v2/`: remembered and fresh, asked upstream, or stale.
pub(super) async fn version_check(
    proxy: &Proxy,
    parts: Parts,
    target: &Target,
) -> Result<Response<Body>, ProxyError> {
    let registry = target.key_name();
    let known = proxy.pings.get(proxy, &registry).await;
    if let Some(answer) = &known {
        let age = Duration::from_millis(proxy.clock.now_ms().saturating_sub(answer.at_ms));
        if proxy.rules().tag_ttl.is_fresh(age) {
            return Ok(answer.aged(proxy, &parts, CacheStatus::Hit));
        }
    }
    let asked = if proxy.offline() {
        Err(ProxyError::Offline(format!("{target} cannot be asked while offline")))
    } else {
        ask(proxy, &parts, target).await
    };
    match (asked, known) {
        (Ok(Asked::Remembered(answer)), _) => {
            let response = answer.response(&parts, CacheStatus::Miss);
            proxy.pings.put(proxy, registry, answer).await;
            Ok(response)
        }
        (Ok(Asked::Relayed(response)), _) => Ok(response),
        (Err(error), Some(answer)) => {
            tracing::info!(%error, "upstream cannot answer the version check; serving the last answer");
            Ok(stale(answer.aged(proxy, &parts, CacheStatus::Stale)))
        }
        (Err(error), None) => {
            let shared =
                from_shared::record::<Record>(proxy, &crate::cache::layout::ping_key(&registry)).await;
            if let Some(answer) = shared.and_then(Answer::from_record) {
                tracing::info!(%error, "upstream cannot answer the version check; serving the fleet's last answer");
                let response = stale(answer.aged(proxy, &parts, CacheStatus::Stale));
                proxy.pings.put(proxy, registry, answer).await;
                return Ok(response);
            }
            let tags = format!("{}{registry}/", crate::cache::layout::TAG_PREFIX);
            if !proxy.store.has_record_under(&tags).await {
                return Err(error);
            }
            // No answer was ever kept (a store filled by an earlier version, or by prefetch), but
            // content of this registry is: a plain 200 lets clients go on to ask for it.
            tracing::info!(%error, "upstream cannot answer the version check; answering 200 for its cached content");
            Ok(stale(plain_ok(parts.method == Method::HEAD, CacheStatus::Stale)))
        }
    }
}

/// `200 {}` with the API version header, as a registry that needs no authentication answers.
pub(super) fn plain_ok(head: bool, cache_status: CacheStatus) -> Response<Body> {
    let mut response = Response::new(if head { body::empty() } else { body::full("{}") });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(2));
    headers.insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    cache_status.set(&mut response);
    response
}

enum Asked {
    /// A 200 or 401 small enough to keep.
    Remembered(Answer),
    /// Anything else upstream said, passed on as it came.
    Relayed(Response<Body>),
}

/// Asks the registry's owner in a fleet (one version check for the whole fleet), else the
/// registry.
async fn ask(proxy: &Proxy, parts: &Parts, target: &Target) -> Result<Asked, ProxyError> {
    let now = proxy.clock.now_ms();
    let aged = |response: Response<Body>| {
        let at_ms = now.saturating_sub(forward::age_ms(response.headers()));
        (response, at_ms, false)
    };
    let key = target.key_name();
    let (response, at_ms, from_origin) =
        match forward::ask_fleet(proxy, crate::fleet::Until::Owner, &key, Method::GET, parts, target).await {
            Some(response) => aged(response),
            None => match forward::ask(proxy, Method::GET, parts, target).await {
                Ok(response) if !forward::down(response.status()) => {
                    (response.map(body::incoming), now, true)
                }
                asked => match forward::ask_fleet(
                    proxy,
                    crate::fleet::Until::Anyone,
                    &key,
                    Method::GET,
                    parts,
                    target,
                )
                .await
                {
                    Some(response) => aged(response),
                    None => (asked?.map(body::incoming), now, true),
                },
            },
        };
    let status = response.status();
    let upstream_error = |detail: String| ProxyError::Upstream { target: target.to_string(), detail };
    if forward::down(status) {
        return Err(upstream_error(format!("version check answered {status}")));
    }
    if status != StatusCode::OK && status != StatusCode::UNAUTHORIZED {
        return Ok(Asked::Relayed(forward::relay_body(proxy, response)));
    }
    let mut headers = HeaderMap::new();
    for name in KEPT {
        for value in response.headers().get_all(name) {
            headers.append(name, value.clone());
        }
    }
    let body =
        forward::collect_small(proxy, response.into_body(), MAX_BODY, target, "version check body").await?;
    let answer = Answer { status, headers, body, at_ms };
    if from_origin {
        from_shared::share(proxy, &crate::cache::layout::ping_key(&key), answer.to_record());
    }
    Ok(Asked::Remembered(answer))
}

impl Answer {
    fn to_record(&self) -> Record {
        let headers = self
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let body_base64 = STANDARD.encode(&self.body);
        Record { status: self.status.as_u16(), headers, body_base64, at_ms: self.at_ms }
    }

    fn from_record(record: Record) -> Option<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in record.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if KEPT.contains(&name.as_str()) {
                headers.append(name, HeaderValue::from_str(&value).ok()?);
            }
        }
        let body = Bytes::from(STANDARD.decode(record.body_base64).ok()?);
        let status = StatusCode::from_u16(record.status).ok()?;
        (body.len() <= MAX_BODY).then_some(Self { status, headers, body, at_ms: record.at_ms })
    }

    /// [`Self::response`] from memory, as old (`Age`) as the answer.
    fn aged(&self, proxy: &Proxy, parts: &Parts, cache_status: CacheStatus) -> Response<Body> {
        let mut response = self.response(parts, cache_status);
        forward::set_age(response.headers_mut(), proxy.clock.now_ms().saturating_sub(self.at_ms));
        response
    }

    fn response(&self, parts: &Parts, cache_status: CacheStatus) -> Response<Body> {
        let mut response = Response::new(body::empty());
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        cache_status.set(&mut response);
        if parts.method != Method::HEAD {
            *response.body_mut() = body::full(self.body.clone());
        }
        response
    }
}
