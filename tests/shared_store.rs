//! The shared store against a real S3 server (SeaweedFS): content fetched from the origin is
//! written behind; a node with an empty store reads it from the bucket instead of the origin, with
//! the same access rules as its own store, and verifies every byte; tags and the version check are
//! shared too, so a node started empty while the registry, and every other member, are down still
//! pulls what the fleet had.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{
    registry::{sha256, FakeRegistry, MANIFEST_TYPE, TOKEN},
    request,
    seaweed::{Seaweed, ACCESS_KEY, SECRET_KEY},
    start_pantry, start_pantry_with_fleet, TestPantry,
};
use http::{Method, StatusCode};
use object_store::{aws::AmazonS3Builder, path::Path, ObjectStoreExt, PutPayload};

const BUCKET: &str = "pantry-fleet";

fn shared(seaweed: &Seaweed, dir: &std::path::Path) -> pantry::config::SharedStore {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("s3-credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    pantry::config::SharedStore {
        bucket: BUCKET.into(),
        prefix: "site-a".into(),
        endpoint: Some(seaweed.endpoint.clone()),
        region: "us-east-1".into(),
        credentials: Some(file),
    }
}

async fn node(registry: &FakeRegistry, seaweed: &Seaweed, keys: &tempfile::TempDir) -> TestPantry {
    let settings = shared(seaweed, keys.path());
    start_pantry(|c| {
        registry.configure(c);
        c.startup.shared_store = Some(settings);
    })
    .await
}

