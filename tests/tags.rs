//! Tags: remembered per registry + repository + tag + Accept, trusted for their TTL, revalidated
//! with a HEAD, served stale when upstream is down, never served to clients upstream would refuse.
//! Time is a manual clock, moved by the tests.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{
    registry::{FakeRegistry, MANIFEST_TYPE, TOKEN},
    request, start_pantry, TestPantry,
};
use http::Method;
use pantry::clock::Clock;

const MINUTE: Duration = Duration::from_secs(60);

struct Setup {
    registry: FakeRegistry,
    pantry: TestPantry,
    clock: Clock,
    manifest: String,
}

async fn setup(repo: &str, tag: &str) -> Setup {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
    })
    .await;
    let manifest = registry.state.add_blob(format!("{{\"v\":1,\"r\":\"{repo}\"}}"), MANIFEST_TYPE);
    registry.state.tag(repo, tag, &manifest);
    Setup { registry, pantry, clock, manifest }
}

async fn get_tag(
    s: &Setup,
    repo: &str,
    tag: &str,
    headers: &[(&str, &str)],
) -> (http::Response<()>, Result<bytes::Bytes, String>) {
    request(&s.pantry, &s.registry.host(), Method::GET, &format!("/v2/{repo}/manifests/{tag}"), headers).await
}

const ACCEPT: (&str, &str) = ("accept", MANIFEST_TYPE);

#[tokio::test]
async fn fresh_tag_costs_no_upstream_request() {
    let s = setup("app", "v1").await;
    let (first, body) = get_tag(&s, "app", "v1", &[ACCEPT]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["docker-content-digest"], s.manifest.as_str());
    assert_eq!(common::registry::sha256(&body.unwrap()), s.manifest);
    s.clock.advance(9 * MINUTE);
    let (second, body) = get_tag(&s, "app", "v1", &[ACCEPT]).await;
    assert_eq!(second.headers()["cache-status"], "pantry; hit");
    assert_eq!(common::registry::sha256(&body.unwrap()), s.manifest);
    let (head, _) =
        request(&s.pantry, &s.registry.host(), Method::HEAD, "/v2/app/manifests/v1", &[ACCEPT]).await;
    assert_eq!(head.headers()["docker-content-digest"], s.manifest.as_str());
    assert_eq!(s.registry.state.count("GET manifest-tag"), 1);
    assert_eq!(s.registry.state.count("HEAD manifest-tag"), 0);
    // The manifest is now also a hit by digest.
    let by_digest = format!("/v2/app/manifests/{}", s.manifest);
    let (hit, _) = request(&s.pantry, &s.registry.host(), Method::GET, &by_digest, &[]).await;
    assert_eq!(hit.headers()["cache-status"], "pantry; hit");
}

#[tokio::test]
async fn expired_tag_is_revalidated_with_one_head_and_no_get() {
    let s = setup("app", "latest").await;
    get_tag(&s, "app", "latest", &[ACCEPT]).await.1.unwrap();
    s.clock.advance(2 * MINUTE); // `latest` lives 1 minute by default
    let (response, body) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=stale; fwd-status=200");
    assert_eq!(common::registry::sha256(&body.unwrap()), s.manifest);
    assert_eq!(
        (s.registry.state.count("HEAD manifest-tag"), s.registry.state.count("GET manifest-tag")),
        (1, 1)
    );
    let (again, _) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
    assert_eq!(again.headers()["cache-status"], "pantry; hit", "revalidation refreshed the TTL");
}

/// Bytes of every file under `dir`.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        disk_bytes(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn revalidations_do_not_grow_the_store() {
    let s = setup("app", "latest").await;
    get_tag(&s, "app", "latest", &[ACCEPT]).await.1.unwrap();
    let cache = s.pantry.dir.path().join("cache");
    let before = disk_bytes(&cache.join("index-v5")) + disk_bytes(&cache.join("records"));
    for _ in 0..300 {
        s.clock.advance(2 * MINUTE);
        let (response, _) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
        assert_eq!(response.headers()["cache-status"], "pantry; fwd=stale; fwd-status=200");
    }
    assert_eq!(s.registry.state.count("HEAD manifest-tag"), 300);
    let after = disk_bytes(&cache.join("index-v5")) + disk_bytes(&cache.join("records"));
    assert!(
        after <= before + 64,
        "300 revalidations grew the index and records from {before} to {after} bytes"
    );
}

