//! What registries say of their rate limits, and the requests pantry spares them: a 429 stops
//! every request to that registry until its `Retry-After` (stale tags, uncached content answered
//! 429 at once), `RateLimit-Remaining` becomes a metric, and a tag that moved to a manifest pantry
//! holds is revalidated with a HEAD only (Docker Hub counts GETs as pulls).

mod common;

use std::time::Duration;

use common::{
    registry::{FakeRegistry, MANIFEST_TYPE},
    request, start_pantry, TestPantry,
};
use http::Method;
use pantry::clock::Clock;

async fn get(pantry: &TestPantry, registry: &FakeRegistry, path: &str) -> (http::Response<()>, Vec<u8>) {
    let (response, body) = request(pantry, &registry.host(), Method::GET, path, &[]).await;
    (response, body.unwrap().to_vec())
}

#[tokio::test]
async fn a_429_stops_every_request_to_the_registry_until_retry_after() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let digest = registry.state.add_blob(manifest.to_vec(), MANIFEST_TYPE);
    registry.state.tag("library/app", "v1", &digest);
    let uncached = registry.state.add_blob(vec![9u8; 1000], "application/octet-stream");
    *registry.state.ratelimit_remaining.lock().unwrap() = Some(42);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
    })
    .await;
    let (first, _) = get(&pantry, &registry, "/v2/library/app/manifests/v1").await;
    assert_eq!(first.status(), 200);
    let metrics = common::plain_get(pantry.addr, "/metrics").await;
    let gauge = format!("pantry_upstream_ratelimit_remaining{{registry=\"{}\"}} 42", registry.host());
    assert!(metrics.contains(&gauge), "{metrics}");

    *registry.state.too_many.lock().unwrap() = Some("30".into());
    clock.advance(Duration::from_secs(3600)); // the tag must be revalidated
    let (stale, body) = get(&pantry, &registry, "/v2/library/app/manifests/v1").await;
    assert_eq!(stale.status(), 200, "the last known manifest while the registry says 429");
    assert_eq!(body, manifest.to_vec());
    assert!(stale.headers()["cache-status"].to_str().unwrap().contains("stale"));
    let asked = registry.state.count("HEAD 429") + registry.state.count("GET 429");
    assert_eq!(asked, 1);

    // Within the next 30 s the registry is not asked at all.
    clock.advance(Duration::from_secs(20));
    let (again, _) = get(&pantry, &registry, "/v2/library/app/manifests/v1").await;
    assert_eq!(again.status(), 200);
    let blob = format!("/v2/library/app/blobs/{uncached}");
    let (refused, _) = get(&pantry, &registry, &blob).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "the registry's Retry-After, counted down: {retry}");
    assert_eq!(
        registry.state.count("HEAD 429") + registry.state.count("GET 429"),
        asked,
        "no request reached it"
    );

    // Once it has passed, the registry is asked again.
    *registry.state.too_many.lock().unwrap() = None;
    clock.advance(Duration::from_secs(11));
    let (fetched, bytes) = get(&pantry, &registry, &blob).await;
    assert_eq!((fetched.status().as_u16(), bytes.len()), (200, 1000));
}

#[tokio::test]
async fn a_moved_tag_whose_manifest_is_held_is_not_fetched_again() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let one = registry.state.add_blob(br#"{"schemaVersion":2,"layers":[1]}"#.to_vec(), MANIFEST_TYPE);
    let two = registry.state.add_blob(br#"{"schemaVersion":2,"layers":[2]}"#.to_vec(), MANIFEST_TYPE);
    registry.state.tag("library/app", "v1", &one);
    registry.state.tag("library/app", "v2", &two);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
    })
    .await;
    for tag in ["v1", "v2"] {
        let (response, _) = get(&pantry, &registry, &format!("/v2/library/app/manifests/{tag}")).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(registry.state.count("GET manifest-tag"), 2);
    // v1 now points at what v2 pointed at: pantry holds it, so a HEAD is all it costs.
    registry.state.tag("library/app", "v1", &two);
    clock.advance(Duration::from_secs(3600));
    let (response, body) = get(&pantry, &registry, "/v2/library/app/manifests/v1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["docker-content-digest"], two.as_str());
    assert_eq!(body, br#"{"schemaVersion":2,"layers":[2]}"#.to_vec());
    assert_eq!(registry.state.count("GET manifest-tag"), 2, "no GET for a manifest pantry holds");
    assert_eq!(registry.state.count("HEAD manifest-tag"), 1);
}
