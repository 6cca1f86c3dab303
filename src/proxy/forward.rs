//! Forwarding what pantry does not cache: the request streamed to the upstream, the answer streamed
//! back, hop-by-hop headers removed both ways.

use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::Proxy;
use crate::fleet::Until;
use crate::upstream::redirect;
use crate::{
    body::{self, Body},
    error::ProxyError,
    hop_by_hop,
    target::Target,
};

/// Sends `request` to `target` untouched but for hop-by-hop headers.
pub(super) async fn forward(
    proxy: &Proxy,
    request: Request<Body>,
    target: &Target,
) -> Result<Response<Body>, ProxyError> {
    if proxy.offline() {
        return Err(ProxyError::Offline(format!("{target} is not in the cache")));
    }
    let (parts, body) = request.into_parts();
    let parts = to_upstream(parts, target)?;
    let response = proxy.upstream.send(Request::from_parts(parts, body)).await?;
    Ok(relay(proxy, response))
}

/// A client's request head as pantry sends it on to `target`: absolute URI, HTTP/1.1 (the
/// connection decides the version), hop-by-hop headers and Host removed.
pub(super) fn to_upstream(mut parts: Parts, target: &Target) -> Result<Parts, ProxyError> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = target.url(path).map_err(ProxyError::BadRequest)?;
    parts.version = Version::HTTP_11;
    hop_by_hop::strip(&mut parts.headers);
    parts.headers.remove(header::HOST);
    Ok(parts)
}

/// An upstream answer as pantry passes it on: hop-by-hop headers removed, body streamed (and
/// broken off if upstream goes silent for the body timeout).
pub(super) fn relay(proxy: &Proxy, response: Response<Incoming>) -> Response<Body> {
    relay_body(proxy, response.map(body::incoming))
}

/// [`relay`] of an answer whose body is already pantry's own type (a fleet member's).
pub(super) fn relay_body(proxy: &Proxy, response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    parts.version = Version::HTTP_11;
    Response::from_parts(parts, body::paced(body, proxy.pace))
}

/// Reads a small upstream body whole: at most `max` bytes, broken off when upstream goes silent
/// for the body timeout; `what` names it in errors.
pub(super) async fn collect_small(
    proxy: &Proxy,
    body: Body,
    max: usize,
    target: &Target,
    what: &str,
) -> Result<Bytes, ProxyError> {
    // Frame by frame: `collect()` over the boxed body made the connection futures that await this
    // fail rustc's `Send` check (a higher-ranked lifetime it cannot prove).
    let mut body = Limited::new(body, max);
    let mut bytes = bytes::BytesMut::new();
    let upstream_error = |detail: String| ProxyError::Upstream { target: target.to_string(), detail };
    loop {
        let frame = match tokio::time::timeout(proxy.pace.idle, body.frame()).await {
            Err(_) => return Err(upstream_error(format!("{what}: upstream went silent"))),
            Ok(None) => return Ok(bytes.freeze()),
            Ok(Some(frame)) => frame.map_err(|e| upstream_error(format!("{what}: {e}")))?,
        };
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
    }
}

/// Asks upstream for the client's path on pantry's behalf (see [`fetch_headers`]), following redirects.
pub(super) async fn ask(
    proxy: &Proxy,
    method: Method,
    parts: &Parts,
    target: &Target,
) -> Result<Response<Incoming>, ProxyError> {
    let uri = target.url(parts.uri.path()).map_err(ProxyError::BadRequest)?;
    proxy.upstream.fetch(method, uri, fetch_headers(parts)).await
}

/// Like [`ask`], but tries the registry's mirrors first (without the client's credentials, which
/// belong to the origin); a mirror that fails or lacks the content hands over to the next one.
pub(super) async fn ask_mirrored(
    proxy: &Proxy,
    method: Method,
    parts: &Parts,
    origin: &Target,
) -> Result<Response<Incoming>, ProxyError> {
    let rules = proxy.rules();
    for candidate in rules.mirrors.candidates(origin) {
        if candidate == *origin {
            break;
        }
        let uri = candidate.url(parts.uri.path()).map_err(ProxyError::BadRequest)?;
        let mut headers = fetch_headers(parts);
        redirect::strip_credentials(&mut headers);
        match proxy.upstream.fetch(method.clone(), uri, headers).await {
            Ok(response) if response.status().is_success() => {
                rules.mirrors.record(&candidate, true);
                tracing::debug!(mirror = %candidate, "answered by mirror");
                return Ok(response);
            }
            Ok(response) => {
                let status = response.status();
                let failed = status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS;
                rules.mirrors.record(&candidate, !failed);
                tracing::debug!(mirror = %candidate, %status, "mirror did not serve; trying the next");
            }
            Err(error) => {
                rules.mirrors.record(&candidate, false);
                tracing::info!(mirror = %candidate, %error, "mirror unreachable; trying the next");
            }
        }
    }
    ask(proxy, method, parts, origin).await
}

