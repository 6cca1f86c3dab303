//! What the status page tells of the registries pantry talks to: per origin the last answer
//! (status and when) and how many failed, the most recent errors with their `Proxy-Status`, and
//! per repository what was served (bytes, manifests, blobs) for the most pulled ones. In memory
//! only, bounded.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use http::{Response, StatusCode};
use serde::Serialize;

use crate::{body::Body, cache_status::CacheStatus, clock::Clock, registry::route::Route};

/// Errors kept for the status page.
const RECENT_ERRORS: usize = 20;
/// Origins kept (the ones least recently answered are dropped beyond).
const MAX_ORIGINS: usize = 1_000;
/// Repositories kept (the one served least is dropped beyond).
const MAX_REPOSITORIES: usize = 1_000;

/// One origin's recent answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OriginState {
    /// The last status answered for it.
    pub last_status: u16,
    /// When (ms since the epoch).
    pub last_at_ms: u64,
    /// Answers that were errors (5xx, 429, or pantry's own).
    pub errors: u64,
    /// Answers in all.
    pub answers: u64,
}

/// One recent error.
#[derive(Debug, Clone, Serialize)]
pub struct RecentError {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The origin the request named.
    pub origin: String,
    /// The request's path.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// pantry's `Proxy-Status`, when it answered the error itself.
    pub proxy_status: Option<String>,
}

/// What one repository was served since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Served {
    /// Body bytes of the successful GETs answered.
    pub bytes: u64,
    /// Manifests answered (by tag or digest).
    pub manifests: u64,
    /// Blobs answered.
    pub blobs: u64,
}

/// Recent answers by origin, the last errors, and what each repository was served.
#[derive(Debug, Default)]
pub struct Activity {
    origins: Mutex<HashMap<String, OriginState>>,
    errors: Mutex<VecDeque<RecentError>>,
    /// By `origin/name`, with the buffer lookups build that key in.
    repositories: Mutex<(HashMap<String, Served>, String)>,
}

impl Activity {
    /// Records the answer `response` (with `status`) to a request for `path` of `origin`, which
    /// asked for `route` (`get`: with a GET, so its body was sent).
    pub fn record(
        &self,
        (origin, path): (&str, &str),
        (route, get): (&Route, bool),
        response: &Response<Body>,
        status: CacheStatus,
        clock: &Clock,
    ) {
        let code = response.status();
        if let (Some(name), true) = (route.repository(), get && code.is_success()) {
            self.served(origin, name.as_str(), route, response);
        }
        let failed =
            status == CacheStatus::Error || code.is_server_error() || code == StatusCode::TOO_MANY_REQUESTS;
        let now = clock.now_ms();
        {
            let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
            let Some(state) = bounded_entry(&mut origins, origin, MAX_ORIGINS, |s| s.last_at_ms) else {
                return;
            };
            state.last_status = code.as_u16();
            state.last_at_ms = now;
            state.answers += 1;
            state.errors += u64::from(failed);
        }
        if failed {
            let proxy_status =
                response.headers().get("proxy-status").and_then(|v| v.to_str().ok()).map(str::to_string);
            let error = RecentError {
                at_ms: now,
                origin: origin.to_string(),
                path: path.to_string(),
                status: code.as_u16(),
                proxy_status,
            };
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            if errors.len() >= RECENT_ERRORS {
                errors.pop_front();
            }
            errors.push_back(error);
        }
    }

    fn served(&self, origin: &str, name: &str, route: &Route, response: &Response<Body>) {
        let bytes = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let (manifest, blob) = match route {
            Route::ManifestByTag { .. } | Route::ManifestByDigest { .. } => (1, 0),
            Route::BlobByDigest { .. } => (0, 1),
            _ => (0, 0),
        };
        let mut guard = self.repositories.lock().unwrap_or_else(|e| e.into_inner());
        let (repositories, key) = &mut *guard;
        // The key `origin/name` is built in a buffer kept with the map: a known repository
        // allocates nothing.
        key.clear();
        key.push_str(origin);
        key.push('/');
        key.push_str(name);
        let Some(served) = bounded_entry(repositories, key, MAX_REPOSITORIES, |s| s.bytes) else { return };
        served.bytes += bytes;
        served.manifests += manifest;
        served.blobs += blob;
    }

