//! Responses built from content by digest, in one place ([`answer`]) whether the bytes are stored,
//! in flight or in memory: GET, HEAD, single ranges and `If-None-Match`, with the headers
//! registries send (`Content-Type`, `Docker-Content-Digest`, `ETag`, `Content-Length`). The
//! HTTP cache's answers, whose headers come from their policy, are built here too ([`with_headers`]).

use std::io::SeekFrom;

use futures_util::TryStreamExt;
use http::{header, request::Parts, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use bytes::Bytes;
use tokio::sync::watch;

use super::{coalesce::FlightState, range::ByteRange, store::CachedBlob};
use crate::{
    body::{self, Body, BoxError},
    cache_status::CacheStatus,
    registry::digest::Digest,
};

/// Reads files in chunks of this size.
pub const CHUNK: usize = 64 * 1024;

/// Headers every answer about `digest` carries (besides its `Cache-Status`).
pub fn digest_headers(digest: &Digest, media_type: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = media_type.unwrap_or("application/octet-stream");
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(digest.as_str()) {
        headers.insert("docker-content-digest", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{digest}\"")) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers
}

/// Whether `If-None-Match` names this digest (quoted, weak or bare) or `*`.
fn not_modified(request: &Parts, digest: &Digest) -> bool {
    request.headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',')
            .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|tag| tag == "*" || tag == digest.as_str())
    })
}

/// Where the bytes of an answer about a digest come from.
pub enum Content<'a> {
    /// A stored blob, held from eviction until the body is sent; `served` counts its bytes, and
    /// `verify` checks a whole read against the digest (see [`file_body`]).
    Stored {
        /// The blob (its hold travels into the body).
        blob: &'a CachedBlob,
        /// Counts the bytes sent.
        served: metrics::Counter,
        /// Whether a whole read is verified as it streams.
        verify: bool,
    },
    /// A fetch in flight: what is spooled, then the rest as it arrives; without a size known in
    /// advance the whole body is sent as it comes (no ranges, no length).
    Flight {
        /// The fetch's state, followed by the body.
        receiver: watch::Receiver<FlightState>,
        /// Its size, when the upstream said it.
        size: Option<u64>,
    },
    /// Bytes in memory (a manifest just fetched).
    Memory(Bytes),
}

/// The one answer about `digest` for every source of its bytes: registry headers (`Content-Type`
/// from `media_type`, `Docker-Content-Digest`, `ETag`, `Cache-Status`), then 304 for a matching
/// `If-None-Match`, 206 or 416 for a `Range`, 200 otherwise; no body for HEAD.
pub async fn answer(
    request: &Parts,
    digest: &Digest,
    media_type: Option<&str>,
    cache_status: CacheStatus,
    content: Content<'_>,
) -> Response<Body> {
    let headers = digest_headers(digest, media_type);
    let size = match &content {
        Content::Stored { blob, .. } => Some(blob.size),
        Content::Flight { size, .. } => *size,
        Content::Memory(bytes) => Some(bytes.len() as u64),
    };
    let range = request.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match size {
        Some(size) => match plan(request, digest, range, size) {
            ReadPlan::Send { status, start, len } => (status, start, len),
            other => return early(other, size, headers, cache_status),
        },
        None => (StatusCode::OK, 0, u64::MAX),
    };
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    cache_status.set(&mut response);
    if let Some(size) = size {
        set_length(&mut response, status, start, len, size);
    }
    if request.method == Method::HEAD || len == 0 {
        return response;
    }
    *response.body_mut() = match content {
        Content::Stored { blob, served, verify } => match file_body(blob, start, len, served, verify).await {
            Ok(body) => body,
            Err(answer) => return answer,
        },
        Content::Flight { receiver, size } => {
            super::coalesce::follow(receiver, start, size.map(|_| start + len))
        }
        Content::Memory(bytes) => body::full(bytes.slice(start as usize..(start + len) as usize)),
    };
    response
}

