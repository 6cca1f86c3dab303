//! The size cap: least recently used content is evicted down to 90 % of `max_size`, last access
//! survives in the content files' mtimes, and content being read is never evicted.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{intercepted, registry::FakeRegistry, request, start_pantry, Sender, TestPantry};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use pantry::{clock::Clock, registry::policy::PinRule};

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
        c.startup.max_size = 100_000;
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
        c.startup.max_size = 24 * 1024 * 1024;
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

#[tokio::test]
async fn pinned_tags_and_repositories_are_never_evicted() {
    let registry = FakeRegistry::start().await;
    let host = registry.host();
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.max_size = 100_000;
        c.clock = clock.clone();
        c.live.pin = vec![
            PinRule::parse(&format!("{host}/app:v1")).unwrap(),
            PinRule::parse(&format!("{host}/keep")).unwrap(),
        ];
    })
    .await;
    let state = &registry.state;
    let config = state.add_blob(&b"{\"architecture\":\"amd64\"}"[..], "application/octet-stream");
    let layer = state.add_blob(vec![1u8; 30_000], "application/octet-stream");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{{"digest":"{config}","size":24}},"layers":[{{"digest":"{layer}","size":30000}}]}}"#
    );
    let manifest = state.add_blob(manifest.into_bytes(), "application/vnd.oci.image.manifest.v1+json");
    state.tag("app", "v1", &manifest);
    let kept = state.add_blob(vec![2u8; 30_000], "application/octet-stream");
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let pulls = [
        "/v2/app/manifests/v1".to_string(),
        format!("/v2/app/blobs/{config}"),
        format!("/v2/app/blobs/{layer}"),
        format!("/v2/keep/blobs/{kept}"),
    ];
    for path in &pulls {
        request(&pantry, &host, Method::GET, path, &[("accept", oci)]).await.1.unwrap();
        clock.advance(Duration::from_secs(120));
    }
    // Newer, unpinned content takes the store over its cap twice.
    let mut others = Vec::new();
    for seed in [3u8, 4] {
        let other = state.add_blob(vec![seed; 30_000], "application/octet-stream");
        others.push(other.clone());
        request(&pantry, &host, Method::GET, &format!("/v2/other/blobs/{other}"), &[]).await.1.unwrap();
        clock.advance(Duration::from_secs(120));
        until_within(&pantry, 100_000).await;
    }
    let store = pantry.pantry.proxy().store();
    for digest in [&config, &layer, &manifest, &kept] {
        assert!(store.blob(&digest.parse().unwrap()).await.is_some(), "{digest} is pinned");
    }
    assert!(store.blob(&others[0].parse().unwrap()).await.is_none(), "unpinned content made room");
}
