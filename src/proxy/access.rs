//! Whether a client may receive cached content: never more widely than the registry it came from
//! would serve it. A grant cannot be borrowed: a host, a scheme or a path spelling chosen by the
//! requester proves nothing.
//!
//! - Content fetched without credentials is public: every client may have it, whatever it names.
//! - Otherwise only a registry that sent these very bytes (verified against the digest) is asked,
//!   with the client's own credentials (a `HEAD` of the digest in the repository the client
//!   named); its yes is remembered for a minute per credential and repository. A host that holds
//!   nothing of it (it never sent these bytes) is not asked: the request is a miss, fetched from
//!   that host and verified like any other, so an answer of 200 to a `HEAD` unlocks nothing.
//! - Keys carry the scheme ([`Target::key_name`]): a cleartext origin is another origin.

use http::{request::Parts, Method, Response};

use super::{forward, Proxy};
use crate::{
    body::Body,
    cache::{grants::Credential, store::BlobMeta},
    credentials::Covered,
    error::ProxyError,
    target::Target,
};

/// The credential a request goes upstream with, as grants and flights know it: the client's own,
/// or (for a request pantry sends with its own credentials) the entry that covers it, whatever
/// token it holds at the moment. `None`: the request goes without credentials.
pub(super) fn credential(proxy: &Proxy, parts: &Parts) -> Option<Credential> {
    let own = proxy.grants.credential(&parts.headers)?;
    Some(match parts.extensions.get::<Covered>() {
        Some(covered) => proxy.grants.key(format!("pantry-credential\0{}", covered.entry).as_bytes()),
        None => own,
    })
}

/// Whether an entry of pantry's own credentials covers the request (whether or not a token could
/// be obtained for it just now).
pub(super) fn covered(parts: &Parts) -> bool {
    parts.extensions.get::<Covered>().is_some()
}

/// Whose credentials a request went upstream with.
#[derive(Debug, Clone, Copy)]
pub(super) enum FetchedAs {
    /// None.
    Anonymous,
    /// The client's own.
    Client,
    /// pantry's (an `[[upstream_credentials]]` entry covers it).
    Pantry,
}

/// Whose credentials the request went upstream with.
pub(super) fn fetched_as(parts: &Parts, credential: Option<u64>) -> FetchedAs {
    match credential {
        None => FetchedAs::Anonymous,
        Some(_) if covered(parts) => FetchedAs::Pantry,
        Some(_) => FetchedAs::Client,
    }
}

/// Records that this registry served the content in `scope`, and with whose credentials;
/// whether anything was new.
pub(super) fn record_scope(meta: &mut BlobMeta, scope: &str, fetched_as: FetchedAs) -> bool {
    let seen = meta.seen_in.insert(scope.to_string());
    let fetched = meta.fetched_in.insert(scope.to_string());
    let how = match fetched_as {
        FetchedAs::Anonymous => meta.anonymous_in.insert(scope.to_string()),
        FetchedAs::Pantry => meta.granted_in.insert(scope.to_string()),
        FetchedAs::Client => false,
    };
    seen || fetched || how
}

/// What pantry knows of a digest with respect to the scope a client asks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// Fetched without credentials somewhere: anyone may have it.
    Public,
    /// The registry the client named sent these bytes; `in_scope`: for this very repository.
    Holder {
        /// This repository (not only its registry) is known to hold it.
        in_scope: bool,
    },
    /// The registry the client named never sent these bytes: only a fetch from it can tell.
    Stranger,
}

impl Standing {
    /// The standing of stored content with `meta` for a client asking in `scope` of `origin`;
    /// `covered`: pantry's own credentials cover the client's request there (content pantry
    /// fetched with them in this very scope is then served without asking).
    pub(super) fn of(meta: &BlobMeta, origin: &str, scope: &str, covered: bool) -> Self {
        if !meta.anonymous_in.is_empty() || meta.public_in.contains(scope) {
            return Self::Public;
        }
        if covered && meta.granted_in.contains(scope) {
            return Self::Public;
        }
        if meta.fetched_in.contains(scope) {
            return Self::Holder { in_scope: true };
        }
        let prefix = format!("{origin}/");
        if meta.fetched_in.iter().any(|s| s.starts_with(&prefix)) {
            return Self::Holder { in_scope: false };
        }
        Self::Stranger
    }
}

