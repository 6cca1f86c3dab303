//! Manifests by tag: mutable, so the answer is remembered per registry + repository + tag +
//! normalised Accept and trusted for the TTL its rule gives. After that a HEAD (same Accept, the
//! client's credentials) revalidates: unchanged digest → answered from the store; moved → the new
//! manifest is fetched and stored by digest. When upstream cannot answer, the last known manifest
//! is served, marked stale.

use std::time::Duration;

use http::{header, request::Parts, HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::{
    access::{self, Standing},
    forward, from_shared, Proxy,
};
use crate::{
    body::{self, Body},
    cache::{
        layout::{tag_key, TagRecord},
        respond,
        store::{BlobMeta, CachedBlob},
    },
    cache_status::CacheStatus,
    error::ProxyError,
    registry::{
        digest::{Algorithm, Digest},
        manifest::MAX_MANIFEST_SIZE,
        route::{Repository, Tag},
        tags::{normalize_accept, ttl_for},
    },
    single_flight::SingleCall,
    target::Target,
};

/// What a revalidating HEAD said; shared by every asker of the same tag with the same credential.
#[derive(Debug, Clone)]
pub(super) enum Revalidation {
    /// 200 with this digest, as checked at this time (ms; a fleet member's answer may be older
    /// than now), and whether a fleet member gave it.
    Points(Option<Digest>, u64, bool),
    /// Upstream refused (401, 403, 404…): relay its status and headers.
    Refused(StatusCode, HeaderMap),
    /// Upstream could not answer (down, 5xx, 429).
    Unreachable(ProxyError),
}

/// Revalidations in progress, by tag key and credential.
pub(super) type Revalidations = SingleCall<(String, Option<u64>), Revalidation>;

/// Answers a GET or HEAD of `/v2/<name>/manifests/<tag>`.
pub(super) async fn resolve(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    name: &Repository,
    tag: &Tag,
) -> Result<Response<Body>, ProxyError> {
    let registry = target.to_string();
    let origin = target.key_name();
    let scope = format!("{origin}/{name}");
    let key = tag_key(&origin, name.as_str(), tag.as_str(), &normalize_accept(&parts.headers));
    let credential = access::credential(proxy, parts);
    let covered = access::covered(parts);
    let (record, blob) = match known(proxy, &key).await {
        Some(known) => known,
        None if proxy.offline() => {
            return Err(ProxyError::Offline(format!("{name}:{tag} is not in the cache")));
        }
        None => {
            let fetched = fetch(proxy, parts, target, &scope, &key, credential).await;
            let down = match &fetched {
                Ok(response) => forward::down(response.status()),
                Err(error) => error.side() == crate::error::Side::Upstream,
            };
            // Neither the registry nor a member could answer: the fleet's shared record, if any,
            // is served as stale (below) like one of this node's own.
            match down && from_shared::import_tag(proxy, &key).await {
                true => match known(proxy, &key).await {
                    Some(known) => known,
                    None => return fetched,
                },
                false => return fetched,
            }
        }
    };
    let age = Duration::from_millis(proxy.clock.now_ms().saturating_sub(record.checked_at_ms));
    let rules = proxy.rules();
    let ttl = ttl_for(&rules.tag_rules, rules.tag_ttl, &registry, name.as_str(), tag.as_str());
    // The record was written from this registry's own answer for this tag: only whether this
    // client may read the repository is in question.
    let trusted = blob.meta.public_in.contains(&scope)
        || blob.meta.anonymous_in.contains(&scope)
        || (covered && blob.meta.granted_in.contains(&scope))
        || proxy.grants.allows(credential, &scope);
    if trusted && ttl.is_fresh(age) {
        return Ok(from_record(proxy, &blob, &record, parts, CacheStatus::Hit).await);
    }
    if proxy.offline() {
        if trusted {
            return Ok(stale(from_record(proxy, &blob, &record, parts, CacheStatus::Stale).await));
        }
        return Err(ProxyError::Offline(format!("cannot confirm access to {scope} while offline")));
    }
    let call = || revalidate(proxy, parts, target, &scope);
    let (outcome, _) =
        proxy.revalidations.run((key.clone(), credential), call, || proxy.metrics.coalesced()).await;
    match outcome {
        Revalidation::Points(Some(digest), checked_at_ms, from_owner) if digest == blob.digest => {
            if !from_owner {
                proxy.grants.grant(credential, &scope);
            }
            remember(proxy, &key, &digest, checked_at_ms, !from_owner).await;
            Ok(proxy.serve_stored(&blob, parts, CacheStatus::Revalidated).await)
        }
        Revalidation::Points(Some(digest), checked_at_ms, from_owner) => {
            match proxy.store.blob(&digest).await {
                // The tag moved to a manifest pantry holds (verified by its digest) that anyone may
                // have, or that this registry sent before and said just now (no mirror answered in
                // its place) this repository holds: no GET, which a registry such as Docker Hub
                // counts as a pull. Bytes only another registry sent are fetched from this one: its
                // word that the tag points there proves nothing.
                Some(mut moved)
                    if held_for(&moved.meta, &origin, &scope, covered, rules.mirrors.has_mirrors(target)) =>
                {
                    if !from_owner {
                        proxy.grants.grant(credential, &scope);
                    }
                    let fetched_as = access::fetched_as(parts, credential);
                    if access::record_scope(&mut moved.meta, &scope, fetched_as) {
                        if let Err(error) = proxy.store.write_meta(&digest, moved.size, &moved.meta).await {
                            tracing::warn!(%digest, %error, "cannot record where a manifest was seen");
                        }
                    }
                    remember(proxy, &key, &digest, checked_at_ms, !from_owner).await;
                    Ok(proxy.serve_stored(&moved, parts, CacheStatus::Revalidated).await)
                }
                _ => fetch(proxy, parts, target, &scope, &key, credential).await,
            }
        }
        Revalidation::Points(None, ..) => fetch(proxy, parts, target, &scope, &key, credential).await,
        Revalidation::Refused(status, headers) => {
            let mut response = Response::new(body::empty());
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok(response)
        }
        Revalidation::Unreachable(error) if trusted => {
            tracing::info!(%error, "upstream unreachable; serving the last known manifest");
            Ok(stale(from_record(proxy, &blob, &record, parts, CacheStatus::Stale).await))
        }
        Revalidation::Unreachable(error) => Err(error),
    }
}

/// The stored manifest a record points to, as old (`Age`) as the record.
async fn from_record(
    proxy: &Proxy,
    blob: &CachedBlob,
    record: &TagRecord,
    parts: &Parts,
    status: CacheStatus,
) -> Response<Body> {
    let mut response = proxy.serve_stored(blob, parts, status).await;
    forward::set_age(response.headers_mut(), proxy.clock.now_ms().saturating_sub(record.checked_at_ms));
    response
}

/// The remembered answer for `key`, if its manifest is still in the store.
async fn known(proxy: &Proxy, key: &str) -> Option<(TagRecord, CachedBlob)> {
    let found = proxy.store.record_and_blob(key, |record: &TagRecord| record.digest.parse().ok()).await;
    proxy.store.or_miss(key, found)
}

/// Records what the tag points at; `share`: the registry said so (not a fleet member, which
/// shared it itself), so the fleet's shared store gets it too.
async fn remember(proxy: &Proxy, key: &str, digest: &Digest, checked_at_ms: u64, share: bool) {
    let record = TagRecord { digest: digest.to_string(), checked_at_ms };
    if let Err(error) = proxy.store.put_record(key, &record).await {
        tracing::warn!(%error, "cannot record tag");
    }
    if share {
        from_shared::share(proxy, key, record);
    }
}

/// Asks whether the tag still points where it did: its owner in a fleet (for the whole fleet),
/// else the registry.
async fn revalidate(proxy: &Proxy, parts: &Parts, target: &Target, scope: &str) -> Revalidation {
    let (response, from_owner) = match forward::ask_source(proxy, scope, Method::HEAD, parts, target).await {
        Ok(sourced) => (sourced.response, sourced.from_owner),
        Err(error) => return Revalidation::Unreachable(error),
    };
    let status = response.status();
    if status == StatusCode::OK {
        let digest =
            response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()?.parse().ok());
        let checked_at_ms = proxy.clock.now_ms().saturating_sub(forward::age_ms(response.headers()));
        return Revalidation::Points(digest, checked_at_ms, from_owner);
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        let detail = format!("revalidation answered {status}");
        return Revalidation::Unreachable(ProxyError::Upstream { target: target.to_string(), detail });
    }
    let refusal = forward::refusal_body(proxy, response);
    Revalidation::Refused(refusal.status(), refusal.headers().clone())
}

