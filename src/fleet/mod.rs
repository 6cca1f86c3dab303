//! A fleet of pantries: one origin fetch per blob for all of them.
//!
//! Each digest has one owner among the live members, by rendezvous hashing ([`rendezvous`]) over
//! the members this node knows ([`members`]: the static list, a DNS name's addresses, itself). A
//! node that misses content it does not own asks the owner over the fleet port — the registry API
//! over HTTPS with mutual TLS, leaves from the shared CA ([`identity`]) — naming the origin in
//! [`ORIGIN_HEADER`] and passing the client's own credentials; the owner answers from its store or
//! from its single flight, exactly as it would answer that client, and never passes a member's
//! request on ([`FromPeer`]). The asking node streams the answer into its own single flight
//! (verified against the digest like any upstream's, kept in its own store), so N nodes with M
//! clients each make one origin fetch.
//!
//! Access stays where the client is: the owner applies the same rules to the client's credentials
//! that a single pantry applies, and the asking node records what it got no wider than a fetch
//! with those credentials (content an anonymous client got is public; any other is known to its
//! registry only, and other clients are asked about at the registry as usual).
//!
//! A member that does not answer (refused, timed out, broke off mid-answer) is skipped for a
//! cool-down; its keys go to the next member in rank, and this node fetches itself when it is
//! next or no member answers.

pub mod identity;
pub mod members;
pub mod rendezvous;

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};

use crate::{
    body::{self, Body, BoxError},
    config::{PeersDns, Startup},
    metrics::Metrics,
    mitm::Authority,
    shutdown::Shutdown,
    target::Target,
    upstream::Dialer,
};
use identity::{Identity, IdentityError};
use members::{Member, Members};

/// The header of a member's request that names the origin (`https://host:port`) it is for.
pub const ORIGIN_HEADER: &str = "pantry-origin";

/// Marks a request a fleet member sent: answered by this node, never passed on to another member
/// (members that briefly disagree about the owner cannot bounce a request between them).
#[derive(Debug, Clone, Copy)]
pub struct FromPeer;

/// Members are near: one that does not accept a connection in this long counts as down.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the members' DNS name is resolved again.
pub const DNS_INTERVAL: Duration = Duration::from_secs(10);

/// One request to a member.
struct Ask<'a> {
    method: Method,
    origin: &'a Target,
    path: &'a str,
    headers: &'a HeaderMap,
}

/// How far down the rank a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// To this node: the members ranked above it own the content.
    Owner,
    /// Every other member, wherever this node ranks.
    Anyone,
}

/// This node's view of the fleet and its client towards the other members.
#[derive(Debug)]
pub struct Fleet {
    members: Arc<Members>,
    identity: Arc<Identity>,
    client: Client<HttpsConnector<Dialer>, Body>,
    metrics: Arc<Metrics>,
    response_timeout: Duration,
}

impl Fleet {
    /// The fleet `startup` describes, if it names a fleet port.
    pub fn new(
        startup: &Startup,
        authority: Arc<Authority>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Arc<Self>>, IdentityError> {
        let Some(own) = startup.advertise.clone().filter(|_| startup.fleet_listen.is_some()) else {
            return Ok(None);
        };
        let identity = Identity::new(authority, &own.host)?;
        let dialer = Dialer::new(&startup.resolve, PEER_CONNECT_TIMEOUT);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(identity.client_config()?)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(dialer);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(startup.upstream_idle_timeout)
            .build(connector);
        let listed = |t: &Target| t.host_port() == own.host_port();
        if !startup.peers.is_empty() && !startup.peers.iter().any(listed) {
            // Harmless when the list leaves this node out on purpose; a node listed under another
            // name than it advertises is asked over the network by itself, and its leaf names
            // only the advertised host.
            tracing::warn!(advertise = %format!("https://{}", own.host_port()), "this node's --advertise URL is not among --peers: list every member as the others reach it");
        }
        let members = Arc::new(Members::new(own, &startup.peers, Arc::clone(&metrics)));
        let response_timeout = startup.upstream_response_timeout;
        Ok(Some(Arc::new(Self { members, identity, client, metrics, response_timeout })))
    }

    /// The members and their states.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The fleet port's TLS configuration (mutual TLS with the shared CA).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, IdentityError> {
        self.identity.server_config()
    }

