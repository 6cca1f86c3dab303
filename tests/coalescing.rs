//! Single flight: concurrent askers of one digest share one upstream fetch, receive bytes before it
//! completes, survive their leader leaving, and all fail together when upstream fails.

mod common;

use std::{sync::atomic::Ordering, sync::Arc, time::Duration};

use bytes::Bytes;
use common::{intercepted, registry::FakeRegistry, request, start_pantry, Sender, TestPantry};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// Sends a GET and returns the response with its body still streaming.
async fn open(pantry: &TestPantry, host: &str, path: &str) -> http::Response<Incoming> {
    let stream = intercepted(pantry, host, &[b"http/1.1"]).await;
    let mut sender = Sender::h1(stream).await;
    let request = Request::get(path).header("host", host).body(Full::new(Bytes::new())).unwrap();
    sender.send(request).await
}

async fn setup(size: usize) -> (FakeRegistry, Arc<TestPantry>, String) {
    let registry = FakeRegistry::start().await;
    let pantry = Arc::new(start_pantry(|c| registry.configure(c)).await);
    let bytes: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let digest = registry.state.add_blob(bytes, "application/octet-stream");
    (registry, pantry, digest)
}

#[tokio::test]
async fn concurrent_askers_share_one_fetch_and_get_bytes_before_it_ends() {
    let (registry, pantry, digest) = setup(64 * 1024 * 1024).await;
    registry.state.gated.store(true, Ordering::SeqCst);
    let host = registry.host();
    let mut bodies = Vec::new();
    for i in 0..32 {
        // Half through one repository, half through another: the key is the digest, not the URL.
        let path = format!("/v2/{}/blobs/{digest}", if i % 2 == 0 { "a" } else { "b/c" });
        let mut body = open(&pantry, &host, &path).await.into_body();
        let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("first bytes arrive while the upstream fetch is still held")
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap();
        assert!(!first.is_empty());
        bodies.push((first, body));
    }
    assert_eq!(registry.state.count("GET blob"), 1);
    assert_eq!(pantry.pantry.proxy().flights().in_flight(), 1);
    let (head, _) = request(&pantry, &host, Method::HEAD, &format!("/v2/a/blobs/{digest}"), &[]).await;
    assert_eq!(head.headers()["content-length"], (64 * 1024 * 1024).to_string().as_str());
    assert_eq!(head.headers()["cache-status"], "pantry; fwd=miss; collapsed");
    let (range, bytes) =
        request(&pantry, &host, Method::GET, &format!("/v2/a/blobs/{digest}"), &[("range", "bytes=0-99")])
            .await;
    assert_eq!(
        (range.status().as_u16(), bytes.unwrap().len()),
        (206, 100),
        "a range already spooled is served"
    );
    assert_eq!(
        registry.state.count("HEAD blob") + registry.state.count("GET blob"),
        1,
        "neither reached upstream"
    );
    registry.state.gate.notify_one();
    let readers: Vec<_> = bodies
        .into_iter()
        .map(|(first, body)| {
            tokio::spawn(async move {
                let rest = body.collect().await.expect("every follower completes").to_bytes();
                [first, rest].concat()
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(common::registry::sha256(&reader.await.unwrap()), digest, "every body verifies");
    }
    let (response, body) = request(&pantry, &host, Method::GET, &format!("/v2/a/blobs/{digest}"), &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    assert_eq!(common::registry::sha256(&body.unwrap()), digest);
    assert_eq!(registry.state.count("GET blob"), 1);
}

#[tokio::test]
async fn the_fetch_goes_on_when_its_leader_disconnects() {
    let (registry, pantry, digest) = setup(4 * 1024 * 1024).await;
    registry.state.gated.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let mut leader = open(&pantry, &host, &path).await.into_body();
    leader.frame().await.unwrap().unwrap();
    let follower = open(&pantry, &host, &path).await;
    assert_eq!(follower.headers()["cache-status"], "pantry; fwd=miss; collapsed");
    drop(leader);
    registry.state.gate.notify_one();
    let bytes = follower.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(common::registry::sha256(&bytes), digest);
    assert_eq!(registry.state.count("GET blob"), 1);
}

#[tokio::test]
async fn an_upstream_failure_aborts_every_follower_and_the_next_request_refetches() {
    let (registry, pantry, digest) = setup(4 * 1024 * 1024).await;
    registry.state.gated.store(true, Ordering::SeqCst);
    registry.state.reset.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let mut followers = Vec::new();
    for _ in 0..4 {
        let mut body = open(&pantry, &host, &path).await.into_body();
        body.frame().await.unwrap().unwrap();
        followers.push(body);
    }
    registry.state.gate.notify_one();
    let shared = followers.len();
    let mut broken = 0;
    for body in followers {
        broken += usize::from(body.collect().await.is_err());
    }
    assert_eq!(broken, shared, "an aborted fetch is an aborted transfer, never a clean end");
    let stored_after_reset = stored(&pantry, &digest).await;
    assert!(!stored_after_reset, "nothing of the broken fetch is stored");
    registry.state.gated.store(false, Ordering::SeqCst);
    registry.state.reset.store(false, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    let status = response.headers()["cache-status"].to_str().unwrap().to_string();
    assert_eq!(status, "pantry; fwd=miss; stored", "a new fetch, stored");
    let right = common::registry::sha256(&body.unwrap()) == digest;
    assert!(right, "the next request gets the blob");
    let gets = registry.state.count("GET blob");
    assert_eq!(gets, 2);
    common::reliability::record(common::reliability::Outcome {
        area: "upstream",
        fault: "reset mid-body while 4 clients share one fetch",
        client: format!("{broken} of the {shared} transfers broke off; none ended cleanly"),
        stored: if stored_after_reset { "the broken blob".into() } else { "nothing".into() },
        after: format!(
            "the next request started a new fetch (`{status}`, {gets} upstream GETs in all) and got the blob"
        ),
        lost: Vec::new(),
    });
}

async fn stored(pantry: &TestPantry, digest: &str) -> bool {
    pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_some()
}

async fn until_no_fetch(pantry: &TestPantry) {
    let flights = pantry.pantry.proxy().flights();
    let idle = async {
        while flights.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), idle).await.expect("the fetch ends");
}

#[tokio::test]
async fn a_fetch_every_client_left_stops_and_stores_nothing() {
    let (registry, pantry, digest) = setup(4 * 1024 * 1024).await;
    registry.state.gated.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let mut only = open(&pantry, &host, &path).await.into_body();
    only.frame().await.unwrap().unwrap();
    drop(only);
    until_no_fetch(&pantry).await; // stopped although upstream is still held at the gate
    registry.state.gated.store(false, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=miss; stored", "nothing was stored");
    assert_eq!(common::registry::sha256(&body.unwrap()), digest);
    assert_eq!(registry.state.count("GET blob"), 2);
}

#[tokio::test]
async fn with_finish_abandoned_fetches_the_fetch_runs_on_and_is_stored() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.finish_abandoned_fetches = true;
    })
    .await;
    let digest = registry.state.add_blob(vec![5u8; 4 * 1024 * 1024], "application/octet-stream");
    registry.state.gated.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let mut only = open(&pantry, &host, &path).await.into_body();
    only.frame().await.unwrap().unwrap();
    drop(only);
    registry.state.gate.notify_one();
    until_no_fetch(&pantry).await;
    let (response, _) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    assert_eq!(registry.state.count("GET blob"), 1);
}
