//! Registries' rate limits, as their answers say: `RateLimit-Limit` / `RateLimit-Remaining`
//! (Docker Hub's `ratelimit-*: 100;w=21600`, the IETF draft's plain numbers, `X-RateLimit-*`) are
//! kept per origin and identity for `pantry_upstream_ratelimit_remaining{registry}`, with one warning when
//! fewer than a tenth are left. A `429` stops every request to that origin until its
//! `Retry-After` (seconds or an HTTP date; 60 s when absent) has passed, for the same identity
//! (anonymous, or one `Authorization`): pantry then answers from
//! what it has (stale tags) or with its own 429, and the registry is not asked at all.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::Duration,
};

use http::{HeaderMap, StatusCode};

use crate::clock::Clock;

/// How long an origin is left alone after a 429 that says nothing of when to come back.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest pause a `Retry-After` may impose (a registry's mistake must not stop pantry for a day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Clone)]
struct Limit {
    limit: Option<u64>,
    remaining: Option<u64>,
    warned: bool,
    blocked_until_ms: u64,
}

/// Origins and identities whose limits are kept (the least recently used dropped beyond).
const MAX_KEPT: usize = 1_000;

/// Rate limits by origin (`host:port`) and identity: registries count anonymous requests per
/// address and authenticated ones per account, so one's 429 does not stop the other.
#[derive(Debug, Default)]
pub struct RateLimits {
    clock: Clock,
    hasher: RandomState,
    origins: Mutex<HashMap<(String, u64), Limit>>,
}

impl RateLimits {
    /// Rate limits reading time from `clock`.
    pub fn new(clock: Clock) -> Self {
        Self { clock, ..Self::default() }
    }

    /// The identity a request is counted under: a keyed hash of its `Authorization` (0: none).
    pub fn identity(&self, request: &HeaderMap) -> u64 {
        request.get(http::header::AUTHORIZATION).map_or(0, |value| self.hasher.hash_one(value.as_bytes()) | 1)
    }

    /// How long requests to `origin` as `identity` must still wait after its last 429, if they must.
    pub fn blocked(&self, origin: &str, identity: u64) -> Option<Duration> {
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let until = origins.get(&(origin.to_string(), identity))?.blocked_until_ms;
        let now = self.clock.now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Takes in what an answer of `origin` to `identity` says of its limits.
    pub fn observe(&self, origin: &str, identity: u64, status: StatusCode, headers: &HeaderMap) {
        let remaining = number(headers, &["ratelimit-remaining", "x-ratelimit-remaining"]);
        let limit = number(headers, &["ratelimit-limit", "x-ratelimit-limit"]);
        let too_many = status == StatusCode::TOO_MANY_REQUESTS;
        if remaining.is_none() && limit.is_none() && !too_many {
            return;
        }
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        if origins.len() >= MAX_KEPT && !origins.contains_key(&(origin.to_string(), identity)) {
            let now = self.clock.now_ms();
            origins.retain(|_, limit| limit.blocked_until_ms > now);
            if origins.len() >= MAX_KEPT {
                origins.clear();
            }
        }
        let entry = origins.entry((origin.to_string(), identity)).or_default();
        if remaining.is_some() {
            entry.remaining = remaining;
        }
        if limit.is_some() {
            entry.limit = limit;
        }
        if let (Some(remaining), Some(limit)) = (entry.remaining, entry.limit) {
            let low = remaining.saturating_mul(10) < limit;
            if low && !entry.warned {
                tracing::warn!(
                    registry = origin,
                    remaining,
                    limit,
                    "the registry's rate limit is nearly used up"
                );
            }
            entry.warned = low;
        }
        if too_many {
            let wait = retry_after(headers).unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER);
            entry.blocked_until_ms = self.clock.now_ms() + wait.as_millis() as u64;
            tracing::warn!(
                registry = origin,
                ?wait,
                "the registry answered 429: not asking it again before then"
            );
        }
    }

    /// The fewest remaining requests any identity has at each origin that said, for the metrics.
    pub fn remaining(&self) -> Vec<(String, u64)> {
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let mut fewest: HashMap<&str, u64> = HashMap::new();
        for ((origin, _), limit) in origins.iter() {
            if let Some(remaining) = limit.remaining {
                let slot = fewest.entry(origin.as_str()).or_insert(remaining);
                *slot = (*slot).min(remaining);
            }
        }
        fewest.into_iter().map(|(origin, remaining)| (origin.to_string(), remaining)).collect()
    }
}

/// The leading number of the first of `names` present (`76;w=21600` → 76).
fn number(headers: &HeaderMap, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|name| {
        let text = headers.get(*name)?.to_str().ok()?;
        let digits: String = text.trim().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP date from now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn docker_hub_and_draft_headers_are_read() {
        let limits = RateLimits::new(Clock::manual(0));
        let hub = headers(&[("ratelimit-limit", "100;w=21600"), ("ratelimit-remaining", "76;w=21600")]);
        limits.observe("registry-1.docker.io:443", 0, StatusCode::OK, &hub);
        limits.observe("ghcr.io:443", 0, StatusCode::OK, &headers(&[("x-ratelimit-remaining", "4999")]));
        let fewer = headers(&[("ratelimit-remaining", "3;w=21600")]);
        limits.observe("ghcr.io:443", 7, StatusCode::OK, &fewer);
        let mut remaining = limits.remaining();
        remaining.sort();
        assert_eq!(remaining, vec![("ghcr.io:443".into(), 3), ("registry-1.docker.io:443".into(), 76)]);
        limits.observe("quiet.test:443", 0, StatusCode::OK, &HeaderMap::new());
        assert_eq!(limits.remaining().len(), 2, "origins that say nothing are not kept");
    }

    #[test]
    fn a_429_blocks_its_origin_until_retry_after() {
        let clock = Clock::manual(1_000_000);
        let limits = RateLimits::new(clock.clone());
        limits.observe("r.test:443", 0, StatusCode::TOO_MANY_REQUESTS, &headers(&[("retry-after", "30")]));
        assert_eq!(limits.blocked("r.test:443", 0), Some(Duration::from_secs(30)));
        assert_eq!(
            limits.blocked("r.test:443", 5),
            None,
            "an account is counted apart from anonymous requests"
        );
        assert_eq!(limits.blocked("other.test:443", 0), None);
        clock.advance(Duration::from_secs(29));
        assert_eq!(limits.blocked("r.test:443", 0), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(limits.blocked("r.test:443", 0), None);
        limits.observe("r.test:443", 0, StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new());
        assert_eq!(limits.blocked("r.test:443", 0), Some(DEFAULT_RETRY_AFTER));
        let forever = headers(&[("retry-after", "99999999")]);
        limits.observe("r.test:443", 0, StatusCode::TOO_MANY_REQUESTS, &forever);
        assert_eq!(limits.blocked("r.test:443", 0), Some(MAX_RETRY_AFTER));
        let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        assert!(retry_after(&headers(&[("retry-after", &date)])).is_some_and(|d| d.as_secs() >= 118));
    }
}
