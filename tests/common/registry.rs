//! A fake registry (TLS, in-process) that counts requests per route, and a fake CDN it can redirect
//! blob GETs to. Knobs: private repositories (Bearer `good`), lying about content, being down,
//! holding a blob's body at a gate.

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use pantry::body::{self, Body, BoxError};
use tokio::{net::TcpListener, sync::Notify};

use super::upstream::TestCa;

pub const TOKEN: &str = "Bearer good-7f3a9c1e5d-secret";
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Everything the fake registry serves and saw.
#[derive(Default)]
pub struct RegistryState {
    blobs: Mutex<HashMap<String, (Bytes, String)>>,
    tags: Mutex<HashMap<(String, String), String>>,
    private: Mutex<HashSet<String>>,
    /// Repositories that want any token from `/token` (anonymous token auth, like Docker Hub's).
    token_repos: Mutex<HashSet<String>>,
    realm: Mutex<String>,
    counts: Mutex<HashMap<String, usize>>,
    /// Cookie headers the registry received.
    pub cookies: Mutex<Vec<String>>,
    /// Authorization headers the CDN received (None = absent).
    pub cdn_authorizations: Mutex<Vec<Option<String>>>,
    /// Serve other bytes than the digest says.
    pub lie: AtomicBool,
    /// Hold HEADs of manifests by tag at `gate`.
    pub hold_tag_heads: AtomicBool,
    /// Accept requests but never answer them.
    pub stall: AtomicBool,
    /// Connections open now (after the TLS handshake, until the client or server ends them).
    pub open_connections: AtomicUsize,
    /// Answer every request with 503.
    pub down: AtomicBool,
    /// Redirect blob GETs to the CDN.
    pub redirect: AtomicBool,
    /// When set, blob bodies send half, then wait for `gate`.
    pub gated: AtomicBool,
    pub gate: Notify,
    /// When set, blob bodies send half, then fail (after the gate, if gated too).
    pub reset: AtomicBool,
    cdn: Mutex<Option<SocketAddr>>,
    /// Accounts: repositories only a user with the right password may read.
    pub logins: super::login::Logins,
    /// When set, every request is answered 429 with this `Retry-After`.
    pub too_many: Mutex<Option<String>>,
    /// When set, answers carry `ratelimit-limit: 100;w=21600` and this `ratelimit-remaining`.
    pub ratelimit_remaining: Mutex<Option<u32>>,
    /// When set, every answer carries this `Cache-Status` (the registry sits behind another cache).
    pub cache_status: Mutex<Option<String>>,
}

impl RegistryState {
    /// Adds a blob; returns its digest.
    pub fn add_blob(&self, bytes: impl Into<Bytes>, media_type: &str) -> String {
        let bytes = bytes.into();
        let digest = sha256(&bytes);
        self.blobs.lock().unwrap().insert(digest.clone(), (bytes, media_type.to_string()));
        digest
    }

    /// Points `repo:tag` at a manifest digest.
    pub fn tag(&self, repo: &str, tag: &str, digest: &str) {
        self.tags.lock().unwrap().insert((repo.to_string(), tag.to_string()), digest.to_string());
    }

    /// Makes `repo` require a token from this registry's `/token` (issued to anyone).
    pub fn require_token(&self, repo: &str) {
        self.token_repos.lock().unwrap().insert(repo.to_string());
    }

    /// Points the Bearer challenges at another token realm (URL).
    pub fn set_realm(&self, realm: &str) {
        *self.realm.lock().unwrap() = realm.to_string();
    }

    /// Makes `repo` require `Authorization: TOKEN`.
    pub fn make_private(&self, repo: &str) {
        self.private.lock().unwrap().insert(repo.to_string());
    }

    /// Requests seen for a key like `GET blob`, `HEAD manifest`, `GET cdn`.
    pub fn count(&self, key: &str) -> usize {
        self.counts.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn bump(&self, key: String) {
        *self.counts.lock().unwrap().entry(key).or_default() += 1;
    }
}

/// A running fake registry (and its CDN).
pub struct FakeRegistry {
    pub addr: SocketAddr,
    pub cdn: SocketAddr,
    pub ca: Arc<TestCa>,
    pub state: Arc<RegistryState>,
}

impl FakeRegistry {
    pub async fn start() -> Self {
        let ca = Arc::new(TestCa::new());
        let state = Arc::new(RegistryState::default());
        let addr = serve(Arc::clone(&ca), Arc::clone(&state), false).await;
        let cdn = serve(Arc::clone(&ca), Arc::clone(&state), true).await;
        *state.cdn.lock().unwrap() = Some(cdn);
        *state.realm.lock().unwrap() = format!("https://registry.test:{}/token", addr.port());
        Self { addr, cdn, ca, state }
    }

