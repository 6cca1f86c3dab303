//! What the status page tells of the registries pantry talks to: per origin the last answer
//! (status and when) and how many failed, and the most recent errors with their `Proxy-Status`.
//! In memory only, bounded.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use http::{Response, StatusCode};
use serde::Serialize;

use crate::{body::Body, cache_status::CacheStatus, clock::Clock};

/// Errors kept for the status page.
const RECENT_ERRORS: usize = 20;
/// Origins kept (the ones least recently answered are dropped beyond).
const MAX_ORIGINS: usize = 1_000;

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

/// Recent answers by origin, and the last errors.
#[derive(Debug, Default)]
pub struct Activity {
    origins: Mutex<HashMap<String, OriginState>>,
    errors: Mutex<VecDeque<RecentError>>,
}

impl Activity {
    /// Records the answer `response` (with `status`) to a request for `path` of `origin`.
    pub fn record(
        &self,
        origin: &str,
        path: &str,
        response: &Response<Body>,
        status: CacheStatus,
        clock: &Clock,
    ) {
        let code = response.status();
        let failed =
            status == CacheStatus::Error || code.is_server_error() || code == StatusCode::TOO_MANY_REQUESTS;
        let now = clock.now_ms();
        {
            let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
            if origins.len() >= MAX_ORIGINS && !origins.contains_key(origin) {
                if let Some(oldest) = origins.iter().min_by_key(|(_, s)| s.last_at_ms).map(|(k, _)| k.clone())
                {
                    origins.remove(&oldest);
                }
            }
            // The common case (a known origin) allocates nothing.
            if !origins.contains_key(origin) {
                origins.insert(origin.to_string(), OriginState::default());
            }
            let Some(state) = origins.get_mut(origin) else { return };
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

    #[test]
    fn answers_and_errors_are_kept_bounded() {
        let activity = Activity::default();
        let clock = Clock::manual(1_000);
        activity.record("r.test:443", "/v2/", &answer(200, None), CacheStatus::Miss, &clock);
        let refused = answer(502, Some("pantry; error=dns_error"));
        activity.record("r.test:443", "/v2/a/blobs/x", &refused, CacheStatus::Error, &clock);
        let origins = activity.origins();
        assert_eq!(origins[0].1.answers, 2);
        assert_eq!((origins[0].1.errors, origins[0].1.last_status), (1, 502));
        assert_eq!(activity.errors()[0].proxy_status.as_deref(), Some("pantry; error=dns_error"));
        for i in 0..30 {
            activity.record("r.test:443", &format!("/{i}"), &answer(503, None), CacheStatus::Miss, &clock);
        }
        assert_eq!(activity.errors().len(), RECENT_ERRORS);
        assert_eq!(activity.errors()[0].path, "/29", "newest first");
    }
}
