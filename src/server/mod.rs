//! Accepting clients: the listener (connection limit, graceful shutdown), the per-connection handler
//! that tells proxy requests from admin requests, and the admin pages.

pub mod admin;
pub mod cancels;
pub mod handler;
pub mod listener;

pub use listener::Listener;

use std::time::Duration;

use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
};

/// The HTTP/1.1 + h2 server every TLS-terminated or mirror connection uses: a client must send
/// each request head within `header_timeout` (slowloris), h2 keeps hyper's stream and reset limits.
pub fn http_server(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    builder
}