/// GETs the manifest by tag, stores it by digest, remembers the tag and answers the client.
async fn fetch(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    scope: &str,
    key: &str,
    credential: Option<u64>,
) -> Result<Response<Body>, ProxyError> {
    let forward::Sourced { response, from_owner } =
        forward::ask_source(proxy, scope, Method::GET, parts, target).await?;
    let too_large = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_MANIFEST_SIZE);
    if response.status() != StatusCode::OK || too_large {
        let mut relayed = forward::relay_body(proxy, response);
        CacheStatus::Miss.set(&mut relayed);
        return Ok(relayed);
    }
    let upstream_error = |detail: String| ProxyError::Upstream { target: target.to_string(), detail };
    let header_text =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let media_type = header_text(header::CONTENT_TYPE.as_str());
    let announced = header_text("docker-content-digest");
    let checked_at_ms = proxy.clock.now_ms().saturating_sub(forward::age_ms(response.headers()));
    let bytes =
        forward::collect_small(proxy, response.into_body(), MAX_MANIFEST_SIZE, target, "manifest body")
            .await?;
    proxy.metrics.fetched_upstream(bytes.len() as u64);
    let digest = manifest_digest(announced.as_deref(), &bytes).map_err(upstream_error)?;
    if !from_owner {
        proxy.grants.grant(credential, scope);
    }
    let meta =
        merged_meta(proxy, &digest, media_type.clone(), scope, access::fetched_as(parts, credential)).await;
    match proxy.store.put(&digest, &bytes, &meta).await {
        Ok(()) => {
            remember(proxy, key, &digest, checked_at_ms, !from_owner).await;
            if !from_owner {
                from_shared::share_content(proxy, &digest);
            }
        }
        Err(error) => tracing::warn!(%digest, %error, "manifest could not be stored; served without caching"),
    }
    let content = respond::Content::Memory(bytes);
    Ok(respond::answer(parts, &digest, media_type.as_deref(), CacheStatus::MissStored, content).await)
}

