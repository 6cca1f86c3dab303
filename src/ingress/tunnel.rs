//! A blind tunnel: bytes copied both ways untouched, half-close passed on, closed when idle too long
//! or when shutdown aborts.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Instant,
};

use super::Ingress;
use crate::target::Target;

/// Copies between client and upstream until both sides close, idleness, or abort.
pub async fn relay<C>(ingress: &Ingress, client: C, upstream: TcpStream, target: &Target)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let idle = ingress.config.load().live.tunnel_idle_timeout;
    tokio::select! {
        result = copy_until_idle(client, upstream, idle) => match result {
            Ok((up, down)) => tracing::debug!(%target, up, down, "tunnel closed"),
            Err(error) => tracing::debug!(%target, %error, "tunnel ended"),
        },
        () = ingress.shutdown.aborted() => tracing::debug!(%target, "tunnel aborted by shutdown"),
    }
}

/// Copies both ways; fails with `TimedOut` once no byte moved either way for `idle`.
pub async fn copy_until_idle<A, B>(a: A, b: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let clock = Activity::new();
    let mut a = Watched { inner: a, clock: clock.clone() };
    let mut b = Watched { inner: b, clock: clock.clone() };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let deadline = clock.last() + idle;
        tokio::select! {
            result = &mut copy => return result,
            () = tokio::time::sleep_until(deadline) => {
                if clock.last() + idle <= Instant::now() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle"));
                }
            }
        }
    }
}

/// When bytes last moved, shared by both directions.
#[derive(Clone)]
struct Activity {
    origin: Instant,
    millis: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self { origin: Instant::now(), millis: Arc::new(AtomicU64::new(0)) }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.millis.store(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

/// A stream that records activity on every successful read or write.
struct Watched<S> {
    inner: S,
    clock: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_tunnel_is_closed_and_active_one_is_not() {
        let (client, proxy_side_a) = tokio::io::duplex(64);
        let (proxy_side_b, mut server) = tokio::io::duplex(64);
        let copy = tokio::spawn(copy_until_idle(proxy_side_a, proxy_side_b, Duration::from_secs(60)));
        let mut client = client;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
        }
        assert!(!copy.is_finished(), "active tunnel must stay open");
        tokio::time::sleep(Duration::from_secs(61)).await;
        let error = copy.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn half_close_is_passed_on() {
        let (mut client, a) = tokio::io::duplex(64);
        let (b, mut server) = tokio::io::duplex(64);
        let copy = tokio::spawn(copy_until_idle(a, b, Duration::from_secs(60)));
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"request");
        server.write_all(b"late answer").await.unwrap();
        server.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"late answer");
        assert_eq!(copy.await.unwrap().unwrap(), (7, 11));
    }
}
