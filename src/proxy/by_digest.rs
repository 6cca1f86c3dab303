//! Blobs and manifests by digest: immutable, so served from the store when present (after the
//! access check), otherwise fetched once for everyone asking (single flight) and stored once the
//! bytes match the digest.

use http::{header, request::Parts, HeaderValue, Method, Response, StatusCode};
use tokio::sync::watch;

use super::{
    access::{self, authorize, Access, Standing},
    forward,
    sources::{self, Fetched, Source},
    Proxy,
};
use crate::{
    body::{self, Body},
    cache::{
        coalesce::{self, FetchRole, Flight, FlightState, Spool},
        respond,
        store::BlobMeta,
    },
    cache_status::CacheStatus,
    error::ProxyError,
    registry::{digest::Digest, route::Repository},
    target::Target,
};

/// Times a request re-asks after the fetch it joined was abandoned before it started.
const MAX_ATTEMPTS: usize = 3;

/// Answers a GET or HEAD of `/v2/<name>/(blobs|manifests)/<digest>`.
pub(super) async fn lookup_or_fetch(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    name: &Repository,
    digest: &Digest,
) -> Result<Response<Body>, ProxyError> {
    let origin = target.key_name();
    let scope = format!("{origin}/{name}");
    let credential = access::credential(proxy, parts);
    let covered = access::covered(parts);
    // Set once the store's copy cannot be served to this client before its registry sent it.
    let mut unproven = false;
    for _ in 0..MAX_ATTEMPTS {
        if let Some(mut blob) = proxy.store.blob(digest).await.filter(|_| !unproven) {
            let standing = Standing::of(&blob.meta, &origin, &scope, covered);
            match authorize(proxy, parts, target, &scope, credential, standing).await? {
                Access::Refused(response) => return Ok(response),
                Access::Unproven if proxy.offline() => {
                    return Err(ProxyError::Offline(format!(
                        "cannot confirm access to {scope} while offline"
                    )))
                }
                Access::Unproven => unproven = true,
                Access::Allowed { confirmed } => {
                    let newly_confirmed = confirmed && blob.meta.fetched_in.insert(scope.clone());
                    if blob.meta.seen_in.insert(scope.clone()) || newly_confirmed {
                        if let Err(error) = proxy.store.write_meta(digest, blob.size, &blob.meta).await {
                            tracing::warn!(%digest, %error, "cannot record where a blob was seen");
                        }
                    }
                    // Held since its lookup (the access check may have asked upstream meanwhile):
                    // eviction has left it in place.
                    return Ok(proxy.serve_stored(&blob, parts, CacheStatus::Hit).await);
                }
            }
        }
        if proxy.offline() {
            return Err(ProxyError::Offline(format!("{digest} is not in the cache")));
        }
        if parts.method == Method::HEAD {
            if let Some(answer) = head_from_flight(proxy, parts, target, &scope, credential, digest).await? {
                return Ok(answer);
            }
            let response = forward::ask(proxy, Method::HEAD, parts, target).await?;
            return Ok(with_status(forward::relay(proxy, response), CacheStatus::Miss));
        }
        match proxy.flights.join(digest, credential, (&origin, &scope)) {
            FetchRole::Lead(lead) => return lead_fetch(proxy, lead, parts, target, &scope, credential).await,
            FetchRole::Follow(flight) => {
                let (started, receiver) = flight.started().await;
                let spool = match started {
                    FlightState::Declined => continue,
                    FlightState::Failed(failure) => return Err(failed(target, &failure)),
                    FlightState::Streaming { spool, .. } | FlightState::Done { spool, .. } => spool,
                    FlightState::Starting => continue,
                };
                match authorize(
                    proxy,
                    parts,
                    target,
                    &scope,
                    credential,
                    joining(&flight, &origin, credential),
                )
                .await?
                {
                    Access::Refused(response) => return Ok(response),
                    Access::Unproven => {
                        // Another registry's private fetch: once it ends, fetch from this one.
                        let mut settled = receiver;
                        let _ = settled
                            .wait_for(|s| !matches!(s, FlightState::Starting | FlightState::Streaming { .. }))
                            .await;
                        unproven = true;
                        continue;
                    }
                    Access::Allowed { .. } => {
                        return Ok(from_flight(&flight, &spool, parts, CacheStatus::Collapsed, receiver).await)
                    }
                }
            }
        }
    }
    Err(ProxyError::Upstream {
        target: target.to_string(),
        detail: format!("fetch of {digest} kept being abandoned"),
    })
}

