//! Filling the cache ahead of pulls: `pantry prefetch IMAGE...` and the scheduled refresh of
//! configured images. Requests go through the proxy core exactly as a client's would (same store,
//! single flight, tag rules and mirrors), so a blob a client is pulling at the same moment is
//! fetched once. Blobs already stored are skipped: an interrupted prefetch resumes where it left
//! off (per blob).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use arc_swap::ArcSwap;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use crate::{
    body::{self, Body},
    config::Config,
    credentials::challenge::{self as auth, Challenge},
    proxy::Proxy,
    registry::{
        manifest::{self, Blob, Platform, References},
        reference::ImageRef,
    },
    target::Target,
};

/// Every manifest type pantry can walk, as registries expect it in `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests and token answers larger than this are refused.
const MAX_SMALL_BODY: usize = 4 * 1024 * 1024;

/// Blobs fetched at the same time for one image.
const CONCURRENT_BLOBS: usize = 4;

/// Where progress goes (a progress bar, or nowhere).
pub trait Progress: Send + Sync {
    /// `bytes` more are to be fetched.
    fn planned(&self, bytes: u64);
    /// `bytes` more arrived.
    fn advanced(&self, bytes: u64);
}

/// No progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn planned(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}

/// What a prefetch of one image did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Manifests read (the image's, and one per platform of an index).
    pub manifests: usize,
    /// Blobs fetched now.
    pub fetched: usize,
    /// Blobs already in the cache.
    pub already: usize,
    /// Bytes of the blobs fetched now.
    pub bytes: u64,
}

/// Prefetches images through a proxy core.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    proxy: Proxy,
    platform: Option<Platform>,
    user: Option<String>,
}

impl Prefetcher {
    /// A prefetcher for `platform` (every platform of an index when `None`), authenticating as
    /// `user` (`name:password`) where a registry asks, anonymously otherwise.
    pub fn new(proxy: Proxy, platform: Option<Platform>, user: Option<String>) -> Self {
        Self { proxy, platform, user }
    }

    /// Fetches `image`'s manifests and every blob they name that the cache lacks.
    pub async fn image(&self, image: &ImageRef, progress: &dyn Progress) -> Result<Summary, String> {
        let url: Uri =
            format!("https://{}/", image.registry).parse().map_err(|e| format!("registry: {e}"))?;
        let target = Target::from_absolute(&url)?;
        let session = Session { prefetcher: self, target, authorization: tokio::sync::Mutex::new(None) };
        let mut summary = Summary::default();
        let mut manifests = VecDeque::from([image.manifest_path()]);
        let mut blobs: Vec<Blob> = Vec::new();
        while let Some(path) = manifests.pop_front() {
            let body = session.small(&path).await?;
            summary.manifests += 1;
            match manifest::references(&body)? {
                References::Index(children) => {
                    let wanted =
                        children.into_iter().filter(|child| match (&self.platform, &child.platform) {
                            (None, _) => true,
                            (Some(want), Some(have)) => want.accepts(have),
                            (Some(_), None) => false,
                        });
                    let paths: Vec<String> =
                        wanted.map(|c| format!("/v2/{}/manifests/{}", image.repository, c.digest)).collect();
                    if paths.is_empty() {
                        return Err(format!("{image} has no manifest for the requested platform"));
                    }
                    manifests.extend(paths);
                }
                References::Image(list) => {
                    for blob in list {
                        if !blobs.iter().any(|b| b.digest == blob.digest) {
                            blobs.push(blob);
                        }
                    }
                }
            }
        }
        let mut missing = Vec::new();
        for blob in blobs {
            if self.proxy.store().blob(&blob.digest).await.is_some() {
                summary.already += 1;
            } else {
                missing.push(blob);
            }
        }
        progress.planned(missing.iter().filter_map(|b| b.size).sum());
        let paths = missing.into_iter().map(|b| (format!("/v2/{}/blobs/{}", image.repository, b.digest), b));
        let results: Vec<Result<u64, String>> = stream::iter(paths)
            .map(|(path, blob)| {
                let session = &session;
                async move { session.blob(&path, &blob, progress).await }
            })
            .buffer_unordered(CONCURRENT_BLOBS)
            .collect()
            .await;
        for result in results {
            summary.bytes += result?;
            summary.fetched += 1;
        }
        Ok(summary)
    }
}

/// Requests to one registry, with the credential it asked for once obtained.
struct Session<'a> {
    prefetcher: &'a Prefetcher,
    target: Target,
    authorization: tokio::sync::Mutex<Option<HeaderValue>>,
}