/// Asks the fleet's members ranked for `key` for the client's path of `origin` (see
/// [`crate::fleet::Fleet::ask`]: the owner, or with [`Until::Anyone`] every other member), unless
/// this request came from a member or there is no fleet. The client's credentials go along;
/// pantry's own (a [`crate::credentials::Covered`] request) do not: the owner holds the same
/// entries and applies them itself.
pub(super) async fn ask_fleet(
    proxy: &Proxy,
    until: Until,
    key: &str,
    method: Method,
    parts: &Parts,
    origin: &Target,
) -> Option<Response<Body>> {
    let (fleet, headers) = fleet_request(proxy, parts)?;
    if until == Until::Anyone {
        tracing::info!(key, "the origin cannot answer; asking the other fleet members");
    }
    fleet.ask(until, key, method, origin, parts.uri.path(), &headers).await
}

/// The fleet to ask for this client's request and the headers it goes with: none for a request
/// a member sent (it is answered here) or without a fleet.
fn fleet_request<'a>(proxy: &'a Proxy, parts: &Parts) -> Option<(&'a crate::fleet::Fleet, HeaderMap)> {
    let fleet = proxy.fleet.as_deref()?;
    if parts.extensions.get::<crate::fleet::FromPeer>().is_some() {
        return None;
    }
    let mut headers = fetch_headers(parts);
    if parts.extensions.get::<crate::credentials::Covered>().is_some() {
        headers.remove(header::AUTHORIZATION);
    }
    Some((fleet, headers))
}

/// An answer, and whether a fleet member gave it (rather than the registry or its mirrors).
pub(super) struct Sourced {
    /// The answer.
    pub response: Response<Body>,
    /// A fleet member answered: its yes is not the registry's.
    pub from_owner: bool,
}

/// The owner of `key` in the fleet, if there is one that answers; else [`ask_mirrored`], and
/// when that cannot answer (unreachable, 5xx, 429) the other members.
pub(super) async fn ask_source(
    proxy: &Proxy,
    key: &str,
    method: Method,
    parts: &Parts,
    origin: &Target,
) -> Result<Sourced, ProxyError> {
    if let Some(response) = ask_fleet(proxy, Until::Owner, key, method.clone(), parts, origin).await {
        return Ok(Sourced { response, from_owner: true });
    }
    let asked = ask_mirrored(proxy, method.clone(), parts, origin).await;
    let answered = asked.as_ref().is_ok_and(|response| !down(response.status()));
    if !answered {
        if let Some(response) = ask_fleet(proxy, Until::Anyone, key, method, parts, origin).await {
            return Ok(Sourced { response, from_owner: true });
        }
    }
    Ok(Sourced { response: asked?.map(body::incoming), from_owner: false })
}

/// An answer that says the registry cannot answer now (5xx, 429).
pub(super) fn down(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// How old an answer says it is (`Age`, RFC 9111 §5.1), in milliseconds: a fleet member's answer
/// from its records is as old as they are.
pub(super) fn age_ms(headers: &HeaderMap) -> u64 {
    let seconds = headers.get(header::AGE).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    seconds.unwrap_or(0).saturating_mul(1000)
}

/// Sets `Age` on an answer from a record `age_ms` old (whole seconds, as RFC 9111 writes it).
pub(super) fn set_age(headers: &mut HeaderMap, age_ms: u64) {
    headers.insert(header::AGE, HeaderValue::from(age_ms / 1000));
}

/// Upstream's refusal (401 with its challenge, 403, 404…) relayed with an empty body.
pub(super) fn refusal(proxy: &Proxy, response: Response<Incoming>) -> Response<Body> {
    refusal_body(proxy, response.map(body::incoming))
}

/// [`refusal`] of an answer whose body is pantry's own type.
pub(super) fn refusal_body(proxy: &Proxy, response: Response<Body>) -> Response<Body> {
    let mut refusal = relay_body(proxy, response);
    *refusal.body_mut() = body::empty();
    refusal.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    refusal
}

/// The client's headers as sent upstream for a fetch pantry makes on its behalf: credentials and
/// Accept kept; hop-by-hop, Host, conditionals, ranges and content codings removed (pantry needs
/// the whole, unencoded representation to verify and store it).
pub(super) fn fetch_headers(parts: &Parts) -> HeaderMap {
    let mut headers = parts.headers.clone();
    hop_by_hop::strip(&mut headers);
    for name in [
        header::HOST,
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::ACCEPT_ENCODING,
    ] {
        headers.remove(name);
    }
    headers
}