#[tokio::test]
async fn concurrent_revalidations_of_one_tag_send_one_head() {
    let s = std::sync::Arc::new(setup("app", "latest").await);
    get_tag(&s, "app", "latest", &[ACCEPT]).await.1.unwrap();
    s.clock.advance(2 * MINUTE);
    s.registry.state.hold_tag_heads.store(true, Ordering::SeqCst);
    let askers: Vec<_> = (0..8)
        .map(|_| {
            let s = std::sync::Arc::clone(&s);
            tokio::spawn(async move { get_tag(&s, "app", "latest", &[ACCEPT]).await.0.status() })
        })
        .collect();
    let metrics = s.pantry.pantry.proxy().metrics();
    let joined = async {
        loop {
            let text = metrics.render(pantry::metrics::Snapshot::default());
            if text.contains("pantry_coalesced_joins_total 7") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .expect("seven askers join the first one's HEAD");
    s.registry.state.gate.notify_one(); // releases one HEAD: more would hang the test
    for asker in askers {
        let status = tokio::time::timeout(Duration::from_secs(10), asker).await.unwrap().unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(s.registry.state.count("HEAD manifest-tag"), 1);
    assert_eq!(s.registry.state.count("GET manifest-tag"), 1);
}

#[tokio::test]
async fn moved_tag_serves_the_new_manifest() {
    let s = setup("app", "latest").await;
    get_tag(&s, "app", "latest", &[ACCEPT]).await.1.unwrap();
    let moved = s.registry.state.add_blob("{\"v\":2}", MANIFEST_TYPE);
    s.registry.state.tag("app", "latest", &moved);
    let (cached, _) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
    assert_eq!(cached.headers()["docker-content-digest"], s.manifest.as_str(), "still fresh: old answer");
    s.clock.advance(2 * MINUTE);
    let (response, body) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
    assert_eq!(response.headers()["docker-content-digest"], moved.as_str());
    assert_eq!(common::registry::sha256(&body.unwrap()), moved);
}

#[tokio::test]
async fn accept_sets_are_cached_separately() {
    let s = setup("app", "v1").await;
    get_tag(&s, "app", "v1", &[ACCEPT]).await.1.unwrap();
    get_tag(&s, "app", "v1", &[("accept", "application/vnd.oci.image.index.v1+json")]).await.1.unwrap();
    get_tag(&s, "app", "v1", &[("accept", "application/vnd.oci.image.manifest.v1+json;q=0.5")])
        .await
        .1
        .unwrap();
    assert_eq!(s.registry.state.count("GET manifest-tag"), 2, "same media types, other params: one key");
}

#[tokio::test]
async fn upstream_down_serves_the_stale_manifest_and_its_blobs() {
    let s = setup("app", "latest").await;
    let layer = s.registry.state.add_blob(vec![5u8; 10_000], "application/octet-stream");
    get_tag(&s, "app", "latest", &[ACCEPT]).await.1.unwrap();
    let blob_path = format!("/v2/app/blobs/{layer}");
    request(&s.pantry, &s.registry.host(), Method::GET, &blob_path, &[]).await.1.unwrap();
    let store = s.pantry.pantry.proxy().store();
    let before = (store.stored_bytes(), store.entries());
    s.registry.state.down.store(true, Ordering::SeqCst);
    s.clock.advance(10 * MINUTE);
    let (mut seen, mut served) = (std::collections::BTreeSet::new(), 0);
    for _ in 0..2 {
        let (response, body) = get_tag(&s, "app", "latest", &[ACCEPT]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-status"], "pantry; hit; detail=stale");
        let warning = response.headers()["warning"].to_str().unwrap().to_string();
        assert!(warning.starts_with("110"));
        assert_eq!(common::registry::sha256(&body.unwrap()), s.manifest);
        let (blob, body) = request(&s.pantry, &s.registry.host(), Method::GET, &blob_path, &[]).await;
        assert_eq!((blob.status().as_u16(), body.unwrap().len()), (200, 10_000));
        assert_eq!(blob.headers()["cache-status"], "pantry; hit");
        let tag_status = response.headers()["cache-status"].to_str().unwrap().to_string();
        seen.insert(format!("manifest `{tag_status}` with Warning {}", &warning[..3]));
        seen.insert(format!("blob `{}`", blob.headers()["cache-status"].to_str().unwrap()));
        served += 1;
        s.clock.advance(10 * MINUTE);
    }
    let unchanged = (store.stored_bytes(), store.entries()) == before;
    assert!(unchanged, "the store is unchanged");
    common::reliability::record(common::reliability::Outcome {
        area: "upstream",
        fault: "registry down (503) once a tag's TTL ran out",
        client: format!(
            "the last known manifest and its blob from the store: {}",
            seen.into_iter().collect::<Vec<_>>().join(", ")
        ),
        stored: if unchanged { "unchanged".into() } else { "changed".into() },
        after: format!(
            "served from the store {served} times, 10 minutes apart, while the registry stayed down"
        ),
        lost: Vec::new(),
    });
}

#[tokio::test]
async fn a_stalled_upstream_counts_as_down_after_the_response_timeout() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
        c.startup.upstream_response_timeout = Duration::from_millis(300);
    })
    .await;
    let manifest = registry.state.add_blob("{\"v\":1}", MANIFEST_TYPE);
    registry.state.tag("app", "latest", &manifest);
    let host = registry.host();
    request(&pantry, &host, Method::GET, "/v2/app/manifests/latest", &[ACCEPT]).await.1.unwrap();
    registry.state.stall.store(true, Ordering::SeqCst);
    clock.advance(2 * MINUTE);
    let (stale, _) = request(&pantry, &host, Method::GET, "/v2/app/manifests/latest", &[ACCEPT]).await;
    assert_eq!(stale.headers()["cache-status"], "pantry; hit; detail=stale");
    let (unknown, _) = request(&pantry, &host, Method::GET, "/v2/app/manifests/other", &[ACCEPT]).await;
    assert_eq!(unknown.status(), 504);
    assert!(unknown.headers()["proxy-status"].to_str().unwrap().contains("connection_timeout"));
}

#[tokio::test]
async fn offline_serves_known_tags_and_refuses_unknown_ones() {
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = registry.state.add_blob("{\"v\":1}", MANIFEST_TYPE);
    registry.state.tag("app", "v1", &manifest);
    registry.state.tag("app", "v2", &manifest);
    let cache = dir.path().join("cache");
    let online = start_pantry(|c| {
        registry.configure(c);
        c.startup.cache_dir = cache.clone();
    })
    .await;
    let host = registry.host();
    request(&online, &host, Method::GET, "/v2/app/manifests/v1", &[ACCEPT]).await.1.unwrap();
    let offline = start_pantry(|c| {
        registry.configure(c);
        c.startup.cache_dir = cache.clone();
        c.live.offline = true;
    })
    .await;
    let (known, _) = request(&offline, &host, Method::GET, "/v2/app/manifests/v1", &[ACCEPT]).await;
    assert_eq!(known.status(), 200);
    let (unknown, _) = request(&offline, &host, Method::GET, "/v2/app/manifests/v2", &[ACCEPT]).await;
    assert_eq!(unknown.status(), 504);
    assert_eq!(registry.state.count("GET manifest-tag"), 1);
}

#[tokio::test]
async fn private_tag_is_not_served_to_an_anonymous_client_even_when_fresh() {
    let s = setup("private/app", "v1").await;
    s.registry.state.make_private("private/app");
    let (allowed, _) = get_tag(&s, "private/app", "v1", &[ACCEPT, ("authorization", TOKEN)]).await;
    assert_eq!(allowed.status(), 200);
    let (refused, body) = get_tag(&s, "private/app", "v1", &[ACCEPT]).await;
    assert_eq!(refused.status(), 401);
    assert!(body.unwrap().is_empty());
    let by_digest = format!("/v2/private/app/manifests/{}", s.manifest);
    let (refused, _) = request(&s.pantry, &s.registry.host(), Method::GET, &by_digest, &[]).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn token_endpoints_challenges_and_pushes_pass_through_uncached() {
    let s = setup("app", "v1").await;
    s.registry.state.make_private("private/app");
    let host = s.registry.host();
    for _ in 0..2 {
        let (token, body) =
            request(&s.pantry, &host, Method::GET, "/token?scope=repository:app:pull", &[]).await;
        assert_eq!(token.headers()["cache-status"], "pantry; fwd=uri-miss; detail=not-storable");
        assert!(body.unwrap().starts_with(b"{\"token\""));
        let (challenge, _) = get_tag(&s, "private/app", "v1", &[ACCEPT]).await;
        assert_eq!(challenge.status(), 401);
        assert!(challenge.headers().contains_key("www-authenticate"));
    }
    assert_eq!(s.registry.state.count("GET token"), 2, "tokens are never cached");
    assert_eq!(s.registry.state.count("GET manifest-tag"), 2, "challenges are never cached");
    let (upload, _) = request(&s.pantry, &host, Method::POST, "/v2/app/blobs/uploads/", &[]).await;
    assert_eq!(upload.status(), 202);
    assert_eq!(s.registry.state.count("POST upload"), 1);
}

#[tokio::test]
async fn a_head_for_a_tag_pantry_has_not_seen_is_answered_without_a_body_over_h2() {
    let s = setup("app", "v1").await;
    let host = s.registry.host();
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let stream = common::intercepted(&s.pantry, &host, &[alpn]).await;
        let mut sender =
            if alpn == b"h2" { common::Sender::h2(stream).await } else { common::Sender::h1(stream).await };
        for path in ["/v2/app/manifests/v1", "/v2/app/manifests/v1", "/v2/app/manifests/missing"] {
            let request = http::Request::head(format!("https://{host}{path}"))
                .header("host", &host)
                .header("accept", MANIFEST_TYPE)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let response = sender.send(request).await;
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body()).await;
            assert!(
                body.is_ok_and(|b| b.to_bytes().is_empty()),
                "{alpn:?} HEAD {path}: the stream broke or had a body"
            );
            assert!(status == 200 || status == 404, "{alpn:?} HEAD {path}: {status}");
        }
    }
}

