//! h2 rapid reset (CVE-2023-44487): a client opens streams and cancels each at once, so the server
//! starts work for requests nobody waits for, as fast as the client can send two frames. h2 refuses
//! streams cancelled before the server takes them up, and hyper bounds the streams open at one
//! time; this bounds the rest. Each request of a connection is watched until its response body
//! ends: one dropped earlier (the client reset the stream) counts as cancelled, and once a
//! connection's client cancelled more than [`FLOOR`] requests and more than it let finish, the
//! connection is asked to go away (GOAWAY, then close once the current streams end), as nginx's and
//! Go's servers do. Real clients cancel now and then, never most of what they ask.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Response, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;

use crate::body::{Body, BoxError};

/// Cancelled requests a connection may have before the ratio to finished ones is looked at.
pub const FLOOR: usize = 100;

/// Counts one connection's finished and cancelled requests.
#[derive(Debug, Default)]
pub struct Cancels {
    finished: AtomicUsize,
    cancelled: AtomicUsize,
    abusive: CancellationToken,
}

impl Cancels {
    /// Counters for a new connection.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Runs one request's `answer` and watches its response body: dropped before the body ends,
    /// the request counts as cancelled. Only h2 requests are watched: an HTTP/1.1 client cancels
    /// by closing its connection, and hyper's HTTP/1.1 server drops a body once Content-Length
    /// bytes went out, before the body itself says it ended (that is no cancellation).
    pub fn watch<E>(
        self: &Arc<Self>,
        version: Version,
        answer: impl Future<Output = Result<Response<Body>, E>>,
    ) -> impl Future<Output = Result<Response<Body>, E>> {
        let watch = (version == Version::HTTP_2).then(|| Watch { cancels: Arc::clone(self), done: false });
        async move {
            let response = answer.await?;
            let Some(watch) = watch else { return Ok(response) };
            let (parts, inner) = response.into_parts();
            let mut watched = Watched { inner, watch };
            if watched.inner.is_end_stream() {
                watched.watch.finish();
            }
            Ok(Response::from_parts(parts, watched.boxed()))
        }
    }

    /// Completes once the client cancelled too many requests.
    pub async fn abusive(&self) {
        self.abusive.cancelled().await
    }

    fn cancelled(&self) {
        let cancelled = self.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        if cancelled > FLOOR
            && cancelled > self.finished.load(Ordering::Relaxed)
            && !self.abusive.is_cancelled()
        {
            tracing::warn!(
                cancelled,
                "a client cancels most of its requests (h2 rapid reset?); closing its connection"
            );
            self.abusive.cancel();
        }
    }
}

struct Watch {
    cancels: Arc<Cancels>,
    done: bool,
}

impl Watch {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.cancels.finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A response body that tells its [`Watch`] when it ended (or failed: not the client's doing).
struct Watched {
    inner: Body,
    watch: Watch,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => this.watch.finish(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.watch.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            self.cancels.cancelled();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = Result<Response<Body>, std::convert::Infallible>;

    async fn answered(cancels: &Arc<Cancels>, body: Body) -> Response<Body> {
        cancels.watch(Version::HTTP_2, async { Answer::Ok(Response::new(body)) }).await.unwrap()
    }

    #[tokio::test]
    async fn cancelling_most_requests_past_the_floor_marks_the_connection() {
        let cancels = Cancels::new();
        for _ in 0..FLOOR {
            drop(answered(&cancels, crate::body::empty()).await); // nothing to send: finished
            let read = answered(&cancels, crate::body::full("data")).await.into_body().collect().await;
            assert_eq!(read.unwrap().to_bytes(), "data");
        }
        for _ in 0..2 * FLOOR {
            // reset before the answer
            drop(cancels.watch(Version::HTTP_2, std::future::pending::<Answer>()));
        }
        assert!(!cancels.abusive.is_cancelled(), "as many finished as cancelled past the floor: fine");
        drop(answered(&cancels, crate::body::full("never read")).await); // reset during the body
        assert!(cancels.abusive.is_cancelled());
    }

    #[tokio::test]
    async fn http1_answers_are_not_watched() {
        // hyper's HTTP/1.1 server drops a body once Content-Length bytes went out, unfinished
        let cancels = Cancels::new();
        for _ in 0..3 * FLOOR {
            let answer = async { Answer::Ok(Response::new(crate::body::full("sent in full"))) };
            drop(cancels.watch(Version::HTTP_11, answer).await.unwrap());
            drop(cancels.watch(Version::HTTP_11, std::future::pending::<Answer>()));
        }
        assert!(!cancels.abusive.is_cancelled());
    }

    #[tokio::test]
    async fn a_few_cancels_never_do() {
        let cancels = Cancels::new();
        for _ in 0..FLOOR {
            drop(cancels.watch(Version::HTTP_2, std::future::pending::<Answer>()));
        }
        assert!(!cancels.abusive.is_cancelled());
    }
}
