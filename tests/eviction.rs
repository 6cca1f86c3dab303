//! The size cap: least recently used content is evicted down to 90 % of `max_size`, last access
//! survives in the content files' mtimes, and content being read is never evicted.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{intercepted, registry::FakeRegistry, request, start_pantry, Sender, TestPantry};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use pantry::clock::Clock;

async fn until_within(pantry: &TestPantry, bytes: u64) {
    let store = pantry.pantry.proxy().store();
    let fits = async {
        while store.stored_bytes() > bytes {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fits)
        .await
        .expect("eviction brings the store under its cap");
}

#[tokio::test]
async fn least_recently_used_content_is_evicted_first() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.max_size = 100_000;
        c.clock = clock.clone();
    })
    .await;
    let host = registry.host();
    let [a, b, c] =
        [1u8, 2, 3].map(|seed| registry.state.add_blob(vec![seed; 40_000], "application/octet-stream"));
    let get = |digest: &String| format!("/v2/app/blobs/{digest}");
    for digest in [&a, &b, &a, &c] {
        request(&pantry, &host, Method::GET, &get(digest), &[]).await.1.unwrap();
        clock.advance(Duration::from_secs(120));
    }
    until_within(&pantry, 90_000).await;
    let (hit_a, _) = request(&pantry, &host, Method::GET, &get(&a), &[]).await;
    let (hit_c, _) = request(&pantry, &host, Method::GET, &get(&c), &[]).await;
    assert_eq!(
        (
            hit_a.headers()["cache-status"].to_str().unwrap(),
            hit_c.headers()["cache-status"].to_str().unwrap()
        ),
        ("pantry; hit", "pantry; hit")
    );
    let (miss_b, body) = request(&pantry, &host, Method::GET, &get(&b), &[]).await;
    assert_eq!(miss_b.headers()["cache-status"], "pantry; fwd=miss; stored", "B was the least recently used");
    assert_eq!(body.unwrap().len(), 40_000);
}

#[tokio::test]
async fn content_being_read_is_not_evicted() {
    const SIZE: usize = 16 * 1024 * 1024;
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.max_size = 24 * 1024 * 1024;
        c.clock = clock.clone();
    })
    .await;
    let host = registry.host();
    let a = registry.state.add_blob(vec![7u8; SIZE], "application/octet-stream");
    let b = registry.state.add_blob(vec![8u8; SIZE], "application/octet-stream");
    request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{a}"), &[]).await.1.unwrap();
    clock.advance(Duration::from_secs(120));
    // A slow reader of A: first bytes read, the rest left waiting (more than socket buffers hold).
    let stream = intercepted(&pantry, &host, &[b"http/1.1"]).await;
    let mut sender = Sender::h1(stream).await;
    let request_a = Request::get(format!("/v2/app/blobs/{a}"))
        .header("host", &host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send(request_a).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    let mut slow = response.into_body();
    slow.frame().await.unwrap().unwrap();
    clock.advance(Duration::from_secs(120));
    request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{b}"), &[]).await.1.unwrap();
    until_within(&pantry, 24 * 1024 * 1024).await;
    let a_digest = a.parse().unwrap();
    assert!(
        pantry.pantry.proxy().store().blob(&a_digest).await.is_some(),
        "A is being read: kept although older"
    );
    let rest = slow.collect().await.unwrap().to_bytes();
    assert!(rest.iter().all(|byte| *byte == 7));
}