#[tokio::test]
async fn a_tag_fetched_just_now_answers_conditional_and_range_requests_like_a_stored_one() {
    let s = setup("app", "v1").await;
    let etag = format!("\"{}\"", s.manifest);
    let (unchanged, _) = get_tag(&s, "app", "v1", &[ACCEPT, ("if-none-match", &etag)]).await;
    assert_eq!(unchanged.status(), 304, "the client already has the digest the tag names");
    assert_eq!(unchanged.headers()["docker-content-digest"], s.manifest.as_str());
    let (stored, body) = get_tag(&s, "app", "v1", &[ACCEPT]).await;
    let whole = body.unwrap();
    assert_eq!(stored.headers()["cache-status"], "pantry; hit");
    for (label, fetch) in [("just fetched", true), ("stored", false)] {
        if fetch {
            s.registry.state.tag("app", "v2", &s.manifest);
        }
        let tag = if fetch { "v2" } else { "v1" };
        let (part, body) = get_tag(&s, "app", tag, &[ACCEPT, ("range", "bytes=2-5")]).await;
        assert_eq!(part.status(), 206, "{label}");
        assert_eq!(body.unwrap(), whole.slice(2..6), "{label}");
        assert_eq!(part.headers()["content-range"], format!("bytes 2-5/{}", whole.len()).as_str(), "{label}");
    }
}
