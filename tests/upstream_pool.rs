//! Pooled upstream connections: reused while busy, closed once idle for `upstream_idle_timeout`,
//! so a pantry that talked to many hosts does not keep a connection (and its buffers) for each.

mod common;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use common::{registry::FakeRegistry, request, start_pantry};
use http::Method;

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.upstream_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let open = || registry.state.open_connections.load(Ordering::SeqCst);
    for i in 0..3 {
        let (response, _) = request(&pantry, &registry.host(), Method::GET, &format!("/v2/?{i}"), &[]).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(open(), 1, "one pooled connection served the three requests");
    let deadline = Instant::now() + Duration::from_secs(10);
    while open() > 0 {
        assert!(Instant::now() < deadline, "the idle upstream connection was never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
