//! Upstream faults with nothing lost: a body that stalls midway is broken off after
//! `upstream_body_timeout` (the client sees a broken transfer, nothing is stored) and the next
//! request fetches again; pantry stays healthy throughout.

mod common;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use common::{registry::FakeRegistry, request, start_pantry};
use http::Method;

#[tokio::test]
async fn a_body_that_stalls_midway_is_broken_off_and_nothing_is_stored() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.upstream_body_timeout = Duration::from_millis(300);
    })
    .await;
    let host = registry.host();
    let bytes = vec![7u8; 200_000];
    let digest = registry.state.add_blob(bytes.clone(), "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    registry.state.gated.store(true, Ordering::SeqCst); // half the body, then silence

    let started = Instant::now();
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), 200, "headers arrived before the stall");
    assert!(body.is_err(), "the client sees a broken transfer, never a clean short one");
    assert!(started.elapsed() < Duration::from_secs(10), "broken off promptly: {:?}", started.elapsed());
    assert!(pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_none(), "nothing stored");

    registry.state.gated.store(false, Ordering::SeqCst);
    let (again, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(again.headers()["cache-status"], "pantry; fwd=miss; stored", "the next request fetches again");
    assert_eq!(body.unwrap(), bytes);
}

#[tokio::test]
async fn a_forwarded_body_that_stalls_is_broken_off_too() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.upstream_body_timeout = Duration::from_millis(300);
        c.repositories = vec![pantry::registry::policy::NamespaceRule::new(
            "*",
            "uncached/*",
            pantry::registry::policy::Action::Pass,
            true,
        )];
    })
    .await;
    let digest = registry.state.add_blob(vec![1u8; 100_000], "application/octet-stream");
    registry.state.gated.store(true, Ordering::SeqCst);
    let (response, body) =
        request(&pantry, &registry.host(), Method::GET, &format!("/v2/uncached/app/blobs/{digest}"), &[])
            .await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=uri-miss", "passed through, not cached");
    assert!(body.is_err(), "a stalled pass-through body ends in an error, not a hang");
}
