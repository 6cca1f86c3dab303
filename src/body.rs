//! The one body type that flows through pantry: a boxed, streaming HTTP body.
//!
//! Bodies are never collected whole; every constructor here streams or holds a small, fixed buffer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};

/// Errors carried inside a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming body as pantry passes it between client, cache and upstream.
pub type Body = BoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A body holding a small, already known buffer (error messages, admin pages).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// Wraps hyper's incoming body without buffering it.
pub fn incoming(body: hyper::body::Incoming) -> Body {
    body.map_err(BoxError::from).boxed()
}

/// `body`, failing (so that the receiver sees a broken transfer, never a clean short one) when no
/// frame arrives for `idle`.
pub fn with_idle_timeout(body: Body, idle: Duration) -> Body {
    let frames = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(frame)) => Some((frame, Some(body))),
            Ok(None) => None,
            Err(_) => {
                let error = format!("upstream sent nothing for {}", humantime::format_duration(idle));
                Some((Err(BoxError::from(error)), None))
            }
        }
    });
    StreamBody::new(frames).boxed()
}

/// `body`, ending in an error instead of its last bytes when it does not hash to `digest`
/// (content passed through without being stored is still checked). The newest frame is held back
/// until the next one arrives, so a receiver with a Content-Length never sees a lie complete.
pub fn verified(body: Body, digest: crate::registry::digest::Digest) -> Body {
    struct State {
        body: Body,
        verifier: crate::registry::digest::Verifier,
        held: Option<http_body::Frame<Bytes>>,
    }
    let state = Some(State { body, verifier: digest.verifier(), held: None });
    let frames = futures_util::stream::unfold(state, |state| async move {
        let mut state = state?;
        loop {
            match state.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        state.verifier.update(data);
                    }
                    if let Some(previous) = state.held.replace(frame) {
                        return Some((Ok(previous), Some(state)));
                    }
                }
                Some(Err(error)) => return Some((Err(error), None)),
                None => {
                    return match state.verifier.finish() {
                        Ok(()) => state.held.take().map(|last| (Ok(last), None)),
                        Err(mismatch) => {
                            let error = format!("upstream sent content with digest {}", mismatch.actual);
                            Some((Err(BoxError::from(error)), None))
                        }
                    }
                }
            }
        }
    });
    StreamBody::new(frames).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_fails_after_the_idle_time() {
        let stalled =
            StreamBody::new(futures_util::stream::pending::<Result<http_body::Frame<Bytes>, BoxError>>());
        let mut body = with_idle_timeout(stalled.boxed(), Duration::from_secs(5));
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("nothing for 5s"), "{error}");
        assert!(body.frame().await.is_none(), "the body ends after its error");
        let mut fine = with_idle_timeout(full("abc"), Duration::from_secs(5));
        assert_eq!(fine.frame().await.unwrap().unwrap().into_data().unwrap(), "abc");
    }

    #[tokio::test]
    async fn passed_through_content_is_verified_at_its_end() {
        use crate::registry::digest::{Algorithm, Digest};
        let digest = Digest::of(Algorithm::Sha256, b"right");
        let good = verified(full("right"), digest.clone()).collect().await;
        assert_eq!(good.unwrap().to_bytes(), "right");
        let bad = verified(full("wrong"), digest).collect().await;
        assert!(bad.unwrap_err().to_string().contains("upstream sent content with digest"));
    }
}