    /// `registry.test:PORT`, as clients name it.
    pub fn host(&self) -> String {
        format!("registry.test:{}", self.addr.port())
    }

    /// Configures pantry to intercept and resolve the registry and CDN and trust their CA.
    pub fn configure(&self, config: &mut pantry::config::Config) {
        use pantry::config::{HostPattern, ResolveRule};
        let (registry, cdn) = (self.addr.port(), self.cdn.port());
        config.live.intercept = vec![
            HostPattern::parse(&format!("registry.test:{registry}")).unwrap(),
            HostPattern::parse(&format!("cdn.test:{cdn}")).unwrap(),
        ];
        config.startup.resolve = vec![
            ResolveRule::parse(&format!("registry.test:{registry}:127.0.0.1")).unwrap(),
            ResolveRule::parse(&format!("cdn.test:{cdn}:127.0.0.1")).unwrap(),
        ];
        config.startup.upstream_ca = vec![self.ca.ca_file.clone()];
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

async fn serve(ca: Arc<TestCa>, state: Arc<RegistryState>, is_cdn: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, state) = (acceptor.clone(), Arc::clone(&state));
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let open = Arc::clone(&state);
                open.open_connections.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        if state.stall.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        let path = request.uri().path().to_string();
                        let tag_head = request.method() == Method::HEAD
                            && path.rsplit_once("/manifests/").is_some_and(|(_, r)| !r.contains(':'));
                        if tag_head && state.hold_tag_heads.load(Ordering::SeqCst) {
                            state.gate.notified().await;
                        }
                        if request.method() == Method::POST && path == "/token" {
                            let form =
                                request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            return Ok::<_, Infallible>(state.logins.token_form(&form));
                        }
                        let response = if is_cdn { cdn(request, &state) } else { registry(request, &state) };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                open.open_connections.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    addr
}

fn status(code: StatusCode) -> Response<Body> {
    Response::builder().status(code).body(body::empty()).unwrap()
}

fn registry(request: Request<Incoming>, state: &Arc<RegistryState>) -> Response<Body> {
    if state.down.load(Ordering::SeqCst) {
        state.bump(format!("{} down", request.method()));
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    if let Some(retry_after) = state.too_many.lock().unwrap().clone() {
        state.bump(format!("{} 429", request.method()));
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::RETRY_AFTER, retry_after)
            .body(body::full("{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}"))
            .unwrap();
    }
    let mut response = registry_answer(request, state);
    if let Some(remaining) = *state.ratelimit_remaining.lock().unwrap() {
        response.headers_mut().insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        response.headers_mut().insert("ratelimit-remaining", format!("{remaining};w=21600").parse().unwrap());
    }
    if let Some(value) = state.cache_status.lock().unwrap().clone() {
        response.headers_mut().insert("cache-status", value.parse().unwrap());
    }
    response
}

fn registry_answer(request: Request<Incoming>, state: &Arc<RegistryState>) -> Response<Body> {
    if let Some(cookie) = request.headers().get(header::COOKIE) {
        state.cookies.lock().unwrap().push(String::from_utf8_lossy(cookie.as_bytes()).into_owned());
    }
    let path = request.uri().path().to_string();
    let realm = state.realm.lock().unwrap().clone();
    if path == "/token" && state.logins.ping(&realm).is_some() {
        state.bump(format!("{} token", request.method()));
        return state.logins.token(request.headers(), request.uri().query().unwrap_or(""));
    }
    if path == "/token" {
        state.bump(format!("{} token", request.method()));
        let token = format!("{{\"token\":\"t{}\"}}", state.count("GET token"));
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(body::full(token))
            .unwrap();
    }
    if path.contains("/blobs/uploads/") {
        state.bump(format!("{} upload", request.method()));
        return Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(header::LOCATION, "/v2/upload/session-1")
            .body(body::empty())
            .unwrap();
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return status(StatusCode::NOT_FOUND) };
    if rest.is_empty() {
        state.bump(format!("{} ping", request.method()));
        return state.logins.ping(&realm).unwrap_or_else(|| status(StatusCode::OK));
    }
    let (repo, kind, reference) = if let Some((repo, digest)) = rest.rsplit_once("/blobs/") {
        (repo, "blob", digest)
    } else if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        (repo, if reference.contains(':') { "manifest" } else { "manifest-tag" }, reference)
    } else {
        return status(StatusCode::NOT_FOUND);
    };
    state.bump(format!("{} {kind}", request.method()));
    if let Some(refusal) = state.logins.refuse(request.headers(), repo, &realm) {
        return refusal;
    }
    let authorized = request.headers().get(header::AUTHORIZATION).is_some_and(|v| v == TOKEN);
    if state.private.lock().unwrap().contains(repo) && !authorized {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer realm=\"https://auth.test/token\"")
            .body(body::full("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}"))
            .unwrap();
    }
    let has_token =
        request.headers().get(header::AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"Bearer t"));
    if state.token_repos.lock().unwrap().contains(repo) && !has_token {
        let challenge = format!(
            "Bearer realm=\"{}\",service=\"registry.test\",scope=\"repository:{repo}:pull\"",
            state.realm.lock().unwrap()
        );
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, challenge)
            .body(body::full("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}"))
            .unwrap();
    }
    let digest =
        if kind == "manifest-tag" {
            match state.tags.lock().unwrap().get(&(repo.to_string(), reference.to_string())) {
                Some(digest) => digest.clone(),
                // As distribution answers: a JSON error (for a HEAD, its Content-Length without it).
                None => return Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body::full(
                        "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}\n",
                    ))
                    .unwrap(),
            }
        } else {
            reference.to_string()
        };
    let Some((bytes, media_type)) = state.blobs.lock().unwrap().get(&digest).cloned() else {
        return status(StatusCode::NOT_FOUND);
    };
    if kind == "blob" && request.method() == Method::GET && state.redirect.load(Ordering::SeqCst) {
        let cdn = state.cdn.lock().unwrap().unwrap();
        let location = format!("https://cdn.test:{}/content/{digest}?signature=abc", cdn.port());
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, location)
            .body(body::empty())
            .unwrap();
    }
    content(request.method(), bytes, &media_type, &digest, state)
}