/// The manifest's digest: the one upstream announced, if the bytes match it; else their sha256.
fn manifest_digest(announced: Option<&str>, bytes: &[u8]) -> Result<Digest, String> {
    let Some(announced) = announced else { return Ok(Digest::of(Algorithm::Sha256, bytes)) };
    let digest: Digest = announced.parse().map_err(|e| format!("bad Docker-Content-Digest: {e}"))?;
    let mut verifier = digest.verifier();
    verifier.update(bytes);
    verifier
        .finish()
        .map_err(|m| format!("manifest is {} but upstream announced {}", m.actual, m.expected))?;
    Ok(digest)
}

/// Metadata for a manifest about to be stored, keeping the scopes it was already seen in.
async fn merged_meta(
    proxy: &Proxy,
    digest: &Digest,
    media_type: Option<String>,
    scope: &str,
    fetched_as: access::FetchedAs,
) -> BlobMeta {
    let mut meta = proxy.store.blob(digest).await.map(|b| b.meta).unwrap_or_default();
    if media_type.is_some() {
        meta.media_type = media_type;
    }
    access::record_scope(&mut meta, scope, fetched_as);
    meta
}

/// Whether a manifest pantry holds may answer a tag that moved to it (see `resolve`).
fn held_for(meta: &BlobMeta, origin: &str, scope: &str, covered: bool, mirrored: bool) -> bool {
    match Standing::of(meta, origin, scope, covered) {
        Standing::Public => true,
        Standing::Holder { .. } => !mirrored,
        Standing::Stranger => false,
    }
}

/// Marks an answer as stale (RFC 9111 §5.5-style warning, kept for clients that show it).
pub(super) fn stale(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::WARNING, HeaderValue::from_static("110 pantry \"Response is Stale\""));
    response
}
