//! A connection with nothing to do is sent away: no request in flight (none begun, or every
//! response body ended or dropped) for the idle time — before its first request too, which
//! hyper's HTTP/1.1 header timeout does not cover once TLS or h2 is in front, and h2 has no such
//! timeout at all. A silent client so cannot hold one of `max_connections` slots for ever.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use http::Response;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::body::Body;

/// One connection's requests in flight and when the last one began or ended.
#[derive(Debug)]
pub struct Idle {
    in_flight: AtomicUsize,
    since: Mutex<Instant>,
}

impl Idle {
    /// A new connection: idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { in_flight: AtomicUsize::new(0), since: Mutex::new(Instant::now()) })
    }

    /// A request begins; it is in flight until the returned guard (kept by its response body)
    /// is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(Arc::clone(self))
    }

    fn touch(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Completes once the connection has had no request in flight for `limit`.
    pub async fn expired(&self, limit: Duration) {
        loop {
            let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
            tokio::time::sleep_until(since + limit).await;
            let unchanged = *self.since.lock().unwrap_or_else(|e| e.into_inner()) == since;
            if unchanged && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            if unchanged {
                // Busy since then: look again one idle time after now.
                self.touch();
            }
        }
    }
}

/// A request in flight (see [`Idle::begin`]).
#[derive(Debug)]
pub struct Busy(Arc<Idle>);

impl Busy {
    /// `response`, with this request in flight until its body ends or is dropped.
    pub fn hold(self, response: Response<Body>) -> Response<Body> {
        // The closure owns the guard: it goes when the body ends or is dropped.
        response.map(|body| {
            body.map_frame(move |frame| {
                let _in_flight = &self;
                frame
            })
            .boxed()
        })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_means_nothing_in_flight_for_the_whole_limit() {
        let idle = Idle::new();
        let limit = Duration::from_secs(30);
        let started = Instant::now();
        let busy = idle.begin();
        let expired = tokio::spawn({
            let idle = Arc::clone(&idle);
            async move { idle.expired(limit).await }
        });
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!expired.is_finished(), "a request in flight keeps the connection");
        drop(busy);
        let ended = Instant::now();
        expired.await.unwrap();
        assert_eq!(Instant::now() - ended, limit, "idle from the end of the last request");
        assert!(Instant::now() - started > limit);

        let fresh = Idle::new();
        let opened = Instant::now();
        fresh.expired(limit).await;
        assert_eq!(Instant::now() - opened, limit, "a connection that never asks is idle from the start");
    }
}
