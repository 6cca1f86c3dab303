//! The one body type that flows through pantry: a boxed, streaming HTTP body.
//!
//! Bodies are never collected whole; every constructor here streams or holds a small, fixed buffer.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};

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
