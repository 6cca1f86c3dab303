//! Blobs and manifests by digest: fetched once, verified, stored once, served from the store with
//! the registry's headers, ranges and conditionals; CDN redirects followed without leaking
//! credentials; private content never served more widely than upstream would.

mod common;

use std::sync::atomic::Ordering;

use common::{
    registry::{FakeRegistry, MANIFEST_TYPE, TOKEN},
    request, start_pantry, TestPantry,
};
use http::Method;

async fn setup() -> (FakeRegistry, TestPantry) {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    (registry, pantry)
}

fn layer(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn second_pull_of_a_multi_layer_image_costs_no_upstream_request() {
    let (registry, pantry) = setup().await;
    let layers: Vec<String> = [(1024, 1), (300_000, 2), (2_000_000, 3)]
        .iter()
        .map(|(size, seed)| registry.state.add_blob(layer(*size, *seed), "application/octet-stream"))
        .collect();
    let manifest = registry.state.add_blob(format!("{{\"layers\":{layers:?}}}"), MANIFEST_TYPE);
    let host = registry.host();
    for pull in 0..2 {
        let (response, body) =
            request(&pantry, &host, Method::GET, &format!("/v2/app/manifests/{manifest}"), &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], MANIFEST_TYPE);
        assert_eq!(response.headers()["docker-content-digest"], manifest.as_str());
        assert_eq!(common::registry::sha256(&body.unwrap()), manifest);
        for digest in &layers {
            let (response, body) =
                request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
            assert_eq!(response.status(), 200);
            let expected = if pull == 0 { "pantry; fwd=miss; stored" } else { "pantry; hit" };
            assert_eq!(response.headers()["cache-status"], expected);
            assert_eq!(&common::registry::sha256(&body.unwrap()), digest);
        }
    }
    assert_eq!(registry.state.count("GET blob"), 3, "each layer fetched once");
    assert_eq!(registry.state.count("GET manifest"), 1, "manifest by digest fetched once");
    assert_eq!(
        registry.state.count("HEAD blob") + registry.state.count("HEAD manifest"),
        0,
        "public: no checks"
    );
}

