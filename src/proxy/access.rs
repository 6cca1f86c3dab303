//! Whether a client may receive cached content (DESIGN decision 8): never more widely than upstream
//! would serve it. Public content (served to an anonymous client before) needs no question; a
//! credential upstream accepted recently needs none either; otherwise upstream is asked with a
//! HEAD carrying the client's own credentials, and its refusal (e.g. a 401 challenge) is relayed.

use http::{request::Parts, Method, Response};

use super::{forward, Proxy};
use crate::{body::Body, cache::access::Credential, error::ProxyError, target::Target};

/// The outcome of an access check.
pub(super) enum Access {
    /// Serve it; `anonymous_ok` says upstream allowed it without credentials (it is public).
    Allowed { anonymous_ok: bool },
    /// Do not serve it; answer this instead.
    Refused(Response<Body>),
}

/// Decides whether the client of `parts` may read `scope`'s content at its path.
pub(super) async fn authorize(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
    scope: &str,
    credential: Option<Credential>,
    public: bool,
) -> Result<Access, ProxyError> {
    if public || credential.is_some_and(|c| proxy.grants.allows(c, scope)) {
        return Ok(Access::Allowed { anonymous_ok: false });
    }
    if proxy.offline() {
        return Err(ProxyError::Offline(format!("cannot confirm access to {scope} while offline")));
    }
    let response = forward::ask(proxy, Method::HEAD, parts, target).await?;
    if response.status().is_success() {
        if let Some(credential) = credential {
            proxy.grants.grant(credential, scope);
        }
        return Ok(Access::Allowed { anonymous_ok: credential.is_none() });
    }
    tracing::info!(scope, status = response.status().as_u16(), "upstream refused access to cached content");
    Ok(Access::Refused(forward::refusal(proxy, response)))
}
