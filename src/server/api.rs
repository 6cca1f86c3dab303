//! The admin API for pipelines, on the admin port (`--admin-listen`):
//!
//! - `POST /api/prefetch` `{"images": ["alpine:3.20", …], "platform": "linux/amd64"}` starts a
//!   prefetch and answers `202 {"id": …}`; with `?wait=1` it answers when the prefetch is done
//!   (one `curl` in a CI job warms the cache before a rollout);
//! - `GET /api/prefetch/ID` tells its progress: per image its state, manifests, blobs fetched and
//!   already held, bytes; the bytes planned and received so far;
//! - `GET /api/status`: what pantry is doing now (see `server::status`);
//! - `POST /api/purge` `{"digest": "sha256:…"}` or `{"reference": "registry/repo[:tag]"}` removes
//!   content or remembered tags, as `pantry cache purge` does.
//!
//! With `admin_token_file` set every call needs `Authorization: Bearer TOKEN`, loopback or not;
//! without it the API answers only when the admin port listens on loopback.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use tokio::sync::watch;

use crate::{
    body::{self, Body},
    cache::inventory::{self, Purge},
    ingress::loaded::Loaded,
    ingress::Ingress,
    prefetch::{Prefetcher, Progress},
    registry::{manifest::Platform, reference::ImageRef},
};

/// Request bodies larger than this are refused.
const MAX_BODY: usize = 64 * 1024;
/// Finished prefetches remembered for `GET /api/prefetch/ID`.
const KEPT_JOBS: usize = 100;
/// Images one prefetch may name.
const MAX_IMAGES: usize = 1000;

/// The API's state: its prefetch jobs.
#[derive(Debug)]
pub struct Api {
    ingress: Arc<Ingress>,
    loopback: bool,
    jobs: Mutex<VecDeque<Arc<Job>>>,
    next: AtomicU64,
}

/// One prefetch started through the API.
#[derive(Debug)]
struct Job {
    id: String,
    images: Vec<ImageRef>,
    results: Mutex<Vec<serde_json::Value>>,
    planned: AtomicU64,
    received: AtomicU64,
    done: watch::Sender<bool>,
}

impl Progress for Job {
    fn planned(&self, bytes: u64) {
        self.planned.fetch_add(bytes, Ordering::Relaxed);
    }
    fn advanced(&self, bytes: u64) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Job {
    fn status(&self) -> serde_json::Value {
        let done = *self.done.borrow();
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let failed = results.iter().any(|r| r["state"] == "failed");
        let images: Vec<serde_json::Value> = self
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                results.get(i).cloned().unwrap_or_else(|| {
                    let state = if i == results.len() { "running" } else { "queued" };
                    serde_json::json!({ "image": image.to_string(), "state": state })
                })
            })
            .collect();
        serde_json::json!({
            "id": self.id,
            "state": match (done, failed) { (false, _) => "running", (true, false) => "done", (true, true) => "failed" },
            "bytes_planned": self.planned.load(Ordering::Relaxed),
            "bytes_received": self.received.load(Ordering::Relaxed),
            "images": images,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefetchRequest {
    images: Vec<String>,
    platform: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    digest: Option<String>,
    reference: Option<String>,
}

impl Api {
    /// The API of `ingress`'s pantry; `loopback`: the admin port listens on loopback only.
    pub fn new(ingress: Arc<Ingress>, loopback: bool) -> Self {
        Self { ingress, loopback, jobs: Mutex::default(), next: AtomicU64::new(1) }
    }

    /// Answers one `/api/…` request.
    pub async fn handle(&self, request: Request<hyper::body::Incoming>) -> Response<Body> {
        if let Some(refusal) = self.refusal(&request) {
            return refusal;
        }
        if request.method() == Method::POST && !is_json(request.headers()) {
            // A page in a browser can POST a form here without asking; it cannot send JSON so.
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request body as Content-Type: application/json",
            );
        }
        let (parts, incoming) = request.into_parts();
        let path = parts.uri.path().to_string();
        let wait = parts.uri.query().is_some_and(|q| q.split('&').any(|p| p == "wait=1" || p == "wait=true"));
        match (&parts.method, path.as_str()) {
            (&Method::POST, "/api/prefetch") => match read_json::<PrefetchRequest>(incoming).await {
                Ok(asked) => self.prefetch(asked, wait).await,
                Err(why) => error(StatusCode::BAD_REQUEST, &why),
            },
            (&Method::GET, _) if path.starts_with("/api/prefetch/") => {
                let id = &path["/api/prefetch/".len()..];
                match self.job(id) {
                    Some(job) => json(StatusCode::OK, &job.status()),
                    None => error(
                        StatusCode::NOT_FOUND,
                        &format!("no prefetch {id:?} (only the last {KEPT_JOBS} are kept)"),
                    ),
                }
            }
            (&Method::GET, "/api/status") => json(StatusCode::OK, &super::status::snapshot(&self.ingress)),
            (&Method::POST, "/api/purge") => match read_json::<PurgeRequest>(incoming).await {
                Ok(asked) => self.purge(asked).await,
                Err(why) => error(StatusCode::BAD_REQUEST, &why),
            },
            _ => error(
                StatusCode::NOT_FOUND,
                "API routes: GET /api/status, POST /api/prefetch, GET /api/prefetch/ID, POST /api/purge",
            ),
        }
    }

    /// Why `request` may not use the API, as the answer to give; `None` when it may.
    pub fn refusal<B>(&self, request: &Request<B>) -> Option<Response<Body>> {
        refusal(&self.ingress.loaded.load(), request, self.loopback, false)
    }

    async fn prefetch(&self, asked: PrefetchRequest, wait: bool) -> Response<Body> {
        if asked.images.is_empty() || asked.images.len() > MAX_IMAGES {
            return error(StatusCode::BAD_REQUEST, &format!("give 1 to {MAX_IMAGES} images"));
        }
        let mut images = Vec::with_capacity(asked.images.len());
        for text in &asked.images {
            match text.parse::<ImageRef>() {
                Ok(image) => images.push(image),
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("image {text:?}: {e}")),
            }
        }
        let platform = match asked.platform.as_deref().map(Platform::parse).transpose() {
            Ok(platform) => platform,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("platform: {e}")),
        };
        let id = format!("p{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (done, mut finished) = watch::channel(false);
        let job = Arc::new(Job {
            id: id.clone(),
            images,
            results: Mutex::default(),
            planned: AtomicU64::new(0),
            received: AtomicU64::new(0),
            done,
        });
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if jobs.len() >= KEPT_JOBS {
                jobs.pop_front();
            }
            jobs.push_back(Arc::clone(&job));
        }
        let prefetcher = Prefetcher::new(self.ingress.proxy.clone(), platform, None);
        let running = Arc::clone(&job);
        self.ingress.shutdown.spawn(async move {
            for image in &running.images {
                let result = match prefetcher.image(image, running.as_ref()).await {
                    Ok(summary) => serde_json::json!({
                        "image": image.to_string(), "state": "done", "manifests": summary.manifests,
                        "fetched": summary.fetched, "already": summary.already, "bytes": summary.bytes,
                    }),
                    Err(error) => {
                        serde_json::json!({ "image": image.to_string(), "state": "failed", "error": error })
                    }
                };
                tracing::info!(job = running.id, %image, state = %result["state"], "API prefetch");
                running.results.lock().unwrap_or_else(|e| e.into_inner()).push(result);
            }
            running.done.send_replace(true);
        });
        if wait {
            let _ = finished.wait_for(|done| *done).await;
            let status = job.status();
            let code = if status["state"] == "done" { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
            return json(code, &status);
        }
        let mut accepted = json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "id": id, "status": format!("/api/prefetch/{id}") }),
        );
        if let Ok(location) = HeaderValue::from_str(&format!("/api/prefetch/{id}")) {
            accepted.headers_mut().insert(header::LOCATION, location);
        }
        accepted
    }

    fn job(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|j| j.id == id).cloned()
    }

    async fn purge(&self, asked: PurgeRequest) -> Response<Body> {
        let text = match (asked.digest, asked.reference) {
            (Some(digest), None) => digest,
            (None, Some(reference)) => reference,
            _ => return error(StatusCode::BAD_REQUEST, "give one of digest or reference"),
        };
        let what = match Purge::parse(&text) {
            Ok(what) => what,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        };
        let root = self.ingress.config.load().startup.cache_dir.clone();
        match tokio::task::spawn_blocking(move || inventory::purge(&root, &what)).await {
            Ok(removed) => {
                self.ingress.proxy.store().forget_copies();
                tracing::info!(target = text, removed, "API purge");
                json(StatusCode::OK, &serde_json::json!({ "removed": removed }))
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("purge failed: {e}")),
        }
    }
}

