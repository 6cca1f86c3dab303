//! Talking to upstreams: name resolution with overrides, TCP dialing, the pooled HTTPS client,
//! the registries' rate limits.
//!
//! Knows nothing of the cache, CONNECT or certificates pantry mints.

pub mod client;
pub mod dial;
pub mod mirrors;
pub mod parent;
pub mod rate_limit;
pub mod reach;
pub mod redirect;
pub mod retry;

pub use client::Upstream;
pub use dial::Dialer;
pub use reach::Reach;
