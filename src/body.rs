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

/// How an upstream body must keep coming: never silent for `idle`, and at least `min_rate` bytes a
/// second over each `idle`-long window (a drip of a byte a second is as good as a stall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Longest silence.
    pub idle: Duration,
    /// Slowest acceptable average, bytes per second (0: any).
    pub min_rate: u64,
}

/// `body`, failing (so that the receiver sees a broken transfer, never a clean short one) when it
/// goes slower than `pace`.
pub fn paced(body: Body, pace: Pace) -> Body {
    let start = (Some(body), tokio::time::Instant::now(), 0u64);
    let frames = futures_util::stream::unfold(start, move |(body, mut window, mut bytes)| async move {
        let mut body = body?;
        let fail = |text: String| Some((Err(BoxError::from(text)), (None, window, 0)));
        let frame = match tokio::time::timeout(pace.idle, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return None,
            Err(_) => {
                return fail(format!("upstream sent nothing for {}", humantime::format_duration(pace.idle)))
            }
        };
        if let Ok(frame) = &frame {
            bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
        }
        let elapsed = window.elapsed();
        if elapsed >= pace.idle {
            let rate = bytes as f64 / elapsed.as_secs_f64();
            if (rate as u64) < pace.min_rate {
                return fail(format!(
                    "upstream sends {rate:.0} B/s, below the minimum of {} B/s",
                    pace.min_rate
                ));
            }
            (window, bytes) = (tokio::time::Instant::now(), 0);
        }
        Some((frame, (Some(body), window, bytes)))
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
        let pace = Pace { idle: Duration::from_secs(5), min_rate: 100 };
        let mut body = paced(stalled.boxed(), pace);
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("nothing for 5s"), "{error}");
        assert!(body.frame().await.is_none(), "the body ends after its error");
        let mut fine = paced(full("abc"), pace);
        assert_eq!(fine.frame().await.unwrap().unwrap().into_data().unwrap(), "abc");
        // A drip: one byte a second never trips the silence timeout but is far below 100 B/s.
        let drip = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok::<_, BoxError>(http_body::Frame::data(Bytes::from_static(b"x"))), n + 1))
        });
        let mut dripping = paced(StreamBody::new(drip).boxed(), pace);
        let mut received = 0;
        let error = loop {
            match dripping.frame().await.unwrap() {
                Ok(_) => received += 1,
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("below the minimum of 100 B/s"), "{error}");
        assert!(received <= 5, "cut off after one window: {received} bytes");
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