    /// Resolves `dns` now and every [`DNS_INTERVAL`] while pantry runs; a failed lookup keeps the
    /// members it had.
    pub fn spawn_dns(&self, dns: PeersDns, shutdown: &Shutdown) {
        let members = Arc::clone(&self.members);
        shutdown.spawn_background(async move {
            let mut every = tokio::time::interval(DNS_INTERVAL);
            loop {
                every.tick().await;
                match tokio::net::lookup_host((dns.name.as_str(), dns.port)).await {
                    Ok(addresses) => members.set_from_dns(
                        addresses
                            .filter_map(|a| Target::new(true, &a.ip().to_string(), a.port()).ok())
                            .map(Member::new)
                            .collect(),
                    ),
                    Err(error) => tracing::warn!(%dns, %error, "cannot resolve the fleet's members; keeping the last ones"),
                }
            }
        });
    }

    /// Asks the members ranked for `key` for `path` of `origin` (a body-less `method` with
    /// `headers`), the next in rank when one does not answer, as far as `until` says: up to this
    /// node ([`Until::Owner`]: `None` when this node is the owner, or the owner could not get it
    /// (a 5xx): the caller asks the origin itself), or every other member ([`Until::Anyone`]: what
    /// a node does when it owns content it lacks and the origin cannot be reached, so that what
    /// the fleet had is still served: a member's store, its records, its stale tags).
    pub async fn ask(
        &self,
        until: Until,
        key: &str,
        method: Method,
        origin: &Target,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        self.ask_in_rank(key, Ask { method, origin, path, headers }, until).await
    }

    async fn ask_in_rank(&self, key: &str, ask: Ask<'_>, until: Until) -> Option<Response<Body>> {
        let scheme = if ask.origin.https { "https" } else { "http" };
        let origin_url = HeaderValue::from_str(&format!("{scheme}://{}", ask.origin.host_port())).ok()?;
        for member in self.members.ranked(key) {
            if &member == self.members.own() {
                match until {
                    Until::Owner => return None,
                    Until::Anyone => continue,
                }
            }
            let Ok(uri) = format!("{}{}", member.url, ask.path).parse::<http::Uri>() else { return None };
            let mut request = Request::new(body::empty());
            *request.method_mut() = ask.method.clone();
            *request.uri_mut() = uri;
            *request.headers_mut() = ask.headers.clone();
            request.headers_mut().insert(ORIGIN_HEADER, origin_url.clone());
            let error = match tokio::time::timeout(self.response_timeout, self.client.request(request)).await
            {
                Ok(Ok(response)) if response.status().is_server_error() => {
                    self.metrics.peer_request("error");
                    let status = response.status().as_u16();
                    tracing::info!(member = %member.url, status, key, "the member could not get it");
                    match until {
                        Until::Owner => return None,
                        Until::Anyone => continue,
                    }
                }
                Ok(Ok(response)) => {
                    let ok = response.status() == StatusCode::OK;
                    self.metrics.peer_request(if ok { "ok" } else { "refused" });
                    tracing::debug!(member = %member.url, status = response.status().as_u16(), key, "answered by a fleet member");
                    let (parts, incoming) = response.into_parts();
                    let body = self.watched(body::incoming(incoming), member, ok);
                    return Some(Response::from_parts(parts, body));
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {}", humantime::format_duration(self.response_timeout)),
            };
            self.metrics.peer_request("unreachable");
            tracing::info!(member = %member.url, %error, key, "fleet member did not answer; asking the next");
            self.members.failed(&member);
        }
        None
    }

    /// `body` from `member` (content, when `counted`: its bytes count as bytes from peers); a
    /// member that breaks it off cools down.
    fn watched(&self, body: Body, member: Member, counted: bool) -> Body {
        let (members, metrics) = (Arc::clone(&self.members), Arc::clone(&self.metrics));
        let frames = futures_util::stream::unfold(Some(body), move |body| {
            let (members, metrics, member) = (Arc::clone(&members), Arc::clone(&metrics), member.clone());
            async move {
                let mut body = body?;
                match body.frame().await? {
                    Ok(frame) => {
                        if counted {
                            metrics.from_peers(frame.data_ref().map_or(0, |d| d.len() as u64));
                        }
                        Some((Ok(frame), Some(body)))
                    }
                    Err(error) => {
                        metrics.peer_request("broken");
                        tracing::info!(member = %member.url, %error, "fleet member broke off an answer");
                        members.failed(&member);
                        Some((Err::<_, BoxError>(error), None))
                    }
                }
            }
        });
        http_body_util::StreamBody::new(frames).boxed()
    }
}