    /// The `n` repositories (`origin/name`) served the most bytes, most first.
    pub fn top_repositories(&self, n: usize) -> Vec<(String, Served)> {
        let guard = self.repositories.lock().unwrap_or_else(|e| e.into_inner());
        let repositories = &guard.0;
        let mut list: Vec<(String, Served)> =
            repositories.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        list.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
        list.truncate(n);
        list
    }

    /// Every origin's state, by name.
    pub fn origins(&self) -> Vec<(String, OriginState)> {
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<(String, OriginState)> =
            origins.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// The recent errors, newest first.
    pub fn errors(&self) -> Vec<RecentError> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().cloned().collect()
    }
}

/// The value for `key` in `map`, a default one inserted when it is new (always `Some`); a full
/// map (`max`) first drops the entry `rank` ranks lowest. A known key allocates nothing.
fn bounded_entry<'m, V: Default, R: Ord>(
    map: &'m mut HashMap<String, V>,
    key: &str,
    max: usize,
    rank: impl Fn(&V) -> R,
) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        if map.len() >= max {
            if let Some(lowest) = map.iter().min_by_key(|(_, v)| rank(v)).map(|(k, _)| k.clone()) {
                map.remove(&lowest);
            }
        }
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, proxy_status: Option<&str>) -> Response<Body> {
        let mut response = Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        if let Some(value) = proxy_status {
            response.headers_mut().insert("proxy-status", value.parse().unwrap());
        }
        response
    }

    const OTHER: (&Route, bool) = (&Route::Other, true);

    #[test]
    fn answers_and_errors_are_kept_bounded() {
        let activity = Activity::default();
        let clock = Clock::manual(1_000);
        activity.record(("r.test:443", "/v2/"), OTHER, &answer(200, None), CacheStatus::Miss, &clock);
        let refused = answer(502, Some("pantry;error=dns_error"));
        activity.record(("r.test:443", "/v2/a/blobs/x"), OTHER, &refused, CacheStatus::Error, &clock);
        let origins = activity.origins();
        assert_eq!(origins[0].1.answers, 2);
        assert_eq!((origins[0].1.errors, origins[0].1.last_status), (1, 502));
        assert_eq!(activity.errors()[0].proxy_status.as_deref(), Some("pantry;error=dns_error"));
        for i in 0..30 {
            let path = format!("/{i}");
            activity.record(("r.test:443", &path), OTHER, &answer(503, None), CacheStatus::Miss, &clock);
        }
        assert_eq!(activity.errors().len(), RECENT_ERRORS);
        assert_eq!(activity.errors()[0].path, "/29", "newest first");
    }

    #[test]
    fn repositories_are_ranked_by_bytes_served() {
        let activity = Activity::default();
        let clock = Clock::manual(1_000);
        let sized = |bytes: u64| {
            let mut response = answer(200, None);
            response.headers_mut().insert(http::header::CONTENT_LENGTH, bytes.into());
            response
        };
        let route = |path: &str| crate::registry::route::classify(&http::Method::GET, path, None);
        let blob = route(&format!("/v2/big/blobs/sha256:{}", "a".repeat(64)));
        let tag = route("/v2/small/manifests/latest");
        for _ in 0..2 {
            activity.record(("r.test:443", "/"), (&blob, true), &sized(1000), CacheStatus::Hit, &clock);
        }
        activity.record(("r.test:443", "/"), (&tag, true), &sized(300), CacheStatus::Hit, &clock);
        activity.record(("r.test:443", "/"), (&blob, false), &sized(5000), CacheStatus::Hit, &clock);
        activity.record(("r.test:443", "/"), (&tag, true), &answer(404, None), CacheStatus::Miss, &clock);
        let top = activity.top_repositories(10);
        assert_eq!(top[0], ("r.test:443/big".into(), Served { bytes: 2000, manifests: 0, blobs: 2 }));
        assert_eq!(top[1], ("r.test:443/small".into(), Served { bytes: 300, manifests: 1, blobs: 0 }));
        assert_eq!(activity.top_repositories(1).len(), 1);
    }
}