/// The outcome of an access check.
pub(super) enum Access {
    /// Serve it; `confirmed`: upstream just said this scope holds it (record that).
    Allowed { confirmed: bool },
    /// Do not serve it; answer this instead.
    Refused(Response<Body>),
    /// Nothing proves the named registry has it: fetch it from there instead.
    Unproven,
}

/// Decides whether the client of `parts` may read `scope`'s content, given its `standing`.
pub(super) async fn authorize(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    scope: &str,
    credential: Option<Credential>,
    standing: Standing,
) -> Result<Access, ProxyError> {
    let in_scope = match standing {
        Standing::Public => return Ok(Access::Allowed { confirmed: false }),
        Standing::Stranger => return Ok(Access::Unproven),
        Standing::Holder { in_scope } => in_scope,
    };
    if in_scope && proxy.grants.allows(credential, scope) {
        return Ok(Access::Allowed { confirmed: false });
    }
    if proxy.offline() {
        return Err(ProxyError::Offline(format!("cannot confirm access to {scope} while offline")));
    }
    let response = forward::ask(proxy, Method::HEAD, parts, target).await?;
    if response.status().is_success() {
        proxy.grants.grant(credential, scope);
        return Ok(Access::Allowed { confirmed: !in_scope });
    }
    tracing::info!(scope, status = response.status().as_u16(), "upstream refused access to cached content");
    // The refused client gets what it would get were nothing cached: the registry's own answer
    // to its request and the same Cache-Status, so neither tells whether the content is here.
    let mut refused = if parts.method == Method::GET {
        forward::relay(proxy, forward::ask(proxy, Method::GET, parts, target).await?)
    } else {
        forward::refusal(proxy, response)
    };
    crate::cache_status::CacheStatus::Miss.set(&mut refused);
    Ok(Access::Refused(refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(fetched: &[&str], anonymous: &[&str], legacy_public: &[&str]) -> BlobMeta {
        BlobMeta {
            fetched_in: fetched.iter().map(|s| s.to_string()).collect(),
            anonymous_in: anonymous.iter().map(|s| s.to_string()).collect(),
            public_in: legacy_public.iter().map(|s| s.to_string()).collect(),
            ..BlobMeta::default()
        }
    }

    #[test]
    fn only_the_registry_that_sent_the_bytes_is_asked() {
        let private = meta(&["registry.test:5000/private/app"], &[], &[]);
        let of = |origin, scope| Standing::of(&private, origin, scope, false);
        assert_eq!(
            of("registry.test:5000", "registry.test:5000/private/app"),
            Standing::Holder { in_scope: true }
        );
        assert_eq!(
            of("registry.test:5000", "registry.test:5000/other"),
            Standing::Holder { in_scope: false }
        );
        assert_eq!(of("evil.test:443", "evil.test:443/private/app"), Standing::Stranger);
        // the same host and port in cleartext is another origin
        assert_eq!(
            of("http://registry.test:5000", "http://registry.test:5000/private/app"),
            Standing::Stranger
        );
        // a host whose name extends the registry's is not the registry
        assert_eq!(of("registry.test:50001", "registry.test:50001/private/app"), Standing::Stranger);
    }

    #[test]
    fn anonymous_fetches_make_content_public_and_old_marks_count_for_their_scope_only() {
        let public = meta(&["registry.test:5000/base"], &["registry.test:5000/base"], &[]);
        assert_eq!(Standing::of(&public, "evil.test:443", "evil.test:443/x", false), Standing::Public);
        let legacy = meta(&[], &[], &["evil.test:443/x"]);
        assert_eq!(Standing::of(&legacy, "evil.test:443", "evil.test:443/x", false), Standing::Public);
        assert_eq!(Standing::of(&legacy, "other.test:443", "other.test:443/x", false), Standing::Stranger);
    }

    #[test]
    fn content_fetched_with_pantrys_credentials_is_served_only_where_they_cover() {
        let scope = "registry.test:5000/private/app";
        let mut granted = meta(&[scope], &[], &[]);
        granted.granted_in.insert(scope.to_string());
        let of = |scope, covered| Standing::of(&granted, "registry.test:5000", scope, covered);
        assert_eq!(of(scope, true), Standing::Public);
        assert_eq!(
            of(scope, false),
            Standing::Holder { in_scope: true },
            "a client's own credential is asked about"
        );
        assert_eq!(of("registry.test:5000/private/other", true), Standing::Holder { in_scope: false });
        let elsewhere = Standing::of(&granted, "evil.test:443", "evil.test:443/private/app", true);
        assert_eq!(elsewhere, Standing::Stranger);
    }
}