/// Waits until the bucket holds `count` objects under `prefix` (written behind in the background).
async fn written_behind(seaweed: &Seaweed, prefix: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seaweed.objects(BUCKET, prefix).await.len() < count {
        assert!(tokio::time::Instant::now() < deadline, "nothing written behind under {prefix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn blob(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i % 249) as u8 ^ seed).collect()
}

#[tokio::test]
async fn a_node_with_an_empty_store_reads_from_the_bucket_not_the_origin() {
    let Some(seaweed) = Seaweed::start(&[BUCKET]).await else { return };
    let registry = FakeRegistry::start().await;
    let keys = tempfile::tempdir().unwrap();
    let digest = registry.state.add_blob(blob(12 << 20, 1), "application/octet-stream");
    let path = format!("/v2/lib/app/blobs/{digest}");
    let first = node(&registry, &seaweed, &keys).await;
    let (response, body) = request(&first, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((response.status(), sha256(&body.unwrap())), (StatusCode::OK, digest.clone()));
    written_behind(&seaweed, "site-a/meta/sha256", 1).await;
    assert_eq!(seaweed.objects(BUCKET, "site-a/blobs/sha256").await, [digest.trim_start_matches("sha256:")]);
    assert_eq!(first.metric("pantry_shared_store_writes_total{result=\"written\"}"), 1);
    // Another node, its store empty, the registry down: the bucket has it.
    registry.state.down.store(true, Ordering::SeqCst);
    let second = node(&registry, &seaweed, &keys).await;
    let (response, body) = request(&second, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((response.status(), sha256(&body.unwrap())), (StatusCode::OK, digest.clone()));
    assert_eq!(registry.state.count("GET blob"), 1, "only the first fetch went to the origin");
    assert_eq!(second.metric("pantry_shared_store_fetched_bytes_total"), 12 << 20);
    assert!(second.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_some(), "kept locally");
}

#[tokio::test]
async fn private_content_in_the_bucket_is_served_only_to_clients_the_registry_admits() {
    let Some(seaweed) = Seaweed::start(&[BUCKET]).await else { return };
    let registry = FakeRegistry::start().await;
    let keys = tempfile::tempdir().unwrap();
    registry.state.make_private("private/app");
    let digest = registry.state.add_blob(blob(256 << 10, 2), "application/octet-stream");
    let path = format!("/v2/private/app/blobs/{digest}");
    let first = node(&registry, &seaweed, &keys).await;
    let (response, _) =
        request(&first, &registry.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    written_behind(&seaweed, "site-a/meta/sha256", 1).await;
    let second = node(&registry, &seaweed, &keys).await;
    // Without the token: the registry says no, so the bucket's copy is not served.
    let (response, body) = request(&second, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(sha256(&body.unwrap_or_default()), digest);
    // With the token: the registry is asked (a HEAD), the bytes come from the bucket.
    let gets = registry.state.count("GET blob");
    let (response, body) =
        request(&second, &registry.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!((response.status(), sha256(&body.unwrap())), (StatusCode::OK, digest.clone()));
    assert_eq!(registry.state.count("GET blob"), gets, "no origin GET: the bucket had it");
    assert_eq!(second.metric("pantry_shared_store_fetched_bytes_total"), 256 << 10);
}

#[tokio::test]
async fn a_bucket_that_holds_other_bytes_never_completes_them_and_its_copy_is_replaced() {
    let Some(seaweed) = Seaweed::start(&[BUCKET]).await else { return };
    let registry = FakeRegistry::start().await;
    let keys = tempfile::tempdir().unwrap();
    let digest = registry.state.add_blob(blob(1 << 20, 3), "application/octet-stream");
    let path = format!("/v2/lib/app/blobs/{digest}");
    let first = node(&registry, &seaweed, &keys).await;
    let (_, body) = request(&first, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(sha256(&body.unwrap()), digest);
    written_behind(&seaweed, "site-a/meta/sha256", 1).await;
    // Someone with write access to the bucket swaps the content.
    let bucket = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_endpoint(&seaweed.endpoint)
        .with_allow_http(true)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_http_connector(
            pantry::shared_store::http::Connector::new(
                &[],
                &[],
                Duration::from_secs(5),
                Duration::from_secs(5),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let object = Path::from(format!("site-a/blobs/sha256/{}", digest.trim_start_matches("sha256:")));
    bucket.put(&object, PutPayload::from(blob(1 << 20, 4))).await.unwrap();
    let second = node(&registry, &seaweed, &keys).await;
    let (response, body) = request(&second, &registry.host(), Method::GET, &path, &[]).await;
    let head = response.status();
    assert_eq!(head, StatusCode::OK, "the head goes out before the last bytes are checked");
    let broke = body.is_err();
    assert!(broke, "the transfer breaks off: the bytes are not the digest's");
    let kept = second.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_some();
    assert!(!kept, "nothing stored");
    // The next pull does not use the bad copy: fetched from the origin, and the bucket's copy replaced.
    let gets = registry.state.count("GET blob");
    let (response, body) = request(&second, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((response.status(), sha256(&body.unwrap())), (StatusCode::OK, digest.clone()));
    let refetched = registry.state.count("GET blob") - gets;
    assert_eq!(refetched, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let copy = bucket.get(&object).await.unwrap().bytes().await.unwrap();
        if sha256(&copy) == digest {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the bad copy was never replaced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A third node reads the good copy.
    let third = node(&registry, &seaweed, &keys).await;
    let (response, body) = request(&third, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((response.status(), sha256(&body.unwrap())), (StatusCode::OK, digest.clone()));
    let third_from_registry = registry.state.count("GET blob") - gets - refetched;
    assert_eq!(third_from_registry, 0, "from the bucket");
    common::reliability::record(common::reliability::Outcome {
        area: "upstream",
        fault: "the fleet's shared store holds other bytes than a blob's digest",
        client: format!(
            "a {} head, then {}; never the wrong bytes",
            head.as_u16(),
            if broke { "no clean end (a broken transfer)" } else { "a clean end" }
        ),
        stored: format!(
            "{} from the bucket; the next pull fetched the blob from the registry ({refetched} GET)",
            if kept { "a copy" } else { "nothing" }
        ),
        after: format!(
            "the bucket's copy was replaced with the right bytes, and another node read those \
             ({third_from_registry} more registry GETs)"
        ),
        lost: Vec::new(),
    });
}

#[tokio::test]
async fn a_node_started_empty_with_the_registry_and_every_peer_down_pulls_a_whole_image_from_the_bucket() {
    let Some(seaweed) = Seaweed::start(&[BUCKET]).await else { return };
    let registry = FakeRegistry::start().await;
    let keys = tempfile::tempdir().unwrap();
    let layer = registry.state.add_blob(blob(512 << 10, 5), "application/vnd.oci.image.layer.v1.tar");
    let manifest = format!(r#"{{"schemaVersion":2,"layers":[{{"digest":"{layer}","size":524288}}]}}"#);
    let manifest = registry.state.add_blob(manifest, MANIFEST_TYPE);
    registry.state.tag("lib/app", "v1", &manifest);
    let paths = [
        "/v2/".to_string(),
        "/v2/lib/app/manifests/v1".into(),
        format!("/v2/lib/app/manifests/{manifest}"),
        format!("/v2/lib/app/blobs/{layer}"),
    ];
    let accept = ("accept", MANIFEST_TYPE);
    let first = node(&registry, &seaweed, &keys).await;
    for path in &paths {
        let (response, _) = request(&first, &registry.host(), Method::GET, path, &[accept]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    written_behind(&seaweed, "site-a/meta/sha256", 2).await;
    written_behind(&seaweed, "site-a/records", 2).await;
    drop(first);
    registry.state.down.store(true, Ordering::SeqCst);
    // A fleet member whose every peer is down (nothing listens at their addresses).
    let fleet = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = fleet.local_addr().unwrap();
    let mut gone = Vec::new();
    for _ in 0..2 {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        gone.push(pantry::config::member_url(&format!("https://{}", closed.local_addr().unwrap())).unwrap());
    }
    let settings = shared(&seaweed, keys.path());
    let second = start_pantry_with_fleet(
        |c| {
            registry.configure(c);
            c.startup.shared_store = Some(settings);
            c.startup.fleet_listen = Some(own);
            c.startup.advertise = Some(pantry::config::member_url(&format!("https://{own}")).unwrap());
            c.startup.peers = gone;
        },
        Some(fleet),
    )
    .await;
    for path in &paths {
        let (response, body) = request(&second, &registry.host(), Method::GET, path, &[accept]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = body.unwrap();
        if path.contains("sha256:") || path.ends_with("v1") {
            assert!(sha256(&body) == manifest || sha256(&body) == layer, "{path}");
        }
    }
}

#[tokio::test]
async fn the_bucket_serves_no_registry_its_content_never_came_from() {
    let Some(seaweed) = Seaweed::start(&[BUCKET]).await else { return };
    let (registry, other) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let keys = tempfile::tempdir().unwrap();
    registry.state.make_private("private/app");
    let digest = registry.state.add_blob(blob(64 << 10, 6), "application/octet-stream");
    let first = node(&registry, &seaweed, &keys).await;
    let path = format!("/v2/private/app/blobs/{digest}");
    let (response, _) =
        request(&first, &registry.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    written_behind(&seaweed, "site-a/meta/sha256", 1).await;
    // A node that also intercepts another registry, which never had these bytes.
    let settings = shared(&seaweed, keys.path());
    let second = start_pantry(|c| {
        registry.configure(c);
        let mut more = pantry::config::Config::default();
        other.configure(&mut more);
        c.live.intercept.extend(more.live.intercept);
        c.startup.resolve.extend(more.startup.resolve);
        c.startup.upstream_ca.extend(more.startup.upstream_ca);
        c.startup.shared_store = Some(settings);
    })
    .await;
    for name in ["private/app", "anything"] {
        let path = format!("/v2/{name}/blobs/{digest}");
        let (response, body) =
            request(&second, &other.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}: that registry's own answer");
        assert_ne!(sha256(&body.unwrap_or_default()), digest);
    }
    assert_eq!(second.metric("pantry_shared_store_fetched_bytes_total"), 0, "nothing read from the bucket");
}