fn cdn(request: Request<Incoming>, state: &Arc<RegistryState>) -> Response<Body> {
    if request.uri().path() == "/token" {
        state.bump(format!("{} cdn-token", request.method()));
        return state.logins.token(request.headers(), request.uri().query().unwrap_or(""));
    }
    state.bump(format!("{} cdn", request.method()));
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_string());
    state.cdn_authorizations.lock().unwrap().push(authorization);
    let digest = request.uri().path().trim_start_matches("/content/").to_string();
    let Some((bytes, _)) = state.blobs.lock().unwrap().get(&digest).cloned() else {
        return status(StatusCode::NOT_FOUND);
    };
    content(request.method(), bytes, "application/octet-stream", &digest, state)
}

fn content(
    method: &Method,
    bytes: Bytes,
    media_type: &str,
    digest: &str,
    state: &Arc<RegistryState>,
) -> Response<Body> {
    let mut bytes = bytes;
    if state.lie.load(Ordering::SeqCst) {
        let mut forged = bytes.to_vec();
        forged[0] ^= 0xff;
        bytes = forged.into();
    }
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("docker-content-digest", digest);
    if method == Method::HEAD {
        return builder.body(body::empty()).unwrap();
    }
    let (gated, reset) = (state.gated.load(Ordering::SeqCst), state.reset.load(Ordering::SeqCst));
    if !gated && !reset {
        return builder.body(body::full(bytes)).unwrap();
    }
    let half = bytes.len() / 2;
    let (first, rest) = (bytes.slice(..half), bytes.slice(half..));
    let state = Arc::clone(state);
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let (first, rest, state) = (first.clone(), rest.clone(), Arc::clone(&state));
        async move {
            match step {
                0 => Some((Ok::<_, BoxError>(Frame::data(first)), 1)),
                1 => {
                    if gated {
                        state.gate.notified().await;
                    }
                    if reset {
                        Some((Err("connection reset by fake registry".into()), 2))
                    } else {
                        Some((Ok(Frame::data(rest)), 2))
                    }
                }
                _ => None,
            }
        }
    });
    builder.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}