/// An answer from stored content whose headers the caller chose (the HTTP cache's, from its
/// policy): hop-by-hop headers dropped, `Content-Length` and `Cache-Status` set, the whole content
/// as the body (none for HEAD).
pub async fn with_headers(
    blob: &CachedBlob,
    status: StatusCode,
    mut headers: HeaderMap,
    method: &Method,
    cache_status: CacheStatus,
    (served, verify): (metrics::Counter, bool),
) -> Response<Body> {
    crate::hop_by_hop::strip(&mut headers);
    headers.insert(header::CONTENT_LENGTH, blob.size.into());
    let body = if *method == Method::HEAD {
        body::empty()
    } else {
        match file_body(blob, 0, blob.size, served, verify).await {
            Ok(body) => body,
            Err(answer) => return answer,
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    cache_status.set(&mut response);
    response
}

/// `len` bytes of `blob` from `start` as a body, or pantry's own 500 when the file cannot be
/// opened (logged). The blob's hold travels into the body, keeping the content from eviction until
/// the body is sent or dropped, and `served` counts the bytes. With `verify`, a whole read is
/// hashed as it streams and its last chunk is sent only if the content matches its digest;
/// otherwise the body ends in an error (the client never sees a complete transfer) and the file is
/// removed. Small content was verified when it was looked up.
async fn file_body(
    blob: &CachedBlob,
    start: u64,
    len: u64,
    served: metrics::Counter,
    verify: bool,
) -> Result<Body, Response<Body>> {
    readable_body(blob, start, len, served, verify).await.map_err(|error| {
        tracing::warn!(%error, path = %blob.path.display(), "cached content vanished while serving");
        crate::error::ProxyError::Internal("cached content could not be read".into()).into_response()
    })
}

async fn readable_body(
    blob: &CachedBlob,
    start: u64,
    len: u64,
    served: metrics::Counter,
    verify: bool,
) -> std::io::Result<Body> {
    if let Some(bytes) = &blob.small {
        // read with the lookup (manifests, configs): no file to open
        let (start, end) = (start as usize, (start + len) as usize);
        let part = bytes.get(start..end).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        served.increment(len);
        return Ok(body::full(bytes.slice_ref(part)));
    }
    let (file, pin) = (open_at(&blob.path, start).await?, blob.held.clone());
    let mut check = (verify && start == 0 && len == blob.size).then(|| ReadCheck {
        verifier: Some(blob.digest.verifier()),
        remaining: len,
        path: blob.path.clone(),
        digest: blob.digest.clone(),
    });
    let stream =
        ReaderStream::with_capacity(file.take(len), CHUNK).map_err(BoxError::from).and_then(move |bytes| {
            let _reading = &pin;
            let checked = match check.as_mut() {
                Some(check) => check.next(&bytes),
                None => Ok(()),
            };
            if checked.is_ok() {
                served.increment(bytes.len() as u64);
            }
            std::future::ready(checked.map(|()| Frame::data(bytes)))
        });
    Ok(BodyExt::boxed(StreamBody::new(stream)))
}

/// A whole read being verified against its digest (see [`file_body`]).
struct ReadCheck {
    verifier: Option<crate::registry::digest::Verifier>,
    remaining: u64,
    path: std::path::PathBuf,
    digest: Digest,
}

impl ReadCheck {
    /// Feeds the next chunk; at the last one, `Err` if the content does not match its digest.
    fn next(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        let Some(verifier) = self.verifier.as_mut() else { return Ok(()) };
        verifier.update(bytes);
        self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
        if self.remaining > 0 {
            return Ok(());
        }
        let finished = self.verifier.take().map_or(Ok(()), |v| v.finish());
        finished.map_err(|mismatch| {
            tracing::warn!(digest = %self.digest, path = %self.path.display(), %mismatch, "stored content does not match its digest; the transfer is broken off and the file removed");
            let _ = std::fs::remove_file(&self.path);
            BoxError::from(format!("stored content of {} is corrupt", self.digest))
        })
    }
}

/// What to answer for a read of content of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPlan {
    /// Send `len` bytes from `start` with `status` (200 or 206).
    Send {
        /// 200 or 206.
        status: StatusCode,
        /// First byte.
        start: u64,
        /// Bytes to send.
        len: u64,
    },
    /// 304: the client has it.
    NotModified,
    /// 416: the range is outside the content.
    Unsatisfiable,
}

/// Decides between 200, 206, 304 and 416.
fn plan(request: &Parts, digest: &Digest, range: Option<&str>, size: u64) -> ReadPlan {
    if not_modified(request, digest) {
        return ReadPlan::NotModified;
    }
    match ByteRange::parse(range, size) {
        ByteRange::Full => ReadPlan::Send { status: StatusCode::OK, start: 0, len: size },
        ByteRange::Partial { start, end } => {
            ReadPlan::Send { status: StatusCode::PARTIAL_CONTENT, start, len: end - start + 1 }
        }
        ByteRange::Unsatisfiable => ReadPlan::Unsatisfiable,
    }
}

/// The bodiless answer for [`ReadPlan::NotModified`] or [`ReadPlan::Unsatisfiable`], with `headers`.
fn early(plan: ReadPlan, size: u64, headers: HeaderMap, cache_status: CacheStatus) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.headers_mut() = headers;
    cache_status.set(&mut response);
    if plan == ReadPlan::Unsatisfiable {
        *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    } else {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    response
}

/// Sets `Content-Length` (and `Content-Range` for 206).
fn set_length<B>(response: &mut Response<B>, status: StatusCode, start: u64, len: u64, size: u64) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
}

async fn open_at(path: &std::path::Path, start: u64) -> std::io::Result<tokio::fs::File> {
    let owned = path.to_path_buf();
    let file = tokio::task::spawn_blocking(move || super::content::open(&owned))
        .await
        .map_err(std::io::Error::other)??;
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    Ok(file)
}