/// A joining client's standing towards a running fetch: an anonymous fetch is public; a private
/// one may be joined with the leader's own credential, or after its registry confirms this
/// client's access; a private fetch from another registry proves nothing to this one.
fn joining(flight: &Flight, origin: &str, credential: Option<u64>) -> Standing {
    if flight.credential.is_none() || (flight.origin == origin && flight.credential == credential) {
        Standing::Public
    } else if flight.origin == origin {
        Standing::Holder { in_scope: false }
    } else {
        Standing::Stranger
    }
}

/// Answers a HEAD from a running fetch of the digest (it knows size and media type), if there is one.
async fn head_from_flight(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    scope: &str,
    credential: Option<u64>,
    digest: &Digest,
) -> Result<Option<Response<Body>>, ProxyError> {
    let Some(flight) = proxy.flights.peek(digest) else { return Ok(None) };
    let spool = match flight.subscribe().borrow().clone() {
        FlightState::Streaming { spool, .. } | FlightState::Done { spool, .. } => spool,
        _ => return Ok(None),
    };
    let origin = target.key_name();
    match authorize(proxy, parts, target, scope, credential, joining(&flight, &origin, credential)).await? {
        Access::Refused(response) => Ok(Some(response)),
        Access::Unproven => Ok(None),
        Access::Allowed { .. } => {
            Ok(Some(from_flight(&flight, &spool, parts, CacheStatus::Collapsed, flight.subscribe()).await))
        }
    }
}

/// Fetches the digest upstream as the flight's leader and streams it to this client.
async fn lead_fetch(
    proxy: &Proxy,
    lead: coalesce::Lead,
    parts: &Parts,
    target: &Target,
    scope: &str,
    credential: Option<u64>,
) -> Result<Response<Body>, ProxyError> {
    let digest = lead.flight().digest.clone();
    // An error here drops `lead`, which declines the flight so that followers ask again.
    let (response, source) = match sources::content(proxy, &digest, parts, target, scope, credential).await? {
        Fetched::Answer(response, source) => (response, source),
        Fetched::Refused(response) => {
            lead.decline();
            return Ok(response);
        }
    };
    if response.status() != StatusCode::OK {
        lead.decline();
        return Ok(with_status(forward::relay_body(proxy, response), CacheStatus::Miss));
    }
    let header_text = |name| response.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let size = header_text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let media_type = header_text(header::CONTENT_TYPE).map(String::from);
    let fresh = || BlobMeta { media_type: media_type.clone(), ..BlobMeta::default() };
    let from_bucket = matches!(source, Source::SharedStore { .. });
    let (meta, written_behind) = match source {
        // The registry's yes is this credential's grant for the repository; a fleet member's is
        // not (it may have served public content the registry was never asked about).
        Source::Origin => {
            proxy.grants.grant(credential, scope);
            let mut meta = fresh();
            access::record_scope(&mut meta, scope, access::fetched_as(parts, credential));
            (meta, proxy.shared.is_some())
        }
        Source::Member => {
            let mut meta = fresh();
            access::record_scope(&mut meta, scope, access::fetched_as(parts, credential));
            (meta, false)
        }
        Source::SharedStore { mut meta, confirmed } => {
            if confirmed {
                proxy.grants.grant(credential, scope);
                meta.fetched_in.insert(scope.to_string());
            }
            meta.seen_in.insert(scope.to_string());
            (meta, false)
        }
    };
    let flight = lead.flight();
    match lead.stream(proxy.store.clone(), response.into_body(), size, meta) {
        Ok((flight, receiver)) => {
            if written_behind || from_bucket {
                after_fetch(proxy, &digest, receiver.clone(), from_bucket);
            }
            let now = receiver.borrow().clone();
            match now {
                FlightState::Streaming { spool, .. } | FlightState::Done { spool, .. } => {
                    Ok(from_flight(&flight, &spool, parts, CacheStatus::MissStored, receiver).await)
                }
                FlightState::Failed(failure) => Err(failed(target, &failure)),
                _ => Err(ProxyError::Internal("fetch settled without streaming".into())),
            }
        }
        Err((error, body)) => {
            tracing::warn!(digest = %flight.digest, %error, "cannot spool; passing through uncached");
            let mut response = Response::new(body::empty());
            *response.headers_mut() = respond::digest_headers(&flight.digest, media_type.as_deref());
            CacheStatus::Miss.set(&mut response);
            if let Some(size) = size {
                response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            }
            if parts.method != Method::HEAD {
                *response.body_mut() = body::verified(body, flight.digest.clone());
            }
            Ok(response)
        }
    }
}