impl Session<'_> {
    /// GET `path` through the proxy; answers a 401 challenge once and asks again.
    async fn get(&self, path: &str) -> Result<Response<Body>, String> {
        let response = self.send(path).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| format!("{path}: 401 without a challenge pantry can answer"))?;
        let credential =
            self.authenticate(&challenge).await.map_err(|e| format!("{path}: 401 Unauthorized: {e}"))?;
        *self.authorization.lock().await = Some(credential);
        self.send(path).await
    }

    async fn send(&self, path: &str) -> Result<Response<Body>, String> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, self.target.host_port())
            .header(header::ACCEPT, MANIFEST_ACCEPT);
        if let Some(authorization) = self.authorization.lock().await.clone() {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request.body(body::empty()).map_err(|e| format!("{path}: {e}"))?;
        Ok(self.prefetcher.proxy.handle(request, &self.target).await)
    }

    /// The `Authorization` value for `challenge`: a token from its realm, or Basic credentials.
    async fn authenticate(&self, challenge: &Challenge) -> Result<HeaderValue, String> {
        let user = self.prefetcher.user.as_deref();
        let value = match challenge {
            Challenge::Basic => auth::basic(
                user.ok_or_else(|| "the registry asks for a user name and password (--user)".to_string())?,
            ),
            Challenge::Bearer { .. } => {
                let url: Uri = challenge
                    .token_url()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| format!("token realm: {e}"))?;
                let target = Target::from_absolute(&url).map_err(|e| format!("token realm: {e}"))?;
                let path = url.path_and_query().map_or("/", |p| p.as_str());
                let mut request = Request::get(path).header(header::HOST, target.host_port());
                if let Some(user) = user {
                    request = request.header(header::AUTHORIZATION, auth::basic(user));
                }
                let request = request.body(body::empty()).map_err(|e| e.to_string())?;
                let response = self.prefetcher.proxy.handle(request, &target).await;
                if response.status() != StatusCode::OK {
                    return Err(format!("token endpoint {target} answered {}", response.status()));
                }
                let body = collect_small(response.into_body()).await?;
                format!(
                    "Bearer {}",
                    auth::token_from(&body).ok_or_else(|| "token endpoint sent no token".to_string())?
                )
            }
        };
        HeaderValue::from_str(&value).map_err(|_| "credential is not a valid header value".to_string())
    }

    /// A manifest's body.
    async fn small(&self, path: &str) -> Result<Bytes, String> {
        let response = self.get(path).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("{path}: {}", failure(&response)));
        }
        collect_small(response.into_body()).await.map_err(|e| format!("{path}: {e}"))
    }

    /// Fetches a blob into the cache (the proxy stores it as it streams); returns its size.
    async fn blob(&self, path: &str, blob: &Blob, progress: &dyn Progress) -> Result<u64, String> {
        let response = self.get(path).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("{path}: {}", failure(&response)));
        }
        let mut body = response.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("{}: transfer broke off: {e}", blob.digest))?;
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
                progress.advanced(data.len() as u64);
            }
        }
        if blob.size.is_some_and(|size| size != received) {
            return Err(format!(
                "{}: received {received} bytes, the manifest says {:?}",
                blob.digest, blob.size
            ));
        }
        Ok(received)
    }
}

/// `503 Service Unavailable (pantry;error=…)`: the status and pantry's reason when there is one.
fn failure(response: &Response<Body>) -> String {
    let status = response.status();
    match response.headers().get("proxy-status").and_then(|v| v.to_str().ok()) {
        Some(reason) => format!("{status} ({reason})"),
        None => status.to_string(),
    }
}

async fn collect_small(mut body: Body) -> Result<Bytes, String> {
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.map_err(|e| e.to_string())?.data_ref() {
            if bytes.len() + data.len() > MAX_SMALL_BODY {
                return Err(format!("answer larger than {MAX_SMALL_BODY} bytes"));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes.freeze())
}

pub use crate::config::Refresh;

/// Runs the `[refresh]` of the current configuration in the background until `shutdown` drains:
/// a round at start, then one `every` after the last round ended. The schedule is read anew at
/// every reload (`reloads` is woken by each), so a shorter `every`, a new image list or a
/// `[refresh]` table added or removed takes effect at once, not after the old interval.
pub fn spawn_refresh(
    proxy: Proxy,
    config: Arc<ArcSwap<Config>>,
    reloads: Arc<tokio::sync::Notify>,
    shutdown: &crate::shutdown::Shutdown,
) {
    shutdown.spawn_background(async move {
        let mut last_round: Option<tokio::time::Instant> = None;
        loop {
            // registered before the configuration is read: a reload in between still wakes it
            let reloaded = reloads.notified();
            tokio::pin!(reloaded);
            reloaded.as_mut().enable();
            let current = config.load_full();
            let refresh = current.live.refresh.as_ref().filter(|_| !current.live.offline);
            match wait_before_round(refresh.map(|r| r.every), last_round, tokio::time::Instant::now()) {
                Some(wait) if wait.is_zero() => {}
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = &mut reloaded => {}
                    }
                    continue;
                }
                None => {
                    reloaded.await;
                    continue;
                }
            }
            let Some(refresh) = refresh else { continue };
            let prefetcher = Prefetcher::new(proxy.clone(), refresh.platform.clone(), None);
            for image in &refresh.images {
                match prefetcher.image(image, &Quiet).await {
                    Ok(summary) => tracing::info!(
                        %image,
                        fetched = summary.fetched,
                        bytes = summary.bytes,
                        already = summary.already,
                        "refreshed"
                    ),
                    Err(error) => tracing::warn!(%image, %error, "refresh failed; next try on schedule"),
                }
            }
            last_round = Some(tokio::time::Instant::now());
        }
    });
}

/// How long to wait before the next refresh round: `None` while there is no schedule (wait for a
/// reload), zero when a round is due (`every` since the last one ended, or none ran yet).
fn wait_before_round(
    every: Option<Duration>,
    last_round: Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> Option<Duration> {
    let every = every?;
    Some(last_round.map_or(Duration::ZERO, |last| (last + every).saturating_duration_since(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_due_every_interval_after_the_last_and_never_without_a_schedule() {
        let now = tokio::time::Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(wait_before_round(None, Some(now), now), None, "no [refresh]: wait for a reload");
        assert_eq!(wait_before_round(Some(hour), None, now), Some(Duration::ZERO), "the first round at once");
        let ten_minutes_ago = now - Duration::from_secs(600);
        assert_eq!(
            wait_before_round(Some(hour), Some(ten_minutes_ago), now),
            Some(Duration::from_secs(3000))
        );
        let minute = Duration::from_secs(60);
        assert_eq!(
            wait_before_round(Some(minute), Some(ten_minutes_ago), now),
            Some(Duration::ZERO),
            "shortened by a reload: due already"
        );
    }
}
