//! Where a miss of content by digest is fetched from, in order: the fleet member that owns it, the
//! fleet's shared store, the registry (its mirrors first), and — when the registry cannot answer —
//! the other members. Whatever answers, the bytes stream into one single flight and are verified
//! against the digest before they are stored or completed to a client.

use http::{header, request::Parts, HeaderValue, Method, Response};

use super::{
    access::{authorize, Access, Standing},
    forward, Proxy,
};
use crate::{
    body::Body, cache::store::BlobMeta, error::ProxyError, registry::digest::Digest, target::Target,
};

/// Who answered a fetch.
pub(super) enum Source {
    /// The registry or its mirrors: their yes is the registry's.
    Origin,
    /// A fleet member: it applied the access rules to the client's credentials.
    Member,
    /// The shared store, with what the fleet knows of who may read it (checked for this client
    /// already; `confirmed`: the registry just said this scope holds it).
    SharedStore { meta: BlobMeta, confirmed: bool },
}

/// An answer to a fetch, or the refusal this client gets instead.
pub(super) enum Fetched {
    /// The answer (any status) and who gave it.
    Answer(Response<Body>, Source),
    /// The client may not have it (the registry said so): answer this.
    Refused(Response<Body>),
}

/// Fetches `digest` for the client of `parts` from the first source that has it.
pub(super) async fn content(
    proxy: &Proxy,
    digest: &Digest,
    parts: &Parts,
    target: &Target,
    scope: &str,
    credential: Option<u64>,
) -> Result<Fetched, ProxyError> {
    if let Some(response) =
        forward::ask_fleet(proxy, crate::fleet::Until::Owner, digest.as_str(), Method::GET, parts, target)
            .await
    {
        return Ok(Fetched::Answer(response, Source::Member));
    }
    if let Some(shared) = &proxy.shared {
        if let Some(meta) = shared.meta(digest).await {
            let standing = Standing::of(&meta, &target.key_name(), scope, super::access::covered(parts));
            match authorize(proxy, parts, target, scope, credential, standing).await? {
                Access::Refused(response) => return Ok(Fetched::Refused(response)),
                Access::Unproven => {}
                Access::Allowed { confirmed } => {
                    if let Some((body, size)) = shared.blob(digest).await {
                        let mut response = Response::new(body);
                        let headers = response.headers_mut();
                        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                        if let Some(media_type) =
                            meta.media_type.as_deref().and_then(|m| HeaderValue::from_str(m).ok())
                        {
                            headers.insert(header::CONTENT_TYPE, media_type);
                        }
                        tracing::debug!(%digest, "from the shared store");
                        return Ok(Fetched::Answer(response, Source::SharedStore { meta, confirmed }));
                    }
                }
            }
        }
    }
    let asked = forward::ask_mirrored(proxy, Method::GET, parts, target).await;
    let answered = asked.as_ref().is_ok_and(|response| !forward::down(response.status()));
    if !answered {
        if let Some(response) = forward::ask_fleet(
            proxy,
            crate::fleet::Until::Anyone,
            digest.as_str(),
            Method::GET,
            parts,
            target,
        )
        .await
        {
            return Ok(Fetched::Answer(response, Source::Member));
        }
    }
    Ok(Fetched::Answer(asked?.map(crate::body::incoming), Source::Origin))
}
