//! RFC 9111 caching of what is not registry content (plain HTTP, intercepted non-registry hosts:
//! package downloads, release tarballs), with http-cache-semantics as a shared cache deciding what
//! may be stored, when it is fresh, and how to revalidate it. Bodies go into the same
//! content-addressed store as blobs (keyed by their SHA-256, under the same size cap and eviction);
//! a small record per URL holds the policy. What the record keeps of the request has no
//! credentials (`Authorization`, `Cookie` and `Proxy-Authorization` are dropped before it is
//! written, and `Set-Cookie` is never stored), and a response to a request with `Authorization` is
//! stored only when the origin allows it (`public`, `s-maxage`, `must-revalidate`). An answer that
//! varies on one of the dropped headers (or on `*`) is not stored: its variant could not be told
//! apart from a request without them.
//!
//! A stored body is committed only once it arrived whole; until then the client's last chunk is
//! held back, so a client that saw the end can count on the next request being a hit. A body that
//! breaks off reaches the client as a broken transfer and leaves nothing behind.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy};
use hyper::body::{Frame, Incoming};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{forward, Proxy};
use crate::{
    body::{self, Body, BoxError},
    cache::store::{BlobMeta, CachedBlob},
    cache_status::CacheStatus,
    error::ProxyError,
    registry::digest::{Digest, Hasher},
    target::Target,
};

/// What the index keeps for one URL.
#[derive(Serialize, Deserialize)]
struct Record {
    policy: CachePolicy,
    digest: String,
    size: u64,
}

/// Request headers never written to the store.
const CREDENTIALS: [header::HeaderName; 3] =
    [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION];

/// Answers a GET or HEAD for a non-registry URL: fresh from the store, revalidated, or fetched
/// (and stored when the origin allows).
pub(super) async fn cached_or_forwarded(
    proxy: &Proxy,
    request: Request<Body>,
    target: &Target,
) -> Result<Response<Body>, ProxyError> {
    if proxy.offline() {
        return Err(ProxyError::Offline(format!("{target} is not in the cache")));
    }
    let (client, _) = request.into_parts();
    let upstream = forward::to_upstream(client.clone(), target)?;
    let key = crate::cache::layout::http_cache_key(&upstream.uri);
    let now = now(proxy);

    if let Some((record, blob)) = stored(proxy, &key).await {
        match record.policy.before_request(&upstream, now) {
            BeforeRequest::Fresh(parts) => {
                return Ok(from_store(proxy, &blob, parts, &client.method, CacheStatus::Hit).await);
            }
            BeforeRequest::Stale { request: revalidation, matches: true } => {
                let response = send(proxy, revalidation.clone()).await?;
                match record.policy.after_response(&revalidation, &response, now) {
                    AfterResponse::NotModified(_, parts) => {
                        // The updated policy would keep the client's credentials: rebuilt without.
                        let record = Record { policy: without_secrets(&upstream, &parts, now), ..record };
                        if let Err(error) = proxy.store.put_record(&key, &record).await {
                            tracing::warn!(%error, "cannot update a cache record");
                        }
                        let status = CacheStatus::NotModified;
                        return Ok(from_store(proxy, &blob, parts, &client.method, status).await);
                    }
                    AfterResponse::Modified(..) => return Ok(fill(proxy, key, &upstream, response, now)),
                }
            }
            BeforeRequest::Stale { matches: false, .. } => {} // another variant (Vary): fetch it
        }
    }
    let response = send(proxy, upstream.clone()).await?;
    Ok(fill(proxy, key, &upstream, response, now))
}

fn now(proxy: &Proxy) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(proxy.clock.now_ms())
}

/// The record for `key` and its content, if both are there.
async fn stored(proxy: &Proxy, key: &str) -> Option<(Record, CachedBlob)> {
    let record: Record = proxy.store.or_miss(key, proxy.store.record(key).await)?;
    let digest: Digest = record.digest.parse().ok()?;
    let blob = proxy.store.blob(&digest).await?;
    (blob.size == record.size).then_some((record, blob))
}

async fn send(proxy: &Proxy, parts: Parts) -> Result<Response<Incoming>, ProxyError> {
    proxy.upstream.send(Request::from_parts(parts, body::empty())).await
}

/// The policy as stored: built from the request without its credentials and the response without
/// `Set-Cookie`.
fn without_secrets(request: &Parts, response: &http::response::Parts, now: SystemTime) -> CachePolicy {
    let mut request = request.clone();
    for name in CREDENTIALS {
        request.headers.remove(name);
    }
    let mut response = response.clone();
    response.headers.remove(header::SET_COOKIE);
    CachePolicy::new_options(&request, &response, now, CacheOptions::default())
}