/// Why `request` may not read the status or use the API, as the answer to give; `None` when it
/// may. With `admin_token_file` set the token is needed, loopback or not: as `Bearer TOKEN`, or as
/// the password of Basic credentials (any user name), which a browser asks for when `browser` (the
/// challenge is then Basic). Without one only a `local` request may: one to a loopback admin port,
/// or from a loopback client.
pub fn refusal<B>(
    loaded: &Loaded,
    request: &Request<B>,
    local: bool,
    browser: bool,
) -> Option<Response<Body>> {
    let Some(token) = &loaded.admin_token else {
        if local && names_this_machine(request) {
            return None;
        }
        if local {
            // A browser on this machine sent it for a page of another site whose name resolves
            // to loopback (DNS rebinding): it must not read the status or act on it.
            return Some(error(
                StatusCode::FORBIDDEN,
                "without admin_token_file, the Host must be localhost or an address",
            ));
        }
        return Some(error(
            StatusCode::FORBIDDEN,
            "the API and status page answer beyond loopback only with admin_token_file set",
        ));
    };
    let given =
        request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(presented);
    // Digests compared, so the comparison's time says nothing about the token.
    let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().to_vec();
    if given.is_some_and(|given| digest(given.trim()) == digest(token.expose())) {
        return None;
    }
    let mut refusal =
        error(StatusCode::UNAUTHORIZED, "this needs the admin token: Authorization: Bearer <admin token>");
    let challenge = if browser { "Basic realm=\"pantry admin token\"" } else { "Bearer realm=\"pantry\"" };
    refusal.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    Some(refusal)
}

/// Whether the request's `Host` names this machine by `localhost` or an address literal, as
/// requests not sent for some other site's page do.
fn names_this_machine<B>(request: &Request<B>) -> bool {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let name = crate::target::bare(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// The token in an `Authorization` value: a Bearer token, or a Basic password.
fn presented(value: &str) -> Option<String> {
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.to_string());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, password)| password.to_string())
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The request's JSON body, or why it is not one of `T`.
async fn read_json<T: serde::de::DeserializeOwned>(incoming: hyper::body::Incoming) -> Result<T, String> {
    let bytes: Bytes = match Limited::new(incoming, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Err(format!("request body: {e}")),
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("request body: {e}"))
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string() + "\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}
