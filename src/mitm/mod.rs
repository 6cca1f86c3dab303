//! TLS interception: pantry's certificate authority and the TLS acceptor that presents its leaves.
//!
//! Knows nothing of the cache or the registry API.

pub mod acceptor;
pub mod authority;
pub mod supplied;

pub use acceptor::{accept, accept_named, MitmError};
pub use authority::{Authority, CaError};