#[tokio::test]
async fn head_range_and_conditional_requests_are_answered_from_the_store() {
    let (registry, pantry) = setup().await;
    let bytes = layer(10_000, 9);
    let digest = registry.state.add_blob(bytes.clone(), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let (_, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(body.unwrap().len(), 10_000);

    let (head, body) = request(&pantry, &host, Method::HEAD, &path, &[]).await;
    assert_eq!((head.status().as_u16(), head.headers()["content-length"].to_str().unwrap()), (200, "10000"));
    assert!(body.unwrap().is_empty());
    let (partial, body) = request(&pantry, &host, Method::GET, &path, &[("range", "bytes=100-199")]).await;
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(body.unwrap(), bytes[100..200]);
    let (suffix, body) = request(&pantry, &host, Method::GET, &path, &[("range", "bytes=-10")]).await;
    assert_eq!(suffix.status(), 206);
    assert_eq!(body.unwrap(), bytes[9990..]);
    let (unsatisfiable, _) = request(&pantry, &host, Method::GET, &path, &[("range", "bytes=10000-")]).await;
    assert_eq!(unsatisfiable.status(), 416);
    assert_eq!(unsatisfiable.headers()["content-range"], "bytes */10000");
    let etag = format!("\"{digest}\"");
    let (not_modified, _) = request(&pantry, &host, Method::GET, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(registry.state.count("GET blob") + registry.state.count("HEAD blob"), 1);
}

#[tokio::test]
async fn digest_mismatch_fails_the_transfer_and_stores_nothing() {
    let (registry, pantry) = setup().await;
    let digest = registry.state.add_blob(layer(500_000, 4), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    registry.state.lie.store(true, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), 200, "headers go out before the body is verified");
    assert!(body.is_err(), "the client must see a broken transfer, not a clean wrong body");
    registry.state.lie.store(false, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=miss; stored", "nothing was stored");
    assert_eq!(common::registry::sha256(&body.unwrap()), digest);
    assert_eq!(registry.state.count("GET blob"), 2);
}

#[tokio::test]
async fn upstream_reset_mid_body_fails_the_transfer_and_stores_nothing() {
    let (registry, pantry) = setup().await;
    let digest = registry.state.add_blob(layer(400_000, 5), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    registry.state.reset.store(true, Ordering::SeqCst);
    let (first, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    // Depending on timing the failure is a 502 (nothing sent yet) or a broken body; never a clean 200.
    assert!(first.status() == 502 || body.is_err(), "{first:?} {:?}", body.map(|b| b.len()));
    registry.state.reset.store(false, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=miss; stored");
    assert!(body.is_ok());
}

#[tokio::test]
async fn one_digest_from_two_repositories_is_fetched_and_stored_once() {
    let (registry, pantry) = setup().await;
    let digest = registry.state.add_blob(layer(50_000, 6), "application/octet-stream");
    let host = registry.host();
    for repo in ["team-a/app", "team-b/tools/app"] {
        let (response, body) =
            request(&pantry, &host, Method::GET, &format!("/v2/{repo}/blobs/{digest}"), &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body.unwrap().len(), 50_000);
    }
    assert_eq!(registry.state.count("GET blob"), 1);
    let content = pantry.dir.path().join("cache/content-v2/sha256");
    let files = walk(&content);
    assert_eq!(files, 1, "one stored copy");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

#[tokio::test]
async fn cdn_redirect_is_followed_without_the_authorization_header() {
    let (registry, pantry) = setup().await;
    registry.state.redirect.store(true, Ordering::SeqCst);
    registry.state.make_private("private/app");
    let digest = registry.state.add_blob(layer(70_000, 7), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/private/app/blobs/{digest}"));
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), 200, "the client sees one 200, not the redirect");
    assert_eq!(common::registry::sha256(&body.unwrap()), digest);
    assert_eq!((registry.state.count("GET blob"), registry.state.count("GET cdn")), (1, 1));
    assert_eq!(
        registry.state.cdn_authorizations.lock().unwrap().as_slice(),
        [None],
        "token leaked to the CDN"
    );
    let (again, _) = request(&pantry, &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(again.headers()["cache-status"], "pantry; hit");
    assert_eq!(registry.state.count("GET cdn"), 1);
}

#[tokio::test]
async fn private_content_is_not_served_to_clients_upstream_would_refuse() {
    let (registry, pantry) = setup().await;
    registry.state.make_private("private/app");
    let digest = registry.state.add_blob(layer(30_000, 8), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/private/app/blobs/{digest}"));
    let (response, _) = request(&pantry, &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), 200);
    for headers in [vec![], vec![("authorization", "Bearer stolen")]] {
        let (refused, body) = request(&pantry, &host, Method::GET, &path, &headers).await;
        assert_eq!(refused.status(), 401, "{headers:?}");
        assert!(refused.headers().contains_key("www-authenticate"), "the challenge is relayed");
        assert_eq!(refused.headers()["cache-status"], "pantry; fwd=miss", "as if nothing were cached");
        assert!(body.unwrap().len() < 1000, "the registry's refusal, not the blob");
    }
    // The same blob in a public repository is served to anyone, after upstream says so once.
    let (public, _) =
        request(&pantry, &host, Method::GET, &format!("/v2/public/app/blobs/{digest}"), &[]).await;
    assert_eq!(public.status(), 200);
    assert_eq!(public.headers()["cache-status"], "pantry; hit");
    let (allowed, body) = request(&pantry, &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!((allowed.status().as_u16(), body.unwrap().len()), (200, 30_000));
    // The first pull, then each refused client's own GET (the registry's 401 is what it gets).
    assert_eq!(registry.state.count("GET blob"), 3, "only the first pull fetched bytes");
}

#[tokio::test]
async fn cached_public_blobs_are_served_while_upstream_is_down() {
    let (registry, pantry) = setup().await;
    let digest = registry.state.add_blob(layer(20_000, 10), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let _ = request(&pantry, &host, Method::GET, &path, &[]).await;
    registry.state.down.store(true, Ordering::SeqCst);
    let (response, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!((response.status().as_u16(), body.unwrap().len()), (200, 20_000));
}

#[tokio::test]
async fn offline_serves_the_cache_and_answers_misses_with_504() {
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let digest = registry.state.add_blob(layer(20_000, 11), "application/octet-stream");
    let other = registry.state.add_blob(layer(20_000, 12), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let online = start_pantry(|c| {
        registry.configure(c);
        c.startup.cache_dir = cache.clone();
    })
    .await;
    let _ = request(&online, &host, Method::GET, &path, &[]).await;
    let offline = start_pantry(|c| {
        registry.configure(c);
        c.startup.cache_dir = cache.clone();
        c.live.offline = true;
    })
    .await;
    let (hit, body) = request(&offline, &host, Method::GET, &path, &[]).await;
    assert_eq!((hit.status().as_u16(), body.unwrap().len()), (200, 20_000));
    let (miss, _) = request(&offline, &host, Method::GET, &format!("/v2/app/blobs/{other}"), &[]).await;
    assert_eq!(miss.status(), 504);
    assert!(miss.headers()["proxy-status"].to_str().unwrap().contains("offline"));
    assert_eq!(registry.state.count("GET blob"), 1);
}