/// Once the flight settles: fetched from the origin and stored, its content is written to the
/// fleet's shared store; read from the shared store and failed (broke off, or not the digest's
/// bytes), the bucket's copy is not used again for a while and the next write replaces it.
/// Tracked: a drain waits for it.
fn after_fetch(
    proxy: &Proxy,
    digest: &crate::registry::digest::Digest,
    mut state: watch::Receiver<FlightState>,
    from_bucket: bool,
) {
    let (Some(shared), store) = (proxy.shared.clone(), proxy.store.clone()) else { return };
    let digest = digest.clone();
    proxy.shutdown.spawn_work(async move {
        let settled =
            state.wait_for(|s| !matches!(s, FlightState::Starting | FlightState::Streaming { .. })).await;
        let Ok(settled) = settled.map(|s| s.clone()) else { return };
        match (settled, from_bucket) {
            (FlightState::Done { .. }, false) => shared.write_behind(&store, &digest).await,
            (FlightState::Failed(failure), true)
                if failure.by == crate::cache::coalesce::FailedBy::Upstream =>
            {
                shared.distrust(&digest, &failure.reason)
            }
            _ => {}
        }
    });
}

/// Answers from a running (or just finished) flight: the bytes so far, then the rest as it arrives.
async fn from_flight(
    flight: &Flight,
    spool: &Spool,
    parts: &Parts,
    cache_status: CacheStatus,
    receiver: watch::Receiver<FlightState>,
) -> Response<Body> {
    let content = respond::Content::Flight { receiver, size: spool.size };
    respond::answer(parts, &flight.digest, spool.media_type.as_deref(), cache_status, content).await
}

fn with_status(mut response: Response<Body>, cache_status: CacheStatus) -> Response<Body> {
    cache_status.set(&mut response);
    response
}

/// The error a client of a fetch that failed gets: the upstream's (502) when its body broke or
/// lied, pantry's own (500) when its disk failed or the fetch was stopped.
fn failed(target: &Target, failure: &crate::cache::coalesce::Failure) -> ProxyError {
    use crate::cache::coalesce::FailedBy;
    match failure.by {
        FailedBy::Upstream => {
            ProxyError::Upstream { target: target.to_string(), detail: failure.to_string() }
        }
        FailedBy::Disk => ProxyError::Internal(format!("pantry's cache disk: {failure}")),
        FailedBy::Abandoned => ProxyError::Internal(failure.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cache::coalesce::{FailedBy, Failure},
        error::Side,
    };

    #[test]
    fn a_failed_fetch_is_answered_as_its_side() {
        let target = Target::from_absolute(&"https://r.test/".parse().unwrap()).unwrap();
        let of = |by| failed(&target, &Failure { by, reason: "it broke".into() });
        let (upstream, disk, abandoned) =
            (of(FailedBy::Upstream), of(FailedBy::Disk), of(FailedBy::Abandoned));
        assert_eq!((upstream.side(), upstream.status()), (Side::Upstream, StatusCode::BAD_GATEWAY));
        assert_eq!((disk.side(), disk.status()), (Side::Internal, StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(disk.proxy_status_error(), "proxy_internal_error");
        assert_eq!(abandoned.side(), Side::Internal);
    }
}
