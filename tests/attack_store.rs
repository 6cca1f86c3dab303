//! Attacks on the store: content changed on disk after it was verified and committed (a disk
//! that rots, another process or user writing the same bytes' file) must not reach a client as
//! the digest it claims. Small content (manifests, configs) is verified on every read; with
//! `verify_reads` whole reads of large content are too, and a mismatch breaks the transfer off
//! before its end. (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use common::{
    registry::{sha256, FakeRegistry},
    request, start_pantry, TestPantry,
};
use http::Method;

async fn with_verify_reads(registry: &FakeRegistry, verify: bool) -> TestPantry {
    start_pantry(|c| {
        registry.configure(c);
        c.verify_reads = verify;
    })
    .await
}

/// Flips one byte of the stored copy of `digest`, keeping its size.
async fn corrupt(pantry: &TestPantry, digest: &str) {
    let blob = pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.expect("stored");
    let mut bytes = std::fs::read(&blob.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob.path, bytes).unwrap();
}

#[tokio::test]
async fn corrupt_small_content_is_never_served_and_is_fetched_again() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, false).await;
    let digest = registry.state.add_blob(vec![3u8; 2_000], "application/vnd.oci.image.config.v1+json");
    let path = format!("/v2/app/blobs/{digest}");
    let (first, _) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(first.status(), 200);
    corrupt(&pantry, &digest).await;
    let (again, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(sha256(&body.unwrap()), digest, "the bytes the digest names, not the corrupt copy");
    assert_ne!(again.headers()["cache-status"], "pantry; hit");
    assert_eq!(registry.state.count("GET blob"), 2, "fetched again");
    let (third, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(
        (third.headers()["cache-status"].to_str().unwrap(), sha256(&body.unwrap())),
        ("pantry; hit", digest)
    );
}

#[tokio::test]
async fn with_verify_reads_corrupt_large_content_breaks_off_before_its_end() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, true).await;
    let layer: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = registry.state.add_blob(layer.clone(), "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    let (first, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((first.status().as_u16(), body.unwrap().len()), (200, layer.len()));
    let (hit, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(hit.headers()["cache-status"], "pantry; hit");
    assert_eq!(body.unwrap().len(), layer.len(), "intact content passes verification");

    corrupt(&pantry, &digest).await;
    let (broken, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(broken.status(), 200, "the head went out before the content was read");
    assert!(body.is_err(), "the transfer is broken off, never complete with the wrong bytes");
    let (again, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_ne!(again.headers()["cache-status"], "pantry; hit", "the corrupt file was removed");
    assert_eq!(sha256(&body.unwrap()), digest);
}