/// Passes `response` on, storing its body as it goes when the policy allows.
fn fill(
    proxy: &Proxy,
    key: String,
    request: &Parts,
    response: Response<Incoming>,
    now: SystemTime,
) -> Response<Body> {
    let policy = CachePolicy::new_options(request, &response, now, CacheOptions::default());
    let length = response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let allowed = policy.is_storable() && says_how_long(response.headers());
    let storable = allowed
        && !varies_on_credentials(response.headers())
        && request.method == Method::GET
        && response.status() == StatusCode::OK
        && !response.headers().contains_key(header::CONTENT_RANGE)
        && length.is_none_or(|n: u64| n <= proxy.store.max_bytes() / 4)
        && proxy.store.room_for(length).is_ok();
    let mut response = forward::relay(proxy, response);
    if !storable {
        let status = if allowed { CacheStatus::Miss } else { CacheStatus::NotStorable };
        status.set(&mut response);
        return response;
    }
    let (parts, upstream) = response.into_parts();
    let stored_policy = without_secrets(request, &parts, now); // storability was decided above
    let media_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
    let teeing = Tee { proxy: proxy.clone(), key, policy: stored_policy, media_type };
    proxy.shutdown.spawn_work(teeing.run(upstream, sender));
    let mut response = Response::from_parts(parts, stream_from(receiver));
    CacheStatus::MissStored.set(&mut response);
    response
}

/// Whether the origin said how long its answer stays good or how to check it (`max-age`,
/// `s-maxage`, `Expires`, `ETag`, `Last-Modified`). Answers that say nothing (token endpoints,
/// dynamic pages) are cacheable by default in RFC 9111, but would only ever be stale: they are not
/// kept, and neither are the secrets such answers often hold.
fn says_how_long(headers: &HeaderMap) -> bool {
    let directives = headers.get_all(header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok());
    let lifetime = directives
        .flat_map(|v| v.split(','))
        .any(|d| matches!(d.trim().split('=').next(), Some("max-age" | "s-maxage")));
    lifetime || [header::EXPIRES, header::ETAG, header::LAST_MODIFIED].iter().any(|h| headers.contains_key(h))
}

/// Whether the answer varies on a header the stored request does not keep (`Vary: *` too): it
/// would otherwise match a later request without that header — another user's page.
fn varies_on_credentials(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|name| name == "*" || CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c.as_str())))
}

/// The client's side of a [`Tee`].
fn stream_from(receiver: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>) -> Body {
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Copies an upstream body to the client and to a spool file, and stores it once it is whole.
struct Tee {
    proxy: Proxy,
    key: String,
    policy: CachePolicy,
    media_type: Option<String>,
}

impl Tee {
    async fn run(
        self,
        mut upstream: Body,
        client: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    ) {
        let (mut file, spool) = match self.proxy.store.new_spool() {
            Ok((file, spool)) => (Some(tokio::fs::File::from_std(file)), Some(spool)),
            Err(error) => {
                tracing::warn!(%error, "cannot spool a cacheable response; passing it through");
                (None, None)
            }
        };
        let (mut hasher, mut size, mut held) = (Hasher::default(), 0u64, None::<Bytes>);
        let outcome = loop {
            match upstream.frame().await {
                None => break Ok(()),
                Some(Err(error)) => break Err(error),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    hasher.update(&data);
                    size += data.len() as u64;
                    if let Some(spooling) = file.as_mut() {
                        if let Err(error) = spooling.write_all(&data).await {
                            tracing::warn!(%error, "spooling a cacheable response failed; passing it through");
                            file = None;
                        }
                    }
                    if let Some(previous) = held.replace(data) {
                        if client.send(Ok(Frame::data(previous))).await.is_err() {
                            break Err("the client went away".into());
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(()) => {
                if let (Some(spooling), Some(spool)) = (file.take(), &spool) {
                    self.commit(spooling, spool, hasher.finish(), size).await;
                }
                if let Some(last) = held {
                    let _ = client.send(Ok(Frame::data(last))).await;
                }
            }
            Err(error) => {
                tracing::info!(%error, "a cacheable response broke off; nothing stored");
                if let Some(last) = held {
                    let _ = client.send(Ok(Frame::data(last))).await;
                }
                let _ = client.send(Err(error)).await;
            }
        }
        if let Some(spool) = spool {
            let _ = tokio::fs::remove_file(&spool).await; // gone already if committed
        }
    }

    async fn commit(&self, file: tokio::fs::File, spool: &std::path::Path, digest: Digest, size: u64) {
        let store = &self.proxy.store;
        let meta = BlobMeta { media_type: self.media_type.clone(), ..BlobMeta::default() };
        let record = Record { policy: self.policy.clone(), digest: digest.as_str().to_string(), size };
        let result = async {
            file.sync_data().await.map_err(|source| crate::cache::store::StoreError::Io {
                path: spool.to_path_buf(),
                source,
            })?;
            drop(file);
            store.commit(&digest, spool, size, &meta).await?;
            store.put_record(&self.key, &record).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "cannot store a cacheable response");
        }
    }
}

/// A response from stored content with the headers the policy gives (`Age` included).
async fn from_store(
    proxy: &Proxy,
    blob: &CachedBlob,
    parts: http::response::Parts,
    method: &Method,
    cache_status: CacheStatus,
) -> Response<Body> {
    proxy.store.touch(blob);
    let reads = (proxy.metrics.served_counter(), proxy.store.verifies_reads());
    crate::cache::respond::with_headers(blob, parts.status, parts.headers, method, cache_status, reads).await
}
