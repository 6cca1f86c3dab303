//! Serving one client connection's HTTP (HTTP/1.1 and h2 over whatever stream it came on: TLS
//! the proxy terminated, the mirror port, transparent plain HTTP) with the guards every such
//! connection gets: request-head and idle clocks (`idle`) and the rapid-reset guard (`cancels`).
//! Below `server`, `ingress` and `mirror`, which all hand connections to it.

pub mod cancels;
pub mod idle;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{
    body::{Body, BoxError},
    shutdown::Shutdown,
};
use cancels::Cancels;
use idle::Idle;

/// Serves HTTP/1.1 and h2 on `io` (every TLS-terminated, mirror and transparent plain-HTTP
/// connection), `answer`ing each request, until the client closes; drains on shutdown. A client
/// must send each request head within `header_timeout` (slowloris), a connection without a
/// request in flight for as long is closed ([`idle`]: before the first request too, and over h2),
/// h2 keeps hyper's stream and reset limits, and a client that cancels most of its requests is
/// sent away ([`cancels`]).
pub async fn serve_http<IO, F, Fut>(
    io: IO,
    header_timeout: Duration,
    shutdown: &Shutdown,
    answer: F,
) -> Result<(), BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    let cancels = Cancels::new();
    let idle = Idle::new();
    let (watch, activity) = (Arc::clone(&cancels), Arc::clone(&idle));
    let service = service_fn(move |request: Request<Incoming>| {
        let version = request.version();
        let busy = activity.begin();
        let answering = answer(request);
        watch.watch(version, async move { Ok::<_, Infallible>(busy.hold(answering.await)) })
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let unwelcome = async {
        tokio::select! {
            () = cancels.abusive() => {}
            () = idle.expired(header_timeout) => tracing::debug!("idle connection closed"),
        }
    };
    // A client asked to go away must not keep the slot either (h2 waits for a PING answer that a
    // silent client never sends): idle once more after one more idle time, it is dropped.
    let dropped = async {
        idle.expired(header_timeout).await;
        tokio::time::sleep(header_timeout).await;
        idle.expired(header_timeout).await;
    };
    tokio::select! {
        served = shutdown.drive(connection, |c| c.graceful_shutdown(), unwelcome) => served,
        () = dropped => Ok(()),
    }
}
